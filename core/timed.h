// Timed interval sets: every range carries the time it stops being valid, so that the kernel
// can expire indicators by itself (nftables per-element timeouts), exactly on time and whether
// or not the agent is running. An address covered by several indicators is valid until the
// latest of their expiries; ranges are split where the expiry changes, so that renewing one
// indicator refreshes exactly the addresses it covers.
//
// Expiries are Unix seconds; 0 means never (and is later than any time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/interval_set.h"

namespace iocwall {

inline constexpr int64_t kNeverExpires = 0;

struct TimedPrefix {
  Prefix prefix;
  uint32_t source = 0;
  int64_t expires = kNeverExpires;  // Unix seconds; 0 = never
};

// The later of two expiries (0, never, wins).
inline int64_t LaterExpiry(int64_t a, int64_t b) {
  return (a == kNeverExpires || b == kNeverExpires) ? kNeverExpires : (a > b ? a : b);
}

// True when an expiry has passed at `now` (never for 0).
inline bool HasExpired(int64_t expires, int64_t now) {
  return expires != kNeverExpires && expires <= now;
}

namespace timed_internal {

// One prefix as TimedBuilder keeps it until Finish sweeps it. IPv4 items hold 32-bit addresses
// (24 bytes rather than 48): a million-entry feed means a million items to sort.
template <typename Addr>
struct TimedItem {
  Addr first;
  Addr last;
  int64_t expiry;  // never as the largest int64_t, so that the latest expiry is a plain max
  uint8_t source_bit;
};

}  // namespace timed_internal

// Collects entries straight into the compact sweep items, so that a caller holding its entries
// in another form (per-source lists) need not copy them all into a TimedPrefix vector first
// (48 MB at 1M entries). Finish returns NormaliseTimed of everything added, in the order added.
class TimedBuilder {
 public:
  TimedBuilder(const Policy& policy, NormaliseStats* stats);  // stats may be null

  // Expected entries per family: a hint that spares the item vectors their doubling growth.
  void Reserve(size_t v4, size_t v6);
  // Counts the entry in stats->input; a prefix shorter than the policy's minimum is refused
  // (counted in stats) and kept out of the set.
  void Add(const Prefix& prefix, uint32_t source, int64_t expires);
  // The set of every entry added since construction or the last Finish; the builder is empty
  // (its memory released) after, ready for another set with the same policy and stats.
  IntervalSet Finish();
  // Without the per-range source masks (FamilyRanges::sources left empty): 8 bytes a range
  // for a caller that keeps provenance elsewhere (the agent: in its snapshots).
  void DropSources() { keep_sources_ = false; }

  // A point to come back to: Rollback drops every entry added since Mark (a source whose list
  // turned out damaged halfway through must add nothing). Stats keep what they counted.
  struct Mark {
    size_t v4 = 0;
    size_t v6 = 0;
  };
  Mark GetMark() const { return {v4_.size(), v6_.size()}; }
  void Rollback(Mark m) {
    if (m.v4 < v4_.size()) v4_.resize(m.v4);
    if (m.v6 < v6_.size()) v6_.resize(m.v6);
  }

 private:
  Policy policy_;
  NormaliseStats* stats_;
  bool keep_sources_ = true;
  std::vector<timed_internal::TimedItem<uint32_t>> v4_;
  std::vector<timed_internal::TimedItem<u128>> v6_;
};

// Like Normalise, with an expiry per range in FamilyRanges::expires: each address expires at
// the latest expiry of the prefixes that cover it. Touching or overlapping pieces merge only
// when their expiries are equal; otherwise they stay separate ranges, split where the expiry
// changes. A range's source mask ORs the sources of every prefix that covers any of its
// addresses. Prefixes shorter than the policy's minimum are refused (counted in stats, which
// may be null). Expired entries are NOT dropped here (there is no clock in the core): the
// caller drops them first, or leaves it to the kernel. O(n log n). The same as a TimedBuilder
// fed with `input`.
IntervalSet NormaliseTimed(std::span<const TimedPrefix> input, const Policy& policy,
                           NormaliseStats* stats);

// Removes the ranges whose expiry has passed at `now` (HasExpired), keeping the parallel
// sources/expires vectors aligned. Returns how many were removed. A set without expires is
// left as it is.
size_t DropExpired(FamilyRanges* set, int64_t now);
size_t DropExpired(IntervalSet* set, int64_t now);

// True when two expiries are the same within `tolerance` seconds (0 only equals 0).
inline bool SameExpiry(int64_t a, int64_t b, int64_t tolerance) {
  if (a == kNeverExpires || b == kNeverExpires) return a == b;
  return (a > b ? a - b : b - a) <= tolerance;
}

// The element operations that turn `current` into `desired` when elements carry expiries.
// A range present on both sides with a different expiry (beyond `tolerance`) is a refresh:
// it appears in `remove` AND in `add` (with its new expiry), to be applied in the same
// transaction (a kernel element's timeout cannot be changed in place on Linux 6.1).
struct TimedRangeDiff {
  std::vector<Range> remove;         // sorted
  std::vector<Range> add;            // sorted
  std::vector<int64_t> add_expires;  // parallel to add
  size_t refreshed = 0;              // ranges in both remove and add
  size_t left_to_expire = 0;         // not in desired, but expired at `now`: not removed
  bool empty() const { return remove.empty() && add.empty(); }
  size_t ops() const { return remove.size() + add.size(); }
};

struct TimedSetDiff {
  TimedRangeDiff v4;
  TimedRangeDiff v6;
  bool empty() const { return v4.empty() && v6.empty(); }
  size_t ops() const { return v4.ops() + v6.ops(); }
  TimedRangeDiff& of(Family f) { return f == Family::kV4 ? v4 : v6; }
  const TimedRangeDiff& of(Family f) const { return f == Family::kV4 ? v4 : v6; }
};

// `current` need not be sorted (a kernel dump); `desired` is NormaliseTimed/Subtract output or
// any sorted, duplicate-free list. When either side has no expires, ranges are compared alone
// (exactly as DiffRanges) and `add_expires` takes the desired expiries (0 when it has none).
// `tolerance` (seconds) absorbs the rounding of kernel timeouts read back from a dump.
// `now` != 0: a current range that desired no longer has and whose expiry has passed at `now`
// is not removed (counted in left_to_expire): the kernel drops it by itself, and deleting an
// element that is already gone would fail the whole transaction. A refresh is always kept.
TimedRangeDiff DiffTimedRanges(const FamilyRanges& current, const FamilyRanges& desired,
                               int64_t tolerance = 0, int64_t now = 0);
TimedSetDiff DiffTimed(const IntervalSet& current, const IntervalSet& desired,
                       int64_t tolerance = 0, int64_t now = 0);

// Applies a timed diff to `current` (for tests and for keeping the applied copy in memory):
// the result has ranges and expires, sorted; sources are not kept.
FamilyRanges ApplyTimedDiff(const FamilyRanges& current, const TimedRangeDiff& diff);

}  // namespace iocwall
