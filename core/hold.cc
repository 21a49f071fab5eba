#include "core/hold.h"

#include <algorithm>

namespace iocwall {

std::vector<Range> StillCoveredByAdds(std::span<const Range> current, std::span<const Range> add) {
  std::vector<Range> out;
  if (current.empty() || add.empty()) return out;
  std::vector<Range> sorted;
  if (!std::is_sorted(current.begin(), current.end())) {
    sorted.assign(current.begin(), current.end());
    std::sort(sorted.begin(), sorted.end());
    current = sorted;
  }
  // Both lists are sorted and free of overlaps: one merge-like pass.
  size_t i = 0, j = 0;
  while (i < current.size() && j < add.size()) {
    const Range& c = current[i];
    const Range& a = add[j];
    const u128 first = std::max(c.first, a.first);
    const u128 last = std::min(c.last, a.last);
    if (first <= last) {
      if (!out.empty() && out.back().last + 1 == first) {
        out.back().last = last;
      } else {
        out.push_back({first, last});
      }
    }
    // The range that ends first cannot meet anything further in the other list.
    if (c.last < a.last) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

}  // namespace iocwall
