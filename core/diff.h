// Diff: the element removals and additions that turn what the kernel holds into what is
// desired, touching only what changed. Kernel interval elements are matched exactly: a range
// whose bounds changed is one removal plus one addition.
#pragma once

#include <span>
#include <vector>

#include "core/interval_set.h"

namespace iocwall {

struct RangeDiff {
  std::vector<Range> remove;  // sorted
  std::vector<Range> add;     // sorted
  bool empty() const { return remove.empty() && add.empty(); }
  size_t ops() const { return remove.size() + add.size(); }
};

struct SetDiff {
  RangeDiff v4;
  RangeDiff v6;
  bool empty() const { return v4.empty() && v6.empty(); }
  size_t ops() const { return v4.ops() + v6.ops(); }
  RangeDiff& of(Family f) { return f == Family::kV4 ? v4 : v6; }
  const RangeDiff& of(Family f) const { return f == Family::kV4 ? v4 : v6; }
};

// `current` need not be normalised (it is what the kernel holds: sorted or not, possibly
// adjacent elements); `desired` is the output of Normalise/Subtract. Deterministic; O(n log n)
// at worst, O(n) when both are sorted.
RangeDiff DiffRanges(std::span<const Range> current, std::span<const Range> desired);
SetDiff Diff(const IntervalSet& current, const IntervalSet& desired);

// Applies a diff to a list of ranges (for tests and for keeping the applied copy in memory).
std::vector<Range> ApplyDiff(std::span<const Range> current, const RangeDiff& diff);

}  // namespace iocwall
