#include "netlink/plan.h"

#include <linux/netfilter.h>

#include <algorithm>
#include <set>

#include "core/diff.h"
#include "core/text.h"
#include "core/timed.h"
#include "netlink/hold_bridge.h"

namespace iocwall::nl {

namespace {

// Expiries further ahead than this are added without a timeout (permanent): the kernel refuses
// a timeout past ~584 years (ERANGE), feeds use far-future dates for "never", and a ten-year
// indicator is permanent for any practical purpose.
constexpr int64_t kMaxTimeoutMs = int64_t{10} * 366 * 24 * 3600 * 1000;

// Appends operations to a plan, keeping what their spans point into.
class Planner {
 public:
  explicit Planner(ReconcilePlan* p) : p_(p) {}
  PlannedOp& Add(OpKind kind, std::string name = "") {
    PlannedOp op;
    op.kind = kind;
    op.name = std::move(name);
    p_->ops.push_back(std::move(op));
    return p_->ops.back();
  }
  void Ranges(OpKind kind, const std::string& set, Family f, std::span<const Range> ranges,
              std::vector<uint64_t> timeouts = {}) {
    if (ranges.empty()) return;
    PlannedOp& op = Add(kind, set);
    op.family = f;
    op.ranges = ranges;
    op.additions = kind == OpKind::kAddRanges;
    if (!timeouts.empty()) op.timeouts = p_->timeouts.emplace_back(std::move(timeouts));
  }
  std::span<const Range> Keep(std::vector<Range> v) {
    return p_->ranges.emplace_back(std::move(v));
  }

 private:
  ReconcilePlan* p_;
};

}  // namespace

FamilyRanges TimedWant(const FamilyRanges& desired, int64_t now_ms, size_t* already_expired) {
  FamilyRanges want;
  want.ranges.reserve(desired.ranges.size());
  want.expires.reserve(desired.ranges.size());
  for (size_t i = 0; i < desired.ranges.size(); ++i) {
    int64_t e = i < desired.expires.size() ? desired.expires[i] : kNeverExpires;
    if (e != kNeverExpires && e * 1000 <= now_ms) {
      ++*already_expired;
      continue;
    }
    if (e != kNeverExpires && e * 1000 - now_ms > kMaxTimeoutMs) e = kNeverExpires;
    want.ranges.push_back(desired.ranges[i]);
    want.expires.push_back(e);
  }
  return want;
}

std::vector<uint64_t> TimeoutsMs(std::span<const int64_t> expires, int64_t now_ms) {
  std::vector<uint64_t> out(expires.size());
  for (size_t i = 0; i < expires.size(); ++i) {
    // At least 1 ms: a zero timeout would mean "permanent".
    if (expires[i] != kNeverExpires) out[i] = std::max<int64_t>(1, expires[i] * 1000 - now_ms);
  }
  return out;
}

std::string Drift(const FamilyRanges& mine, const FamilyRanges& kernel, int64_t settled) {
  TimedRangeDiff d = DiffTimedRanges(mine, kernel, kExpiryToleranceSeconds);
  auto expiring = [&](const FamilyRanges& side, const Range& r) {
    const long i = side.expires.empty() ? -1 : Find(side, r.first);
    return i >= 0 && HasExpired(side.expires[i], settled);
  };
  size_t missing = 0, unexpected = 0, other_expiry = 0;
  for (const Range& r : d.remove) {
    const bool refresh = std::binary_search(d.add.begin(), d.add.end(), r);
    if (expiring(mine, r) || (refresh && expiring(kernel, r))) continue;
    ++(refresh ? other_expiry : missing);
  }
  for (const Range& r : d.add) {
    if (!std::binary_search(d.remove.begin(), d.remove.end(), r) && !expiring(kernel, r)) {
      ++unexpected;
    }
  }
  if (missing + unexpected + other_expiry == 0) return "";
  return Count(missing, "range", "ranges") + " missing, " + std::to_string(unexpected) +
         " unexpected" +
         (other_expiry ? ", " + std::to_string(other_expiry) + " with another expiry" : "");
}

ChainState Assess(const TableSpec& spec, const ChainWant& want, const KernelView& view,
                  std::string* why) {
  auto it = view.chains.find(want.name);
  if (it == view.chains.end()) {
    *why = "chain " + want.name + " was missing";
    return ChainState::kMissing;
  }
  const ChainView& c = it->second;
  if (!c.base || c.hooknum != want.hooknum || c.prio != spec.priority || c.type != "filter") {
    *why = "chain " + want.name + " had the wrong hook, priority or type";
    return ChainState::kRecreate;
  }
  if (c.rules != want.fingerprints) {
    *why = "chain " + want.name + " had " + Count(c.rules.size(), "rule", "rules") +
           " that differ from the " + std::to_string(want.fingerprints.size()) + " wanted";
    return ChainState::kRules;
  }
  if (c.policy != NF_ACCEPT) {
    *why = "chain " + want.name + " had a policy other than accept";
    return ChainState::kPolicy;
  }
  return ChainState::kOk;
}

bool ChainsIntact(const TableSpec& spec, const std::vector<ChainWant>& chains,
                  const KernelView& view) {
  if (view.chains.size() != chains.size()) return false;  // one added (or one missing)
  for (const ChainWant& c : chains) {
    std::string why;
    if (Assess(spec, c, view, &why) != ChainState::kOk) return false;
    for (const std::string& counter : c.counters) {
      if (!view.counters.count(counter)) return false;
    }
  }
  return true;
}

std::vector<Family> PlanStaging(const TableSpec& spec, const std::vector<ChainWant>& chains,
                                const KernelView& view) {
  std::vector<Family> families;
  for (Family f : {Family::kV4, Family::kV6}) {
    if (view.set(f).present && !view.set(f).usable) families.push_back(f);
  }
  // Staging keeps working rules working. Without a table, an awake table, every chain hooked
  // as configured and every counter its rules name, there is no blocking to keep (or the
  // rules could not be re-pointed): the main transaction rebuilds everything at once.
  if (families.empty() || !view.table || view.dormant() || view.swap_present[0] ||
      view.swap_present[1] || !view.hold(Family::kV4).usable || !view.hold(Family::kV6).usable) {
    return {};
  }
  for (const ChainWant& c : chains) {
    std::string why;
    ChainState state = Assess(spec, c, view, &why);
    if (state == ChainState::kMissing || state == ChainState::kRecreate) return {};
    for (const std::string& counter : c.counters) {
      if (!view.counters.count(counter)) return {};
    }
  }
  return families;
}

namespace {

// The table: created when absent, woken when dormant.
void PlanTable(const TableSpec& spec, const KernelView& view, const PlanInput& in, Planner* pl,
               ReconcilePlan* p) {
  if (!view.table) {
    p->bootstrapped = true;
    if (in.applied) p->reasons.push_back("table inet " + spec.table + " was deleted");
    pl->Add(OpKind::kCreateTable, spec.table);
  } else if (view.dormant()) {
    p->reasons.push_back("table inet " + spec.table + " was dormant (it blocked nothing)");
    pl->Add(OpKind::kWakeTable, spec.table);
  }
}

// Whether a set is recreated (with the rules that use it); names what is wrong with the sets.
bool JudgeSets(const TableSpec& spec, const KernelView& view, const PlanInput& in,
               ReconcilePlan* p) {
  bool recreate_any = false;
  for (Family f : {Family::kV4, Family::kV6}) {
    const SetView& sv = view.set(f);
    const std::string& name = SetName(spec, f);
    if (sv.present && (!sv.usable || in.staged[FamilyIndex(f)])) {
      recreate_any = true;
      p->reasons.push_back("set " + name + " " + sv.mismatch);
    } else if (!sv.present && view.table) {
      p->reasons.push_back("set " + name + " was missing");
    }
    const SetView& hv = view.hold(f);
    ReconcilePlan::Bridge& b = p->bridge[FamilyIndex(f)];
    b.usable = hv.usable;
    b.before = hv.dumped.ranges;
    b.stray = hv.malformed;
    if (hv.present && !hv.usable) {
      recreate_any = true;  // with the rules that use it
      p->reasons.push_back("set " + HoldSetName(name) + " " + hv.mismatch);
    } else if (!hv.present && view.table) {
      p->reasons.push_back("set " + HoldSetName(name) + " was missing");
    } else if (!hv.dumped.ranges.empty() || !hv.malformed.empty()) {
      p->reasons.push_back("set " + HoldSetName(name) + " held " +
                           Count(hv.dumped.ranges.size(), "range", "ranges") + " and " +
                           Count(hv.malformed.size(), "stray element", "stray elements") +
                           " (emptied before the update)");
    }
  }
  return recreate_any;
}

// Chains: what to fix. Rules referencing a set that must be recreated go with it.
std::vector<ChainState> PlanChains(const TableSpec& spec, const KernelView& view,
                                   const PlanInput& in, bool recreate_any, Planner* pl,
                                   ReconcilePlan* p) {
  std::vector<ChainState> states;
  std::set<std::string> wanted_names;
  for (const ChainWant& c : p->chains) {
    wanted_names.insert(c.name);
    ChainState s = ChainState::kOk;
    if (!in.trusted) {
      std::string why;
      s = Assess(spec, c, view, &why);
      if (s != ChainState::kOk && view.table) p->reasons.push_back(why);
      if (recreate_any && (s == ChainState::kOk || s == ChainState::kPolicy)) {
        s = ChainState::kRules;
      }
    }
    if (s == ChainState::kMissing || s == ChainState::kRecreate) p->bootstrapped = true;
    states.push_back(s);
  }
  for (size_t i = 0; i < p->chains.size(); ++i) {
    if (states[i] == ChainState::kRules || states[i] == ChainState::kRecreate) {
      pl->Add(OpKind::kFlushChain, p->chains[i].name);
    }
  }
  for (size_t i = 0; i < p->chains.size(); ++i) {
    if (states[i] == ChainState::kRecreate) pl->Add(OpKind::kDeleteChain, p->chains[i].name);
  }
  for (const auto& [name, cv] : view.chains) {
    if (!wanted_names.count(name)) {
      p->reasons.push_back("chain " + name + " is not configured");
      pl->Add(OpKind::kDeleteChain, name);
    }
  }
  return states;
}

// One family's sets and elements: removals first, additions after them.
void PlanElements(const TableSpec& spec, const KernelView& view, const PlanInput& in, Family f,
                  Planner* pl, ReconcilePlan* p) {
  const SetView& sv = view.set(f);
  const std::string& name = SetName(spec, f);
  const FamilyRanges& want_set = *in.want[FamilyIndex(f)];
  const std::vector<Range>& want = want_set.ranges;
  const int idx = FamilyIndex(f);
  auto timeouts_of = [&](std::span<const int64_t> expires) {
    return in.timeouts ? TimeoutsMs(expires, in.now_ms) : std::vector<uint64_t>{};
  };
  if (view.hold(f).present && !view.hold(f).usable) {
    pl->Add(OpKind::kDeleteHoldSet, HoldSetName(name)).family = f;
  }
  if (!view.hold(f).usable) pl->Add(OpKind::kCreateHoldSet, HoldSetName(name)).family = f;
  if (in.staged[idx] || view.swap_present[idx]) {
    // The staged set (or one left over by an interrupted swap): the rules that used it were
    // flushed above, the new ones use the set under its own name.
    const std::string swap = SwapName(name);
    if (!in.staged[idx]) p->reasons.push_back("set " + swap + " was left over");
    pl->Add(OpKind::kDeleteSet, swap);
  }
  if (in.staged[idx]) {
    p->added += want.size();  // by the staging transactions
    return;
  }
  if (sv.present && !sv.usable) pl->Add(OpKind::kDeleteSet, name);
  if (!sv.usable) {
    p->bootstrapped = true;
    pl->Add(OpKind::kCreateSet, name).family = f;
    pl->Ranges(OpKind::kAddRanges, name, f, want, timeouts_of(want_set.expires));
    p->added += want.size();
    return;
  }
  if (!sv.malformed.empty()) {
    p->reasons.push_back("set " + name + " held " +
                         Count(sv.malformed.size(), "malformed element", "malformed elements"));
    PlannedOp& op = pl->Add(OpKind::kDeleteElements, name);
    op.family = f;
    op.raw = sv.malformed;
    p->removed += sv.malformed.size();
  }
  if (!in.trusted && in.applied) {
    std::string drift =
        Drift(in.applied->of(f), *sv.ranges, in.now_ms / 1000 + kExpiryToleranceSeconds);
    if (!drift.empty()) p->reasons.push_back("set " + name + " drifted: " + drift);
  }
  ReconcilePlan::Bridge& b = p->bridge[idx];
  b.planned = true;
  b.current = sv.ranges->ranges;
  if (in.timeouts) {
    // A changed expiry is a delete plus an add of the same range in this transaction:
    // Linux 6.1 cannot change an element's timeout in place (a plain add is a no-op).
    TimedRangeDiff diff =
        DiffTimedRanges(*sv.ranges, want_set, kExpiryToleranceSeconds, in.now_ms / 1000);
    p->removed += diff.remove.size() - diff.refreshed;
    p->added += diff.add.size() - diff.refreshed;
    p->refreshed += diff.refreshed;
    std::vector<uint64_t> timeouts = TimeoutsMs(diff.add_expires, in.now_ms);
    pl->Ranges(OpKind::kDeleteRanges, name, f, pl->Keep(std::move(diff.remove)));
    b.add = pl->Keep(std::move(diff.add));
    pl->Ranges(OpKind::kAddRanges, name, f, b.add, std::move(timeouts));
    return;
  }
  RangeDiff diff = DiffRanges(sv.ranges->ranges, want);
  p->removed += diff.remove.size();
  p->added += diff.add.size();
  pl->Ranges(OpKind::kDeleteRanges, name, f, pl->Keep(std::move(diff.remove)));
  b.add = pl->Keep(std::move(diff.add));
  pl->Ranges(OpKind::kAddRanges, name, f, b.add);
}

// Counters, chains, rules.
void PlanObjects(const KernelView& view, const PlanInput& in, const std::vector<ChainState>& states,
                 Planner* pl, ReconcilePlan* p) {
  for (const ChainWant& c : p->chains) {
    for (const std::string& counter : c.counters) {
      if (!in.trusted && !view.counters.count(counter)) pl->Add(OpKind::kCreateCounter, counter);
    }
  }
  for (size_t i = 0; i < p->chains.size(); ++i) {
    const ChainState s = states[i];
    if (s == ChainState::kOk) continue;
    if (s != ChainState::kRules) {
      const OpKind kind = s == ChainState::kPolicy ? OpKind::kSetChainPolicy : OpKind::kCreateChain;
      pl->Add(kind, p->chains[i].name).chain = i;
      if (s == ChainState::kPolicy) continue;
    }
    for (size_t r = 0; r < p->chains[i].rules.size(); ++r) {
      PlannedOp& op = pl->Add(OpKind::kAddRule, p->chains[i].name);
      op.chain = i;
      op.rule = r;
    }
  }
}

}  // namespace

ReconcilePlan PlanReconcile(const TableSpec& spec, const KernelView& view, const PlanInput& in) {
  ReconcilePlan p;
  p.chains = WantedChains(spec);
  Planner pl(&p);
  PlanTable(spec, view, in, &pl, &p);
  const bool recreate_any = JudgeSets(spec, view, in, &p);
  const std::vector<ChainState> states = PlanChains(spec, view, in, recreate_any, &pl, &p);
  for (Family f : {Family::kV4, Family::kV6}) PlanElements(spec, view, in, f, &pl, &p);
  PlanObjects(view, in, states, &pl, &p);
  return p;
}

std::string ReconcilePlan::RepairReason() const {
  std::string out;
  for (const std::string& r : reasons) out += (out.empty() ? "" : "; ") + r;
  return out;
}

std::string DescribeOp(const ReconcilePlan& plan, const PlannedOp& op) {
  auto ranges = [&](const char* verb, const char* dir) {
    // Appended piece by piece: g++ 12 -O2 warns (-Wrestrict, a false positive) on a chain of
    // operator+ that starts with a temporary here.
    std::string s = verb;
    s += ' ';
    s += Count(op.ranges.size(), "range", "ranges");
    s += ' ';
    s += dir;
    s += " set ";
    s += op.name;
    s += ':';
    for (size_t i = 0; i < op.ranges.size() && i < 4; ++i) {
      s += ' ';
      s += FormatRange(op.family, op.ranges[i]);
      if (i < op.timeouts.size() && op.timeouts[i] != 0) {
        s += " (timeout ";
        s += std::to_string(op.timeouts[i]);
        s += " ms)";
      }
    }
    if (op.ranges.size() > 4) s += " ...";
    return s + (op.additions ? " [additions]" : "");
  };
  switch (op.kind) {
    case OpKind::kCreateTable:
      return "create table inet " + op.name;
    case OpKind::kWakeTable:
      return "wake table inet " + op.name;
    case OpKind::kFlushChain:
      return "flush chain " + op.name;
    case OpKind::kDeleteChain:
      return "delete chain " + op.name;
    case OpKind::kDeleteHoldSet:
    case OpKind::kDeleteSet:
      return "delete set " + op.name;
    case OpKind::kCreateHoldSet:
      return "create hold set " + op.name;
    case OpKind::kCreateSet:
      return "create set " + op.name;
    case OpKind::kDeleteElements:
      return "delete " + Count(op.raw.size(), "stray element", "stray elements") + " from set " +
             op.name;
    case OpKind::kDeleteRanges:
      return ranges("delete", "from");
    case OpKind::kAddRanges:
      return ranges("add", "to");
    case OpKind::kCreateCounter:
      return "create counter " + op.name;
    case OpKind::kCreateChain:
      return "create chain " + op.name;
    case OpKind::kSetChainPolicy:
      return "set the policy of chain " + op.name;
    case OpKind::kAddRule:
      return "add rule to chain " + op.name + ": " + plan.chains[op.chain].fingerprints[op.rule];
  }
  return "?";
}

}  // namespace iocwall::nl
