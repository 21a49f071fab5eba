// The planner: from what the kernel holds (a KernelView, or the copy of our last commit) and
// what is wanted, the ordered operations of one transaction with the reasons for them (drift
// repaired, objects recreated). Pure: no I/O, no clock (the caller passes `now_ms`); tested
// without root (tests/unit/plan_test.cc), the operations printed as golden text.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "core/interval_set.h"
#include "netlink/kernel_view.h"
#include "netlink/ruleset.h"
#include "netlink/set_backend.h"

namespace iocwall::nl {

// How a configured chain in the kernel differs from the wanted one.
enum class ChainState { kOk, kMissing, kRecreate, kPolicy, kRules };
// `*why` says what differs when the state is not kOk.
ChainState Assess(const TableSpec& spec, const ChainWant& want, const KernelView& view,
                  std::string* why);
// Every configured chain as wanted (hook, priority, type, policy, rules), no other chain, and
// every counter the rules name.
bool ChainsIntact(const TableSpec& spec, const std::vector<ChainWant>& chains,
                  const KernelView& view);

enum class OpKind : uint8_t {
  kCreateTable,     // NEWTABLE, exclusive: a table of that name that appeared is not ours
  kWakeTable,       // NEWTABLE over a dormant table: only its flags change
  kFlushChain,      // DELRULE of every rule of a chain
  kDeleteChain,     //
  kDeleteHoldSet,   // a hold set that is not usable
  kCreateHoldSet,   // NLM_F_CREATE: a no-op when present
  kDeleteSet,       // `name`: a main set that is not usable, or a staged swap set
  kCreateSet,       // the main set of `family`
  kDeleteElements,  // single kernel elements (malformed leftovers)
  kDeleteRanges,    //
  kAddRanges,       // with `timeouts` in a set with timeouts
  kCreateCounter,   //
  kCreateChain,     // also sets the policy of a chain that exists (kSetChainPolicy)
  kSetChainPolicy,  //
  kAddRule,         // rule `rule` of chain `chain`
};

struct PlannedOp {
  OpKind kind = OpKind::kCreateTable;
  std::string name;  // the table, chain, set or counter
  Family family = Family::kV4;
  size_t chain = 0;  // index in ReconcilePlan::chains
  size_t rule = 0;   // index in that chain's rules
  std::span<const Range> ranges;
  std::span<const uint64_t> timeouts;  // ms, parallel to ranges (empty: none)
  std::span<const RawElement> raw;
  // Element additions: they go to a second transaction under split_transaction_for_test.
  bool additions = false;
};

struct PlanInput {
  // The generation did not move since our last commit (or the copy was verified): the view is
  // the copy, and the structure is not judged.
  bool trusted = false;
  const AppliedCopy* applied = nullptr;              // the copy of our last commit, to name drift
  const FamilyRanges* want[2] = {nullptr, nullptr};  // v4, v6: what the sets are to hold
  bool staged[2] = {false, false};  // the set was recreated by staging transactions
  int64_t now_ms = 0;               // for timeouts, and expiries near now
  bool timeouts = false;
};

struct ReconcilePlan {
  std::vector<ChainWant> chains;
  std::vector<PlannedOp> ops;  // in order
  std::vector<std::string> reasons;
  bool bootstrapped = false;  // table, sets or chains (re)created
  size_t added = 0;
  size_t removed = 0;
  size_t refreshed = 0;
  // The hold bridge's inputs (hold_bridge.h), per family.
  struct Bridge {
    bool usable = false;
    std::vector<Range> before;
    std::vector<RawElement> stray;
    bool planned = false;
    std::span<const Range> current;
    std::span<const Range> add;
  } bridge[2];
  // What the spans of `ops` point into, besides the wanted sets and the view.
  std::deque<std::vector<Range>> ranges;
  std::deque<std::vector<uint64_t>> timeouts;

  std::string RepairReason() const;  // the reasons, joined
};

ReconcilePlan PlanReconcile(const TableSpec& spec, const KernelView& view, const PlanInput& in);

// The families whose main set must be recreated by staging (StageRecreatedSets in
// nft_backend.h): none when there is no working blocking to keep.
std::vector<Family> PlanStaging(const TableSpec& spec, const std::vector<ChainWant>& chains,
                                const KernelView& view);

// Kernel timeouts (ms; 0 = none) for ranges expiring at `expires`, seen from `now_ms`.
std::vector<uint64_t> TimeoutsMs(std::span<const int64_t> expires, int64_t now_ms);
// What the kernel is to hold of `desired` at `now_ms`, with an expiry for every range: ranges
// whose expiry has passed are left out (and counted), far-future ones become permanent.
FamilyRanges TimedWant(const FamilyRanges& desired, int64_t now_ms, size_t* already_expired);
// How the kernel's ranges differ from what we committed ("" when they do not).
std::string Drift(const FamilyRanges& mine, const FamilyRanges& kernel, int64_t settled);

// One line per operation ("delete set blocklist_v4_swap", "add 3 ranges to blocklist_v4"),
// for golden tests and debugging.
std::string DescribeOp(const ReconcilePlan& plan, const PlannedOp& op);

// A kernel timeout read back from a dump is rounded to whole seconds: expiries this close are
// the same, so that an unchanged desired set sends nothing.
inline constexpr int64_t kExpiryToleranceSeconds = 1;
// How long after its expiry a range is surely gone from the kernel (rounding, timer ticks).
// Closer to its expiry, it is treated as possibly still there: never re-added without being
// deleted first (on Linux 6.1 an add over a live element is a no-op that keeps the old
// timeout); if the delete finds it gone, the transaction is retried against a fresh dump.
inline constexpr int64_t kSurelyGoneSeconds = 2;

}  // namespace iocwall::nl
