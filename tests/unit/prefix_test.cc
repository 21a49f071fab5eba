#include "core/prefix.h"

#include <gtest/gtest.h>

#include <string>

namespace iocwall {
namespace {

using namespace std::string_literals;

u128 V6(uint64_t hi, uint64_t lo) { return (u128{hi} << 64) | lo; }

Prefix Accepted(std::string_view line) {
  ParsedLine r = ParseLine(line);
  EXPECT_EQ(r.kind, LineKind::kAccepted) << "line: " << line << " reason: " << r.reason;
  return r.prefix;
}

std::string_view Rejected(std::string_view line) {
  ParsedLine r = ParseLine(line);
  EXPECT_EQ(r.kind, LineKind::kRejected) << "line: " << line;
  EXPECT_FALSE(r.reason.empty()) << "line: " << line;
  return r.reason;
}

TEST(ParseLine, AcceptsIPv4AddressAndCidr) {
  EXPECT_EQ(Accepted("192.0.2.1"), (Prefix{Family::kV4, 0xc0000201u, 32}));
  EXPECT_EQ(Accepted("198.51.100.0/24"), (Prefix{Family::kV4, 0xc6336400u, 24}));
  EXPECT_EQ(Accepted("0.0.0.0/0"), (Prefix{Family::kV4, 0, 0}));
  EXPECT_EQ(Accepted("255.255.255.255"), (Prefix{Family::kV4, 0xffffffffu, 32}));
  EXPECT_EQ(Accepted("10.0.0.0/8"), (Prefix{Family::kV4, 0x0a000000u, 8}));
  EXPECT_EQ(Accepted("0.0.0.0"), (Prefix{Family::kV4, 0, 32}));
}

TEST(ParseLine, AcceptsIPv6Forms) {
  EXPECT_EQ(Accepted("2001:db8::1"), (Prefix{Family::kV6, V6(0x20010db800000000, 1), 128}));
  EXPECT_EQ(Accepted("2001:DB8:0:0:0:0:0:1"),
            (Prefix{Family::kV6, V6(0x20010db800000000, 1), 128}));
  EXPECT_EQ(Accepted("2001:0db8:0000::0001"),
            (Prefix{Family::kV6, V6(0x20010db800000000, 1), 128}));
  EXPECT_EQ(Accepted("::"), (Prefix{Family::kV6, 0, 128}));
  EXPECT_EQ(Accepted("::1"), (Prefix{Family::kV6, 1, 128}));
  EXPECT_EQ(Accepted("1::"), (Prefix{Family::kV6, V6(0x0001000000000000, 0), 128}));
  EXPECT_EQ(Accepted("1:2:3:4:5:6:7::"),
            (Prefix{Family::kV6, V6(0x0001000200030004, 0x0005000600070000), 128}));
  EXPECT_EQ(Accepted("::2:3:4:5:6:7:8"),
            (Prefix{Family::kV6, V6(0x0000000200030004, 0x0005000600070008), 128}));
  EXPECT_EQ(Accepted("2001:db8::/32"), (Prefix{Family::kV6, V6(0x20010db800000000, 0), 32}));
  EXPECT_EQ(Accepted("::/0"), (Prefix{Family::kV6, 0, 0}));
  // IPv4-compatible (deprecated) is not mapped: it stays IPv6.
  EXPECT_EQ(Accepted("::1.2.3.4"), (Prefix{Family::kV6, 0x01020304u, 128}));
  EXPECT_EQ(Accepted("64:ff9b::192.0.2.33"),
            (Prefix{Family::kV6, V6(0x0064ff9b00000000, 0xc0000221u), 128}));
}

TEST(ParseLine, TrimsBlanksCrAndBom) {
  const Prefix want{Family::kV4, 0x01020304u, 32};
  EXPECT_EQ(Accepted("  1.2.3.4  "), want);
  EXPECT_EQ(Accepted("\t1.2.3.4\t"), want);
  EXPECT_EQ(Accepted("1.2.3.4\r"), want);
  EXPECT_EQ(Accepted("\xEF\xBB\xBF"
                     "1.2.3.4"),
            want);
  EXPECT_EQ(Accepted("\xEF\xBB\xBF \t1.2.3.4 \r"), want);
  // A BOM anywhere but the start is garbage, not whitespace.
  Rejected("1.2.3.4\xEF\xBB\xBF");
}

TEST(ParseLine, SkipsBlankAndCommentLines) {
  for (std::string_view line : {"", " ", "\t\r", "\r", "# a comment", "   # indented", "#1.2.3.4",
                                "\xEF\xBB\xBF# header"}) {
    ParsedLine r = ParseLine(line);
    EXPECT_EQ(r.kind, LineKind::kSkip) << "line: " << line;
    EXPECT_TRUE(r.reason.empty());
  }
}

// Decision: a comment may follow an entry after a blank ("1.2.3.4 # why"); anything else
// after the entry, or a '#' glued to it, rejects the line.
TEST(ParseLine, TrailingCommentAfterBlankIsAccepted) {
  EXPECT_EQ(Accepted("1.2.3.4 # scanner"), (Prefix{Family::kV4, 0x01020304u, 32}));
  EXPECT_EQ(Accepted("10.0.0.0/8\t#c2"), (Prefix{Family::kV4, 0x0a000000u, 8}));
  EXPECT_EQ(Accepted("2001:db8::1   #"), (Prefix{Family::kV6, V6(0x20010db800000000, 1), 128}));
  EXPECT_EQ(Rejected("1.2.3.4 scanner"), "unexpected text after the address");
  EXPECT_EQ(Rejected("1.2.3.4 5.6.7.8"), "unexpected text after the address");
  Rejected("1.2.3.4#comment");
  Rejected("1.2.3.4/ 24");
}

TEST(ParseLine, ClearsHostBitsWithWarning) {
  ParsedLine r = ParseLine("10.1.2.3/8");
  ASSERT_EQ(r.kind, LineKind::kAccepted);
  EXPECT_EQ(r.prefix, (Prefix{Family::kV4, 0x0a000000u, 8}));
  EXPECT_TRUE(r.host_bits_cleared);
  r = ParseLine("2001:db8::1/32");
  ASSERT_EQ(r.kind, LineKind::kAccepted);
  EXPECT_EQ(r.prefix, (Prefix{Family::kV6, V6(0x20010db800000000, 0), 32}));
  EXPECT_TRUE(r.host_bits_cleared);
  r = ParseLine("10.0.0.0/8");
  EXPECT_FALSE(r.host_bits_cleared);
  r = ParseLine("1.2.3.4");
  EXPECT_FALSE(r.host_bits_cleared);
}

TEST(ParseLine, MapsIPv4MappedToIPv4) {
  ParsedLine r = ParseLine("::ffff:1.2.3.4");
  ASSERT_EQ(r.kind, LineKind::kAccepted);
  EXPECT_EQ(r.prefix, (Prefix{Family::kV4, 0x01020304u, 32}));
  EXPECT_TRUE(r.mapped_v4);
  // Hex form and upper case are the same address.
  EXPECT_EQ(Accepted("::FFFF:102:304"), (Prefix{Family::kV4, 0x01020304u, 32}));
  EXPECT_EQ(Accepted("0:0:0:0:0:ffff:1.2.3.4"), (Prefix{Family::kV4, 0x01020304u, 32}));
  // The length is moved into IPv4 terms: /104 covers 8 bits of the IPv4 address.
  EXPECT_EQ(Accepted("::ffff:0:0/104"), (Prefix{Family::kV4, 0, 8}));
  EXPECT_EQ(Accepted("::ffff:192.0.2.0/120"), (Prefix{Family::kV4, 0xc0000200u, 24}));
  r = ParseLine("::ffff:192.0.2.7/120");
  EXPECT_EQ(r.prefix, (Prefix{Family::kV4, 0xc0000200u, 24}));
  EXPECT_TRUE(r.host_bits_cleared);
  EXPECT_TRUE(r.mapped_v4);
  // Shorter than /96 covers more than the mapped block: stays IPv6.
  r = ParseLine("::ffff:0:0/95");
  ASSERT_EQ(r.kind, LineKind::kAccepted);
  EXPECT_EQ(r.prefix.family, Family::kV6);
  EXPECT_FALSE(r.mapped_v4);
  EXPECT_EQ(ParseLine("::fffe:1.2.3.4").prefix.family, Family::kV6);
}

TEST(ParseLine, RejectsWithReasons) {
  EXPECT_EQ(Rejected("example.com"), "a domain name, not an IP address");
  EXPECT_EQ(Rejected("evil.example.org/24"), "a domain name, not an IP address");
  EXPECT_EQ(Rejected("http://1.2.3.4/"), "a URL, not an IP address");
  EXPECT_EQ(Rejected("https://example.com/x"), "a URL, not an IP address");
  EXPECT_EQ(Rejected("1.2.3.256"), "IPv4 octet above 255");
  EXPECT_EQ(Rejected("1.2.3.1000"), "IPv4 octet above 255");
  EXPECT_EQ(Rejected("1.2.3"), "IPv4 address needs exactly 4 octets");
  EXPECT_EQ(Rejected("1.2.3.4.5"), "IPv4 address needs exactly 4 octets");
  EXPECT_EQ(Rejected("1.2.3.4/33"), "prefix length out of range");
  EXPECT_EQ(Rejected("2001:db8::/129"), "prefix length out of range");
  EXPECT_EQ(Rejected("1.2.3.4/1000"), "prefix length out of range");
  EXPECT_EQ(Rejected("1.2.3.4/"), "missing prefix length after '/'");
  EXPECT_EQ(Rejected("1.2.3.4/08"), "malformed prefix length");
  EXPECT_EQ(Rejected("1.2.3.4/-1"), "malformed prefix length");
  EXPECT_EQ(Rejected("1.2.3.4/2x"), "malformed prefix length");
  EXPECT_EQ(Rejected("1.2.3.4/24/24"), "malformed prefix length");
  EXPECT_EQ(Rejected("fe80::1%eth0"), "IPv6 zone index (%) is not allowed");
  EXPECT_EQ(Rejected("01.2.3.4"), "leading zero in IPv4 octet (ambiguous octal)");
  EXPECT_EQ(Rejected("1.2.3.010"), "leading zero in IPv4 octet (ambiguous octal)");
  EXPECT_EQ(Rejected("1.2.3.00"), "leading zero in IPv4 octet (ambiguous octal)");
  EXPECT_EQ(Rejected("1..2.3"), "malformed IPv4 address");
  EXPECT_EQ(Rejected("1.2.3."), "malformed IPv4 address");
  EXPECT_EQ(Rejected(".0.0/21"), "malformed IPv4 address");  // found by fuzz_parse_line
  EXPECT_EQ(Rejected("."), "malformed IPv4 address");
  EXPECT_EQ(Rejected("hello"), "not an IP address or CIDR");
  EXPECT_EQ(Rejected("-"), "not an IP address or CIDR");
  EXPECT_EQ(Rejected("/24"), "not an IP address or CIDR");
  for (std::string_view bad : {"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", ":::", "1::2::3",
                               "12345::", ":1::", "1:", "1::2:", "::g", "1:2:3:4:5:6:7", "::1.2.3",
                               "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4", "::01.2.3.4"}) {
    EXPECT_EQ(Rejected(bad), "malformed IPv6 address") << bad;
  }
}

TEST(ParseLine, RejectsNulBytesAndLongLines) {
  EXPECT_EQ(Rejected("1.2.3.4\0"s), "contains a NUL byte");
  EXPECT_EQ(Rejected("\0"s), "contains a NUL byte");
  EXPECT_EQ(Rejected("# comment \0"s), "contains a NUL byte");
  EXPECT_EQ(Rejected(std::string(10000, '1')), "too long to be an IP address or CIDR");
  EXPECT_EQ(Rejected("1.2.3.4" + std::string(100, '0')), "too long to be an IP address or CIDR");
  EXPECT_EQ(Rejected(std::string(100000, 'a') + " x"), "too long to be an IP address or CIDR");
  // The longest valid form still fits.
  EXPECT_EQ(Accepted("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128").family, Family::kV6);
  // A long comment is still a comment.
  EXPECT_EQ(ParseLine("# " + std::string(100000, 'x')).kind, LineKind::kSkip);
}

TEST(ParseLine, NeverThrowsOnBytesOfEveryValue) {
  std::string line;
  for (int c = 0; c < 256; ++c) {
    line.assign(1, static_cast<char>(c));
    EXPECT_NO_THROW(ParseLine(line));
    line = "1.2.3." + std::string(1, static_cast<char>(c));
    ParsedLine r = ParseLine(line);
    if (r.kind == LineKind::kAccepted) {
      EXPECT_TRUE(c >= '0' && c <= '9') << c;
    }
  }
}

TEST(FormatAddress, FollowsRfc5952) {
  auto f = [](std::string_view s) { return FormatAddress(Family::kV6, Accepted(s).addr); };
  EXPECT_EQ(f("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  EXPECT_EQ(f("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");  // one zero group stays
  EXPECT_EQ(f("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");     // first of equal runs
  EXPECT_EQ(f("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");           // longest run wins
  EXPECT_EQ(f("0:0:0:0:0:0:0:0"), "::");
  EXPECT_EQ(f("0:0:0:0:0:0:0:1"), "::1");
  EXPECT_EQ(f("1:0:0:0:0:0:0:0"), "1::");
  EXPECT_EQ(f("ABCD:EF01:0023:4567:89AB:CDEF:0:1"), "abcd:ef01:23:4567:89ab:cdef:0:1");
  EXPECT_EQ(FormatAddress(Family::kV4, 0xc0000201u), "192.0.2.1");
  EXPECT_EQ(FormatAddress(Family::kV4, 0), "0.0.0.0");
  EXPECT_EQ(FormatAddress(Family::kV4, 0xffffffffu), "255.255.255.255");
}

TEST(Prefix, ToStringAndLast) {
  EXPECT_EQ((Prefix{Family::kV4, 0xc0000200u, 24}).ToString(), "192.0.2.0/24");
  EXPECT_EQ((Prefix{Family::kV4, 0xc0000201u, 32}).ToString(), "192.0.2.1");
  EXPECT_EQ((Prefix{Family::kV6, V6(0x20010db800000000, 0), 32}).ToString(), "2001:db8::/32");
  EXPECT_EQ((Prefix{Family::kV6, 1, 128}).ToString(), "::1");
  EXPECT_EQ((Prefix{Family::kV4, 0xc0000200u, 24}).Last(), u128{0xc00002ffu});
  EXPECT_EQ((Prefix{Family::kV4, 0, 0}).Last(), u128{0xffffffffu});
  EXPECT_EQ((Prefix{Family::kV6, 0, 0}).Last(), ~u128{0});
  EXPECT_EQ((Prefix{Family::kV6, 5, 128}).Last(), u128{5});
}

TEST(ParsePrefix, IsStrict) {
  EXPECT_EQ(ParsePrefix(" 10.0.0.0/8 "), (Prefix{Family::kV4, 0x0a000000u, 8}));
  EXPECT_EQ(ParsePrefix("::ffff:1.2.3.4"), (Prefix{Family::kV4, 0x01020304u, 32}));
  EXPECT_EQ(ParsePrefix("10.0.0.1/8"), std::nullopt);  // host bits: a typo, not a guess
  EXPECT_EQ(ParsePrefix("10.0.0.0/8 # c"), std::nullopt);
  EXPECT_EQ(ParsePrefix("# c"), std::nullopt);
  EXPECT_EQ(ParsePrefix(""), std::nullopt);
  EXPECT_EQ(ParsePrefix("10.0.0.0 /8"), std::nullopt);
  EXPECT_EQ(ParsePrefix("example.com"), std::nullopt);
}

TEST(ParsePrefixWithReason, SaysWhy) {
  EXPECT_EQ(ParsePrefixWithReason("10.0.0.1/8").message(),
            "host bits set: the network is 10.0.0.0/8");
  EXPECT_EQ(ParsePrefixWithReason("1.2.3.256").message(), "IPv4 octet above 255");
  EXPECT_EQ(ParsePrefixWithReason("").message(), "empty: expected an IP address or CIDR prefix");
  EXPECT_FALSE(ParsePrefixWithReason("10.0.0.0/8 # x").ok());
  Result<Prefix> ok = ParsePrefixWithReason("2001:db8::/32");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().ToString(), "2001:db8::/32");
}

TEST(ParseBody, HandlesLfCrlfAndMissingFinalNewline) {
  for (std::string_view body :
       {"1.2.3.4\n5.6.7.8\n", "1.2.3.4\r\n5.6.7.8\r\n", "1.2.3.4\n5.6.7.8", "1.2.3.4\r\n5.6.7.8"}) {
    std::vector<Prefix> out;
    ParseStats stats;
    ParseBody(body, &out, &stats);
    ASSERT_EQ(out.size(), 2u) << body;
    EXPECT_EQ(out[0], (Prefix{Family::kV4, 0x01020304u, 32}));
    EXPECT_EQ(out[1], (Prefix{Family::kV4, 0x05060708u, 32}));
    EXPECT_EQ(stats.lines, 2u);
    EXPECT_EQ(stats.accepted, 2u);
    EXPECT_EQ(stats.rejected, 0u);
  }
  std::vector<Prefix> out;
  ParseStats stats;
  ParseBody("", &out, &stats);
  EXPECT_EQ(stats.lines, 0u);
  ParseBody("\n\n", &out, &stats);  // two blank lines
  EXPECT_EQ(stats.lines, 2u);
  EXPECT_TRUE(out.empty());
}

TEST(ParseBody, CountsAndNumbersLinesAcrossCalls) {
  std::vector<Prefix> out;
  ParseStats stats;
  ParseBody("# page 1\n1.2.3.4\nbad one\n10.0.0.1/8\n", &out, &stats);
  ParseBody("::ffff:9.9.9.9\n\nexample.com\r\n", &out, &stats);
  EXPECT_EQ(stats.lines, 7u);
  EXPECT_EQ(stats.accepted, 3u);
  EXPECT_EQ(stats.rejected, 2u);
  EXPECT_EQ(stats.host_bits_cleared, 1u);
  EXPECT_EQ(stats.mapped_v4, 1u);
  ASSERT_EQ(stats.samples.size(), 2u);
  EXPECT_EQ(stats.samples[0].line_no, 3u);
  EXPECT_EQ(stats.samples[0].text, "bad one");
  EXPECT_EQ(stats.samples[1].line_no, 7u);  // numbering continued into the second page
  EXPECT_EQ(stats.samples[1].text, "example.com");
  EXPECT_EQ(stats.samples[1].reason, "a domain name, not an IP address");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2], (Prefix{Family::kV4, 0x09090909u, 32}));
}

TEST(ParseBody, SamplesAreCappedCutAndEscaped) {
  std::string body;
  for (int i = 0; i < 50; ++i) body += "junk\n";
  body += std::string(500, 'z') + "\n";
  body += "a\x01\xff\\b\n";
  std::vector<Prefix> out;
  ParseStats stats;
  ParseBody(body, &out, &stats);
  EXPECT_EQ(stats.rejected, 52u);
  EXPECT_EQ(stats.samples.size(), ParseStats::kMaxSamples);

  ParseStats s2;
  ParseBody(std::string(500, 'z') + "\na\x01\xff\\b\n", &out, &s2);
  ASSERT_EQ(s2.samples.size(), 2u);
  EXPECT_LE(s2.samples[0].text.size(), 124u);
  EXPECT_EQ(s2.samples[0].text.substr(0, 5), "zzzzz");
  EXPECT_EQ(s2.samples[1].text, "a\\x01\\xff\\x5cb");
}

TEST(ParseStats, MergeAddsCountsAndCapsSamples) {
  ParseStats a, b;
  std::vector<Prefix> out;
  std::string junk;
  for (int i = 0; i < 15; ++i) junk += "junk\n";
  ParseBody(junk + "1.2.3.4\n", &out, &a);
  ParseBody(junk + "10.0.0.1/8\n", &out, &b);
  a.Merge(b);
  EXPECT_EQ(a.lines, 32u);
  EXPECT_EQ(a.accepted, 2u);
  EXPECT_EQ(a.rejected, 30u);
  EXPECT_EQ(a.host_bits_cleared, 1u);
  EXPECT_EQ(a.samples.size(), ParseStats::kMaxSamples);
}

TEST(ParseBodyInto, HandsPrefixesToTheSink) {
  ParseStats stats;
  std::vector<std::string> seen;
  ParseBodyInto("1.2.3.4\nx\n2001:db8::/32", &stats,
                [&](const Prefix& p) { seen.push_back(p.ToString()); });
  EXPECT_EQ(seen, (std::vector<std::string>{"1.2.3.4", "2001:db8::/32"}));
  EXPECT_EQ(stats.lines, 3u);
}

}  // namespace
}  // namespace iocwall

namespace iocwall {
namespace {

// A widened entry keeps the feed's own words, for "9.9.9.9/8 in X widened to 9.0.0.0/8".
TEST(ParseBodyTest, WidenedEntriesKeepTheirOriginalText) {
  std::vector<Prefix> out;
  ParseStats stats;
  ParseBody("1.2.3.4\n  9.9.9.9/8 \r\n10.0.0.0/8\n2001:db8::1/32\n", &out, &stats);
  EXPECT_EQ(stats.host_bits_cleared, 2u);
  ASSERT_EQ(stats.widened.size(), 2u);
  EXPECT_EQ(stats.widened[0].line_no, 2u);
  EXPECT_EQ(stats.widened[0].text, "9.9.9.9/8");
  EXPECT_EQ(stats.widened[0].prefix.ToString(), "9.0.0.0/8");
  EXPECT_EQ(stats.widened[1].text, "2001:db8::1/32");
  EXPECT_EQ(stats.widened[1].prefix.ToString(), "2001:db8::/32");
  ParseStats merged;
  merged.Merge(stats);
  EXPECT_EQ(merged.widened.size(), 2u);
  std::string many;
  for (int i = 0; i < 50; ++i) many += "9.9.9." + std::to_string(i + 1) + "/24\n";
  ParseStats capped;
  ParseBody(many, &out, &capped);
  EXPECT_EQ(capped.host_bits_cleared, 50u);
  EXPECT_EQ(capped.widened.size(), ParseStats::kMaxSamples);
}

}  // namespace
}  // namespace iocwall
