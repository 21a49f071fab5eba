// NftBackend against the real kernel, each test in a network namespace of its own, with
// `nft -j list` as the independent oracle.
#include "netlink/nft_backend.h"

#include <gtest/gtest.h>
#include <linux/netfilter.h>

#include "netlink/batch.h"
#include "tests/kernel/kernel_test_util.h"

namespace iocwall {
namespace {

using ktest::Coverage;
using ktest::NftTable;
using ktest::R;

class NftBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = ktest::EnterFreshNetns();
    if (!st.ok()) GTEST_SKIP() << "kernel test skipped: " << st.message();
  }

  // The oracle agrees with `want`: structure as the spec says, and set contents.
  void ExpectKernelHolds(const IntervalSet& want, const TableSpec& spec = {}) {
    nlohmann::json t = NftTable(spec.table);
    ASSERT_TRUE(t.contains("nftables")) << "table inet " << spec.table << " is absent";
    for (Family f : {Family::kV4, Family::kV6}) {
      const std::string& name = f == Family::kV4 ? spec.set_v4 : spec.set_v6;
      ktest::OracleSet s = ktest::ReadOracleSet(t, name, f);
      ASSERT_TRUE(s.present) << name;
      EXPECT_EQ(s.type, f == Family::kV4 ? "ipv4_addr" : "ipv6_addr");
      EXPECT_EQ(s.flags, std::vector<std::string>{"interval"});
      EXPECT_EQ(Coverage(s.elements), Coverage(want.of(f).ranges)) << name;
      // The hold set (netlink/hold_bridge.h): plain interval, and empty between updates.
      ktest::OracleSet hold = ktest::ReadOracleSet(t, name + "_hold", f);
      ASSERT_TRUE(hold.present) << name << "_hold";
      EXPECT_EQ(hold.type, s.type);
      EXPECT_EQ(hold.flags, std::vector<std::string>{"interval"});
      EXPECT_TRUE(hold.elements.empty()) << name << "_hold";
    }
    size_t chains = 0;
    for (const char* hook : {"input", "forward", "output"}) {
      ktest::OracleChain c = ktest::ReadOracleChain(t, hook);
      if (!c.present) continue;
      ++chains;
      EXPECT_EQ(c.type, "filter");
      EXPECT_EQ(c.hook, hook);
      EXPECT_EQ(c.prio, spec.priority);
      EXPECT_EQ(c.policy, "accept");
      size_t per_family = std::string(hook) == "forward" ? 2 : 1;
      // With reject, the output chain first lets our own ICMP errors out, once per family.
      std::vector<std::string> blocking;
      size_t own_rejects = 0;
      for (const std::string& rule : c.rules) {
        const bool own = rule.find("\"accept\"") != std::string::npos;
        own_rejects += own;
        if (!own) blocking.push_back(rule);
      }
      const bool reject_out = std::string(hook) == "output" && spec.action == Action::kReject;
      EXPECT_EQ(own_rejects, reject_out ? 2u : 0u) << hook;
      // Per family and direction: [log], drop on the set, drop on its hold set.
      EXPECT_EQ(blocking.size(), 2 * per_family * (spec.log ? 3 : 2)) << hook;
      for (size_t i = 0; i < blocking.size(); ++i) {
        const bool hold = blocking[i].find("_hold\"") != std::string::npos;
        EXPECT_EQ(hold, i % (spec.log ? 3 : 2) == (spec.log ? 2u : 1u)) << hook << " " << i;
      }
    }
    EXPECT_EQ(chains, spec.hooks.size());
  }

  static std::string SetText(const char* set = "blocklist_v4") {
    return ktest::Run(std::string("nft list set inet iocwall ") + set).out;
  }
};

TEST_F(NftBackendTest, BootstrapFromNothing) {
  NftBackend backend(TableSpec{});
  IntervalSet want = ktest::Set({"192.0.2.0/24", "198.51.100.7", "203.0.113.10-203.0.113.20"},
                                {"2001:db8::/32", "2001:db9::1"});
  ApplyResult r;
  ASSERT_TRUE(backend.Reconcile(want, &r).ok());
  EXPECT_TRUE(r.bootstrapped);
  EXPECT_FALSE(r.repaired);
  EXPECT_EQ(r.added, 5u);
  EXPECT_EQ(r.removed, 0u);
  EXPECT_GT(r.messages, 0u);
  ExpectKernelHolds(want);
  nlohmann::json t = NftTable();
  EXPECT_EQ(ktest::OracleCounters(t),
            (std::vector<std::string>{"forward_v4_daddr", "forward_v4_saddr", "forward_v6_daddr",
                                      "forward_v6_saddr", "input_v4_saddr", "input_v6_saddr",
                                      "output_v4_daddr", "output_v6_daddr"}));
  std::string rules = ktest::Run("nft list chain inet iocwall forward").out;
  EXPECT_NE(rules.find("ip saddr @blocklist_v4 counter name \"forward_v4_saddr\" drop"),
            std::string::npos)
      << rules;
  EXPECT_NE(rules.find("ip6 daddr @blocklist_v6 counter name \"forward_v6_daddr\" drop"),
            std::string::npos)
      << rules;
}

TEST_F(NftBackendTest, SecondApplyWithNoChangeSendsNothing) {
  NftBackend backend(TableSpec{});
  IntervalSet want = ktest::RandomBlocklist(2000, 7, 100);
  ApplyResult r;
  ASSERT_TRUE(backend.Reconcile(want, &r).ok());
  Result<uint32_t> gen = backend.Generation();
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ(*gen, r.generation);
  ApplyResult again;
  ASSERT_TRUE(backend.Reconcile(want, &again).ok());
  EXPECT_EQ(again.messages, 0u);
  EXPECT_FALSE(again.kernel_read) << "the generation did not move: no dump needed";
  EXPECT_EQ(*backend.Generation(), *gen) << "nothing was committed";

  // A fresh process (no copy of what was applied) reads the kernel, finds it right, sends
  // nothing either.
  NftBackend fresh(TableSpec{});
  ApplyResult third;
  ASSERT_TRUE(fresh.Reconcile(want, &third).ok());
  EXPECT_TRUE(third.kernel_read);
  EXPECT_EQ(third.messages, 0u) << third.repair_reason;
  EXPECT_FALSE(third.repaired) << third.repair_reason;
  EXPECT_EQ(*backend.Generation(), *gen);
}

// Applies `want` and checks the oracle; returns the result.
ApplyResult ApplyAndCheck(NftBackend* backend, const IntervalSet& want) {
  ApplyResult r;
  Status st = backend->Reconcile(want, &r);
  EXPECT_TRUE(st.ok()) << st.message();
  return r;
}

void ExpectSetIs(const IntervalSet& want, Family f) {
  nlohmann::json t = NftTable();
  ktest::OracleSet s =
      ktest::ReadOracleSet(t, f == Family::kV4 ? "blocklist_v4" : "blocklist_v6", f);
  EXPECT_EQ(Coverage(s.elements), Coverage(want.of(f).ranges));
}

TEST_F(NftBackendTest, TenThousandFromEmptyThenOnePercentChurn) {
  NftBackend backend(TableSpec{});
  IntervalSet want = ktest::RandomBlocklist(10'000, 1);
  ApplyResult r = ApplyAndCheck(&backend, want);
  EXPECT_EQ(r.added, want.size());
  EXPECT_GT(r.messages, 5u) << "10k ranges need several element messages";
  ExpectSetIs(want, Family::kV4);

  IntervalSet next = ktest::Churn(want, want.size() / 100, 2);
  ApplyResult c = ApplyAndCheck(&backend, next);
  EXPECT_FALSE(c.kernel_read);
  EXPECT_EQ(c.removed, want.size() / 100);
  EXPECT_EQ(c.added, want.size() / 100);
  EXPECT_LE(c.messages, 4u);
  ExpectSetIs(next, Family::kV4);
  // The kernel holds exactly the ranges (no merging): element count matches too.
  IntervalSet read;
  ASSERT_TRUE(backend.ReadElements(&read).ok());
  EXPECT_EQ(read.v4.ranges, next.v4.ranges);
}

TEST_F(NftBackendTest, SLOW_HundredThousandFromEmptyThenOnePercentChurn) {
  NftBackend backend(TableSpec{});
  IntervalSet want = ktest::RandomBlocklist(100'000, 3);
  ApplyResult r = ApplyAndCheck(&backend, want);
  EXPECT_EQ(r.added, want.size());
  IntervalSet read;
  ASSERT_TRUE(backend.ReadElements(&read).ok());
  EXPECT_EQ(read.v4.ranges, want.v4.ranges);
  ExpectSetIs(want, Family::kV4);

  IntervalSet next = ktest::Churn(want, want.size() / 100, 4);
  ApplyResult c = ApplyAndCheck(&backend, next);
  EXPECT_EQ(c.removed + c.added, 2 * (want.size() / 100));
  ASSERT_TRUE(backend.ReadElements(&read).ok());
  EXPECT_EQ(read.v4.ranges, next.v4.ranges);
}

TEST_F(NftBackendTest, Ipv6AndTopOfAddressSpace) {
  NftBackend backend(TableSpec{});
  // Ranges that end at the family's last address have no interval-end element.
  IntervalSet want = ktest::Set({"198.51.100.0/24", "255.255.255.0/24"},
                                {"2001:db8::/32", "2001:db9:1::5", "fff0::/12"});
  ApplyAndCheck(&backend, want);
  ExpectKernelHolds(want);
  IntervalSet read;
  ASSERT_TRUE(backend.ReadElements(&read).ok());
  EXPECT_EQ(read.v4.ranges, want.v4.ranges);
  EXPECT_EQ(read.v6.ranges, want.v6.ranges);
  IntervalSet v6 = ktest::RandomBlocklist(0, 5, 3000);
  ApplyAndCheck(&backend, v6);
  ExpectKernelHolds(v6);
  ASSERT_TRUE(backend.ReadElements(&read).ok());
  EXPECT_EQ(read.v6.ranges, v6.v6.ranges);
  EXPECT_TRUE(read.v4.ranges.empty());
}

TEST_F(NftBackendTest, OverlappingAndAdjacentInputAfterNormalise) {
  std::vector<TaggedPrefix> in;
  for (const char* p : {"10.0.0.0/24", "10.0.0.128/25", "10.0.1.0/24", "10.0.0.7", "10.0.3.0/24",
                        "10.0.2.0/24", "192.0.2.1", "192.0.2.2", "192.0.2.3"}) {
    in.push_back({*ParsePrefix(p), 0});
  }
  IntervalSet want = Normalise(in, Policy{}, nullptr);
  ASSERT_EQ(want.v4.ranges.size(), 2u);  // 10.0.0.0-10.0.3.255 and 192.0.2.1-192.0.2.3
  NftBackend backend(TableSpec{});
  ApplyAndCheck(&backend, want);
  ExpectKernelHolds(want);
  // Adjacent ranges are valid kernel input too (kept as separate elements).
  IntervalSet adjacent = ktest::Set({"10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/24"});
  ApplyAndCheck(&backend, adjacent);
  IntervalSet read;
  ASSERT_TRUE(backend.ReadElements(&read).ok());
  EXPECT_EQ(read.v4.ranges, adjacent.v4.ranges);
  // Overlapping ranges are refused before anything is sent.
  IntervalSet bad = ktest::Set({"10.0.0.0/24", "10.0.0.0/25"});
  ApplyResult r;
  Status st = backend.Reconcile(bad, &r);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not normalised"), std::string::npos) << st.message();
  EXPECT_EQ(r.messages, 0u);
}

TEST_F(NftBackendTest, AllowlistHoles) {
  IntervalSet block = ktest::Set({"203.0.113.0/24", "198.18.0.0/15"});
  IntervalSet allow = ktest::Set({"203.0.113.64/26", "198.19.0.1"});
  IntervalSet want = Subtract(block, allow);
  NftBackend backend(TableSpec{});
  ApplyAndCheck(&backend, want);
  ExpectKernelHolds(want);
  ktest::OracleSet s = ktest::ReadOracleSet(NftTable(), "blocklist_v4", Family::kV4);
  for (const Range& r : s.elements) {
    EXPECT_FALSE(r.first <= R("203.0.113.70").first && R("203.0.113.70").first <= r.last);
    EXPECT_FALSE(r.first <= R("198.19.0.1").first && R("198.19.0.1").first <= r.last);
  }
  EXPECT_EQ(Coverage(s.elements),
            Coverage({R("198.18.0.0-198.19.0.0"), R("198.19.0.2-198.19.255.255"),
                      R("203.0.113.0/26"), R("203.0.113.128/25")}));
}

// Drift: something changes our table by hand; the next cycle (same desired set) repairs it in
// one transaction and says what it found.
struct DriftCase {
  const char* name;
  const char* command;
  const char* reason;  // expected in repair_reason
};

class DriftTest : public NftBackendTest, public ::testing::WithParamInterface<DriftCase> {};

TEST_P(DriftTest, RepairedWithinTheNextCycle) {
  const DriftCase& c = GetParam();
  NftBackend backend(TableSpec{});
  IntervalSet want =
      ktest::Set({"192.0.2.0/24", "198.51.100.7", "203.0.113.10-203.0.113.20"}, {"2001:db8::/32"});
  ApplyAndCheck(&backend, want);
  ktest::CommandResult cmd = ktest::Run(c.command);
  ASSERT_EQ(cmd.status, 0) << c.command << ": " << cmd.out;
  ApplyResult r = ApplyAndCheck(&backend, want);
  EXPECT_TRUE(r.kernel_read);
  EXPECT_TRUE(r.repaired || r.bootstrapped) << c.name;
  EXPECT_NE(r.repair_reason.find(c.reason), std::string::npos) << r.repair_reason;
  ExpectKernelHolds(want);
  ApplyResult again = ApplyAndCheck(&backend, want);
  EXPECT_EQ(again.messages, 0u) << again.repair_reason;
  NftBackend fresh(TableSpec{});
  ApplyResult third = ApplyAndCheck(&fresh, want);
  EXPECT_EQ(third.messages, 0u) << third.repair_reason;
}

INSTANTIATE_TEST_SUITE_P(
    Drift, DriftTest,
    ::testing::Values(
        DriftCase{"ElementDeleted", "nft delete element inet iocwall blocklist_v4 { 198.51.100.7 }",
                  "set blocklist_v4 drifted: 1 range missing"},
        DriftCase{"ElementAdded", "nft add element inet iocwall blocklist_v4 { 10.9.9.9 }",
                  "1 unexpected"},
        DriftCase{"SetFlushed", "nft flush set inet iocwall blocklist_v6",
                  "set blocklist_v6 drifted"},
        DriftCase{"ChainDeleted", "nft delete chain inet iocwall forward",
                  "chain forward was missing"},
        DriftCase{"TableDeleted", "nft delete table inet iocwall",
                  "table inet iocwall was deleted"},
        DriftCase{"RuleDeleted", "nft flush chain inet iocwall input", "chain input had 0 rules"},
        DriftCase{"RuleInserted", "nft insert rule inet iocwall input ip saddr 192.0.2.1 accept",
                  "chain input had 5 rules"},
        DriftCase{"RuleReplaced",
                  "nft replace rule inet iocwall output handle $(nft -a list chain inet iocwall "
                  "output | awk '/daddr @blocklist_v4/ {print $NF; exit}') ip daddr "
                  "@blocklist_v4 counter name output_v4_daddr accept",
                  "chain output had 4 rules that differ"},
        // What an interrupted update leaves in a hold set would block the range for good.
        DriftCase{"HoldSetLeftover",
                  "nft add element inet iocwall blocklist_v4_hold '{ 10.0.0.0/8 }'",
                  "set blocklist_v4_hold held 1 range"},
        DriftCase{"HoldSetFlagsChanged",
                  "nft flush chain inet iocwall input && nft flush chain inet iocwall forward && "
                  "nft flush chain inet iocwall output && nft delete set inet iocwall "
                  "blocklist_v6_hold && nft add set inet iocwall blocklist_v6_hold "
                  "'{ type ipv6_addr; }'",
                  "set blocklist_v6_hold is not a usable hold set"},
        DriftCase{"PolicyChanged", "nft add chain inet iocwall input '{ policy drop; }'",
                  "policy other than accept"},
        DriftCase{"PriorityChanged",
                  "nft delete chain inet iocwall output && nft add chain inet iocwall output "
                  "'{ type filter hook output priority 10; }'",
                  "chain output had the wrong hook"},
        DriftCase{"TableDormant", "nft add table inet iocwall '{ flags dormant; }'", "was dormant"},
        DriftCase{"ExtraChain",
                  "nft add chain inet iocwall sneaky '{ type filter hook prerouting priority -300; "
                  "}'",
                  "chain sneaky is not configured"},
        DriftCase{"SetRecreatedWithoutInterval",
                  "nft flush chain inet iocwall input && nft flush chain inet iocwall forward && "
                  "nft flush chain inet iocwall output && nft delete set inet iocwall "
                  "blocklist_v4 && nft add set inet iocwall blocklist_v4 '{ type ipv4_addr; }'",
                  "set blocklist_v4 has flags other than interval"}),
    [](const ::testing::TestParamInfo<DriftCase>& info) { return info.param.name; });

TEST_F(NftBackendTest, ConcurrentChangeIsRefusedAndRetried) {
  int calls = 0;
  NftBackendOptions opts;
  opts.before_commit_for_test = [&] {
    // Someone else commits between our read and our commit, once.
    if (calls++ == 0) {
      EXPECT_EQ(ktest::Run("nft add table ip someone_else").status, 0);
    }
  };
  NftBackend backend(TableSpec{}, opts);
  IntervalSet want = ktest::Set({"192.0.2.0/24"});
  ApplyResult r = ApplyAndCheck(&backend, want);
  EXPECT_EQ(r.retries, 1);
  EXPECT_EQ(calls, 2);
  ExpectKernelHolds(want);
  EXPECT_EQ(ktest::Run("nft list table ip someone_else").status, 0) << "not ours: untouched";
  EXPECT_EQ(*backend.Generation(), r.generation);
}

TEST_F(NftBackendTest, GivesUpWhenTheRulesetKeepsChanging) {
  NftBackendOptions opts;
  int n = 0;
  opts.before_commit_for_test = [&] { ktest::Run("nft add table ip t" + std::to_string(n++)); };
  opts.max_attempts = 3;
  NftBackend backend(TableSpec{}, opts);
  ApplyResult r;
  Status st = backend.Reconcile(ktest::Set({"192.0.2.0/24"}), &r);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("generation id moved"), std::string::npos) << st.message();
  EXPECT_EQ(r.retries, 2);
  EXPECT_EQ(ktest::Run("nft list table inet iocwall").status, 1) << "nothing was applied";
}

TEST_F(NftBackendTest, RefusedBatchLeavesKernelAsItWasWithReadableError) {
  // Someone pre-created our set with a size limit: the right type, so it is used, but the
  // kernel refuses the 51st element. The bootstrap (chains, rules, counters) and all elements
  // were in the same batch: none of it may remain.
  ASSERT_EQ(ktest::Run(std::string("nft add table inet iocwall '{ comment \"") + kTableOwnerMark +
                       "\"; }' && nft add set inet iocwall blocklist_v4 "
                       "'{ type ipv4_addr; flags interval; size 50; }'")
                .status,
            0);
  const std::string before = ktest::NftRuleset();
  NftBackend backend(TableSpec{});
  IntervalSet want = ktest::RandomBlocklist(5000, 11);
  ApplyResult r;
  Status st = backend.Reconcile(want, &r);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("add element "), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("to set blocklist_v4"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("(kernel ENFILE)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("rolled back"), std::string::npos) << st.message();
  EXPECT_EQ(ktest::NftRuleset(), before);
}

TEST_F(NftBackendTest, BatchErrorNamesTheElement) {
  NftBackend backend(TableSpec{});
  ApplyAndCheck(&backend, ktest::Set({"192.0.2.0/24"}));
  const std::string before = ktest::NftRuleset();
  Result<nl::Socket> sock = nl::Socket::Open();
  ASSERT_TRUE(sock.ok());
  nl::Batch batch(&*sock, 0);
  IntervalSet adds = ktest::RandomBlocklist(8000, 12);
  batch.AddRanges(nl::ElementVerb::kAdd, NFPROTO_INET, "iocwall", "blocklist_v4", Family::kV4,
                  adds.v4.ranges);
  std::vector<Range> gone = {R("10.0.0.0/24")};
  batch.AddRanges(nl::ElementVerb::kDelete, NFPROTO_INET, "iocwall", "blocklist_v4", Family::kV4,
                  gone);
  EXPECT_GT(batch.messages(), 5u);
  Status st = batch.Commit();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ENOENT);
  EXPECT_NE(st.message().find("delete element 10.0.0.0/24 from set blocklist_v4: No such file or "
                              "directory (kernel ENOENT)"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(ktest::NftRuleset(), before) << "the 8000 additions were rolled back";
  // The batch was refused, so our copy is still right: nothing to send.
  ApplyResult r = ApplyAndCheck(&backend, ktest::Set({"192.0.2.0/24"}));
  EXPECT_EQ(r.messages, 0u);
}

TEST_F(NftBackendTest, StaleGenerationIsRefused) {
  NftBackend backend(TableSpec{});
  ApplyAndCheck(&backend, ktest::Set({"192.0.2.0/24"}));
  uint32_t gen = *backend.Generation();
  ASSERT_EQ(ktest::Run("nft add table ip other").status, 0);
  Result<nl::Socket> sock = nl::Socket::Open();
  ASSERT_TRUE(sock.ok());
  nl::Batch batch(&*sock, gen);
  std::vector<Range> add = {R("10.1.0.0/16")};
  batch.AddRanges(nl::ElementVerb::kAdd, NFPROTO_INET, "iocwall", "blocklist_v4", Family::kV4, add);
  Status st = batch.Commit();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ERESTART);
  EXPECT_NE(st.message().find("generation id moved"), std::string::npos) << st.message();
  ExpectSetIs(ktest::Set({"192.0.2.0/24"}), Family::kV4);
}

TEST_F(NftBackendTest, ConfigurableHooksPriorityRejectAndLog) {
  TableSpec spec;
  spec.table = "iocwall_alt";
  spec.hooks = {Hook::kInput, Hook::kOutput};
  spec.priority = -150;
  spec.action = Action::kReject;
  spec.log = true;
  NftBackend backend(spec);
  IntervalSet want = ktest::Set({"192.0.2.0/24"}, {"2001:db8::/48"});
  ApplyAndCheck(&backend, want);
  ExpectKernelHolds(want, spec);
  std::string input = ktest::Run("nft list chain inet iocwall_alt input").out;
  EXPECT_NE(input.find("reject with icmpx admin-prohibited"), std::string::npos) << input;
  EXPECT_NE(input.find("log prefix \"iocwall input_v4_saddr: \""), std::string::npos) << input;
  EXPECT_NE(input.find("limit rate 10/minute"), std::string::npos) << input;
  NftBackend fresh(spec);
  ApplyResult again = ApplyAndCheck(&fresh, want);
  EXPECT_EQ(again.messages, 0u) << again.repair_reason;
  // Dropping a hook from the configuration removes its chain.
  spec.hooks = {Hook::kInput};
  NftBackend narrower(spec);
  ApplyResult r = ApplyAndCheck(&narrower, want);
  EXPECT_NE(r.repair_reason.find("chain output is not configured"), std::string::npos);
  EXPECT_FALSE(ktest::ReadOracleChain(NftTable("iocwall_alt"), "output").present);
}

TEST_F(NftBackendTest, StatusCountersTopHitsAndFlush) {
  ASSERT_EQ(ktest::Run("ip link set lo up").status, 0);
  ASSERT_EQ(ktest::Run("nft add table ip bystander").status, 0);
  TableSpec spec;
  spec.element_counters = true;
  NftBackend backend(spec);
  IntervalSet want = ktest::Set({"127.0.0.2", "127.0.0.3", "198.51.100.0/24"});
  ApplyAndCheck(&backend, want);
  // Three packets to 127.0.0.2, one to 127.0.0.3: dropped on output.
  ktest::Run("ping -c 3 -i 0.01 -W 0.1 127.0.0.2; ping -c 1 -W 0.1 127.0.0.3");
  KernelStatus status;
  ASSERT_TRUE(backend.ReadStatus(&status).ok());
  EXPECT_TRUE(status.table_present);
  EXPECT_TRUE(status.sets_present);
  EXPECT_TRUE(status.chains_present);
  EXPECT_TRUE(status.elements_counted);
  EXPECT_EQ(status.v4_elements, 3u);
  EXPECT_EQ(status.counters.size(), 8u);
  uint64_t out_v4 = 0;
  for (const ChainCounter& c : status.counters) {
    if (c.name == "output_v4_daddr") out_v4 = c.packets;
  }
  EXPECT_EQ(out_v4, 4u);
  std::vector<ElementHits> hits;
  ASSERT_TRUE(backend.ReadTopHits(10, &hits).ok());
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].range, R("127.0.0.2"));
  EXPECT_EQ(hits[0].packets, 3u);
  EXPECT_EQ(hits[1].packets, 1u);

  ASSERT_TRUE(backend.Flush().ok());
  EXPECT_EQ(ktest::Run("nft list table inet iocwall").status, 1);
  EXPECT_EQ(ktest::Run("nft list table ip bystander").status, 0) << "not ours: untouched";
  ASSERT_TRUE(backend.Flush().ok()) << "already absent is fine";
  ASSERT_TRUE(backend.ReadStatus(&status).ok());
  EXPECT_FALSE(status.table_present);
}

// An administrator's table of the configured name (Debian's `table inet filter`, input policy
// drop): iocwall must neither adopt it nor delete it, whatever the mode.
TEST_F(NftBackendTest, ATableIocwallDidNotCreateIsNeverChanged) {
  ASSERT_EQ(ktest::Run("nft add table inet filter && nft add chain inet filter input "
                       "'{ type filter hook input priority 0; policy drop; }' && "
                       "nft add rule inet filter input tcp dport 22 accept")
                .status,
            0);
  const std::string before = ktest::NftRuleset();
  TableSpec spec;
  spec.table = "filter";
  NftBackend backend(spec);
  ApplyResult r;
  Status st = backend.Reconcile(ktest::Set({"192.0.2.0/24"}), &r);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("was not created by iocwall"), std::string::npos) << st.message();
  EXPECT_EQ(ktest::NftRuleset(), before) << "reconcile changed an administrator's table";
  bool removed = true;
  st = backend.RemoveTable("filter", &removed);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(removed);
  EXPECT_EQ(ktest::NftRuleset(), before) << "flush deleted an administrator's table";
  KernelStatus k;
  ASSERT_TRUE(backend.ReadStatus(&k).ok());
  EXPECT_TRUE(k.table_present);
  EXPECT_FALSE(k.table_owned);
  EXPECT_FALSE(k.Enforcing());

  // Control: a table iocwall created is recognised as its own and repaired and removed.
  NftBackend mine(TableSpec{});
  ASSERT_TRUE(mine.Reconcile(ktest::Set({"192.0.2.0/24"}), &r).ok());
  EXPECT_NE(ktest::Run("nft list table inet iocwall").out.find(kTableOwnerMark), std::string::npos)
      << "the mark is visible to an operator as the table's comment";
  ASSERT_TRUE(ktest::Run("nft flush chain inet iocwall input").status == 0);
  ASSERT_TRUE(mine.Reconcile(ktest::Set({"192.0.2.0/24"}), &r).ok());
  EXPECT_TRUE(r.repaired);
  ASSERT_TRUE(mine.RemoveTable("iocwall", &removed).ok());
  EXPECT_TRUE(removed);
  ASSERT_TRUE(mine.RemoveTable("iocwall", &removed).ok());
  EXPECT_FALSE(removed) << "absent: nothing removed, and no error";
  EXPECT_EQ(ktest::NftRuleset(), before) << "the administrator's table is still intact";
}

// A table named iocwall made by hand without the mark is not iocwall's either.
TEST_F(NftBackendTest, AnUnmarkedTableOfIocwallsNameIsRefused) {
  ASSERT_EQ(ktest::Run("nft add table inet iocwall").status, 0);
  NftBackend backend(TableSpec{});
  ApplyResult r;
  Status st = backend.Reconcile(ktest::Set({"192.0.2.0/24"}), &r);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nft delete table inet iocwall"), std::string::npos)
      << "says what to do: " << st.message();
  EXPECT_EQ(ktest::Run("nft list table inet iocwall").out.find("blocklist_v4"), std::string::npos);
}

// Lookups without a dump: what --status and --explain use at any set size.
TEST_F(NftBackendTest, LookupFindsTheCoveringElementWithoutADump) {
  NftBackend backend(TableSpec{});
  ApplyResult r;
  ASSERT_TRUE(
      backend
          .Reconcile(ktest::Set({"192.0.2.0/24", "198.51.100.7", "203.0.113.10-203.0.113.20"},
                                {"2001:db8::/32"}),
                     &r)
          .ok());
  auto a = [](const char* s) { return ParsePrefix(s)->addr; };
  std::vector<u128> v4 = {a("192.0.2.0"),    a("192.0.2.77"),   a("192.0.2.255"),
                          a("192.0.3.0"),    a("198.51.100.7"), a("198.51.100.8"),
                          a("203.0.113.15"), a("203.0.113.21"), a("10.0.0.1")};
  std::vector<std::optional<u128>> got;
  ASSERT_TRUE(backend.Lookup(Family::kV4, v4, &got).ok());
  ASSERT_EQ(got.size(), v4.size());
  EXPECT_EQ(got[0], a("192.0.2.0"));
  EXPECT_EQ(got[1], a("192.0.2.0"));
  EXPECT_EQ(got[2], a("192.0.2.0"));
  EXPECT_EQ(got[3], std::nullopt) << "just past the end";
  EXPECT_EQ(got[4], a("198.51.100.7"));
  EXPECT_EQ(got[5], std::nullopt);
  EXPECT_EQ(got[6], a("203.0.113.10"));
  EXPECT_EQ(got[7], std::nullopt);
  EXPECT_EQ(got[8], std::nullopt);
  std::vector<u128> v6 = {a("2001:db8:ffff::1"), a("2001:db9::")};
  ASSERT_TRUE(backend.Lookup(Family::kV6, v6, &got).ok());
  EXPECT_EQ(got[0], a("2001:db8::"));
  EXPECT_EQ(got[1], std::nullopt);
  ASSERT_EQ(ktest::Run("nft flush set inet iocwall blocklist_v4").status, 0);
  ASSERT_TRUE(backend.Lookup(Family::kV4, v4, &got).ok());
  for (const auto& g : got) EXPECT_EQ(g, std::nullopt) << "a flushed set holds nothing";
}

TEST_F(NftBackendTest, StatusSeesADormantTableAndTheNextReconcileWakesIt) {
  NftBackend backend(TableSpec{});
  ApplyResult r;
  ASSERT_TRUE(backend.Reconcile(ktest::Set({"192.0.2.0/24"}), &r).ok());
  KernelStatus k;
  ASSERT_TRUE(backend.ReadStatus(&k).ok());
  EXPECT_TRUE(k.Enforcing());
  EXPECT_TRUE(k.table_owned);
  EXPECT_NE(k.table_handle, 0u);
  EXPECT_FALSE(k.boot_id.empty());
  EXPECT_NE(k.netns, 0u);
  ASSERT_EQ(ktest::Run("nft add table inet iocwall '{ flags dormant; }'").status, 0);
  ASSERT_TRUE(backend.ReadStatus(&k).ok());
  EXPECT_TRUE(k.table_dormant);
  EXPECT_FALSE(k.Enforcing());
  ASSERT_TRUE(backend.Reconcile(ktest::Set({"192.0.2.0/24"}), &r).ok());
  EXPECT_TRUE(r.repaired);
  ASSERT_TRUE(backend.ReadStatus(&k).ok());
  EXPECT_TRUE(k.Enforcing());
  EXPECT_EQ(ktest::Run("nft list table inet iocwall").out.find("dormant"), std::string::npos);
}

// A copy of the commit handed to the next process (a restart, a --once from cron): no dump
// while the kernel still holds it, a dump and a repair as soon as it does not.
TEST_F(NftBackendTest, ACopyOfTheCommitSparesTheNextProcessADump) {
  IntervalSet want = ktest::RandomBlocklist(5000, 21);
  NftBackendOptions cheap;
  cheap.always_read_below = 1000;  // production: 100,000 (a dump below that is cheap)
  AppliedCopy copy;
  {
    NftBackend first(TableSpec{}, cheap);
    ApplyResult r;
    ASSERT_TRUE(first.Reconcile(want, &r).ok());
    ASSERT_NE(first.Applied(), nullptr);
    copy = *first.Applied();
    EXPECT_NE(copy.table_handle, 0u);
    EXPECT_GT(copy.full_read_at, 0);
  }
  {
    NftBackend next(TableSpec{}, cheap);
    next.Seed(copy);
    ApplyResult r;
    ASSERT_TRUE(next.Reconcile(want, &r).ok());
    EXPECT_FALSE(r.kernel_read) << "same generation: the copy is trusted";
    EXPECT_EQ(r.messages, 0u);
  }
  // Another table changes the generation: structure + lookups, still no dump.
  ASSERT_EQ(ktest::Run("nft add table inet bystander").status, 0);
  {
    NftBackend next(TableSpec{}, cheap);
    next.Seed(copy);
    ApplyResult r;
    ASSERT_TRUE(next.Reconcile(want, &r).ok());
    EXPECT_FALSE(r.kernel_read);
    EXPECT_TRUE(r.kernel_verified);
    EXPECT_EQ(r.messages, 0u);
    copy = *next.Applied();
  }
  // A hand flush: the lookups fail, the kernel is read and repaired.
  ASSERT_EQ(ktest::Run("nft flush set inet iocwall blocklist_v4").status, 0);
  {
    NftBackend next(TableSpec{}, cheap);
    next.Seed(copy);
    ApplyResult r;
    ASSERT_TRUE(next.Reconcile(want, &r).ok());
    EXPECT_TRUE(r.kernel_read);
    EXPECT_TRUE(r.repaired);
    ExpectKernelHolds(want);
    copy = *next.Applied();
  }
  // A copy made under another layout, or too long since the sets were read whole: not used.
  TableSpec other;
  other.hooks = {Hook::kInput};
  {
    NftBackend next(other, cheap);
    next.Seed(copy);
    ApplyResult r;
    ASSERT_TRUE(next.Reconcile(want, &r).ok());
    EXPECT_TRUE(r.kernel_read);
    copy = *next.Applied();
  }
  ASSERT_EQ(ktest::Run("nft add table inet bystander2").status, 0);
  copy.full_read_at -= 7200;
  {
    NftBackend next(other, cheap);
    next.Seed(copy);
    ApplyResult r;
    ASSERT_TRUE(next.Reconcile(want, &r).ok());
    EXPECT_TRUE(r.kernel_read) << "the sets were last read whole two hours ago";
  }
}

}  // namespace
}  // namespace iocwall
