// NftBackend against the real kernel, each test in a network namespace of its own, with
// `nft -j list` as the independent oracle.
#include "netlink/nft_backend.h"

#include <gtest/gtest.h>

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
      EXPECT_EQ(c.rules.size(), 2 * per_family * (spec.log ? 2 : 1)) << hook;
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

}  // namespace
}  // namespace iocwall
