#include "core/timed.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <numeric>

namespace iocwall {
namespace {

// "Never" as the largest expiry, so that the latest expiry is a plain max.
constexpr int64_t kNeverKey = std::numeric_limits<int64_t>::max();
int64_t ToKey(int64_t expires) { return expires == kNeverExpires ? kNeverKey : expires; }
int64_t FromKey(int64_t key) { return key == kNeverKey ? kNeverExpires : key; }

using timed_internal::TimedItem;

// Sweeps the items in address order and writes the pieces of constant expiry. CIDR blocks
// either nest or are disjoint, so the blocks covering the sweep position form a stack (sorted
// by first address, larger block first); each stack entry holds the latest expiry and the
// sources of itself and every block around it, so the top describes the addresses it covers.
template <typename Addr>
void SweepInto(std::vector<TimedItem<Addr>>* items, Family family, FamilyRanges* out,
               bool keep_sources) {
  out->ranges.clear();
  out->sources.clear();
  out->expires.clear();
  if (items->empty()) return;
  // About as many ranges come out as items go in (fewer when they merge, a few more where a
  // longer-lived prefix splits a block): one allocation each rather than a doubling growth
  // whose last step holds the old and the new vectors at once (50 MB at 1M).
  out->ranges.reserve(items->size());
  if (keep_sources) out->sources.reserve(items->size());
  out->expires.reserve(items->size());
  std::sort(items->begin(), items->end(), [](const TimedItem<Addr>& a, const TimedItem<Addr>& b) {
    return a.first != b.first ? a.first < b.first : a.last > b.last;
  });
  const Addr top_address = static_cast<Addr>(MaxAddress(family));
  auto emit = [&](Addr first, Addr last, int64_t expiry, SourceMask mask) {
    const int64_t expires = FromKey(expiry);
    if (!out->ranges.empty() && out->ranges.back().last + 1 == u128{first} &&
        out->expires.back() == expires) {
      out->ranges.back().last = last;
      if (keep_sources) out->sources.back() |= mask;
      return;
    }
    out->ranges.push_back(Range{first, last});
    if (keep_sources) out->sources.push_back(mask);
    out->expires.push_back(expires);
  };
  struct Open {
    Addr last;
    int64_t expiry;
    SourceMask mask;
  };
  std::vector<Open> stack;
  Addr cur = 0;            // first address not yet written
  bool exhausted = false;  // the family's last address was written: nothing can follow
  auto close_top = [&] {
    const Open& top = stack.back();
    if (!exhausted && cur <= top.last) {
      emit(cur, top.last, top.expiry, top.mask);
      if (top.last == top_address) {
        exhausted = true;
      } else {
        cur = top.last + 1;
      }
    }
    stack.pop_back();
  };
  for (const TimedItem<Addr>& it : *items) {
    while (!stack.empty() && stack.back().last < it.first) close_top();
    int64_t expiry = it.expiry;
    SourceMask mask = SourceMask{1} << it.source_bit;
    if (stack.empty()) {
      cur = it.first;
    } else {
      // Nested in the top: what precedes it inside the top is written with the top's values.
      const Open& top = stack.back();
      if (cur < it.first) emit(cur, it.first - 1, top.expiry, top.mask);
      cur = it.first;
      expiry = std::max(expiry, top.expiry);
      mask |= top.mask;
    }
    stack.push_back(Open{it.last, expiry, mask});
  }
  while (!stack.empty()) close_top();
}

bool Refused(const Prefix& p, const Policy& policy, NormaliseStats* stats) {
  const uint8_t min = p.family == Family::kV4 ? policy.min_prefix_v4 : policy.min_prefix_v6;
  if (p.len >= min) return false;
  if (stats) {
    ++stats->too_short;
    if (stats->too_short_samples.size() < NormaliseStats::kMaxSamples) {
      stats->too_short_samples.push_back(p);
    }
  }
  return true;
}

// Indices of `ranges` in sorted order, duplicates (equal ranges) dropped after the first.
std::vector<size_t> SortedOrder(const std::vector<Range>& ranges) {
  std::vector<size_t> order(ranges.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (!std::is_sorted(ranges.begin(), ranges.end())) {
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  }
  order.erase(std::unique(order.begin(), order.end(),
                          [&](size_t a, size_t b) { return ranges[a] == ranges[b]; }),
              order.end());
  return order;
}

}  // namespace

TimedBuilder::TimedBuilder(const Policy& policy, NormaliseStats* stats)
    : policy_(policy), stats_(stats) {}

void TimedBuilder::Reserve(size_t v4, size_t v6) {
  v4_.reserve(v4);
  v6_.reserve(v6);
}

void TimedBuilder::Add(const Prefix& prefix, uint32_t source, int64_t expires) {
  if (stats_) ++stats_->input;
  if (Refused(prefix, policy_, stats_)) return;
  const uint8_t bit = static_cast<uint8_t>(std::countr_zero(SourceBit(source)));
  const int64_t key = ToKey(expires);
  if (prefix.family == Family::kV4) {
    v4_.push_back(
        {static_cast<uint32_t>(prefix.First()), static_cast<uint32_t>(prefix.Last()), key, bit});
  } else {
    v6_.push_back({prefix.First(), prefix.Last(), key, bit});
  }
}

IntervalSet TimedBuilder::Finish() {
  IntervalSet set;
  SweepInto(&v4_, Family::kV4, &set.v4, keep_sources_);
  // Released before the IPv6 sweep allocates its output.
  std::vector<TimedItem<uint32_t>>().swap(v4_);
  SweepInto(&v6_, Family::kV6, &set.v6, keep_sources_);
  std::vector<TimedItem<u128>>().swap(v6_);
  return set;
}

IntervalSet NormaliseTimed(std::span<const TimedPrefix> input, const Policy& policy,
                           NormaliseStats* stats) {
  TimedBuilder builder(policy, stats);
  size_t n4 = 0;
  for (const TimedPrefix& t : input) n4 += t.prefix.family == Family::kV4;
  builder.Reserve(n4, input.size() - n4);
  for (const TimedPrefix& t : input) builder.Add(t.prefix, t.source, t.expires);
  return builder.Finish();
}

size_t DropExpired(FamilyRanges* set, int64_t now) {
  if (set->expires.empty()) return 0;
  const bool sources = !set->sources.empty();
  size_t kept = 0;
  for (size_t i = 0; i < set->ranges.size(); ++i) {
    if (HasExpired(set->expires[i], now)) continue;
    set->ranges[kept] = set->ranges[i];
    set->expires[kept] = set->expires[i];
    if (sources) set->sources[kept] = set->sources[i];
    ++kept;
  }
  const size_t dropped = set->ranges.size() - kept;
  set->ranges.resize(kept);
  set->expires.resize(kept);
  if (sources) set->sources.resize(kept);
  return dropped;
}

size_t DropExpired(IntervalSet* set, int64_t now) {
  return DropExpired(&set->v4, now) + DropExpired(&set->v6, now);
}

TimedRangeDiff DiffTimedRanges(const FamilyRanges& current, const FamilyRanges& desired,
                               int64_t tolerance, int64_t now) {
  const bool timed = !current.expires.empty() && !desired.expires.empty();
  auto expiry = [](const FamilyRanges& s, size_t i) {
    return s.expires.empty() ? kNeverExpires : s.expires[i];
  };
  const std::vector<size_t> cur = SortedOrder(current.ranges);
  const std::vector<size_t> want = SortedOrder(desired.ranges);
  const auto& c = current.ranges;
  const auto& d = desired.ranges;
  TimedRangeDiff out;
  auto add = [&](size_t j) {
    out.add.push_back(d[j]);
    out.add_expires.push_back(expiry(desired, j));
  };
  size_t i = 0, j = 0;
  while (i < cur.size() || j < want.size()) {
    if (j == want.size() || (i < cur.size() && c[cur[i]] < d[want[j]])) {
      if (now != 0 && HasExpired(expiry(current, cur[i]), now)) {
        ++out.left_to_expire;
      } else {
        out.remove.push_back(c[cur[i]]);
      }
      ++i;
    } else if (i == cur.size() || d[want[j]] < c[cur[i]]) {
      add(want[j++]);
    } else {
      if (timed && !SameExpiry(expiry(current, cur[i]), expiry(desired, want[j]), tolerance)) {
        out.remove.push_back(c[cur[i]]);
        add(want[j]);
        ++out.refreshed;
      }
      ++i, ++j;
    }
  }
  return out;
}

TimedSetDiff DiffTimed(const IntervalSet& current, const IntervalSet& desired, int64_t tolerance,
                       int64_t now) {
  TimedSetDiff d;
  d.v4 = DiffTimedRanges(current.v4, desired.v4, tolerance, now);
  d.v6 = DiffTimedRanges(current.v6, desired.v6, tolerance, now);
  return d;
}

FamilyRanges ApplyTimedDiff(const FamilyRanges& current, const TimedRangeDiff& diff) {
  const std::vector<size_t> cur = SortedOrder(current.ranges);
  FamilyRanges kept;
  kept.ranges.reserve(cur.size());
  kept.expires.reserve(cur.size());
  size_t r = 0;
  for (size_t i : cur) {
    const Range& range = current.ranges[i];
    while (r < diff.remove.size() && diff.remove[r] < range) ++r;
    if (r < diff.remove.size() && diff.remove[r] == range) continue;
    kept.ranges.push_back(range);
    kept.expires.push_back(current.expires.empty() ? kNeverExpires : current.expires[i]);
  }
  FamilyRanges out;
  out.ranges.reserve(kept.ranges.size() + diff.add.size());
  out.expires.reserve(kept.ranges.size() + diff.add.size());
  size_t i = 0, a = 0;
  while (i < kept.ranges.size() || a < diff.add.size()) {
    const bool take_add =
        i == kept.ranges.size() || (a < diff.add.size() && !(kept.ranges[i] < diff.add[a]));
    if (take_add) {
      // An added range equal to a kept one replaces it (as the kernel would refuse the pair).
      if (i < kept.ranges.size() && kept.ranges[i] == diff.add[a]) ++i;
      out.ranges.push_back(diff.add[a]);
      out.expires.push_back(a < diff.add_expires.size() ? diff.add_expires[a] : kNeverExpires);
      ++a;
    } else {
      out.ranges.push_back(kept.ranges[i]);
      out.expires.push_back(kept.expires[i]);
      ++i;
    }
  }
  return out;
}

}  // namespace iocwall
