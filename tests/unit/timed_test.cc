// Timed interval sets (core/timed.h): examples, then properties against a brute-force
// reference that computes every address's expiry and sources one by one.
#include "core/timed.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "core/build.h"
#include "tests/unit/same_set.h"

namespace iocwall {
namespace {

Prefix P(const char* text) {
  std::optional<Prefix> p = ParsePrefix(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(Prefix{});
}

Range R(const char* text) {
  const Prefix p = P(text);
  return {p.First(), p.Last()};
}

Range R(const char* first, const char* last) { return {P(first).First(), P(last).Last()}; }

void ExpectSameStats(const NormaliseStats& got, const NormaliseStats& want) {
  EXPECT_EQ(got.input, want.input);
  EXPECT_EQ(got.too_short, want.too_short);
  EXPECT_EQ(got.too_short_samples, want.too_short_samples);
}

// NormaliseTimed(in), checked against a TimedBuilder fed the same entries one at a time with
// no Reserve hint: the same set and the same stats.
IntervalSet Normalised(const std::vector<TimedPrefix>& in, const Policy& policy,
                       NormaliseStats* stats) {
  NormaliseStats want_stats;
  IntervalSet want = NormaliseTimed(in, policy, &want_stats);
  NormaliseStats got_stats;
  TimedBuilder builder(policy, &got_stats);
  for (const TimedPrefix& t : in) builder.Add(t.prefix, t.source, t.expires);
  CheckSameSet(builder.Finish(), want);
  ExpectSameStats(got_stats, want_stats);
  if (stats) *stats = want_stats;
  return want;
}

TEST(LaterExpiry, NeverWins) {
  EXPECT_EQ(LaterExpiry(100, 200), 200);
  EXPECT_EQ(LaterExpiry(200, 100), 200);
  EXPECT_EQ(LaterExpiry(0, 100), 0);
  EXPECT_EQ(LaterExpiry(100, 0), 0);
  EXPECT_TRUE(HasExpired(100, 100));
  EXPECT_FALSE(HasExpired(101, 100));
  EXPECT_FALSE(HasExpired(0, 1'000'000'000'000));
  EXPECT_TRUE(SameExpiry(100, 101, 1));
  EXPECT_FALSE(SameExpiry(100, 102, 1));
  EXPECT_FALSE(SameExpiry(0, 1, 5)) << "never is not a time";
  EXPECT_TRUE(SameExpiry(0, 0, 0));
}

TEST(NormaliseTimed, LongerLivedHostInsideABlockSplitsIt) {
  std::vector<TimedPrefix> in = {{P("192.0.2.0/24"), 0, 100}, {P("192.0.2.5"), 1, 200}};
  IntervalSet s = Normalised(in, Policy{}, nullptr);
  ASSERT_EQ(s.v4.ranges, (std::vector<Range>{R("192.0.2.0", "192.0.2.4"), R("192.0.2.5"),
                                             R("192.0.2.6", "192.0.2.255")}));
  EXPECT_EQ(s.v4.expires, (std::vector<int64_t>{100, 200, 100}));
  EXPECT_EQ(s.v4.sources,
            (std::vector<SourceMask>{SourceBit(0), SourceBit(0) | SourceBit(1), SourceBit(0)}));
  EXPECT_TRUE(s.v6.ranges.empty());
  EXPECT_TRUE(s.v6.expires.empty());
}

TEST(NormaliseTimed, ShorterLivedHostInsideABlockDisappears) {
  std::vector<TimedPrefix> in = {{P("192.0.2.0/24"), 0, 100}, {P("192.0.2.5"), 1, 50}};
  IntervalSet s = Normalised(in, Policy{}, nullptr);
  EXPECT_EQ(s.v4.ranges, (std::vector<Range>{R("192.0.2.0/24")}));
  EXPECT_EQ(s.v4.expires, (std::vector<int64_t>{100}));
  EXPECT_EQ(s.v4.sources, (std::vector<SourceMask>{SourceBit(0) | SourceBit(1)}));
}

TEST(NormaliseTimed, NeverIsLaterThanAnyTime) {
  std::vector<TimedPrefix> in = {{P("10.0.0.0/8"), 0, 0}, {P("10.1.0.0/16"), 0, 4'000'000'000}};
  IntervalSet s = Normalised(in, Policy{}, nullptr);
  EXPECT_EQ(s.v4.ranges, (std::vector<Range>{R("10.0.0.0/8")}));
  EXPECT_EQ(s.v4.expires, (std::vector<int64_t>{0}));
}

TEST(NormaliseTimed, AdjacentMergeOnlyWithEqualExpiry) {
  std::vector<TimedPrefix> in = {{P("10.0.0.0/25"), 0, 100},
                                 {P("10.0.0.128/25"), 1, 100},
                                 {P("10.0.1.0/24"), 0, 300},
                                 {P("10.0.1.0/24"), 2, 300},
                                 {P("10.0.2.0/24"), 0, 100}};
  IntervalSet s = Normalised(in, Policy{}, nullptr);
  EXPECT_EQ(s.v4.ranges,
            (std::vector<Range>{R("10.0.0.0/24"), R("10.0.1.0/24"), R("10.0.2.0/24")}));
  EXPECT_EQ(s.v4.expires, (std::vector<int64_t>{100, 300, 100}));
  EXPECT_EQ(s.v4.sources, (std::vector<SourceMask>{SourceBit(0) | SourceBit(1),
                                                   SourceBit(0) | SourceBit(2), SourceBit(0)}));
}

TEST(NormaliseTimed, DuplicatesKeepTheLatestExpiry) {
  std::vector<TimedPrefix> in = {
      {P("2001:db8::1"), 0, 100}, {P("2001:db8::1"), 3, 300}, {P("2001:db8::1"), 1, 200}};
  IntervalSet s = Normalised(in, Policy{}, nullptr);
  EXPECT_EQ(s.v6.ranges, (std::vector<Range>{R("2001:db8::1")}));
  EXPECT_EQ(s.v6.expires, (std::vector<int64_t>{300}));
}

TEST(NormaliseTimed, TopOfTheAddressSpace) {
  std::vector<TimedPrefix> in = {{P("ffff::/16"), 0, 100},
                                 {P("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"), 0, 200},
                                 {P("255.255.255.0/24"), 0, 100},
                                 {P("255.255.255.255"), 0, 50}};
  IntervalSet s = Normalised(in, Policy{0, 0}, nullptr);
  EXPECT_EQ(s.v6.ranges, (std::vector<Range>{R("ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffef"),
                                             R("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124")}));
  EXPECT_EQ(s.v6.expires, (std::vector<int64_t>{100, 200}));
  EXPECT_EQ(s.v4.ranges, (std::vector<Range>{R("255.255.255.0/24")}));
}

TEST(NormaliseTimed, PolicyRefusesShortPrefixes) {
  std::vector<TimedPrefix> in = {{P("10.0.0.0/7"), 0, 100}, {P("192.0.2.1"), 0, 100}};
  NormaliseStats stats;
  IntervalSet s = Normalised(in, Policy{}, &stats);
  EXPECT_EQ(stats.input, 2u);
  EXPECT_EQ(stats.too_short, 1u);
  ASSERT_EQ(stats.too_short_samples.size(), 1u);
  EXPECT_EQ(stats.too_short_samples[0], P("10.0.0.0/7"));
  EXPECT_EQ(s.v4.ranges, (std::vector<Range>{R("192.0.2.1")}));
}

// The agent keeps provenance in its snapshots: its builder leaves the masks out, and the set is
// otherwise the very same.
TEST(TimedBuilder, WithoutSourcesTheSameRangesAndExpiries) {
  const std::vector<std::pair<std::string, int64_t>> in = {
      {"192.0.2.0/24", 100}, {"192.0.2.5", 200}, {"192.0.2.6", 100}, {"2001:db8::/64", 0}};
  TimedBuilder with(Policy{}, nullptr), without(Policy{}, nullptr);
  without.DropSources();
  uint32_t source = 0;
  for (const auto& [p, e] : in) {
    with.Add(P(p.c_str()), source, e);
    without.Add(P(p.c_str()), source++, e);
  }
  const IntervalSet a = with.Finish(), b = without.Finish();
  EXPECT_EQ(a.v4.ranges, b.v4.ranges);
  EXPECT_EQ(a.v4.expires, b.v4.expires);
  EXPECT_EQ(a.v6.ranges, b.v6.ranges);
  EXPECT_EQ(a.v4.sources.size(), a.v4.ranges.size());
  EXPECT_TRUE(b.v4.sources.empty());
  EXPECT_TRUE(b.v6.sources.empty());
}

TEST(TimedBuilder, IsEmptyAfterFinishAndCountsLikeNormaliseTimed) {
  NormaliseStats stats;
  TimedBuilder builder(Policy{}, &stats);
  builder.Reserve(1, 0);  // a hint only: more entries than reserved, of both families
  builder.Add(P("192.0.2.0/24"), 0, 100);
  builder.Add(P("2001:db8::/64"), 1, 0);
  builder.Add(P("10.0.0.0/7"), 2, 100);  // refused
  builder.Add(P("192.0.2.5"), 3, 200);
  const IntervalSet first = builder.Finish();
  EXPECT_EQ(first.v4.ranges, (std::vector<Range>{R("192.0.2.0", "192.0.2.4"), R("192.0.2.5"),
                                                 R("192.0.2.6", "192.0.2.255")}));
  EXPECT_EQ(first.v4.expires, (std::vector<int64_t>{100, 200, 100}));
  EXPECT_EQ(first.v6.ranges, (std::vector<Range>{R("2001:db8::/64")}));
  EXPECT_EQ(first.v6.sources, (std::vector<SourceMask>{SourceBit(1)}));
  EXPECT_EQ(stats.input, 4u);
  EXPECT_EQ(stats.too_short, 1u);
  // Nothing of the first set is left in the builder.
  const IntervalSet none = builder.Finish();
  EXPECT_EQ(none.size(), 0u);
  EXPECT_TRUE(none.v4.sources.empty());
  EXPECT_TRUE(none.v4.expires.empty());
  builder.Add(P("198.51.100.7"), 4, 300);
  const IntervalSet second = builder.Finish();
  EXPECT_EQ(second.v4.ranges, (std::vector<Range>{R("198.51.100.7")}));
  EXPECT_EQ(second.v4.sources, (std::vector<SourceMask>{SourceBit(4)}));
  EXPECT_TRUE(second.v6.ranges.empty());
  EXPECT_EQ(stats.input, 5u) << "the stats go on counting across sets";
}

TEST(BuildDesired, FromABuilderEqualsFromAListAndTheTwoSteps) {
  const std::vector<TimedPrefix> in = {{P("192.0.2.0/24"), 0, 100}, {P("192.0.2.5"), 1, 200},
                                       {P("127.0.0.0/16"), 0, 0},   {P("198.51.100.0/24"), 2, 50},
                                       {P("10.0.0.0/7"), 0, 0},     {P("fe80::/64"), 1, 0},
                                       {P("2001:db8::/48"), 3, 400}};
  const IntervalSet never =
      NeverBlocked(std::vector<Prefix>{P("192.0.2.5"), P("198.51.100.128/26")},
                   std::vector<Prefix>{P("2001:db8::1")});
  NormaliseStats list_stats;
  IntervalSet list_seen;
  const IntervalSet from_list =
      BuildDesired(in, Policy{}, never, &list_stats, [&](const IntervalSet& s) { list_seen = s; });
  NormaliseStats builder_stats;
  TimedBuilder builder(Policy{}, &builder_stats);
  for (const TimedPrefix& t : in) builder.Add(t.prefix, t.source, t.expires);
  IntervalSet builder_seen;
  const IntervalSet from_builder =
      BuildDesired(std::move(builder), never, [&](const IntervalSet& s) { builder_seen = s; });
  const IntervalSet merged = NormaliseTimed(in, Policy{}, nullptr);
  CheckSameSet(from_builder, Subtract(merged, never));
  CheckSameSet(from_list, Subtract(merged, never));
  CheckSameSet(builder_seen, merged);
  CheckSameSet(list_seen, merged);
  ExpectSameStats(builder_stats, list_stats);
  EXPECT_EQ(builder_stats.too_short, 1u);
  EXPECT_EQ(from_builder.v4.ranges,
            (std::vector<Range>{R("192.0.2.0", "192.0.2.4"), R("192.0.2.6", "192.0.2.255"),
                                R("198.51.100.0/25"), R("198.51.100.192/26")}));
  EXPECT_EQ(from_builder.v4.expires, (std::vector<int64_t>{100, 100, 50, 50}));
  EXPECT_EQ(from_builder.v6.ranges,
            (std::vector<Range>{R("2001:db8::"),
                                R("2001:db8::2", "2001:db8:0:ffff:ffff:ffff:ffff:ffff")}));
  EXPECT_EQ(BuildDesired(TimedBuilder(Policy{}, nullptr), never).size(), 0u);
}

TEST(SubtractTimed, PiecesKeepTheirExpiry) {
  std::vector<TimedPrefix> in = {{P("203.0.113.0/24"), 0, 100}, {P("203.0.113.200"), 1, 500}};
  IntervalSet block = Normalised(in, Policy{}, nullptr);
  IntervalSet allow = FromPrefixes(std::vector<Prefix>{P("203.0.113.64/26")});
  IntervalSet out = Subtract(block, allow);
  EXPECT_EQ(out.v4.ranges,
            (std::vector<Range>{R("203.0.113.0/26"), R("203.0.113.128", "203.0.113.199"),
                                R("203.0.113.200"), R("203.0.113.201", "203.0.113.255")}));
  EXPECT_EQ(out.v4.expires, (std::vector<int64_t>{100, 100, 500, 100}));
  EXPECT_EQ(out.v4.sources.size(), out.v4.ranges.size());
  // An untimed set stays untimed.
  IntervalSet plain = Subtract(FromPrefixes(std::vector<Prefix>{P("203.0.113.0/24")}), allow);
  EXPECT_TRUE(plain.v4.expires.empty());
  EXPECT_EQ(plain.v4.ranges.size(), 2u);
}

TEST(DropExpired, RemovesPastRangesKeepingVectorsParallel) {
  std::vector<TimedPrefix> in = {{P("10.0.0.1"), 0, 100},
                                 {P("10.0.0.3"), 1, 0},
                                 {P("10.0.0.5"), 2, 99},
                                 {P("2001:db8::1"), 0, 100}};
  IntervalSet s = Normalised(in, Policy{}, nullptr);
  EXPECT_EQ(DropExpired(&s, 100), 3u);
  EXPECT_EQ(s.v4.ranges, (std::vector<Range>{R("10.0.0.3")}));
  EXPECT_EQ(s.v4.expires, (std::vector<int64_t>{0}));
  EXPECT_EQ(s.v4.sources, (std::vector<SourceMask>{SourceBit(1)}));
  EXPECT_TRUE(s.v6.ranges.empty());
  IntervalSet plain = FromPrefixes(std::vector<Prefix>{P("10.0.0.1")});
  EXPECT_EQ(DropExpired(&plain, 1'000'000), 0u) << "an untimed set never expires";
}

FamilyRanges Timed(std::vector<Range> ranges, std::vector<int64_t> expires) {
  FamilyRanges f;
  f.ranges = std::move(ranges);
  f.expires = std::move(expires);
  return f;
}

TEST(DiffTimed, ChangedExpiryIsARefresh) {
  FamilyRanges cur = Timed({R("10.0.0.1"), R("10.0.0.3"), R("10.0.0.5")}, {100, 100, 100});
  FamilyRanges want = Timed({R("10.0.0.1"), R("10.0.0.3"), R("10.0.0.7")}, {100, 3700, 0});
  TimedRangeDiff d = DiffTimedRanges(cur, want);
  EXPECT_EQ(d.remove, (std::vector<Range>{R("10.0.0.3"), R("10.0.0.5")}));
  EXPECT_EQ(d.add, (std::vector<Range>{R("10.0.0.3"), R("10.0.0.7")}));
  EXPECT_EQ(d.add_expires, (std::vector<int64_t>{3700, 0}));
  EXPECT_EQ(d.refreshed, 1u);
  FamilyRanges after = ApplyTimedDiff(cur, d);
  EXPECT_EQ(after.ranges, want.ranges);
  EXPECT_EQ(after.expires, want.expires);
}

TEST(DiffTimed, ToleranceAbsorbsRoundingButNotNever) {
  FamilyRanges cur = Timed({R("10.0.0.1"), R("10.0.0.2"), R("10.0.0.3")}, {99, 101, 0});
  FamilyRanges want = Timed({R("10.0.0.1"), R("10.0.0.2"), R("10.0.0.3")}, {100, 100, 100});
  TimedRangeDiff d = DiffTimedRanges(cur, want, /*tolerance=*/1);
  EXPECT_EQ(d.add, (std::vector<Range>{R("10.0.0.3")}));
  EXPECT_EQ(d.refreshed, 1u);
  EXPECT_EQ(DiffTimedRanges(cur, want, 0).refreshed, 3u);
}

TEST(DiffTimed, UntimedSideComparesRangesOnly) {
  FamilyRanges cur;
  cur.ranges = {R("10.0.0.1"), R("10.0.0.2")};
  FamilyRanges want = Timed({R("10.0.0.2"), R("10.0.0.3")}, {100, 200});
  TimedRangeDiff d = DiffTimedRanges(cur, want);
  EXPECT_EQ(d.remove, (std::vector<Range>{R("10.0.0.1")}));
  EXPECT_EQ(d.add, (std::vector<Range>{R("10.0.0.3")}));
  EXPECT_EQ(d.add_expires, (std::vector<int64_t>{200}));
  EXPECT_EQ(d.refreshed, 0u);
}

TEST(DiffTimed, UnsortedCurrentAsFromAKernelDump) {
  FamilyRanges cur = Timed({R("10.0.0.9"), R("10.0.0.1"), R("10.0.0.5")}, {900, 100, 500});
  FamilyRanges want = Timed({R("10.0.0.1"), R("10.0.0.5"), R("10.0.0.9")}, {100, 500, 901});
  TimedRangeDiff d = DiffTimedRanges(cur, want);
  EXPECT_EQ(d.remove, (std::vector<Range>{R("10.0.0.9")}));
  EXPECT_EQ(d.add, (std::vector<Range>{R("10.0.0.9")}));
  EXPECT_EQ(d.add_expires, (std::vector<int64_t>{901}));
}

TEST(DiffTimed, ExpiredRangesAreLeftToTheKernel) {
  FamilyRanges cur =
      Timed({R("10.0.0.1"), R("10.0.0.2"), R("10.0.0.3"), R("10.0.0.4")}, {100, 150, 0, 100});
  FamilyRanges want = Timed({R("10.0.0.4")}, {500});
  TimedRangeDiff d = DiffTimedRanges(cur, want, 0, /*now=*/120);
  EXPECT_EQ(d.remove, (std::vector<Range>{R("10.0.0.2"), R("10.0.0.3"), R("10.0.0.4")}))
      << "10.0.0.1 expired at 100: the kernel removes it; 10.0.0.4 is renewed: refreshed";
  EXPECT_EQ(d.left_to_expire, 1u);
  EXPECT_EQ(d.refreshed, 1u);
  EXPECT_EQ(DiffTimedRanges(cur, want).remove.size(), 4u) << "now = 0: every removal";
}

// CrowdSec's failure mode, at the core: indicators sharing one expiry, all renewed. Every one
// of them must be refreshed (a diff that skipped them would let all expire in the same second).
TEST(DiffTimed, MassRenewalRefreshesEveryRange) {
  std::vector<TimedPrefix> before, after;
  for (uint32_t i = 0; i < 5000; ++i) {
    Prefix p{Family::kV4, u128{0xc6120000u + 2 * i}, 32};  // 198.18.0.0/15, non-adjacent
    before.push_back({p, 0, 1'000'004});
    after.push_back({p, 0, 1'003'600});
  }
  IntervalSet a = Normalised(before, Policy{}, nullptr);
  IntervalSet b = Normalised(after, Policy{}, nullptr);
  ASSERT_EQ(a.v4.size(), 5000u);
  TimedSetDiff d = DiffTimed(a, b, 1);
  EXPECT_EQ(d.v4.refreshed, 5000u);
  EXPECT_EQ(d.v4.remove, a.v4.ranges);
  EXPECT_EQ(d.v4.add, b.v4.ranges);
  EXPECT_TRUE(DiffTimed(b, b, 1).empty());
}

// ---- Properties against a brute-force reference ----

constexpr int kWindowBits = 10;
constexpr size_t kWindow = size_t{1} << kWindowBits;

struct Window {
  Family family;
  u128 start;
};
// A window in the middle of IPv4, and one at the very top of IPv6 (the last range has no
// address after it: the overflow case).
const Window kWindows[] = {{Family::kV4, u128{0x0a000000u}},
                           {Family::kV6, ~u128{0} - (kWindow - 1)}};
const int64_t kExpiries[] = {0, 100, 200, 300};

Prefix RandomPrefix(std::mt19937_64& rng, const Window& w) {
  const int bits = AddressBits(w.family);
  const int host = static_cast<int>(rng() % 4 == 0 ? rng() % (kWindowBits + 1) : rng() % 4);
  const u128 addr = w.start + rng() % kWindow;
  return Prefix{w.family, (addr >> host) << host, static_cast<uint8_t>(bits - host)};
}

std::vector<TimedPrefix> RandomInput(std::mt19937_64& rng) {
  std::vector<TimedPrefix> in;
  const size_t n = rng() % 40;
  for (size_t i = 0; i < n; ++i) {
    const Window& w = kWindows[rng() % 2];
    in.push_back({RandomPrefix(rng, w), static_cast<uint32_t>(rng() % 5), kExpiries[rng() % 4]});
    if (rng() % 4 == 0) {  // the same prefix again, from another source with another expiry
      in.push_back({in.back().prefix, static_cast<uint32_t>(rng() % 5), kExpiries[rng() % 4]});
    }
  }
  return in;
}

struct Address {
  bool covered = false;
  int64_t expires = 0;
};

std::vector<Address> NaiveExpiries(const std::vector<TimedPrefix>& in, const Window& w,
                                   const Policy& policy) {
  std::vector<Address> out(kWindow);
  const uint8_t min = w.family == Family::kV4 ? policy.min_prefix_v4 : policy.min_prefix_v6;
  for (const TimedPrefix& t : in) {
    if (t.prefix.family != w.family || t.prefix.len < min) continue;
    for (u128 a = t.prefix.First();; ++a) {
      Address& x = out[static_cast<size_t>(a - w.start)];
      x.expires = x.covered ? LaterExpiry(x.expires, t.expires) : t.expires;
      x.covered = true;
      if (a == t.prefix.Last()) break;
    }
  }
  return out;
}

// The expected pieces: maximal runs of covered addresses with the same expiry; each one's
// sources are those of every prefix that touches it.
FamilyRanges NaivePieces(const std::vector<TimedPrefix>& in, const Window& w,
                         const Policy& policy) {
  const std::vector<Address> addr = NaiveExpiries(in, w, policy);
  FamilyRanges out;
  for (size_t i = 0; i < kWindow; ++i) {
    if (!addr[i].covered) continue;
    const u128 a = w.start + i;
    if (!out.ranges.empty() && out.ranges.back().last + 1 == a &&
        out.expires.back() == addr[i].expires) {
      out.ranges.back().last = a;
    } else {
      out.ranges.push_back({a, a});
      out.expires.push_back(addr[i].expires);
    }
  }
  const uint8_t min = w.family == Family::kV4 ? policy.min_prefix_v4 : policy.min_prefix_v6;
  out.sources.assign(out.ranges.size(), 0);
  for (size_t k = 0; k < out.ranges.size(); ++k) {
    for (const TimedPrefix& t : in) {
      if (t.prefix.family != w.family || t.prefix.len < min) continue;
      if (t.prefix.First() <= out.ranges[k].last && out.ranges[k].first <= t.prefix.Last()) {
        out.sources[k] |= SourceBit(t.source);
      }
    }
  }
  return out;
}

TEST(TimedProperty, NormaliseTimedMatchesAddressByAddressReference) {
  std::mt19937_64 rng(20250807);
  for (int iter = 0; iter < 3000; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    const std::vector<TimedPrefix> in = RandomInput(rng);
    const Policy policy = rng() % 3 == 0 ? Policy{26, 122} : Policy{0, 0};
    NormaliseStats stats;
    const IntervalSet got = NormaliseTimed(in, policy, &stats);
    EXPECT_EQ(stats.input, in.size());
    // Same coverage as the untimed Normalise.
    std::vector<TaggedPrefix> tagged;
    for (const TimedPrefix& t : in) tagged.push_back({t.prefix, t.source});
    const IntervalSet plain = Normalise(tagged, policy, nullptr);
    for (const Window& w : kWindows) {
      const FamilyRanges want = NaivePieces(in, w, policy);
      const FamilyRanges& g = got.of(w.family);
      ASSERT_EQ(g.ranges, want.ranges);
      ASSERT_EQ(g.expires, want.expires);
      ASSERT_EQ(g.sources, want.sources);
      // No two pieces that touch share an expiry (else they would have been merged).
      for (size_t i = 1; i < g.ranges.size(); ++i) {
        if (g.ranges[i - 1].last + 1 == g.ranges[i].first) {
          ASSERT_NE(g.expires[i - 1], g.expires[i]);
        }
      }
      std::vector<Range> merged;
      for (const Range& r : g.ranges) {
        if (!merged.empty() && merged.back().last + 1 == r.first) {
          merged.back().last = r.last;
        } else {
          merged.push_back(r);
        }
      }
      ASSERT_EQ(merged, plain.of(w.family).ranges);
    }
  }
}

// The builder fed entry by entry, reused from one set to the next, with a right, a short or a
// long Reserve hint: NormaliseTimed's set and stats, and the address-by-address reference.
TEST(TimedProperty, BuilderEqualsNormaliseTimedAndTheReference) {
  std::mt19937_64 rng(909);
  NormaliseStats stats;
  TimedBuilder reused(Policy{26, 122}, &stats);
  for (int iter = 0; iter < 3000; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    const std::vector<TimedPrefix> in = RandomInput(rng);
    stats = NormaliseStats{};
    switch (rng() % 3) {
      case 0:
        reused.Reserve(in.size(), in.size());
        break;
      case 1:
        reused.Reserve(in.size() / 4, 0);
        break;
      default:
        break;  // no hint
    }
    for (const TimedPrefix& t : in) reused.Add(t.prefix, t.source, t.expires);
    const IntervalSet got = reused.Finish();
    NormaliseStats want_stats;
    const IntervalSet want = NormaliseTimed(in, Policy{26, 122}, &want_stats);
    ASSERT_NO_FATAL_FAILURE(CheckSameSet(got, want));
    ASSERT_NO_FATAL_FAILURE(ExpectSameStats(stats, want_stats));
    for (const Window& w : kWindows) {
      const FamilyRanges ref = NaivePieces(in, w, Policy{26, 122});
      ASSERT_EQ(got.of(w.family).ranges, ref.ranges);
      ASSERT_EQ(got.of(w.family).expires, ref.expires);
      ASSERT_EQ(got.of(w.family).sources, ref.sources);
    }
  }
}

TEST(TimedProperty, SubtractKeepsEachAddressExpiry) {
  std::mt19937_64 rng(77);
  for (int iter = 0; iter < 2000; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    const std::vector<TimedPrefix> in = RandomInput(rng);
    std::vector<Prefix> allow;
    for (size_t i = rng() % 5; i > 0; --i) allow.push_back(RandomPrefix(rng, kWindows[rng() % 2]));
    const IntervalSet block = NormaliseTimed(in, Policy{0, 0}, nullptr);
    const IntervalSet out = Subtract(block, FromPrefixes(allow));
    for (const Window& w : kWindows) {
      const std::vector<Address> ref = NaiveExpiries(in, w, Policy{0, 0});
      std::vector<bool> allowed(kWindow);
      for (const Prefix& p : allow) {
        if (p.family != w.family) continue;
        for (u128 a = p.First();; ++a) {
          allowed[static_cast<size_t>(a - w.start)] = true;
          if (a == p.Last()) break;
        }
      }
      const FamilyRanges& o = out.of(w.family);
      ASSERT_EQ(o.expires.size(), o.ranges.size());
      ASSERT_EQ(o.sources.size(), o.ranges.size());
      std::vector<Address> got(kWindow);
      for (size_t k = 0; k < o.ranges.size(); ++k) {
        // Each piece lies inside one range of the block, with its expiry and sources.
        const long from = Find(block.of(w.family), o.ranges[k].first);
        ASSERT_GE(from, 0);
        ASSERT_LE(o.ranges[k].last, block.of(w.family).ranges[from].last);
        ASSERT_EQ(o.expires[k], block.of(w.family).expires[from]);
        ASSERT_EQ(o.sources[k], block.of(w.family).sources[from]);
        for (u128 a = o.ranges[k].first;; ++a) {
          got[static_cast<size_t>(a - w.start)] = {true, o.expires[k]};
          if (a == o.ranges[k].last) break;
        }
      }
      for (size_t i = 0; i < kWindow; ++i) {
        const bool want = ref[i].covered && !allowed[i];
        ASSERT_EQ(got[i].covered, want) << i;
        if (want) {
          ASSERT_EQ(got[i].expires, ref[i].expires) << i;
        }
      }
    }
  }
}

// Random kernel-like contents (any order, adjacent ranges allowed) and random desired sets.
FamilyRanges RandomTimedRanges(std::mt19937_64& rng, bool shuffle) {
  FamilyRanges f;
  u128 a = 0x0a000000u + rng() % 4;
  for (size_t n = rng() % 30; n > 0; --n) {
    const u128 len = rng() % 3;
    f.ranges.push_back({a, a + len});
    f.expires.push_back(kExpiries[rng() % 4] + static_cast<int64_t>(rng() % 3));
    a += len + 1 + rng() % 3;
  }
  if (shuffle) {
    std::vector<size_t> order(f.ranges.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    FamilyRanges s;
    for (size_t i : order) {
      s.ranges.push_back(f.ranges[i]);
      s.expires.push_back(f.expires[i]);
    }
    return s;
  }
  return f;
}

TEST(TimedProperty, DiffThenApplyGivesTheDesiredSetAndTouchesOnlyWhatChanged) {
  std::mt19937_64 rng(4242);
  for (int iter = 0; iter < 5000; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    const FamilyRanges cur = RandomTimedRanges(rng, rng() % 2);
    FamilyRanges want = RandomTimedRanges(rng, false);
    // Share many ranges with current, with the same or a shifted expiry.
    for (size_t i = 0; i < cur.ranges.size(); ++i) {
      if (rng() % 2 || Find(want, cur.ranges[i].first) >= 0 ||
          Find(want, cur.ranges[i].last) >= 0) {
        continue;
      }
      auto at = std::lower_bound(want.ranges.begin(), want.ranges.end(), cur.ranges[i]);
      const size_t k = at - want.ranges.begin();
      if (k < want.ranges.size() && want.ranges[k].first <= cur.ranges[i].last) continue;
      want.ranges.insert(at, cur.ranges[i]);
      want.expires.insert(want.expires.begin() + k,
                          cur.expires[i] + (rng() % 3 == 0 ? static_cast<int64_t>(rng() % 4) : 0));
    }
    const int64_t tolerance = static_cast<int64_t>(rng() % 2);
    const int64_t now = rng() % 2 ? 0 : 150;
    const TimedRangeDiff d = DiffTimedRanges(cur, want, tolerance, now);
    ASSERT_TRUE(std::is_sorted(d.remove.begin(), d.remove.end()));
    ASSERT_TRUE(std::is_sorted(d.add.begin(), d.add.end()));
    ASSERT_EQ(d.add.size(), d.add_expires.size());
    FamilyRanges after = ApplyTimedDiff(cur, d);
    // What is left over beyond `want` is exactly what expired at `now` and is not wanted: the
    // kernel removes it by itself.
    size_t left = 0;
    for (size_t i = 0; i < cur.ranges.size(); ++i) {
      const bool wanted = std::binary_search(want.ranges.begin(), want.ranges.end(), cur.ranges[i]);
      if (!wanted && now != 0 && HasExpired(cur.expires[i], now)) ++left;
    }
    ASSERT_EQ(d.left_to_expire, left);
    ASSERT_EQ(after.ranges.size(), want.ranges.size() + left);
    for (size_t k = 0; k < after.ranges.size();) {
      if (std::binary_search(want.ranges.begin(), want.ranges.end(), after.ranges[k])) {
        ++k;
        continue;
      }
      ASSERT_TRUE(now != 0 && HasExpired(after.expires[k], now));
      after.ranges.erase(after.ranges.begin() + k);
      after.expires.erase(after.expires.begin() + k);
    }
    ASSERT_EQ(after.ranges, want.ranges);
    size_t refreshed = 0;
    for (size_t j = 0; j < want.ranges.size(); ++j) {
      ASSERT_TRUE(SameExpiry(after.expires[j], want.expires[j], tolerance));
      // A range kept as it was must have been within tolerance; a changed one is re-added.
      const bool added = std::binary_search(d.add.begin(), d.add.end(), want.ranges[j]);
      long in_cur = -1;
      for (size_t i = 0; i < cur.ranges.size(); ++i) {
        if (cur.ranges[i] == want.ranges[j]) in_cur = static_cast<long>(i);
      }
      if (in_cur < 0) {
        ASSERT_TRUE(added);
        continue;
      }
      const bool same = SameExpiry(cur.expires[in_cur], want.expires[j], tolerance);
      ASSERT_EQ(added, !same);
      ASSERT_EQ(std::binary_search(d.remove.begin(), d.remove.end(), want.ranges[j]), !same);
      refreshed += !same;
    }
    ASSERT_EQ(d.refreshed, refreshed);
    ASSERT_EQ(d.remove.size() + d.left_to_expire,
              cur.ranges.size() - (want.ranges.size() - d.add.size()));
  }
}

}  // namespace
}  // namespace iocwall
