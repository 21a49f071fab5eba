#include "core/build.h"

#include <vector>

namespace iocwall {

IntervalSet NeverBlocked(std::span<const Prefix> allowlist, std::span<const Prefix> host) {
  std::vector<Prefix> all(allowlist.begin(), allowlist.end());
  all.insert(all.end(), host.begin(), host.end());
  const IntervalSet prot = ProtectedRanges();
  for (Family f : {Family::kV4, Family::kV6}) {
    for (const Range& r : prot.of(f).ranges) {
      for (const Prefix& p : RangeToPrefixes(f, r)) all.push_back(p);
    }
  }
  return FromPrefixes(all);
}

IntervalSet BuildDesired(std::span<const TimedPrefix> tagged, const Policy& policy,
                         const IntervalSet& never, NormaliseStats* stats,
                         const std::function<void(const IntervalSet&)>& before_carve) {
  IntervalSet merged = NormaliseTimed(tagged, policy, stats);
  if (before_carve) before_carve(merged);
  // One Subtract of the union: the same pieces as one per carve-out, one full copy of the set
  // fewer at peak.
  return Subtract(merged, never);
}

}  // namespace iocwall
