// Property tests: the core against naive references on random inputs (fixed seeds, so a
// failure reproduces). Interval arithmetic is checked address by address over small windows
// that straddle a protected range in each family; parsing and formatting against glibc's
// inet_pton/inet_ntop.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <random>
#include <string>
#include <vector>

#include "core/diff.h"
#include "core/interval_set.h"
#include "core/prefix.h"
#include "tests/unit/same_set.h"

namespace iocwall {
namespace {

constexpr int kWindowBits = 12;
constexpr size_t kWindow = size_t{1} << kWindowBits;
using Bitmap = std::bitset<kWindow>;

struct Window {
  Family family;
  u128 start;  // aligned to 2^11: both halves are whole /21 (v4) or /117 (v6) blocks
  int max_len;
};

// 126.255.248.0 .. 127.0.7.255: half outside, half inside loopback.
const Window kV4Window{Family::kV4, u128{0x7efff800u}, 32};
// fe7f:ffff:...:f800 .. fe80::7ff: half outside, half inside link-local fe80::/10.
const Window kV6Window{Family::kV6, (u128{0xfe80} << 112) - 2048, 128};

// Protected ranges written out independently of ProtectedRanges(), checked by masking.
bool NaiveProtected(Family f, u128 addr) {
  struct Net {
    Family f;
    u128 addr;
    int len;
  };
  static const Net kNets[] = {
      {Family::kV4, 0x7f000000u, 8},
      {Family::kV4, 0, 8},
      {Family::kV4, 0xffffffffu, 32},
      {Family::kV4, 0xa9fe0000u, 16},
      {Family::kV4, 0xe0000000u, 4},
      {Family::kV6, 1, 128},
      {Family::kV6, 0, 128},
      {Family::kV6, u128{0xfe80} << 112, 10},
      {Family::kV6, u128{0xff00} << 112, 8},
  };
  for (const Net& n : kNets) {
    if (n.f != f) continue;
    const int host = AddressBits(f) - n.len;
    if ((addr >> host) == (n.addr >> host)) return true;
  }
  return false;
}

Prefix RandomPrefix(std::mt19937_64& rng, const Window& w, int min_len) {
  const u128 addr = w.start + rng() % kWindow;
  const int len = min_len + static_cast<int>(rng() % (w.max_len - min_len + 1));
  const int host = AddressBits(w.family) - len;
  return Prefix{w.family, (addr >> host) << host, static_cast<uint8_t>(len)};
}

// Lengths from the window's size (2^11 addresses) to single addresses, biased to long ones.
Prefix RandomWindowPrefix(std::mt19937_64& rng, const Window& w) {
  return RandomPrefix(rng, w, rng() % 4 == 0 ? w.max_len - 11 : w.max_len - 4);
}

void Mark(Bitmap* bits, const Window& w, u128 first, u128 last, bool value) {
  ASSERT_GE(first, w.start);
  ASSERT_LT(last - w.start, u128{kWindow});
  for (u128 a = first; a <= last; ++a) bits->set(static_cast<size_t>(a - w.start), value);
}

Bitmap Coverage(const FamilyRanges& r, const Window& w) {
  Bitmap bits;
  for (const Range& range : r.ranges) Mark(&bits, w, range.first, range.last, true);
  return bits;
}

// Sorted, disjoint, not even touching: the kernel would refuse or the set would not be minimal.
void ExpectMinimal(const FamilyRanges& r) {
  for (size_t i = 0; i < r.ranges.size(); ++i) {
    ASSERT_LE(r.ranges[i].first, r.ranges[i].last);
    if (i > 0) {
      ASSERT_LT(r.ranges[i - 1].last + 1, r.ranges[i].first) << "at " << i;
    }
  }
  if (!r.sources.empty()) {
    ASSERT_EQ(r.sources.size(), r.ranges.size());
  }
}

void ExpectPrefixesCoverExactly(Family f, const Range& range) {
  std::vector<Prefix> ps = RangeToPrefixes(f, range);
  ASSERT_FALSE(ps.empty());
  ASSERT_LE(ps.size(), size_t(2 * AddressBits(f)));
  u128 next = range.first;
  for (const Prefix& p : ps) {
    ASSERT_EQ(p.family, f);
    ASSERT_EQ(p.First(), next);
    ASSERT_EQ(p.addr & (p.Last() - p.First()), u128{0});  // aligned: host bits clear
    ParsedLine back = ParseLine(p.ToString());
    ASSERT_EQ(back.kind, LineKind::kAccepted) << p.ToString();
    ASSERT_EQ(back.prefix, p);
    next = p.Last() + 1;
  }
  ASSERT_EQ(ps.back().Last(), range.last);
}

struct Case {
  std::vector<TaggedPrefix> list;
  std::vector<Prefix> allow;
  Policy policy;
};

Case RandomCase(std::mt19937_64& rng) {
  Case c;
  const size_t n = rng() % 48;
  for (size_t i = 0; i < n; ++i) {
    const Window& w = rng() % 3 ? kV4Window : kV6Window;
    c.list.push_back(TaggedPrefix{RandomWindowPrefix(rng, w), static_cast<uint32_t>(rng() % 6)});
    // Duplicates and neighbours are the interesting cases: make them common.
    if (rng() % 4 == 0) c.list.push_back(c.list.back());
    if (rng() % 4 == 0 && c.list.back().prefix.Last() < w.start + kWindow - 1) {
      Prefix next = c.list.back().prefix;
      next.addr = next.Last() + 1;
      next.len = static_cast<uint8_t>(AddressBits(w.family));
      c.list.push_back(TaggedPrefix{next, static_cast<uint32_t>(rng() % 6)});
    }
  }
  for (size_t i = rng() % 6; i > 0; --i) {
    c.allow.push_back(RandomWindowPrefix(rng, rng() % 2 ? kV4Window : kV6Window));
  }
  if (rng() % 3 == 0) c.policy = Policy{25, 121};
  return c;
}

struct Reference {
  Bitmap bits;                    // union of accepted prefixes
  std::vector<SourceMask> masks;  // per address, OR of sources
  size_t too_short = 0;
};

Reference NaiveNormalise(const Case& c, const Window& w) {
  Reference ref;
  ref.masks.assign(kWindow, 0);
  for (const TaggedPrefix& t : c.list) {
    const uint8_t min = w.family == Family::kV4 ? c.policy.min_prefix_v4 : c.policy.min_prefix_v6;
    if (t.prefix.family != w.family) continue;
    if (t.prefix.len < min) {
      ++ref.too_short;
      continue;
    }
    for (u128 a = t.prefix.First(); a <= t.prefix.Last(); ++a) {
      ref.bits.set(static_cast<size_t>(a - w.start));
      ref.masks[static_cast<size_t>(a - w.start)] |= SourceBit(t.source);
    }
  }
  return ref;
}

TEST(Property, NormaliseSubtractAndDiffAgainstBitmaps) {
  std::mt19937_64 rng(20240611);
  IntervalSet previous;
  for (int iter = 0; iter < 3000; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    const Case c = RandomCase(rng);
    NormaliseStats stats;
    const IntervalSet normal = Normalise(c.list, c.policy, &stats);
    std::vector<Prefix> allow_and_protected = c.allow;
    const IntervalSet prot = ProtectedRanges();
    for (Family f : {Family::kV4, Family::kV6}) {
      for (const Range& r : prot.of(f).ranges) {
        for (const Prefix& p : RangeToPrefixes(f, r)) allow_and_protected.push_back(p);
      }
    }
    const IntervalSet desired = Subtract(normal, FromPrefixes(allow_and_protected));
    // Subtracting in two steps, or fused into the merge, gives the same set.
    const IntervalSet two_steps = Subtract(Subtract(normal, FromPrefixes(c.allow)), prot);
    std::vector<Prefix> plain[6];
    for (const TaggedPrefix& t : c.list) plain[t.source].push_back(t.prefix);
    std::vector<SourcePrefixes> sources;
    for (uint32_t i = 0; i < 6; ++i) sources.push_back({plain[i], i});
    NormaliseStats fused_stats;
    const IntervalSet fused =
        NormaliseAndSubtract(sources, c.policy, FromPrefixes(allow_and_protected), &fused_stats);
    ASSERT_EQ(fused_stats.too_short, stats.too_short);

    size_t too_short = 0;
    for (const Window& w : {kV4Window, kV6Window}) {
      const Reference ref = NaiveNormalise(c, w);
      too_short += ref.too_short;
      const FamilyRanges& n = normal.of(w.family);
      ASSERT_NO_FATAL_FAILURE(ExpectMinimal(n));
      ASSERT_EQ(Coverage(n, w), ref.bits);
      for (size_t i = 0; i < n.ranges.size(); ++i) {
        SourceMask want = 0;
        for (u128 a = n.ranges[i].first; a <= n.ranges[i].last; ++a) {
          want |= ref.masks[static_cast<size_t>(a - w.start)];
        }
        ASSERT_EQ(n.sources[i], want);
      }

      Bitmap want = ref.bits;
      Bitmap allowed;
      for (const Prefix& p : c.allow) {
        if (p.family == w.family) Mark(&allowed, w, p.First(), p.Last(), true);
      }
      for (size_t i = 0; i < kWindow; ++i) {
        if (allowed[i] || NaiveProtected(w.family, w.start + i)) want.reset(i);
      }
      const FamilyRanges& d = desired.of(w.family);
      ASSERT_NO_FATAL_FAILURE(ExpectMinimal(d));
      ASSERT_EQ(Coverage(d, w), want);
      ASSERT_EQ(two_steps.of(w.family).ranges, d.ranges);
      ASSERT_EQ(two_steps.of(w.family).sources, d.sources);
      ASSERT_EQ(fused.of(w.family).ranges, d.ranges);
      ASSERT_EQ(fused.of(w.family).sources, d.sources);
      for (size_t i = 0; i < d.ranges.size(); ++i) {
        // A piece keeps the provenance of the normalised range it was cut from.
        const long from = Find(n, d.ranges[i].first);
        ASSERT_GE(from, 0);
        ASSERT_LE(d.ranges[i].last, n.ranges[from].last);
        ASSERT_EQ(d.sources[i], n.sources[from]);
        ASSERT_NO_FATAL_FAILURE(ExpectPrefixesCoverExactly(w.family, d.ranges[i]));
      }
      ASSERT_EQ(AddressCount(d), u128{want.count()});
      for (size_t i = 0; i < kWindow; i += 97) {
        ASSERT_EQ(Find(d, w.start + i) >= 0, want[i]);
      }

      // Diff: from the previous iteration's set (shuffled, as a kernel dump may be) to this one.
      const std::vector<Range>& a = previous.of(w.family).ranges;
      const std::vector<Range>& b = d.ranges;
      std::vector<Range> shuffled = a;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      const RangeDiff diff = DiffRanges(shuffled, b);
      ASSERT_EQ(ApplyDiff(a, diff), b);
      ASSERT_EQ(ApplyDiff(shuffled, diff), b);
      ASSERT_TRUE(std::is_sorted(diff.remove.begin(), diff.remove.end()));
      ASSERT_TRUE(std::is_sorted(diff.add.begin(), diff.add.end()));
      // Only what changed: nothing removed that stays, nothing added that was there.
      for (const Range& r : diff.remove) {
        ASSERT_FALSE(std::binary_search(b.begin(), b.end(), r));
        ASSERT_TRUE(std::binary_search(a.begin(), a.end(), r));
      }
      for (const Range& r : diff.add) ASSERT_FALSE(std::binary_search(a.begin(), a.end(), r));
      ASSERT_TRUE(DiffRanges(b, b).empty());
      ASSERT_TRUE(DiffRanges(shuffled, a).empty());
    }
    ASSERT_EQ(stats.too_short, too_short);
    ASSERT_EQ(stats.input, c.list.size());
    ASSERT_TRUE(Diff(desired, desired).empty());
    previous = desired;
  }
}

// --- SubtractInPlace against Subtract ---------------------------------------------------

// Where a random set lies: at the very start of the family, in its middle, or at its very
// end (the last range may hold the family's last address: no address after it).
constexpr size_t kSpan = 512;
u128 RandomBase(std::mt19937_64& rng, Family f) {
  switch (rng() % 3) {
    case 0:
      return 0;
    case 1:
      return f == Family::kV4 ? u128{0x0a000000u} : u128{0x20010db8} << 96;
    default:
      return MaxAddress(f) - (kSpan - 1);
  }
}

// Sorted, disjoint ranges in [base, base + kSpan), touching each other where `touching` (a
// timed set splits where the expiry changes), sometimes reaching the span's last address.
std::vector<Range> RandomRanges(std::mt19937_64& rng, u128 base, size_t count, bool touching,
                                size_t max_len) {
  std::vector<Range> out;
  size_t at = rng() % 3;  // 0: the first address of the span
  for (; count > 0 && at < kSpan; --count) {
    size_t last = std::min(at + rng() % max_len, kSpan - 1);
    if (count == 1 && rng() % 3 == 0) last = kSpan - 1;
    out.push_back({base + at, base + last});
    at = last + 1 + rng() % 4 + (touching ? 0 : 1);
  }
  return out;
}

TEST(Property, SubtractInPlaceEqualsSubtract) {
  std::mt19937_64 rng(1307);
  size_t grown = 0, emptied = 0, shrunk = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    IntervalSet block, allow;
    for (Family f : {Family::kV4, Family::kV6}) {
      const u128 base = RandomBase(rng, f);
      FamilyRanges& b = block.of(f);
      b.ranges = RandomRanges(rng, base, rng() % 5 == 0 ? 0 : rng() % 40, true, 24);
      // With and without the parallel vectors, each on its own.
      if (rng() % 2) {
        for (size_t i = 0; i < b.ranges.size(); ++i) b.sources.push_back(rng() % 8 + 1);
      }
      if (rng() % 2) {
        for (size_t i = 0; i < b.ranges.size(); ++i) b.expires.push_back(rng() % 4 * 100);
      }
      // Mostly short allow ranges (splits), some as long as the span (whole removals).
      allow.of(f).ranges = rng() % 10 == 0
                               ? std::vector<Range>{{base, base + (kSpan - 1)}}
                               : RandomRanges(rng, base, rng() % 12, rng() % 2, rng() % 2 ? 3 : 64);
    }
    const IntervalSet want = Subtract(block, allow);
    IntervalSet got = block;
    SubtractInPlace(&got, allow);
    ASSERT_NO_FATAL_FAILURE(CheckSameSet(got, want));
    for (Family f : {Family::kV4, Family::kV6}) {
      const size_t before = block.of(f).size(), after = want.of(f).size();
      grown += after > before;
      shrunk += after < before && after > 0;
      emptied += before > 0 && after == 0;
    }
  }
  // The generator reached each case that moves the input differently.
  EXPECT_GT(grown, 1000u);
  EXPECT_GT(shrunk, 1000u);
  EXPECT_GT(emptied, 1000u);
}

// --- Parsing and formatting against glibc -------------------------------------------------

// A random IPv6 address, its text as inet_ntop writes it (*canonical), and a spelling of it.
std::string RandomV6Text(std::mt19937_64& rng, u128* value, std::string* canonical = nullptr) {
  uint16_t g[8];
  for (uint16_t& x : g) {
    const uint64_t r = rng();
    x = r % 3 == 0 ? 0 : static_cast<uint16_t>(r >> 8);  // plenty of zero runs
  }
  *value = 0;
  for (uint16_t x : g) *value = (*value << 16) | x;
  char buf[INET6_ADDRSTRLEN];
  std::array<uint8_t, 16> bytes;
  for (int i = 0; i < 8; ++i) {
    bytes[2 * i] = static_cast<uint8_t>(g[i] >> 8);
    bytes[2 * i + 1] = static_cast<uint8_t>(g[i]);
  }
  inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  std::string s = buf;
  if (canonical) *canonical = s;
  // Vary the spelling the way feeds do: upper case, leading zeros.
  if (rng() % 4 == 0) std::transform(s.begin(), s.end(), s.begin(), ::toupper);
  if (rng() % 4 == 0 && s.find("::") == std::string::npos) {
    std::string padded;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      std::string group = s.substr(start, end - start);
      padded += std::string(4 - std::min<size_t>(4, group.size()), '0') + group;
      if (end < s.size()) padded += ':';
      start = end + 1;
    }
    s = padded;
  }
  return s;
}

TEST(Property, FormatAddressMatchesInetNtop) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    u128 value;
    std::string canonical;
    std::string text = RandomV6Text(rng, &value, &canonical);
    // glibc writes ::a.b.c.d and ::ffff:a.b.c.d in dotted form; RFC 5952 allows both.
    const bool dotted = (value >> 48) == 0 || (value >> 32) == 0xffff;
    if (!dotted) {
      ASSERT_EQ(FormatAddress(Family::kV6, value), canonical);
    }
    ParsedLine r = ParseLine(text);
    ASSERT_EQ(r.kind, LineKind::kAccepted) << text;
    if ((value >> 32) == 0xffff) {
      ASSERT_EQ(r.prefix, (Prefix{Family::kV4, value & 0xffffffffu, 32})) << text;
    } else {
      ASSERT_EQ(r.prefix, (Prefix{Family::kV6, value, 128})) << text;
    }
  }
}

// Whatever glibc's inet_pton accepts as an address, ParseLine accepts as the same address,
// and the reverse. Random strings over the address alphabet, and mutations of valid ones.
TEST(Property, ParseLineAgreesWithInetPton) {
  std::mt19937_64 rng(11);
  static constexpr char kAlphabet[] = "0123456789abcdefABCDEF:::...";
  size_t accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    if (i % 2 == 0) {
      const size_t n = 1 + rng() % 24;
      for (size_t k = 0; k < n; ++k) s.push_back(kAlphabet[rng() % (sizeof kAlphabet - 1)]);
    } else {
      u128 ignored;
      s = rng() % 3 ? RandomV6Text(rng, &ignored)
                    : FormatAddress(Family::kV4, static_cast<uint32_t>(rng()));
      for (int m = 1 + rng() % 2; m > 0 && !s.empty(); --m) {
        const size_t at = rng() % s.size();
        switch (rng() % 3) {
          case 0:
            s.erase(at, 1);
            break;
          case 1:
            s.insert(at, 1, kAlphabet[rng() % (sizeof kAlphabet - 1)]);
            break;
          default:
            s[at] = kAlphabet[rng() % (sizeof kAlphabet - 1)];
            break;
        }
      }
    }
    const bool v6 = s.find(':') != std::string::npos;
    std::array<uint8_t, 16> bytes{};
    const bool glibc_ok = inet_pton(v6 ? AF_INET6 : AF_INET, s.c_str(), bytes.data()) == 1;
    const ParsedLine r = ParseLine(s);
    ASSERT_EQ(r.kind == LineKind::kAccepted, glibc_ok) << "'" << s << "' reason " << r.reason;
    if (!glibc_ok) continue;
    ++accepted;
    u128 want = 0;
    for (int k = 0; k < (v6 ? 16 : 4); ++k) want = (want << 8) | bytes[k];
    u128 got = r.prefix.addr;
    if (v6 && r.prefix.family == Family::kV4) got |= u128{0xffff} << 32;  // mapped back
    ASSERT_EQ(got, want) << s;
    ASSERT_EQ(r.prefix.len, AddressBits(r.prefix.family));
  }
  EXPECT_GT(accepted, 20000u);  // the generator must exercise the accepting paths too
}

}  // namespace
}  // namespace iocwall
