#include "core/interval_set.h"

#include <algorithm>
#include <bit>

namespace iocwall {
namespace {

// Working items of Normalise, as small as they can be: a million-entry feed means a million
// items, sorted, and their size is most of Normalise's time and of its peak memory. A prefix
// is its first address, its host-bit count and its source's bit index (provenance goes back
// to a mask when ranges are emitted).
//
// IPv4: one 64-bit key, first << 32 | host_bits << 6 | source_bit, which sorts by first
// address with a plain integer compare. 8 bytes where a Prefix is 48.
struct V4Item {
  uint64_t key;
  V4Item(u128 first, int host_bits, int source_bit)
      : key(static_cast<uint64_t>(first) << 32 | uint64_t(host_bits) << 6 | uint64_t(source_bit)) {}
  u128 first() const { return key >> 32; }
  u128 last() const { return (key >> 32) + ((uint64_t{1} << ((key >> 6) & 63)) - 1); }
  SourceMask mask() const { return SourceMask{1} << (key & 63); }
  bool operator<(const V4Item& o) const { return key < o.key; }
};
// IPv6: the address as two words (8-byte alignment rather than a u128's 16): 24 bytes.
struct V6Item {
  uint64_t hi;
  uint64_t lo;
  uint8_t host_bits;
  uint8_t source_bit;
  V6Item(u128 first, int host, int source)
      : hi(static_cast<uint64_t>(first >> 64)),
        lo(static_cast<uint64_t>(first)),
        host_bits(static_cast<uint8_t>(host)),
        source_bit(static_cast<uint8_t>(source)) {}
  u128 first() const { return u128{hi} << 64 | lo; }
  u128 last() const { return first() | (host_bits == 128 ? ~u128{0} : (u128{1} << host_bits) - 1); }
  SourceMask mask() const { return SourceMask{1} << source_bit; }
  bool operator<(const V6Item& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
};

// Cuts ranges, given in ascending order, by `allow` (sorted, disjoint): emit(first, last) is
// called for each piece outside every allow range, in order. O(n + m) over a whole pass, as
// the allow position only moves forward. The one cutting rule behind Subtract,
// SubtractInPlace and, fused into the merge, NormaliseAndSubtract.
class AllowCutter {
 public:
  explicit AllowCutter(const std::vector<Range>& allow) : allow_(allow) {}

  template <typename Emit>
  void Cut(u128 first, u128 last, Emit&& emit) {
    const auto& a = allow_;
    while (j_ < a.size() && a[j_].last < first) ++j_;
    u128 cur = first;
    // The allow range that runs past `last` may also cut the next range: j_ stays on it.
    for (size_t k = j_; k < a.size() && a[k].first <= last; ++k) {
      if (a[k].first > cur) emit(cur, a[k].first - 1);
      if (a[k].last >= last) return;
      cur = std::max(cur, a[k].last + 1);
    }
    emit(cur, last);
  }

 private:
  const std::vector<Range>& allow_;
  size_t j_ = 0;
};

// Receives ranges in ascending order and appends them to *out minus every address of `allow`,
// each piece keeping the mask (and expiry) of the range it was cut from.
class SubtractingSink {
 public:
  SubtractingSink(const std::vector<Range>& allow, FamilyRanges* out, bool keep_sources,
                  bool keep_expires = false)
      : cutter_(allow), out_(out), keep_sources_(keep_sources), keep_expires_(keep_expires) {}

  void Add(u128 first, u128 last, SourceMask mask, int64_t expires = 0) {
    cutter_.Cut(first, last, [&](u128 piece_first, u128 piece_last) {
      out_->ranges.push_back(Range{piece_first, piece_last});
      if (keep_sources_) out_->sources.push_back(mask);
      if (keep_expires_) out_->expires.push_back(expires);
    });
  }

 private:
  AllowCutter cutter_;
  FamilyRanges* out_;
  bool keep_sources_;
  bool keep_expires_;
};

// Sorts items by first address and folds duplicates, containment, overlap and adjacency into
// the minimal list of ranges, OR-ing provenance masks.
template <typename Item>
void MergeInto(std::vector<Item>* items, const std::vector<Range>& allow, FamilyRanges* out,
               bool keep_sources) {
  out->ranges.clear();
  out->sources.clear();
  if (items->empty()) return;
  std::sort(items->begin(), items->end());
  // Touching or overlapping: first - 1 cannot underflow because first > last >= 0.
  auto joins = [](u128 last, u128 first) { return first <= last || first - 1 == last; };
  // Two passes so that the output is allocated once: each allow range adds at most one piece.
  size_t count = 1;
  u128 last = items->front().last();
  for (const Item& it : *items) {
    if (!joins(last, it.first())) ++count;
    last = joins(last, it.first()) ? std::max(last, it.last()) : it.last();
  }
  out->ranges.reserve(count + allow.size());
  if (keep_sources) out->sources.reserve(count + allow.size());
  SubtractingSink sink(allow, out, keep_sources);
  u128 first = items->front().first();
  last = items->front().last();
  SourceMask mask = 0;
  for (const Item& it : *items) {
    if (joins(last, it.first())) {
      last = std::max(last, it.last());
    } else {
      sink.Add(first, last, mask);
      first = it.first();
      last = it.last();
      mask = 0;
    }
    mask |= it.mask();
  }
  sink.Add(first, last, mask);
}

class Collector {
 public:
  Collector(const Policy& policy, NormaliseStats* stats) : policy_(policy), stats_(stats) {}

  void Reserve(size_t v4, size_t v6) {
    v4_.reserve(v4);
    v6_.reserve(v6);
  }

  void Add(const Prefix& p, int source_bit) {
    if (stats_) ++stats_->input;
    const uint8_t min = p.family == Family::kV4 ? policy_.min_prefix_v4 : policy_.min_prefix_v6;
    if (p.len < min) {
      if (stats_) {
        ++stats_->too_short;
        if (stats_->too_short_samples.size() < NormaliseStats::kMaxSamples) {
          stats_->too_short_samples.push_back(p);
        }
      }
      return;
    }
    const int host_bits = AddressBits(p.family) - p.len;
    if (p.family == Family::kV4) {
      v4_.emplace_back(p.First(), host_bits, source_bit);
    } else {
      v6_.emplace_back(p.First(), host_bits, source_bit);
    }
  }

  IntervalSet Finish(bool keep_sources, const IntervalSet& allow = IntervalSet{}) {
    IntervalSet set;
    MergeInto(&v4_, allow.v4.ranges, &set.v4, keep_sources);
    std::vector<V4Item>().swap(v4_);
    MergeInto(&v6_, allow.v6.ranges, &set.v6, keep_sources);
    std::vector<V6Item>().swap(v6_);
    return set;
  }

 private:
  Policy policy_;
  NormaliseStats* stats_;
  std::vector<V4Item> v4_;
  std::vector<V6Item> v6_;
};

int SourceBitIndex(uint32_t source) { return std::countr_zero(SourceBit(source)); }

template <typename T>
void CountFamilies(std::span<const T> prefixes, size_t* v4, size_t* v6) {
  for (const T& p : prefixes) ++(p.family == Family::kV4 ? *v4 : *v6);
}

// Largest power-of-two block size (as a bit count) that starts at `first`, is aligned, and
// ends at or before `last`.
int BlockBits(Family family, u128 first, u128 last) {
  const int bits = AddressBits(family);
  const uint64_t lo = static_cast<uint64_t>(first);
  const uint64_t hi = static_cast<uint64_t>(first >> 64);
  int k = lo ? std::countr_zero(lo) : (hi ? 64 + std::countr_zero(hi) : 128);
  k = std::min(k, bits);
  const u128 span = last - first;  // a block of 2^k addresses needs span >= 2^k - 1
  while (k > 0 && !(k == 128 ? span == ~u128{0} : span >= (u128{1} << k) - 1)) --k;
  return k;
}

}  // namespace

IntervalSet Normalise(std::span<const TaggedPrefix> input, const Policy& policy,
                      NormaliseStats* stats) {
  Collector c(policy, stats);
  size_t v4 = 0, v6 = 0;
  for (const TaggedPrefix& t : input) ++(t.prefix.family == Family::kV4 ? v4 : v6);
  c.Reserve(v4, v6);
  for (const TaggedPrefix& t : input) c.Add(t.prefix, SourceBitIndex(t.source));
  return c.Finish(/*keep_sources=*/true);
}

IntervalSet Normalise(std::span<const SourcePrefixes> sources, const Policy& policy,
                      NormaliseStats* stats) {
  return NormaliseAndSubtract(sources, policy, IntervalSet{}, stats);
}

IntervalSet NormaliseAndSubtract(std::span<const SourcePrefixes> sources, const Policy& policy,
                                 const IntervalSet& allow, NormaliseStats* stats) {
  Collector c(policy, stats);
  size_t v4 = 0, v6 = 0;
  for (const SourcePrefixes& s : sources) CountFamilies(s.prefixes, &v4, &v6);
  c.Reserve(v4, v6);
  for (const SourcePrefixes& s : sources) {
    const int bit = SourceBitIndex(s.source);
    for (const Prefix& p : s.prefixes) c.Add(p, bit);
  }
  return c.Finish(/*keep_sources=*/true, allow);
}

IntervalSet FromPrefixes(std::span<const Prefix> prefixes) {
  Collector c(Policy{0, 0}, nullptr);
  size_t v4 = 0, v6 = 0;
  CountFamilies(prefixes, &v4, &v6);
  c.Reserve(v4, v6);
  for (const Prefix& p : prefixes) c.Add(p, 0);
  return c.Finish(/*keep_sources=*/false);
}

IntervalSet ProtectedRanges() {
  // Each of these breaks the host itself when blocked, whatever a feed claims:
  //  127.0.0.0/8, ::1        loopback: local services talk to each other over it.
  //  0.0.0.0/8, ::/128       "this host"/unspecified: DHCP DISCOVER and IPv6 duplicate address
  //                          detection are sent from it.
  //  255.255.255.255/32      limited broadcast: DHCP offers and acks arrive there.
  //  169.254.0.0/16          link-local: cloud metadata (169.254.169.254) and zeroconf.
  //  fe80::/10               IPv6 link-local: neighbour discovery and router advertisements
  //                          come from it; blocking it takes IPv6 down on the link.
  //  224.0.0.0/4, ff00::/8   multicast: routing protocols, mDNS, and IPv6 neighbour
  //                          solicitation (ff02::1:ffxx:xxxx) and MLD.
  static const IntervalSet kProtected = [] {
    const Prefix list[] = {
        {Family::kV4, u128{0x7f000000}, 8},    {Family::kV4, u128{0}, 8},
        {Family::kV4, u128{0xffffffff}, 32},   {Family::kV4, u128{0xa9fe0000}, 16},
        {Family::kV4, u128{0xe0000000}, 4},    {Family::kV6, u128{1}, 128},
        {Family::kV6, u128{0}, 128},           {Family::kV6, u128{0xfe80} << 112, 10},
        {Family::kV6, u128{0xff00} << 112, 8},
    };
    return FromPrefixes(list);
  }();
  return kProtected;
}

namespace {

void SubtractFamily(const FamilyRanges& block, const FamilyRanges& allow, FamilyRanges* out) {
  const bool keep_sources = !block.sources.empty();
  const bool keep_expires = !block.expires.empty();
  out->ranges.reserve(block.ranges.size() + allow.ranges.size());
  if (keep_sources) out->sources.reserve(block.ranges.size() + allow.ranges.size());
  if (keep_expires) out->expires.reserve(block.ranges.size() + allow.ranges.size());
  SubtractingSink sink(allow.ranges, out, keep_sources, keep_expires);
  for (size_t i = 0; i < block.ranges.size(); ++i) {
    sink.Add(block.ranges[i].first, block.ranges[i].last, keep_sources ? block.sources[i] : 0,
             keep_expires ? block.expires[i] : 0);
  }
}

// Makes room for `shift` more elements at the front of (*v)[0, n): the n elements move to
// [shift, n + shift). Reserves exactly first, as resize alone would double the capacity.
template <typename T>
void MoveToTail(std::vector<T>* v, size_t n, size_t shift) {
  v->reserve(n + shift);
  v->resize(n + shift);
  std::move_backward(v->begin(), v->begin() + n, v->begin() + n + shift);
}

void SubtractFamilyInPlace(FamilyRanges* block, const std::vector<Range>& allow) {
  std::vector<Range>& ranges = block->ranges;
  const size_t n = ranges.size();
  if (n == 0 || allow.empty()) return;
  const bool keep_sources = !block->sources.empty();
  const bool keep_expires = !block->expires.empty();
  // A forward rewrite writes the pieces of range i over slots the ranges before it held; it
  // may run ahead of the reading only where an allow range splits a block range in two. The
  // largest such lead is `shift`: with the input moved that far to the tail, no piece is
  // written over a range not yet read.
  size_t count = 0;
  size_t shift = 0;
  {
    AllowCutter counter(allow);
    for (size_t i = 0; i < n; ++i) {
      counter.Cut(ranges[i].first, ranges[i].last, [&](u128, u128) { ++count; });
      if (count > i + 1) shift = std::max(shift, count - (i + 1));
    }
  }
  if (shift > 0) {
    MoveToTail(&ranges, n, shift);
    if (keep_sources) MoveToTail(&block->sources, n, shift);
    if (keep_expires) MoveToTail(&block->expires, n, shift);
  }
  AllowCutter cutter(allow);
  size_t written = 0;
  for (size_t i = shift; i < n + shift; ++i) {
    // Read before the pieces are written: the last of them may land on this very slot.
    const Range range = ranges[i];
    const SourceMask mask = keep_sources ? block->sources[i] : 0;
    const int64_t expires = keep_expires ? block->expires[i] : 0;
    cutter.Cut(range.first, range.last, [&](u128 first, u128 last) {
      ranges[written] = Range{first, last};
      if (keep_sources) block->sources[written] = mask;
      if (keep_expires) block->expires[written] = expires;
      ++written;
    });
  }
  ranges.resize(count);
  if (keep_sources) block->sources.resize(count);
  if (keep_expires) block->expires.resize(count);
}

}  // namespace

IntervalSet Subtract(const IntervalSet& block, const IntervalSet& allow) {
  IntervalSet out;
  SubtractFamily(block.v4, allow.v4, &out.v4);
  SubtractFamily(block.v6, allow.v6, &out.v6);
  return out;
}

void SubtractInPlace(IntervalSet* block, const IntervalSet& allow) {
  SubtractFamilyInPlace(&block->v4, allow.v4.ranges);
  SubtractFamilyInPlace(&block->v6, allow.v6.ranges);
}

long Find(const FamilyRanges& set, u128 addr) {
  auto it = std::upper_bound(set.ranges.begin(), set.ranges.end(), addr,
                             [](u128 a, const Range& r) { return a < r.first; });
  if (it == set.ranges.begin()) return -1;
  --it;
  if (addr > it->last) return -1;
  return static_cast<long>(it - set.ranges.begin());
}

u128 AddressCount(const FamilyRanges& set) {
  const u128 kMax = ~u128{0};
  u128 total = 0;
  for (const Range& r : set.ranges) {
    const u128 span = r.last - r.first;  // size - 1, cannot overflow
    if (total > kMax - span || total + span == kMax) return kMax;
    total += span + 1;
  }
  return total;
}

std::vector<Prefix> RangeToPrefixes(Family family, const Range& range) {
  std::vector<Prefix> out;
  if (range.first > range.last || range.last > MaxAddress(family)) return out;
  u128 first = range.first;
  while (true) {
    const int k = BlockBits(family, first, range.last);
    out.push_back(Prefix{family, first, static_cast<uint8_t>(AddressBits(family) - k)});
    const u128 block_last = k == 128 ? ~u128{0} : first + ((u128{1} << k) - 1);
    if (block_last >= range.last) break;
    first = block_last + 1;
  }
  return out;
}

std::string FormatRange(Family family, const Range& range) {
  if (range.first <= range.last && range.last <= MaxAddress(family)) {
    const int k = BlockBits(family, range.first, range.last);
    const u128 span = range.last - range.first;
    if (k == 128 ? span == ~u128{0} : span == (u128{1} << k) - 1) {
      return Prefix{family, range.first, static_cast<uint8_t>(AddressBits(family) - k)}.ToString();
    }
  }
  return FormatAddress(family, range.first) + "-" + FormatAddress(family, range.last);
}

}  // namespace iocwall
