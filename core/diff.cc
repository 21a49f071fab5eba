#include "core/diff.h"

#include <algorithm>

namespace iocwall {
namespace {

// A sorted, duplicate-free view of `ranges`: the input itself when it already is (Normalise
// output, an ordered kernel dump), else a sorted copy in *storage.
std::span<const Range> SortedUnique(std::span<const Range> ranges, std::vector<Range>* storage) {
  if (std::adjacent_find(ranges.begin(), ranges.end(),
                         [](const Range& a, const Range& b) { return !(a < b); }) == ranges.end()) {
    return ranges;
  }
  storage->assign(ranges.begin(), ranges.end());
  std::sort(storage->begin(), storage->end());
  storage->erase(std::unique(storage->begin(), storage->end()), storage->end());
  return *storage;
}

}  // namespace

RangeDiff DiffRanges(std::span<const Range> current, std::span<const Range> desired) {
  std::vector<Range> current_copy, desired_copy;
  current = SortedUnique(current, &current_copy);
  desired = SortedUnique(desired, &desired_copy);
  // Counted first, then filled: the first cycle adds the whole set, and growing a vector to
  // a million ranges by doubling would hold 1.5 times its final size at the last copy.
  size_t remove = 0, add = 0;
  for (size_t i = 0, j = 0; i < current.size() || j < desired.size();) {
    if (j == desired.size() || (i < current.size() && current[i] < desired[j])) {
      ++remove, ++i;
    } else if (i == current.size() || desired[j] < current[i]) {
      ++add, ++j;
    } else {
      ++i, ++j;
    }
  }
  RangeDiff d;
  d.remove.reserve(remove);
  d.add.reserve(add);
  std::set_difference(current.begin(), current.end(), desired.begin(), desired.end(),
                      std::back_inserter(d.remove));
  std::set_difference(desired.begin(), desired.end(), current.begin(), current.end(),
                      std::back_inserter(d.add));
  return d;
}

SetDiff Diff(const IntervalSet& current, const IntervalSet& desired) {
  SetDiff d;
  d.v4 = DiffRanges(current.v4.ranges, desired.v4.ranges);
  d.v6 = DiffRanges(current.v6.ranges, desired.v6.ranges);
  return d;
}

std::vector<Range> ApplyDiff(std::span<const Range> current, const RangeDiff& diff) {
  std::vector<Range> current_copy, remove_copy, add_copy;
  current = SortedUnique(current, &current_copy);
  std::span<const Range> remove = SortedUnique(diff.remove, &remove_copy);
  std::span<const Range> add = SortedUnique(diff.add, &add_copy);
  std::vector<Range> kept;
  kept.reserve(current.size());
  std::set_difference(current.begin(), current.end(), remove.begin(), remove.end(),
                      std::back_inserter(kept));
  std::vector<Range> out;
  out.reserve(kept.size() + add.size());
  std::set_union(kept.begin(), kept.end(), add.begin(), add.end(), std::back_inserter(out));
  return out;
}

}  // namespace iocwall
