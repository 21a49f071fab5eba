// The planner without a kernel: views built by hand, the planned operations and reasons
// compared with golden text.
#include "netlink/plan.h"

#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <string>
#include <vector>

#include "core/prefix.h"
#include "tests/netlink/golden.h"

namespace iocwall::nl {
namespace {

IntervalSet Set(const std::vector<std::string>& cidrs) {
  std::vector<Prefix> p;
  for (const std::string& c : cidrs) p.push_back(*ParsePrefix(c));
  return FromPrefixes(p);
}

// The view of a table that holds exactly what `spec` wants, with `held` in its sets.
KernelView Intact(const TableSpec& spec, const IntervalSet& held) {
  KernelView v;
  v.table = v.table_owned = true;
  v.table_handle = 7;
  for (Family f : {Family::kV4, Family::kV6}) {
    v.set(f).present = v.set(f).usable = true;
    v.set(f).dumped = held.of(f);
    v.hold(f).present = v.hold(f).usable = true;
  }
  for (const ChainWant& c : WantedChains(spec)) {
    ChainView& cv = v.chains[c.name];
    cv.base = true;
    cv.hooknum = c.hooknum;
    cv.prio = spec.priority;
    cv.type = "filter";
    cv.policy = NF_ACCEPT;
    cv.rules = c.fingerprints;
    for (const std::string& counter : c.counters) v.counters[counter] = {};
  }
  return v;
}

PlanInput Wanting(const IntervalSet& want) {
  PlanInput in;
  in.want[0] = &want.v4;
  in.want[1] = &want.v6;
  return in;
}

// The plan as text: its operations (rules by their chain and counter), then its reasons and
// counts.
std::string Text(const ReconcilePlan& p) {
  std::string out;
  for (const PlannedOp& op : p.ops) {
    if (op.kind == OpKind::kAddRule) {
      const RuleWant& w = p.chains[op.chain].rules[op.rule];
      out += "add rule to chain " + op.name + " (" + w.counter + (w.log ? ", log" : "") +
             (w.set.empty() ? "" : ", " + w.set) + ")\n";
    } else {
      out += DescribeOp(p, op) + "\n";
    }
  }
  for (const std::string& r : p.reasons) out += "reason: " + r + "\n";
  out += "added " + std::to_string(p.added) + ", removed " + std::to_string(p.removed) +
         ", refreshed " + std::to_string(p.refreshed) + (p.bootstrapped ? ", bootstrapped" : "") +
         "\n";
  return out;
}

TEST(PlanTest, EmptyKernelCreatesEverythingInOneTransaction) {
  TableSpec spec;
  IntervalSet want = Set({"192.0.2.0/24", "198.51.100.7/32", "2001:db8::/32"});
  ReconcilePlan p = PlanReconcile(spec, KernelView{}, Wanting(want));
  EXPECT_TRUE(p.bootstrapped);
  EXPECT_TRUE(p.reasons.empty()) << "a first start repairs nothing";
  golden::ExpectGolden("plan_empty_kernel.txt", Text(p));
}

TEST(PlanTest, TrustedCopySendsOnlyTheDiff) {
  TableSpec spec;
  IntervalSet held = Set({"192.0.2.0/24", "203.0.113.0/24"});
  IntervalSet want = Set({"192.0.2.0/24", "198.51.100.0/24"});
  PlanInput in = Wanting(want);
  in.trusted = true;
  ReconcilePlan p = PlanReconcile(spec, Intact(spec, held), in);
  ASSERT_EQ(p.ops.size(), 2u);
  EXPECT_EQ(DescribeOp(p, p.ops[0]), "delete 1 range from set blocklist_v4: 203.0.113.0/24");
  EXPECT_EQ(DescribeOp(p, p.ops[1]),
            "add 1 range to set blocklist_v4: 198.51.100.0/24 [additions]");
  EXPECT_EQ(p.added, 1u);
  EXPECT_EQ(p.removed, 1u);
  EXPECT_FALSE(p.bootstrapped);
}

TEST(PlanTest, UnchangedIntactTableSendsNothing) {
  TableSpec spec;
  IntervalSet want = Set({"192.0.2.0/24", "2001:db8::/48"});
  for (bool trusted : {true, false}) {
    PlanInput in = Wanting(want);
    in.trusted = trusted;
    ReconcilePlan p = PlanReconcile(spec, Intact(spec, want), in);
    EXPECT_TRUE(p.ops.empty()) << Text(p);
    EXPECT_TRUE(p.reasons.empty()) << Text(p);
  }
}

TEST(PlanTest, DriftIsNamedAndRepairedInTheSameTransaction) {
  TableSpec spec;
  IntervalSet want = Set({"192.0.2.0/24", "198.51.100.0/24"});
  KernelView v = Intact(spec, Set({"192.0.2.0/24", "10.9.9.9/32"}));
  v.table_flags = NFT_TABLE_F_DORMANT;
  v.chains["input"].policy = NF_DROP;
  v.chains["forward"].rules.pop_back();
  v.chains["sneaky"].base = true;
  v.counters.erase("output_v6_daddr");
  v.set(Family::kV6).malformed = {{0x20010db8ull, true}};
  AppliedCopy applied;
  applied.v4 = Set({"192.0.2.0/24", "198.51.100.0/24"}).v4;
  PlanInput in = Wanting(want);
  in.applied = &applied;
  ReconcilePlan p = PlanReconcile(spec, v, in);
  golden::ExpectGolden("plan_drift.txt", Text(p));
}

TEST(PlanTest, AnUnusableSetIsRecreatedWithTheRulesThatUseIt) {
  TableSpec spec;
  IntervalSet want = Set({"192.0.2.0/24"});
  KernelView v = Intact(spec, want);
  v.set(Family::kV4).usable = false;
  v.set(Family::kV4).mismatch = "has per-element timeouts";
  ReconcilePlan p = PlanReconcile(spec, v, Wanting(want));
  golden::ExpectGolden("plan_recreate_set.txt", Text(p));
  // With working rules to keep, the set is staged first (nft_backend.h).
  EXPECT_EQ(PlanStaging(spec, p.chains, v), std::vector<Family>{Family::kV4});
  // Staged: the main transaction only moves the rules back and drops the swap set.
  PlanInput in = Wanting(want);
  in.staged[0] = true;
  ReconcilePlan staged = PlanReconcile(spec, v, in);
  golden::ExpectGolden("plan_recreate_set_staged.txt", Text(staged));
}

TEST(PlanTest, NoStagingWithoutWorkingBlockingToKeep) {
  TableSpec spec;
  KernelView v = Intact(spec, {});
  v.set(Family::kV6).usable = false;
  const std::vector<ChainWant> chains = WantedChains(spec);
  EXPECT_EQ(PlanStaging(spec, chains, v), std::vector<Family>{Family::kV6});
  KernelView dormant = v;
  dormant.table_flags = NFT_TABLE_F_DORMANT;
  EXPECT_TRUE(PlanStaging(spec, chains, dormant).empty());
  KernelView no_chain = v;
  no_chain.chains.erase("output");
  EXPECT_TRUE(PlanStaging(spec, chains, no_chain).empty());
  KernelView no_counter = v;
  no_counter.counters.erase("input_v4_saddr");
  EXPECT_TRUE(PlanStaging(spec, chains, no_counter).empty());
  KernelView leftover = v;
  leftover.swap_present[1] = true;
  EXPECT_TRUE(PlanStaging(spec, chains, leftover).empty());
}

TEST(PlanTest, TimeoutsBecomeRelativeAndExpiredRangesAreLeftOut) {
  TableSpec spec;
  spec.timeouts = true;
  const int64_t now_ms = 1'700'000'000'000;
  FamilyRanges desired = Set({"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}).v4;
  desired.expires = {1'700'000'100, 1'699'999'000, 4'000'000'000};  // ok, past, >10 years
  size_t expired = 0;
  FamilyRanges timed = TimedWant(desired, now_ms, &expired);
  EXPECT_EQ(expired, 1u);
  ASSERT_EQ(timed.ranges.size(), 2u);
  EXPECT_EQ(timed.expires[1], 0) << "an expiry beyond ten years is permanent";
  FamilyRanges v6;
  PlanInput in;
  in.want[0] = &timed;
  in.want[1] = &v6;
  in.timeouts = true;
  in.now_ms = now_ms;
  ReconcilePlan p = PlanReconcile(spec, Intact(spec, {}), in);
  golden::ExpectGolden("plan_timeouts.txt", Text(p));
}

TEST(PlanTest, DriftCountsMissingUnexpectedAndOtherExpiries) {
  FamilyRanges mine = Set({"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}).v4;
  FamilyRanges kernel = Set({"192.0.2.0/24", "10.0.0.0/8"}).v4;
  EXPECT_EQ(Drift(mine, kernel, 0), "2 ranges missing, 1 unexpected");
  EXPECT_EQ(Drift(mine, mine, 0), "");
  mine.expires = {100, 0, 0};
  FamilyRanges kernel_timed = Set({"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}).v4;
  kernel_timed.expires = {100, 500, 0};
  EXPECT_EQ(Drift(mine, kernel_timed, 0), "0 ranges missing, 0 unexpected, 1 with another expiry");
}

}  // namespace
}  // namespace iocwall::nl
