#include "netlink/nft_backend.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <chrono>

#include "core/timed.h"
#include "netlink/batch.h"
#include "netlink/hold_bridge.h"
#include "netlink/kernel_view.h"
#include "netlink/ops.h"
#include "netlink/plan.h"
#include "netlink/ruleset.h"

namespace iocwall {

using nl::Batch;

namespace {

Status ValidateDesired(const FamilyRanges& fr, Family f) {
  if (!fr.expires.empty() && fr.expires.size() != fr.ranges.size()) {
    return Status::Error("desired set is invalid: " + std::to_string(fr.expires.size()) +
                         " expiries for " + std::to_string(fr.ranges.size()) + " ranges");
  }
  for (size_t i = 0; i < fr.ranges.size(); ++i) {
    const Range& r = fr.ranges[i];
    if (r.first > r.last || r.last > MaxAddress(f)) {
      return Status::Error("desired set is invalid: range " + std::to_string(i) + " is empty or " +
                           "outside the address family");
    }
    if (i > 0 && fr.ranges[i - 1].last >= r.first) {
      return Status::Error("desired set is not normalised: " + FormatRange(f, fr.ranges[i - 1]) +
                           " overlaps or precedes " + FormatRange(f, r));
    }
  }
  return Status::Ok();
}

// Each commit moves the generation by exactly one (zero is skipped).
void NextGeneration(uint32_t* genid) {
  while (++*genid == 0) {
  }
}

}  // namespace

NftBackend::NftBackend(TableSpec spec, NftBackendOptions options)
    : spec_(std::move(spec)), options_(options) {}

NftBackend::~NftBackend() = default;

std::unique_ptr<SetBackend> MakeNftBackend(const TableSpec& spec) {
  return std::make_unique<NftBackend>(spec);
}

Status NftBackend::EnsureSocket() {
  if (socket_) return Status::Ok();
  Result<nl::Socket> s = nl::Socket::Open();
  if (!s.ok()) return s.status();
  socket_.emplace(std::move(*s));
  return Status::Ok();
}

nl::KernelReader NftBackend::Reader() { return nl::KernelReader(&*socket_, spec_); }

Result<uint32_t> NftBackend::Generation() {
  IOCWALL_TRY(EnsureSocket());
  return Reader().Generation();
}

Status NftBackend::Reconcile(const IntervalSet& desired, ApplyResult* result) {
  const auto start = std::chrono::steady_clock::now();
  *result = {};
  for (Family f : {Family::kV4, Family::kV6}) IOCWALL_TRY(ValidateDesired(desired.of(f), f));
  IOCWALL_TRY(EnsureSocket());
  Status st = Status::Ok();
  for (int attempt = 1;; ++attempt) {
    int retries = result->retries;
    *result = {};
    result->retries = retries;
    st = ReconcileOnce(desired, result);
    // ERESTART: someone changed the ruleset between our read and our commit; EINTR: during a
    // dump. ENOENT with timeouts: an element expired between our read and our commit, so its
    // delete failed (and the whole batch with it); a fresh dump no longer shows it.
    const bool expired_under_us = spec_.timeouts && st.code() == ENOENT;
    if (st.ok() || attempt >= options_.max_attempts ||
        (st.code() != ERESTART && st.code() != EINTR && !expired_under_us)) {
      break;
    }
    applied_.reset();  // read again
    ++result->retries;
  }
  result->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!st.ok()) {
    // The kernel rolled the batch back, but it may have been changed by someone else: the next
    // cycle reads it again rather than trusting our copy.
    applied_.reset();
    return st.Wrap("reconciling table inet " + spec_.table);
  }
  return st;
}

AppliedCopy NftBackend::Fresh(uint32_t generation) const {
  AppliedCopy a;
  a.table = spec_.table;
  a.spec = nl::SpecKey(spec_);
  a.generation = generation;
  a.boot_id = nl::BootId();
  a.netns = nl::NetnsInode();
  a.full_read_at = full_read_at_;
  a.timeouts = spec_.timeouts;
  return a;
}

void NftBackend::AdoptSeed() {
  if (!seed_) return;
  AppliedCopy s = std::move(*seed_);
  seed_.reset();
  if (applied_) return;  // this process's own copy is newer
  if (s.table != spec_.table || s.spec != nl::SpecKey(spec_) || s.boot_id.empty() ||
      s.boot_id != nl::BootId() || s.netns != nl::NetnsInode() || s.timeouts != spec_.timeouts) {
    return;
  }
  full_read_at_ = s.full_read_at;
  applied_ = std::move(s);
}

void NftBackend::NoteHandle() {
  nl::TableInfo info;
  if (applied_ && Reader().ReadTable(spec_.table, &info).ok() && info.present) {
    applied_->table_handle = info.handle;
  }
}

bool NftBackend::StillHoldsApplied(uint32_t gen) {
  // Per family: enough lookups to catch a flushed, replaced or reshaped set at once, and,
  // varied from one check to the next, a partial hand change within a few cycles.
  constexpr size_t kLookups = 64;
  const int64_t now = nl::NowMs() / 1000;
  if (applied_->full_read_at <= 0 ||
      now - applied_->full_read_at > options_.full_read_every_seconds ||
      applied_->v4.size() + applied_->v6.size() < options_.always_read_below) {
    return false;
  }
  nl::KernelView view;
  if (!Reader().Read(&view, /*dump_elements=*/false).ok()) return false;
  if (!view.table || !view.table_owned || view.table_handle != applied_->table_handle ||
      view.dormant() || view.swap_present[0] || view.swap_present[1] ||
      !view.set(Family::kV4).usable || !view.set(Family::kV6).usable ||
      !nl::ChainsIntact(spec_, nl::WantedChains(spec_), view)) {
    return false;
  }
  ++lookup_round_;
  for (Family f : {Family::kV4, Family::kV6}) {
    const FamilyRanges& fr = applied_->of(f);
    const size_t n = fr.ranges.size();
    std::vector<size_t> picked;
    std::vector<u128> addrs;
    for (size_t j = 0; j < std::min(n, kLookups); ++j) {
      size_t i = (j * n / std::min(n, kLookups) + lookup_round_ * 7919) % n;
      // A range about to expire (or just expired) proves nothing either way.
      if (j < fr.expires.size() && i < fr.expires.size() && fr.expires[i] != kNeverExpires &&
          fr.expires[i] <= now + nl::kSurelyGoneSeconds + 1) {
        continue;
      }
      picked.push_back(i);
      addrs.push_back(fr.ranges[i].first);
      addrs.push_back(fr.ranges[i].last);
    }
    std::vector<std::optional<u128>> starts;
    if (!Reader().Lookup(f, addrs, &starts).ok()) return false;
    for (size_t k = 0; k < picked.size(); ++k) {
      const u128 first = fr.ranges[picked[k]].first;
      if (starts[2 * k] != first || starts[2 * k + 1] != first) return false;
    }
  }
  applied_->generation = gen;
  return true;
}

// The coordinator: reads the generation, trusts the copy of our last commit or reads the
// kernel, plans, stages the plan's operations into one batch, and commits it between the hold
// bridge's two steps.
Status NftBackend::ReconcileOnce(const IntervalSet& desired, ApplyResult* result) {
  AdoptSeed();
  Result<uint32_t> gen = Reader().Generation();
  IOCWALL_TRY(gen);
  bool trusted = applied_ && applied_->generation == *gen;
  if (!trusted && applied_ && StillHoldsApplied(*gen)) {
    trusted = true;
    result->kernel_verified = true;
  }
  // With timeouts: what the kernel is to hold, as seen from now_ms (taken once the kernel has
  // been read, so that the timeouts sent are as fresh as they can be).
  FamilyRanges timed_want[2];
  uint32_t generation = *gen;
  {
    nl::KernelView view;
    if (trusted) {
      // Nobody committed anything since our last commit: the kernel holds our copy.
      view.table = true;
      view.table_owned = true;
      for (Family f : {Family::kV4, Family::kV6}) {
        view.set(f).present = view.set(f).usable = true;
        view.set(f).ranges = &applied_->of(f);
        view.hold(f).present = view.hold(f).usable = true;  // and empty: see HoldBridge
      }
    } else {
      result->kernel_read = true;
      IOCWALL_TRY(Reader().Read(&view, /*dump_elements=*/true));
      if (view.table && !view.table_owned) return Status::Error(nl::NotOursMessage(spec_.table));
      full_read_at_ = nl::NowMs() / 1000;
    }
    nl::PlanInput in;
    in.trusted = trusted;
    in.timeouts = spec_.timeouts;
    for (Family f : {Family::kV4, Family::kV6}) in.want[nl::FamilyIndex(f)] = &desired.of(f);
    if (spec_.timeouts) {
      in.now_ms = nl::NowMs();
      if (applied_) {
        // The kernel has removed (or hides) what expired since, without a new generation.
        DropExpired(&applied_->v4, in.now_ms / 1000 - nl::kSurelyGoneSeconds);
        DropExpired(&applied_->v6, in.now_ms / 1000 - nl::kSurelyGoneSeconds);
      }
      for (Family f : {Family::kV4, Family::kV6}) {
        const int i = nl::FamilyIndex(f);
        timed_want[i] = nl::TimedWant(desired.of(f), in.now_ms, &result->already_expired);
        in.want[i] = &timed_want[i];
      }
    }
    in.applied = applied_ ? &*applied_ : nullptr;

    // Sets to recreate (flags, type or counters changed) are first built and swapped in by
    // transactions of their own, so that blocking never pauses (see StageRecreatedSets).
    if (!trusted) {
      IOCWALL_TRY(StageRecreatedSets(view, in, &generation, in.staged, result));
    }
    const nl::ReconcilePlan plan = nl::PlanReconcile(spec_, view, in);
    IOCWALL_TRY(Apply(plan, view, &generation, result));
    if (result->messages == 0) {
      result->generation = generation;
      if (!trusted) {
        applied_ = Fresh(generation);
        applied_->table_handle = view.table_handle;
        SetApplied(desired, timed_want);
      }
      return Status::Ok();
    }
    // The batches and the diffs are freed here, before the copy below is made.
    applied_.reset();
    applied_ = Fresh(generation);
  }
  SetApplied(desired, timed_want);
  NoteHandle();
  return Status::Ok();
}

Status NftBackend::Apply(const nl::ReconcilePlan& plan, const nl::KernelView& view,
                         uint32_t* generation, ApplyResult* result) {
  result->bootstrapped = result->bootstrapped || plan.bootstrapped;
  result->added += plan.added;
  result->removed += plan.removed;
  result->refreshed += plan.refreshed;
  HoldBridge bridge(spec_,
                    !options_.split_transaction_for_test && !options_.skip_hold_bridge_for_test);
  for (Family f : {Family::kV4, Family::kV6}) {
    const nl::ReconcilePlan::Bridge& b = plan.bridge[nl::FamilyIndex(f)];
    bridge.SetBefore(f, b.usable, b.before, b.stray);
    if (b.planned) bridge.Plan(f, b.current, b.add);
  }
  Batch first(&*socket_, *generation);
  std::optional<Batch> second;
  if (options_.split_transaction_for_test) second.emplace(&*socket_, 0);
  for (const nl::PlannedOp& op : plan.ops) {
    nl::Stage(op.additions && second ? &*second : &first, spec_, plan, op);
  }
  result->messages += first.messages() + (second ? second->messages() : 0);
  result->batch_bytes += first.bytes() + (second ? second->bytes() : 0);
  result->messages += bridge.Build(&*socket_, *generation);
  result->held = bridge.held();
  if (!plan.reasons.empty() && (view.table || applied_)) {
    result->repaired = true;
    result->repair_reason = plan.RepairReason();
  }
  if (result->messages == 0) return Status::Ok();
  if (options_.before_commit_for_test) options_.before_commit_for_test();
  const uint32_t planned_at = *generation;
  IOCWALL_TRY(bridge.Hold(generation));
  if (*generation != planned_at) first.RebaseGenid(*generation);
  for (Batch* b : {&first, second ? &*second : nullptr}) {
    if (!b || b->empty()) continue;
    IOCWALL_TRY(b->Commit());
    NextGeneration(generation);
  }
  size_t released = 0;
  Status st = bridge.Release(&*socket_, generation, &released);
  result->messages += released;
  // The list is enforced, but the hold sets still hold part of it: the next attempt or cycle
  // reads the kernel and empties them.
  IOCWALL_TRY(st);
  result->generation = *generation;
  return Status::Ok();
}

Status NftBackend::StageRecreatedSets(const nl::KernelView& view, const nl::PlanInput& in,
                                      uint32_t* genid, bool staged[2], ApplyResult* result) {
  const std::vector<nl::ChainWant> chains = nl::WantedChains(spec_);
  const std::vector<Family> families = nl::PlanStaging(spec_, chains, view);
  if (families.empty()) return Status::Ok();
  TableSpec swap = spec_;
  for (Family f : families) {
    std::string& name = f == Family::kV4 ? swap.set_v4 : swap.set_v6;
    name = nl::SwapName(name);
  }
  auto fill = [&](Batch* b, const TableSpec& s, Family f) {
    const FamilyRanges& want = *in.want[nl::FamilyIndex(f)];
    nl::AddCreateSet(b, s, f, /*exclusive=*/true);
    const std::vector<uint64_t> timeouts =
        spec_.timeouts ? nl::TimeoutsMs(want.expires, in.now_ms) : std::vector<uint64_t>{};
    b->AddRanges(nl::ElementVerb::kAdd, NFPROTO_INET, spec_.table, nl::SetName(s, f), f,
                 want.ranges, timeouts);
  };
  auto commit = [&](Batch* b, const char* step) {
    Status st = b->Commit();
    if (!st.ok()) return st.Wrap(std::string("recreating the sets, ") + step);
    result->messages += b->messages();
    result->batch_bytes += b->bytes();
    NextGeneration(genid);
    return Status::Ok();
  };
  // 1. The new sets, filled, under temporary names: nothing uses them yet.
  Batch build(&*socket_, *genid);
  for (Family f : families) fill(&build, swap, f);
  IOCWALL_TRY(commit(&build, "building them under temporary names"));
  // 2. The rules move to them, and the old sets go: one transaction, so one rule set or the
  // other applies to every packet, each with its set fully populated.
  Batch move(&*socket_, *genid);
  for (const nl::ChainWant& c : chains) {
    nl::AddFlushChain(&move, spec_.table, c.name);
    for (const nl::RuleWant& w : c.rules) nl::AddRule(&move, swap, c.name, w);
  }
  for (Family f : families) nl::AddDeleteSet(&move, spec_.table, nl::SetName(spec_, f));
  IOCWALL_TRY(commit(&move, "moving the rules to the new sets"));
  // 3. The sets again under their own names, filled; the main transaction moves the rules
  // back to them and deletes the temporary ones.
  Batch rename(&*socket_, *genid);
  for (Family f : families) fill(&rename, spec_, f);
  IOCWALL_TRY(commit(&rename, "building them under their own names"));
  for (Family f : families) staged[nl::FamilyIndex(f)] = true;
  return Status::Ok();
}

void NftBackend::SetApplied(const IntervalSet& desired, FamilyRanges* timed_want) {
  if (spec_.timeouts) {
    applied_->v4 = std::move(timed_want[0]);
    applied_->v6 = std::move(timed_want[1]);
  } else {
    applied_->v4.ranges = desired.v4.ranges;
    applied_->v6.ranges = desired.v6.ranges;
  }
}

Status NftBackend::ReadStatus(KernelStatus* status) {
  *status = {};
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  Result<uint32_t> gen = Generation();
  IOCWALL_TRY(gen);
  status->generation = *gen;
  nl::KernelView view;
  IOCWALL_TRY(Reader().Read(&view, /*dump_elements=*/false));
  status->table_present = view.table;
  status->table_owned = view.table_owned;
  status->table_dormant = view.dormant();
  status->table_handle = view.table_handle;
  status->boot_id = nl::BootId();
  status->netns = nl::NetnsInode();
  status->sets_present = view.set(Family::kV4).usable && view.set(Family::kV6).usable;
  const std::vector<nl::ChainWant> chains = nl::WantedChains(spec_);
  status->chains_present = view.table && nl::ChainsIntact(spec_, chains, view);
  for (const nl::ChainWant& c : chains) {
    for (const std::string& counter : c.counters) {
      auto it = view.counters.find(counter);
      if (it != view.counters.end()) {
        status->counters.push_back({counter, it->second.packets, it->second.bytes});
      }
    }
  }
  if (applied_ && applied_->generation == *gen) {
    // Ranges the kernel has expired since are no longer counted.
    const int64_t now = nl::NowMs() / 1000;
    auto live = [&](const FamilyRanges& fr) {
      size_t n = fr.ranges.size();
      for (int64_t e : fr.expires) n -= HasExpired(e, now);
      return n;
    };
    status->v4_elements = live(applied_->v4);
    status->v6_elements = live(applied_->v6);
    status->elements_counted = true;
  }
  return Status::Ok();
}

Status NftBackend::ReadElements(IntervalSet* current) {
  *current = {};
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  nl::KernelView view;
  IOCWALL_TRY(Reader().Read(&view, /*dump_elements=*/true));
  current->v4 = std::move(view.set(Family::kV4).dumped);
  current->v6 = std::move(view.set(Family::kV6).dumped);
  return Status::Ok();
}

Status NftBackend::ReadTopHits(size_t n, std::vector<ElementHits>* hits) {
  hits->clear();
  if (!spec_.element_counters) {
    return Status::Error("per-element counters are off (element_counters = false)");
  }
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  for (Family f : {Family::kV4, Family::kV6}) {
    std::vector<nl::DumpedElement> elems;
    std::map<u128, std::pair<uint64_t, uint64_t>> counts;  // by start key
    st = Reader().DumpElements(f, [&](const nl::DecodedElement& d) {
      elems.push_back({d.element, kNeverExpires});
      if (!d.element.interval_end && d.packets > 0) counts[d.element.key] = {d.packets, d.bytes};
    });
    if (!st.ok()) return st;
    FamilyRanges ranges;
    std::vector<nl::RawElement> malformed;
    nl::PairElements(&elems, f, spec_.timeouts, &ranges, &malformed);
    for (const Range& r : ranges.ranges) {
      auto it = counts.find(r.first);
      if (it == counts.end()) continue;
      // With log rules every blocked packet is looked up twice in the set, by the log rule and
      // by the drop rule, and the kernel counts both lookups in the element's counter.
      const uint64_t lookups = spec_.log ? 2 : 1;
      hits->push_back(
          {f == Family::kV4 ? 4 : 6, r, it->second.first / lookups, it->second.second / lookups});
    }
  }
  std::sort(hits->begin(), hits->end(), [](const ElementHits& a, const ElementHits& b) {
    return a.packets != b.packets ? a.packets > b.packets : a.bytes > b.bytes;
  });
  if (hits->size() > n) hits->resize(n);
  return Status::Ok();
}

Status NftBackend::Lookup(Family family, std::span<const u128> addresses,
                          std::vector<std::optional<u128>>* starts) {
  starts->assign(addresses.size(), std::nullopt);
  IOCWALL_TRY(EnsureSocket());
  return Reader().Lookup(family, addresses, starts);
}

Status NftBackend::RemoveTable(const std::string& table, bool* removed) {
  *removed = false;
  IOCWALL_TRY(EnsureSocket());
  if (table == spec_.table) applied_.reset();
  for (int attempt = 1;; ++attempt) {
    Result<uint32_t> gen = Reader().Generation();
    IOCWALL_TRY(gen);
    nl::TableInfo info;
    IOCWALL_TRY(Reader().ReadTable(table, &info));
    if (!info.present) return Status::Ok();
    if (!info.owned) return Status::Error(nl::NotOursMessage(table));
    // Guarded by the generation the mark was read in, and by handle (AddDeleteTable).
    Batch batch(&*socket_, *gen);
    nl::AddDeleteTable(&batch, table, info.handle);
    Status st = batch.Commit();
    if (st.ok()) {
      *removed = true;
      return st;
    }
    if (st.code() == ENOENT) return Status::Ok();  // deleted by someone else meanwhile
    if (st.code() != ERESTART || attempt >= options_.max_attempts) return st;
  }
}

}  // namespace iocwall
