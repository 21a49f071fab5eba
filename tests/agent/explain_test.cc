// --explain without root: the configuration, snapshots and host addresses handed in, the
// kernel a recording fake. Each reason a listed address is not blocked is named, with the
// feed's own text.
#include "agent/explain.h"

#include <gtest/gtest.h>

#include "tests/agent/fakes.h"

namespace iocwall {
namespace {

constexpr int64_t kNow = 1800000000;

class ExplainTest : public ::testing::Test {
 protected:
  ExplainTest() {
    config_.sync.min_prefix_v4 = 8;
    config_.sync.min_prefix_v6 = 32;
  }

  // One source listing `entries`, its last good list on disk.
  void List(std::vector<SnapshotEntry> entries, std::vector<WidenedLine> widened = {}) {
    ExplainSource s;
    s.name = "collection abc";
    Snapshot snap;
    snap.source = s.name;
    snap.fetched_at = kNow - 60;
    snap.entries = std::move(entries);
    s.snapshot = std::optional<Snapshot>(std::move(snap));
    s.widened = std::move(widened);
    input_.sources.push_back(std::move(s));
  }

  static SnapshotEntry Entry(const std::string& prefix, int64_t valid_until = 0,
                             int64_t valid_from = 0, const std::string& id = "") {
    SnapshotEntry e;
    e.prefix = *ParsePrefix(prefix);
    e.first_seen = kNow - 3600;
    e.valid_until = valid_until;
    e.valid_from = valid_from;
    e.id = id;
    return e;
  }

  // The kernel holds `ranges` (as "first-last" prefixes).
  void Kernel(const std::vector<std::string>& prefixes) {
    backend_.table_present = true;
    std::vector<Prefix> ps;
    for (const auto& p : prefixes) ps.push_back(*ParsePrefix(p));
    backend_.kernel = FromPrefixes(ps);
  }

  ExplainResult Run(const std::string& address) {
    auto ip = ParseExplainAddress(address);
    EXPECT_TRUE(ip.ok()) << ip.message();
    input_.address = *ip;
    input_.now = kNow;
    return Explain(config_, input_, backend_);
  }

  Config config_;
  ExplainInput input_;
  FakeBackend backend_;
};

TEST_F(ExplainTest, AListedBlockedAddressNamesItsEntryAndElement) {
  List({Entry("198.51.100.0/24", kNow + 86400, 0, "indicator--1")});
  Kernel({"198.51.100.0/24"});
  ExplainResult r = Run("198.51.100.5");
  EXPECT_TRUE(r.blocked);
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_TRUE(r.listings[0].refusals.empty());
  EXPECT_NE(r.text.find("listed by collection abc as 198.51.100.0/24 (indicator indicator--1)"),
            std::string::npos)
      << r.text;
  EXPECT_NE(r.text.find("valid until"), std::string::npos);
  EXPECT_NE(r.text.find("kernel: BLOCKED by element 198.51.100.0/24 of set blocklist_v4"),
            std::string::npos)
      << r.text;
  // No dump: one lookup, then one per bit at most to find the element's end.
  EXPECT_LE(backend_.lookups, 33);
}

TEST_F(ExplainTest, ARefusedShortPrefixNamesTheMinimumAndEchoesTheFeedLine) {
  List({Entry("0.0.0.0/4")}, {{12, "10.0.0.0/4", *ParsePrefix("0.0.0.0/4")}});
  Kernel({});
  ExplainResult r = Run("10.1.2.3");
  EXPECT_FALSE(r.blocked);
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_EQ(r.listings[0].refusals, std::vector<Refusal>{Refusal::kTooShort});
  EXPECT_NE(r.text.find("the feed wrote \"10.0.0.0/4\" (line 12; host bits set: taken as "
                        "0.0.0.0/4)"),
            std::string::npos)
      << r.text;
  EXPECT_NE(r.text.find("refused: /4 is shorter than [sync] min_prefix_v4 = 8"), std::string::npos)
      << r.text;
  EXPECT_NE(r.text.find("kernel: not blocked"), std::string::npos);
}

TEST_F(ExplainTest, AShortIpv6PrefixNamesItsOwnMinimum) {
  List({Entry("2001::/16")});
  ExplainResult r = Run("2001:db8::1");
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_EQ(r.listings[0].refusals, std::vector<Refusal>{Refusal::kTooShort});
  EXPECT_NE(r.text.find("shorter than [sync] min_prefix_v6 = 32"), std::string::npos) << r.text;
}

TEST_F(ExplainTest, AnAllowlistedAddressNamesThePrefixOnTheListing) {
  config_.allowlist.push_back(*ParsePrefix("198.51.100.77"));
  List({Entry("198.51.100.0/24")});
  Kernel({"198.51.100.0/26"});
  ExplainResult r = Run("198.51.100.77");
  EXPECT_FALSE(r.blocked);
  EXPECT_TRUE(r.protected_address);
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_EQ(r.listings[0].refusals, std::vector<Refusal>{Refusal::kAllowlisted});
  EXPECT_NE(r.text.find("never blocked: allowlisted by [allowlist] prefix 198.51.100.77"),
            std::string::npos);
  EXPECT_NE(r.text.find("    not blocked here: allowlisted by [allowlist] prefix 198.51.100.77"),
            std::string::npos)
      << r.text;
}

TEST_F(ExplainTest, AnAlwaysProtectedAddressIsNamed) {
  List({Entry("127.0.0.0/8")});
  ExplainResult r = Run("127.0.0.1");
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_EQ(r.listings[0].refusals, std::vector<Refusal>{Refusal::kAlwaysProtected});
  EXPECT_NE(r.text.find("not blocked here: inside the always-protected range 127.0.0.0/8"),
            std::string::npos)
      << r.text;
}

TEST_F(ExplainTest, TheHostsOwnNetworkIsNamed) {
  input_.host.push_back({*ParsePrefix("203.0.113.0/24"), "network of eth0 (connected)"});
  List({Entry("203.0.113.0/24")});
  ExplainResult r = Run("203.0.113.9");
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_EQ(r.listings[0].refusals, std::vector<Refusal>{Refusal::kHost});
  EXPECT_NE(r.text.find("not blocked here: network of eth0 (connected)"), std::string::npos)
      << r.text;
}

TEST_F(ExplainTest, AnExpiredIndicatorSaysWhen) {
  List({Entry("198.51.100.9", kNow - 7200, 0, "indicator--old")});
  ExplainResult r = Run("198.51.100.9");
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_EQ(r.listings[0].refusals, std::vector<Refusal>{Refusal::kExpired});
  EXPECT_NE(r.text.find("EXPIRED at "), std::string::npos);
  EXPECT_NE(r.text.find("refused: expired at "), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("(indicator indicator--old)"), std::string::npos);
}

TEST_F(ExplainTest, ANotYetValidIndicatorSaysWhenItWillBe) {
  List({Entry("198.51.100.10", 0, kNow + 600, "indicator--soon")});
  ExplainResult r = Run("198.51.100.10");
  ASSERT_EQ(r.listings.size(), 1u);
  EXPECT_EQ(r.listings[0].refusals, std::vector<Refusal>{Refusal::kNotYetValid});
  EXPECT_NE(r.text.find("refused until "), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("not valid yet (its valid_from)"), std::string::npos);
}

TEST_F(ExplainTest, AnUnlistedAddressAndAnAbsentTable) {
  List({Entry("198.51.100.0/24")});
  ExplainResult r = Run("192.0.2.200");
  EXPECT_TRUE(r.listings.empty());
  EXPECT_NE(r.text.find("not listed by any source's last good list"), std::string::npos);
  EXPECT_NE(r.text.find("kernel: table inet iocwall is absent: NOT blocked"), std::string::npos)
      << r.text;
}

TEST_F(ExplainTest, AHandMadeElementOverAProtectedAddressIsAWarning) {
  config_.allowlist.push_back(*ParsePrefix("192.0.2.1"));
  Kernel({"192.0.2.0/24"});
  ExplainResult r = Run("192.0.2.1");
  EXPECT_TRUE(r.blocked);
  EXPECT_NE(r.text.find("WARNING: the kernel blocks an address iocwall never blocks"),
            std::string::npos);
}

TEST_F(ExplainTest, AnUnreadableSnapshotIsSaid) {
  ExplainSource s;
  s.name = "file /x";
  s.snapshot = Status::Error("state: file /x: damaged, set aside");
  input_.sources.push_back(std::move(s));
  ExplainResult r = Run("192.0.2.1");
  EXPECT_NE(r.text.find("  file /x: state: file /x: damaged, set aside\n"), std::string::npos);
}

TEST(ExplainAddress, OnlyOneAddress) {
  EXPECT_TRUE(ParseExplainAddress("2001:db8::1").ok());
  auto bad = ParseExplainAddress("198.51.100.0/24");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "--explain takes one IP address, got '198.51.100.0/24'");
  EXPECT_FALSE(ParseExplainAddress("example.com").ok());
}

}  // namespace
}  // namespace iocwall
