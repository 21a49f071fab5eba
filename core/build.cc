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

namespace {

IntervalSet Carve(IntervalSet merged, const IntervalSet& never,
                  const std::function<void(const IntervalSet&)>& before_carve) {
  if (before_carve) before_carve(merged);
  // One pass over the union of the carve-outs, in place: the same pieces as one Subtract per
  // carve-out, with no copy of the set at all.
  SubtractInPlace(&merged, never);
  return merged;
}

}  // namespace

IntervalSet BuildDesired(TimedBuilder&& entries, const IntervalSet& never,
                         const std::function<void(const IntervalSet&)>& before_carve) {
  return Carve(entries.Finish(), never, before_carve);
}

IntervalSet BuildDesired(std::span<const TimedPrefix> tagged, const Policy& policy,
                         const IntervalSet& never, NormaliseStats* stats,
                         const std::function<void(const IntervalSet&)>& before_carve) {
  return Carve(NormaliseTimed(tagged, policy, stats), never, before_carve);
}

}  // namespace iocwall
