#include "core/diff.h"

#include <gtest/gtest.h>

#include <vector>

namespace iocwall {
namespace {

using Ranges = std::vector<Range>;

TEST(DiffRanges, TouchesOnlyWhatChanged) {
  Ranges current = {{1, 1}, {3, 5}, {10, 20}, {30, 30}};
  Ranges desired = {{1, 1}, {3, 6}, {10, 20}, {40, 41}};
  RangeDiff d = DiffRanges(current, desired);
  // A range whose bounds moved is one removal plus one addition: kernel elements match exactly.
  EXPECT_EQ(d.remove, (Ranges{{3, 5}, {30, 30}}));
  EXPECT_EQ(d.add, (Ranges{{3, 6}, {40, 41}}));
  EXPECT_EQ(d.ops(), 4u);
  EXPECT_FALSE(d.empty());
}

TEST(DiffRanges, IdenticalIsEmpty) {
  Ranges a = {{1, 2}, {5, 9}};
  EXPECT_TRUE(DiffRanges(a, a).empty());
  EXPECT_TRUE(DiffRanges(Ranges{}, Ranges{}).empty());
}

TEST(DiffRanges, FromAndToEmpty) {
  Ranges a = {{1, 2}, {5, 9}};
  RangeDiff d = DiffRanges(Ranges{}, a);
  EXPECT_TRUE(d.remove.empty());
  EXPECT_EQ(d.add, a);
  d = DiffRanges(a, Ranges{});
  EXPECT_EQ(d.remove, a);
  EXPECT_TRUE(d.add.empty());
}

TEST(DiffRanges, CurrentMayBeUnsortedAdjacentOrRepeated) {
  // What a kernel dump may hold: any order, adjacent elements the desired set merged.
  Ranges current = {{10, 19}, {0, 4}, {5, 9}, {10, 19}, {100, 100}};
  Ranges desired = {{0, 9}, {10, 19}, {100, 100}};
  RangeDiff d = DiffRanges(current, desired);
  EXPECT_EQ(d.remove, (Ranges{{0, 4}, {5, 9}}));  // sorted output
  EXPECT_EQ(d.add, (Ranges{{0, 9}}));
  EXPECT_EQ(ApplyDiff(current, d), desired);
}

TEST(DiffRanges, WideIPv6Bounds) {
  const u128 top = ~u128{0};
  Ranges current = {{0, top}};
  Ranges desired = {{0, top - 1}};
  RangeDiff d = DiffRanges(current, desired);
  EXPECT_EQ(d.remove, current);
  EXPECT_EQ(d.add, desired);
}

TEST(Diff, PerFamily) {
  IntervalSet current, desired;
  current.v4.ranges = {{1, 1}, {7, 8}};
  desired.v4.ranges = {{1, 1}};
  current.v6.ranges = {{1, 1}};
  desired.v6.ranges = {{1, 1}, {9, 9}};
  SetDiff d = Diff(current, desired);
  EXPECT_EQ(d.v4.remove, (Ranges{{7, 8}}));
  EXPECT_TRUE(d.v4.add.empty());
  EXPECT_TRUE(d.v6.remove.empty());
  EXPECT_EQ(d.of(Family::kV6).add, (Ranges{{9, 9}}));
  EXPECT_EQ(d.ops(), 2u);
  EXPECT_TRUE(Diff(desired, desired).empty());
}

TEST(ApplyDiff, RemovesThenAdds) {
  Ranges current = {{5, 5}, {1, 1}, {3, 3}};
  RangeDiff d;
  d.remove = {{3, 3}, {99, 99}};  // removing what is absent changes nothing
  d.add = {{4, 4}, {1, 1}};
  EXPECT_EQ(ApplyDiff(current, d), (Ranges{{1, 1}, {4, 4}, {5, 5}}));
}

}  // namespace
}  // namespace iocwall
