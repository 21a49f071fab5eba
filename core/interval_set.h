// IntervalSet: what the kernel's interval sets must cover, as the minimal list of sorted,
// non-overlapping, non-adjacent inclusive ranges per family, with provenance.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/prefix.h"

namespace iocwall {

struct Range {
  u128 first = 0;  // inclusive
  u128 last = 0;   // inclusive
  bool operator==(const Range&) const = default;
  auto operator<=>(const Range& o) const {
    if (first != o.first) return first < o.first ? -1 : 1;
    if (last != o.last) return last < o.last ? -1 : 1;
    return 0;
  }
};

// Provenance: bit i set means source i (the index the caller gave the source) contributed to
// the range. Sources beyond 63 all share bit 63.
using SourceMask = uint64_t;
inline SourceMask SourceBit(uint32_t source_index) {
  return SourceMask{1} << (source_index < 63 ? source_index : 63);
}

struct FamilyRanges {
  std::vector<Range> ranges;        // sorted, disjoint, non-adjacent
  std::vector<SourceMask> sources;  // parallel to ranges (empty when provenance is not kept)
  // Parallel to ranges: when each range stops being valid, Unix seconds, 0 = never. Empty when
  // the set is not timed (NormaliseTimed in timed.h fills it; Subtract keeps it).
  std::vector<int64_t> expires;
  size_t size() const { return ranges.size(); }
};

struct IntervalSet {
  FamilyRanges v4;
  FamilyRanges v6;
  FamilyRanges& of(Family f) { return f == Family::kV4 ? v4 : v6; }
  const FamilyRanges& of(Family f) const { return f == Family::kV4 ? v4 : v6; }
  size_t size() const { return v4.size() + v6.size(); }
};

struct TaggedPrefix {
  Prefix prefix;
  uint32_t source = 0;
};

// Safety policy applied by Normalise.
struct Policy {
  uint8_t min_prefix_v4 = 8;  // a shorter IPv4 prefix is refused (0.0.0.0/0 never blocks all)
  uint8_t min_prefix_v6 = 32;
};

struct NormaliseStats {
  size_t input = 0;
  size_t too_short = 0;                   // refused by the minimum prefix length
  std::vector<Prefix> too_short_samples;  // first few, for the log
  static constexpr size_t kMaxSamples = 10;
};

// The prefixes of one source, by reference (e.g. FetchResult::prefixes), with its index.
struct SourcePrefixes {
  std::span<const Prefix> prefixes;
  uint32_t source = 0;
};

// Merges any list (duplicates, containment, overlap, adjacency) into the minimal interval set,
// refusing prefixes shorter than the policy's minimum. O(n log n).
IntervalSet Normalise(std::span<const TaggedPrefix> input, const Policy& policy,
                      NormaliseStats* stats);
// The same over per-source lists, without a TaggedPrefix copy of every entry (1M prefixes
// would cost 64 MB more). stats may be null in both.
IntervalSet Normalise(std::span<const SourcePrefixes> sources, const Policy& policy,
                      NormaliseStats* stats);

// Normalise(sources) then Subtract(..., allow) in one pass, without the intermediate set: the
// same result, one full copy of the set less at peak. Not on the agent's path (it builds with
// expiries: core/build.h); kept as the property tests' cross-check of Subtract.
IntervalSet NormaliseAndSubtract(std::span<const SourcePrefixes> sources, const Policy& policy,
                                 const IntervalSet& allow, NormaliseStats* stats);

// Ranges that are never blocked whatever a feed says: loopback (127.0.0.0/8, ::1), "this host"
// (0.0.0.0/8, ::), limited broadcast, link-local (169.254.0.0/16, fe80::/10: IPv6 neighbour
// discovery lives there), multicast (224.0.0.0/4, ff00::/8).
IntervalSet ProtectedRanges();

// Removes every address of `allow` from `block`: a blocked /16 with an allowlisted /24 inside
// becomes the ranges around it. Provenance and expiry of the remaining pieces are kept. O(n + m).
IntervalSet Subtract(const IntervalSet& block, const IntervalSet& allow);
// Subtract's result (ranges, sources, expires) left in *block, without a second copy of it:
// for a set of millions of ranges and an `allow` of tens. O(n + m) in two passes; the vectors
// grow by a few slots only where an allow range splits a block range in two (their capacity is
// kept, not shrunk).
void SubtractInPlace(IntervalSet* block, const IntervalSet& allow);

// Builds an interval set from plain prefixes (allowlists); no policy applied.
IntervalSet FromPrefixes(std::span<const Prefix> prefixes);

// Index of the range covering addr, or -1.
long Find(const FamilyRanges& set, u128 addr);

// Total number of addresses covered (saturating at 2^128-1 for IPv6).
u128 AddressCount(const FamilyRanges& set);

// The prefixes (CIDR blocks) that exactly cover a range, for display.
std::vector<Prefix> RangeToPrefixes(Family family, const Range& range);
std::string FormatRange(Family family, const Range& range);  // "10.0.0.0/8" or "a-b"

}  // namespace iocwall
