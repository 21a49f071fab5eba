#include "core/interval_set.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "tests/unit/same_set.h"

namespace iocwall {
namespace {

Prefix P(std::string_view text) {
  std::optional<Prefix> p = ParsePrefix(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(Prefix{});
}

std::vector<TaggedPrefix> Tagged(std::initializer_list<std::pair<const char*, uint32_t>> list) {
  std::vector<TaggedPrefix> out;
  for (const auto& [text, source] : list) out.push_back(TaggedPrefix{P(text), source});
  return out;
}

// The ranges of one family as text, for readable expectations.
std::vector<std::string> Text(const FamilyRanges& r, Family f) {
  std::vector<std::string> out;
  for (const Range& range : r.ranges) out.push_back(FormatRange(f, range));
  return out;
}
using Strings = std::vector<std::string>;

IntervalSet Norm(std::initializer_list<std::pair<const char*, uint32_t>> list,
                 const Policy& policy = Policy{}, NormaliseStats* stats = nullptr) {
  std::vector<TaggedPrefix> t = Tagged(list);
  return Normalise(t, policy, stats);
}

// Subtract, and SubtractInPlace on a copy of `block`, which must leave exactly the same vectors.
IntervalSet Sub(const IntervalSet& block, const IntervalSet& allow) {
  IntervalSet out = Subtract(block, allow);
  IntervalSet in_place = block;
  SubtractInPlace(&in_place, allow);
  CheckSameSet(in_place, out);
  return out;
}

TEST(Normalise, MergesDuplicatesContainmentOverlapAndAdjacency) {
  IntervalSet s = Norm({{"10.0.0.5", 0},
                        {"10.0.0.5", 0},       // duplicate
                        {"10.0.0.0/24", 0},    // contains the above
                        {"10.0.0.128/25", 0},  // contained
                        {"10.0.1.0/24", 0},    // adjacent: joins into 10.0.0.0/23
                        {"10.0.3.0/24", 0},    // a gap at 10.0.2.0/24 keeps it apart
                        {"10.0.3.200", 0},
                        {"192.0.2.0/25", 0},
                        {"192.0.2.64/26", 0},
                        {"192.0.2.96/27", 0},     // overlaps stacked on one another
                        {"192.0.2.128/25", 0}});  // adjacent to the first
  EXPECT_EQ(Text(s.v4, Family::kV4), (Strings{"10.0.0.0/23", "10.0.3.0/24", "192.0.2.0/24"}));
  EXPECT_TRUE(s.v6.ranges.empty());
  EXPECT_EQ(s.v4.sources.size(), s.v4.ranges.size());
}

TEST(Normalise, AdjacentSingleAddressesBecomeOneRange) {
  IntervalSet s = Norm({{"10.0.0.3", 0}, {"10.0.0.1", 0}, {"10.0.0.2", 0}, {"10.0.0.5", 0}});
  EXPECT_EQ(Text(s.v4, Family::kV4), (Strings{"10.0.0.1-10.0.0.3", "10.0.0.5"}));
}

TEST(Normalise, KeepsFamiliesApartAndHandlesTheTopAddress) {
  IntervalSet s = Norm({{"255.255.255.255", 0},
                        {"255.255.255.254", 0},
                        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0},
                        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 0},
                        {"2001:db8::/48", 0},
                        {"2001:db8:1::/48", 0},
                        {"2001:db8:0:5::/64", 0}});
  EXPECT_EQ(Text(s.v4, Family::kV4), (Strings{"255.255.255.254/31"}));
  EXPECT_EQ(Text(s.v6, Family::kV6),
            (Strings{"2001:db8::/47", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"}));
}

TEST(Normalise, WholeSpaceWithLowPolicy) {
  IntervalSet s = Norm({{"0.0.0.0/0", 0}, {"1.2.3.4", 0}, {"::/0", 0}, {"::1", 0}}, Policy{0, 0});
  EXPECT_EQ(Text(s.v4, Family::kV4), (Strings{"0.0.0.0/0"}));
  EXPECT_EQ(Text(s.v6, Family::kV6), (Strings{"::/0"}));
}

TEST(Normalise, RefusesPrefixesShorterThanPolicy) {
  NormaliseStats stats;
  IntervalSet s = Norm({{"0.0.0.0/0", 0},
                        {"10.0.0.0/7", 0},
                        {"11.0.0.0/8", 0},  // exactly the minimum: kept
                        {"2000::/31", 0},
                        {"2001:db8::/32", 0},  // kept
                        {"1.2.3.4", 0}},
                       Policy{}, &stats);
  EXPECT_EQ(stats.input, 6u);
  EXPECT_EQ(stats.too_short, 3u);
  EXPECT_EQ(stats.too_short_samples,
            (std::vector<Prefix>{P("0.0.0.0/0"), P("10.0.0.0/7"), P("2000::/31")}));
  EXPECT_EQ(Text(s.v4, Family::kV4), (Strings{"1.2.3.4", "11.0.0.0/8"}));
  EXPECT_EQ(Text(s.v6, Family::kV6), (Strings{"2001:db8::/32"}));

  NormaliseStats strict;
  s = Norm({{"10.0.0.0/16", 0}, {"10.1.0.0/24", 0}, {"2001:db8::/48", 0}, {"2001:db8::/64", 0}},
           Policy{20, 56}, &strict);
  EXPECT_EQ(strict.too_short, 2u);
  EXPECT_EQ(Text(s.v4, Family::kV4), (Strings{"10.1.0.0/24"}));
  EXPECT_EQ(Text(s.v6, Family::kV6), (Strings{"2001:db8::/64"}));
}

TEST(Normalise, SampleListIsCapped) {
  std::vector<TaggedPrefix> t(50, TaggedPrefix{P("0.0.0.0/0"), 0});
  NormaliseStats stats;
  Normalise(t, Policy{}, &stats);
  EXPECT_EQ(stats.too_short, 50u);
  EXPECT_EQ(stats.too_short_samples.size(), NormaliseStats::kMaxSamples);
}

TEST(Normalise, ProvenanceIsTheOrOfContributingSources) {
  IntervalSet s = Norm({{"10.0.0.0/24", 0},
                        {"10.0.0.7", 2},
                        {"10.0.1.0/24", 5},  // adjacent: merged, so its source joins
                        {"10.9.0.0/16", 1},
                        {"10.9.0.1", 1},
                        {"2001:db8::1", 70},  // sources past 63 share bit 63
                        {"2001:db8::2", 63}});
  ASSERT_EQ(s.v4.ranges.size(), 2u);
  EXPECT_EQ(s.v4.sources[0], SourceBit(0) | SourceBit(2) | SourceBit(5));
  EXPECT_EQ(s.v4.sources[1], SourceBit(1));
  ASSERT_EQ(s.v6.ranges.size(), 1u);
  EXPECT_EQ(s.v6.sources[0], SourceMask{1} << 63);
  EXPECT_EQ(SourceBit(64), SourceBit(63));
}

TEST(Normalise, PerSourceOverloadMatchesTagged) {
  std::vector<Prefix> a = {P("10.0.0.0/24"), P("2001:db8::/64"), P("0.0.0.0/0")};
  std::vector<Prefix> b = {P("10.0.1.0/24"), P("10.0.0.9")};
  SourcePrefixes sources[] = {{a, 3}, {b, 7}};
  NormaliseStats s1, s2;
  IntervalSet x = Normalise(sources, Policy{}, &s1);
  std::vector<TaggedPrefix> t;
  for (const Prefix& p : a) t.push_back({p, 3});
  for (const Prefix& p : b) t.push_back({p, 7});
  IntervalSet y = Normalise(t, Policy{}, &s2);
  EXPECT_EQ(x.v4.ranges, y.v4.ranges);
  EXPECT_EQ(x.v4.sources, y.v4.sources);
  EXPECT_EQ(x.v6.ranges, y.v6.ranges);
  EXPECT_EQ(x.v4.sources[0], SourceBit(3) | SourceBit(7));
  EXPECT_EQ(s1.too_short, 1u);
  EXPECT_EQ(s1.input, 5u);
  EXPECT_EQ(s2.input, 5u);
}

TEST(Normalise, EmptyInput) {
  NormaliseStats stats;
  IntervalSet s = Normalise(std::span<const TaggedPrefix>(), Policy{}, &stats);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(stats.input, 0u);
}

TEST(ProtectedRanges, CoversLoopbackAndTheOthers) {
  IntervalSet p = ProtectedRanges();
  for (const char* addr : {"127.0.0.1", "127.255.255.255", "127.0.0.0", "0.0.0.0", "0.1.2.3",
                           "255.255.255.255", "169.254.169.254", "224.0.0.1", "239.255.255.250"}) {
    EXPECT_GE(Find(p.v4, P(addr).addr), 0) << addr;
  }
  for (const char* addr : {"::1", "::", "fe80::1", "febf:ffff::1", "ff02::1", "ff02::1:ff00:1"}) {
    EXPECT_GE(Find(p.v6, P(addr).addr), 0) << addr;
  }
  for (const char* addr : {"1.2.3.4", "126.255.255.255", "128.0.0.0", "255.255.255.254",
                           "169.253.255.255", "240.0.0.1", "1.0.0.0"}) {
    EXPECT_EQ(Find(p.v4, P(addr).addr), -1) << addr;
  }
  for (const char* addr : {"::2", "2001:db8::1", "fec0::1", "fe7f::1", "feff::1"}) {
    EXPECT_EQ(Find(p.v6, P(addr).addr), -1) << addr;
  }
  EXPECT_EQ(Text(p.v4, Family::kV4), (Strings{"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16",
                                              "224.0.0.0/4", "255.255.255.255"}));
  EXPECT_EQ(Text(p.v6, Family::kV6), (Strings{"::/127", "fe80::/10", "ff00::/8"}));
}

TEST(Subtract, CarvesAllowlistOutKeepingProvenance) {
  IntervalSet block = Norm({{"10.0.0.0/16", 4}, {"192.0.2.0/24", 1}, {"198.51.100.0/24", 2}});
  std::vector<Prefix> allow = {P("10.0.5.0/24"), P("192.0.2.0/24"), P("198.51.100.255"),
                               P("198.51.100.0")};
  IntervalSet out = Sub(block, FromPrefixes(allow));
  EXPECT_EQ(Text(out.v4, Family::kV4), (Strings{"10.0.0.0-10.0.4.255", "10.0.6.0-10.0.255.255",
                                                "198.51.100.1-198.51.100.254"}));
  EXPECT_EQ(out.v4.sources, (std::vector<SourceMask>{SourceBit(4), SourceBit(4), SourceBit(2)}));
}

TEST(Subtract, OneAllowRangeAcrossSeveralBlockRanges) {
  IntervalSet block = Norm({{"10.0.0.0/24", 0}, {"10.0.2.0/24", 0}, {"10.0.4.0/24", 0}});
  std::vector<Prefix> allow = {P("10.0.0.128/25"), P("10.0.1.0/24"), P("10.0.2.0/23"),
                               P("10.0.4.0/25")};
  IntervalSet out = Sub(block, FromPrefixes(allow));
  EXPECT_EQ(Text(out.v4, Family::kV4), (Strings{"10.0.0.0/25", "10.0.4.128/25"}));
}

TEST(Subtract, ProtectedRangesNeverBlocked) {
  IntervalSet block =
      Norm({{"127.0.0.1", 0}, {"100.0.0.0/8", 0}, {"::1", 1}, {"fe80::/16", 1}, {"2001:db8::1", 1}},
           Policy{0, 0});
  IntervalSet out = Sub(block, ProtectedRanges());
  EXPECT_EQ(Text(out.v4, Family::kV4), (Strings{"100.0.0.0/8"}));
  EXPECT_EQ(Text(out.v6, Family::kV6), (Strings{"2001:db8::1"}));
  // Whatever a permissive policy lets through, loopback is cut out of it.
  IntervalSet wide = Norm({{"96.0.0.0/3", 0}}, Policy{0, 0});
  out = Sub(wide, ProtectedRanges());
  EXPECT_EQ(Text(out.v4, Family::kV4), (Strings{"96.0.0.0-126.255.255.255"}));
}

TEST(NormaliseAndSubtract, EqualsTheTwoSteps) {
  std::vector<Prefix> a = {P("10.0.0.0/16"), P("127.0.0.1"), P("2001:db8::/64"), P("fe80::1")};
  std::vector<Prefix> b = {P("10.1.0.0/16"), P("192.0.2.7"), P("0.0.0.0/0")};
  SourcePrefixes sources[] = {{a, 0}, {b, 1}};
  IntervalSet allow = FromPrefixes(std::vector<Prefix>{P("10.0.128.0/17"), P("192.0.2.7")});
  allow = FromPrefixes([&] {
    std::vector<Prefix> all = {P("10.0.128.0/17"), P("192.0.2.7")};
    for (const Range& r : ProtectedRanges().v4.ranges) {
      for (const Prefix& p : RangeToPrefixes(Family::kV4, r)) all.push_back(p);
    }
    for (const Range& r : ProtectedRanges().v6.ranges) {
      for (const Prefix& p : RangeToPrefixes(Family::kV6, r)) all.push_back(p);
    }
    return all;
  }());
  NormaliseStats stats;
  IntervalSet fused = NormaliseAndSubtract(sources, Policy{}, allow, &stats);
  IntervalSet two = Subtract(Normalise(sources, Policy{}, nullptr), allow);
  EXPECT_EQ(Text(fused.v4, Family::kV4), (Strings{"10.0.0.0/17", "10.1.0.0/16"}));
  EXPECT_EQ(Text(fused.v6, Family::kV6), (Strings{"2001:db8::/64"}));
  EXPECT_EQ(fused.v4.ranges, two.v4.ranges);
  EXPECT_EQ(fused.v4.sources, two.v4.sources);
  EXPECT_EQ(fused.v6.ranges, two.v6.ranges);
  EXPECT_EQ(stats.too_short, 1u);
  // 10.0.0.0/16 and 10.1.0.0/16 were one merged range: both pieces carry both sources.
  EXPECT_EQ(fused.v4.sources[0], SourceBit(0) | SourceBit(1));
}

TEST(Subtract, WithoutProvenanceAndEmptySides) {
  IntervalSet block = FromPrefixes(std::vector<Prefix>{P("10.0.0.0/8")});
  EXPECT_TRUE(block.v4.sources.empty());
  IntervalSet out = Sub(block, IntervalSet{});
  EXPECT_EQ(out.v4.ranges, block.v4.ranges);
  EXPECT_TRUE(out.v4.sources.empty());
  EXPECT_EQ(Sub(IntervalSet{}, block).size(), 0u);
  EXPECT_EQ(Sub(block, block).size(), 0u);
}

TEST(SubtractInPlace, SplitsGrowTheSetAndEachPieceKeepsItsMaskAndExpiry) {
  IntervalSet block = Norm({{"10.0.0.0/24", 0}, {"10.0.1.0/24", 1}, {"10.0.3.0/24", 2}});
  ASSERT_EQ(block.v4.size(), 2u);
  block.v4.expires = {100, 300};
  // Three holes in the first range, one in the second: the set grows from 2 ranges to 6, and
  // the pieces of the first range are written before the second range is read.
  std::vector<Prefix> allow = {P("10.0.0.5"), P("10.0.0.9"), P("10.0.1.7"), P("10.0.3.8/29")};
  IntervalSet out = Sub(block, FromPrefixes(allow));
  EXPECT_EQ(Text(out.v4, Family::kV4),
            (Strings{"10.0.0.0-10.0.0.4", "10.0.0.6-10.0.0.8", "10.0.0.10-10.0.1.6",
                     "10.0.1.8-10.0.1.255", "10.0.3.0/29", "10.0.3.16-10.0.3.255"}));
  const SourceMask first = SourceBit(0) | SourceBit(1);
  EXPECT_EQ(out.v4.sources,
            (std::vector<SourceMask>{first, first, first, first, SourceBit(2), SourceBit(2)}));
  EXPECT_EQ(out.v4.expires, (std::vector<int64_t>{100, 100, 100, 100, 300, 300}));
}

TEST(SubtractInPlace, TrimsAndWholeRemovalsReuseTheVectors) {
  IntervalSet block = Norm({{"10.0.0.0/24", 0},
                            {"10.0.2.0/24", 1},
                            {"10.0.4.0/24", 2},
                            {"2001:db8::/64", 3},
                            {"2001:db8:1::/64", 4}});
  block.v4.expires = {100, 200, 300};
  const Range* ranges = block.v4.ranges.data();
  const SourceMask* sources = block.v4.sources.data();
  const int64_t* expires = block.v4.expires.data();
  const size_t capacity = block.v4.ranges.capacity();
  std::vector<Prefix> allow = {P("10.0.0.0/25"), P("10.0.2.0/24"), P("10.0.4.128/25"),
                               P("2001:db8::/48")};
  const IntervalSet want = Subtract(block, FromPrefixes(allow));
  SubtractInPlace(&block, FromPrefixes(allow));
  EXPECT_EQ(Text(block.v4, Family::kV4), (Strings{"10.0.0.128/25", "10.0.4.0/25"}));
  EXPECT_EQ(block.v4.sources, (std::vector<SourceMask>{SourceBit(0), SourceBit(2)}));
  EXPECT_EQ(block.v4.expires, (std::vector<int64_t>{100, 300}));
  EXPECT_EQ(block.v4.ranges, want.v4.ranges);
  EXPECT_EQ(block.v6.ranges, want.v6.ranges);
  EXPECT_EQ(block.v6.sources, want.v6.sources);
  EXPECT_TRUE(block.v6.expires.empty());
  // No range was split: the result was written over the input, not into a copy.
  EXPECT_EQ(block.v4.ranges.data(), ranges);
  EXPECT_EQ(block.v4.sources.data(), sources);
  EXPECT_EQ(block.v4.expires.data(), expires);
  EXPECT_EQ(block.v4.ranges.capacity(), capacity);
}

TEST(SubtractInPlace, AllowAtTheFirstAndLastAddressOfEachFamily) {
  IntervalSet all = Norm({{"0.0.0.0/0", 0}, {"::/0", 1}}, Policy{0, 0});
  std::vector<Prefix> edges = {P("0.0.0.0"), P("255.255.255.255"), P("::"),
                               P("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")};
  IntervalSet out = Sub(all, FromPrefixes(edges));
  EXPECT_EQ(Text(out.v4, Family::kV4), (Strings{"0.0.0.1-255.255.255.254"}));
  EXPECT_EQ(Text(out.v6, Family::kV6), (Strings{"::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"}));
  // A split of the whole space: the pieces start at the first address and end at the last.
  out = Sub(all, FromPrefixes(std::vector<Prefix>{P("10.0.0.0/8"), P("2001:db8::/32")}));
  EXPECT_EQ(Text(out.v4, Family::kV4),
            (Strings{"0.0.0.0-9.255.255.255", "11.0.0.0-255.255.255.255"}));
  EXPECT_EQ(Text(out.v6, Family::kV6),
            (Strings{"::-2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
                     "2001:db9::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}));
  // Allow ranges from the first address on: only the first address is left, or a split.
  std::vector<Prefix> middle = {P("0.0.0.1"),   P("0.0.0.2/31"), P("0.0.0.4/30"),
                                P("1.0.0.0/8"), P("::1"),        P("::2")};
  IntervalSet edge_ranges =
      Norm({{"0.0.0.0/29", 0}, {"1.0.0.0/8", 0}, {"::/126", 1}}, Policy{0, 0});
  out = Sub(edge_ranges, FromPrefixes(middle));
  EXPECT_EQ(Text(out.v4, Family::kV4), (Strings{"0.0.0.0"}));
  EXPECT_EQ(Text(out.v6, Family::kV6), (Strings{"::", "::3"}));
  EXPECT_EQ(Sub(all, all).size(), 0u);
}

TEST(FromPrefixes, MergesWithoutPolicy) {
  IntervalSet s = FromPrefixes(std::vector<Prefix>{P("0.0.0.0/1"), P("128.0.0.0/1"), P("::/1")});
  EXPECT_EQ(Text(s.v4, Family::kV4), (Strings{"0.0.0.0/0"}));
  EXPECT_EQ(Text(s.v6, Family::kV6), (Strings{"::/1"}));
}

TEST(Find, LocatesTheCoveringRange) {
  IntervalSet s = Norm({{"10.0.0.0/24", 0}, {"10.0.2.0/24", 0}, {"10.0.4.7", 0}});
  EXPECT_EQ(Find(s.v4, P("9.255.255.255").addr), -1);
  EXPECT_EQ(Find(s.v4, P("10.0.0.0").addr), 0);
  EXPECT_EQ(Find(s.v4, P("10.0.0.255").addr), 0);
  EXPECT_EQ(Find(s.v4, P("10.0.1.0").addr), -1);
  EXPECT_EQ(Find(s.v4, P("10.0.2.9").addr), 1);
  EXPECT_EQ(Find(s.v4, P("10.0.4.7").addr), 2);
  EXPECT_EQ(Find(s.v4, P("10.0.4.8").addr), -1);
  EXPECT_EQ(Find(FamilyRanges{}, 0), -1);
}

TEST(AddressCount, CountsAndSaturates) {
  IntervalSet s = Norm({{"10.0.0.0/24", 0}, {"10.0.2.0/31", 0}, {"2001:db8::/120", 0}});
  EXPECT_EQ(AddressCount(s.v4), u128{258});
  EXPECT_EQ(AddressCount(s.v6), u128{256});
  IntervalSet all = Norm({{"::/0", 0}, {"0.0.0.0/0", 0}}, Policy{0, 0});
  EXPECT_EQ(AddressCount(all.v6), ~u128{0});
  EXPECT_EQ(AddressCount(all.v4), u128{1} << 32);
  IntervalSet halves = Norm({{"::/1", 0}, {"c000::/2", 0}, {"8000::1", 0}}, Policy{0, 0});
  EXPECT_EQ(AddressCount(halves.v6), (u128{3} << 126) + 1);
  EXPECT_EQ(AddressCount(FamilyRanges{}), u128{0});
}

TEST(RangeToPrefixes, SplitsIntoAlignedBlocks) {
  auto text = [](Family f, u128 a, u128 b) {
    Strings out;
    for (const Prefix& p : RangeToPrefixes(f, Range{a, b})) out.push_back(p.ToString());
    return out;
  };
  EXPECT_EQ(text(Family::kV4, P("10.0.0.1").addr, P("10.0.0.6").addr),
            (Strings{"10.0.0.1", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6"}));
  EXPECT_EQ(text(Family::kV4, 0, 0xffffffffu), (Strings{"0.0.0.0/0"}));
  EXPECT_EQ(text(Family::kV4, 0xffffffffu, 0xffffffffu), (Strings{"255.255.255.255"}));
  EXPECT_EQ(text(Family::kV4, 1, 0xffffffffu).size(), 32u);
  EXPECT_EQ(text(Family::kV6, 0, ~u128{0}), (Strings{"::/0"}));
  EXPECT_EQ(text(Family::kV6, 1, ~u128{0}).size(), 128u);
  EXPECT_EQ(text(Family::kV6, 0, ~u128{0} - 1).size(), 128u);
  EXPECT_TRUE(text(Family::kV4, 5, 4).empty());              // inverted
  EXPECT_TRUE(text(Family::kV4, 0, u128{1} << 32).empty());  // past the family's space
}

TEST(FormatRange, PrefixWhenExactElseDash) {
  EXPECT_EQ(FormatRange(Family::kV4, Range{P("10.0.0.0").addr, P("10.255.255.255").addr}),
            "10.0.0.0/8");
  EXPECT_EQ(FormatRange(Family::kV4, Range{P("10.0.0.1").addr, P("10.0.0.1").addr}), "10.0.0.1");
  EXPECT_EQ(FormatRange(Family::kV4, Range{P("10.0.0.1").addr, P("10.0.0.2").addr}),
            "10.0.0.1-10.0.0.2");
  EXPECT_EQ(FormatRange(Family::kV6, Range{P("2001:db8::").addr, P("2001:db8::ff").addr}),
            "2001:db8::/120");
  EXPECT_EQ(FormatRange(Family::kV6, Range{P("2001:db8::").addr, P("2001:db8::fe").addr}),
            "2001:db8::-2001:db8::fe");
  EXPECT_EQ(FormatRange(Family::kV6, Range{0, ~u128{0}}), "::/0");
}

}  // namespace
}  // namespace iocwall
