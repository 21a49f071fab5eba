// The agent's build path, shared with bench_core: from the entries in force to the set the
// kernel is to hold. Pure.
#pragma once

#include <functional>
#include <span>

#include "core/interval_set.h"
#include "core/prefix.h"
#include "core/timed.h"

namespace iocwall {

// Every address iocwall never blocks, whatever a feed says: the protected ranges
// (ProtectedRanges), the allowlist and the host's own addresses and networks.
IntervalSet NeverBlocked(std::span<const Prefix> allowlist, std::span<const Prefix> host);

// The entries in force, normalised with their expiries (entries.Finish(): the builder carries
// the policy and the stats), minus `never` in place: no second copy of a million-range set.
// `before_carve`, when given, sees the set before the carve-out (the agent names what was
// carved out of it). The builder is empty after.
IntervalSet BuildDesired(TimedBuilder&& entries, const IntervalSet& never,
                         const std::function<void(const IntervalSet&)>& before_carve = nullptr);

// The same from a TimedPrefix list (NormaliseTimed), for callers that already hold one.
IntervalSet BuildDesired(std::span<const TimedPrefix> tagged, const Policy& policy,
                         const IntervalSet& never, NormaliseStats* stats,
                         const std::function<void(const IntervalSet&)>& before_carve = nullptr);

}  // namespace iocwall
