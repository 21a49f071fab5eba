// StillCoveredByAdds: the ranges the hold bridge keeps matched during an update (hold.h).
#include "core/hold.h"

#include <gtest/gtest.h>

#include <random>

namespace iocwall {
namespace {

std::vector<Range> Rs(std::initializer_list<std::pair<uint32_t, uint32_t>> l) {
  std::vector<Range> out;
  for (auto [a, b] : l) out.push_back({a, b});
  return out;
}

TEST(HoldTest, AReshapeHoldsWhatStaysCovered) {
  // A /24 becomes a /25 + a /26: both new ranges were covered; the last /26 is unblocked.
  EXPECT_EQ(StillCoveredByAdds(Rs({{0, 255}}), Rs({{0, 127}, {128, 191}})), Rs({{0, 191}}));
}

TEST(HoldTest, ARefreshHoldsTheWholeRange) {
  EXPECT_EQ(StillCoveredByAdds(Rs({{10, 10}, {20, 29}}), Rs({{20, 29}})), Rs({{20, 29}}));
}

TEST(HoldTest, NewAddressesAreNotHeld) {
  // Growing a range: only the part that was blocked before is held.
  EXPECT_EQ(StillCoveredByAdds(Rs({{10, 19}}), Rs({{5, 30}})), Rs({{10, 19}}));
  EXPECT_EQ(StillCoveredByAdds(Rs({{10, 19}}), Rs({{20, 30}})), Rs({}));
  EXPECT_EQ(StillCoveredByAdds(Rs({}), Rs({{20, 30}})), Rs({}));
  EXPECT_EQ(StillCoveredByAdds(Rs({{20, 30}}), Rs({})), Rs({}));
}

TEST(HoldTest, UnsortedCurrentAndTheTopOfTheSpace) {
  const u128 top = MaxAddress(Family::kV6);
  std::vector<Range> current = {{top - 9, top}, {0, 9}};
  std::vector<Range> add = {{5, 14}, {top - 4, top}};
  EXPECT_EQ(StillCoveredByAdds(current, add), (std::vector<Range>{{5, 9}, {top - 4, top}}));
}

// Against brute force over a small space: every address in the output is in both inputs, every
// address in both is in the output, and the output is sorted, disjoint and merged.
TEST(HoldTest, MatchesBruteForce) {
  std::mt19937 rng(7);
  auto random_ranges = [&] {
    std::vector<Range> out;
    uint32_t at = rng() % 4;
    while (at < 200) {
      uint32_t len = rng() % 8;
      out.push_back({at, at + len});
      at += len + 1 + rng() % 6;
    }
    return out;
  };
  for (int round = 0; round < 500; ++round) {
    std::vector<Range> current = random_ranges(), add = random_ranges();
    std::vector<Range> held = StillCoveredByAdds(current, add);
    auto in = [](const std::vector<Range>& rs, uint32_t a) {
      for (const Range& r : rs) {
        if (r.first <= a && a <= r.last) return true;
      }
      return false;
    };
    for (uint32_t a = 0; a < 220; ++a) {
      ASSERT_EQ(in(held, a), in(current, a) && in(add, a)) << "round " << round << " at " << a;
    }
    for (size_t i = 1; i < held.size(); ++i) ASSERT_GT(held[i].first, held[i - 1].last + 1);
  }
}

}  // namespace
}  // namespace iocwall
