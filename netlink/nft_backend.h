// NftBackend: the SetBackend that speaks nf_tables over netlink (libmnl + libnftnl; never the
// nft binary). It owns `table inet <spec.table>` and nothing else: two interval sets, one base
// chain per configured hook whose rules drop traffic from/to set members, and a named counter
// per chain, direction and family.
//
// The backend only coordinates: ruleset.h says what is wanted, kernel_view.h reads what the
// kernel holds, plan.h (pure) turns both into ordered operations, ops.h writes them into a
// batch; here the generation is read, the plan staged, committed and retried.
//
// Reconcile keeps a copy of what it last committed and the ruleset generation id after that
// commit. While the generation has not moved, the kernel is known to hold that copy and the
// diff is computed without reading the kernel (element dumps are quadratic in the kernel).
// When it has moved, the table's structure is re-read and the sets dumped, and any drift is
// repaired in the same transaction as the update. Every batch carries the generation id it was
// computed from; a concurrent change makes the kernel refuse it (ERESTART) and it is retried.
//
// With per-element timeouts (TableSpec::timeouts) the kernel also removes elements by itself.
// That does not move the generation, so the copy of what was committed drops the ranges whose
// expiry has passed before it is diffed; a dump leaves them out too (and shows the interval
// ends of expired ranges until the kernel collects them: they are skipped, never deleted, as a
// delete of something already gone aborts the whole batch). If an element expires between
// the read and the commit (ENOENT), the transaction is retried against a fresh dump.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/interval_set.h"
#include "netlink/batch.h"
#include "netlink/kernel_view.h"
#include "netlink/plan.h"
#include "netlink/set_backend.h"
#include "netlink/socket.h"

namespace iocwall {

struct NftBackendOptions {
  // Test-only: commit removals and additions as two transactions, opening exactly the window
  // that the single transaction closes. The packet test uses it to show that it would see a
  // leak. Never set in production code.
  bool split_transaction_for_test = false;
  // Test-only: runs between reading the kernel and committing, to let a test change the
  // ruleset in that window (the generation-id guard must then refuse the batch and retry).
  std::function<void()> before_commit_for_test;
  // Test-only: no hold bridge (hold_bridge.h) around updates that re-add covered ranges, to
  // show the leak it prevents on Linux 6.1. Also off with split_transaction_for_test.
  bool skip_hold_bridge_for_test = false;
  // Attempts when the generation id moves between read and commit.
  int max_attempts = 5;
  // A copy of our commit is trusted over a moved generation (after a structure read and
  // element lookups) only if the sets were read whole within this many seconds: a hand change
  // to elements outside the lookups is then found by the next dump at the latest.
  int64_t full_read_every_seconds = 3600;
  // Below this many ranges a dump costs less than 0.4 s (it is quadratic: 65 s at 1M): the
  // sets are then simply read whole whenever the generation moved, which also finds elements
  // added by hand, something no lookup of our own ranges can see.
  size_t always_read_below = 100000;
};

class NftBackend : public SetBackend {
 public:
  explicit NftBackend(TableSpec spec, NftBackendOptions options = {});
  ~NftBackend() override;

  Status Reconcile(const IntervalSet& desired, ApplyResult* result) override;
  Status ReadStatus(KernelStatus* status) override;
  Status ReadElements(IntervalSet* current) override;
  Status ReadTopHits(size_t n, std::vector<ElementHits>* hits) override;
  Status Lookup(Family family, std::span<const u128> addresses,
                std::vector<std::optional<u128>>* starts) override;
  Status RemoveTable(const std::string& table, bool* removed) override;
  std::string TableName() const override { return spec_.table; }
  const AppliedCopy* Applied() const override { return applied_ ? &*applied_ : nullptr; }
  void Seed(AppliedCopy copy) override { seed_ = std::move(copy); }

  // The current ruleset generation id (NFT_MSG_GETGEN).
  Result<uint32_t> Generation();

 private:
  Status EnsureSocket();
  nl::KernelReader Reader();
  Status ReconcileOnce(const IntervalSet& desired, ApplyResult* result);
  // Stages `plan` into one batch (two under split_transaction_for_test) and commits it
  // between the hold bridge's steps; *generation follows each commit.
  Status Apply(const nl::ReconcilePlan& plan, const nl::KernelView& view, uint32_t* generation,
               ApplyResult* result);
  // A set whose flags, type or counters must change is recreated without a moment when
  // traffic is not matched against a full set. On Linux 6.18, a set created in the same
  // transaction as the rule that starts using it matches nothing for a short while after the
  // commit (measured: packets pass); a populated set that already exists does not. So, before
  // the main transaction: (1) build the new sets, filled, under temporary names; (2) move the
  // rules to them and delete the old sets; (3) build the sets again under their own names. The
  // main transaction then moves the rules back and deletes the temporary sets. Each step is
  // one transaction guarded by the generation id, which moves by one per step (*genid).
  // Skipped (the main transaction does it all) when there is no working blocking to keep
  // (nl::PlanStaging).
  Status StageRecreatedSets(const nl::KernelView& view, const nl::PlanInput& in, uint32_t* genid,
                            bool staged[2], ApplyResult* result);
  // Records what was committed: `desired`'s ranges, or with timeouts the two timed sets
  // (v4, v6) that were sent, moved from.
  void SetApplied(const IntervalSet& desired, FamilyRanges* timed_want);

  // The generation moved but there is a copy of our last commit: reads the table's structure
  // (no dump) and looks sampled elements of the copy up. True (and the copy adopted at `gen`)
  // when everything matches and the sets were read whole recently enough.
  bool StillHoldsApplied(uint32_t gen);
  // A seeded copy (from an earlier process) becomes applied_ if it belongs here.
  void AdoptSeed();
  // After a commit: the table's handle (a new table gets one from the kernel).
  void NoteHandle();

  TableSpec spec_;
  NftBackendOptions options_;
  std::optional<nl::Socket> socket_;
  std::optional<AppliedCopy> applied_;  // what the kernel held after our last commit
  std::optional<AppliedCopy> seed_;     // a copy from an earlier process, not yet checked
  uint64_t lookup_round_ = 0;           // varies the sampled elements from one check to the next
  int64_t full_read_at_ = 0;            // when the sets were last read whole (see AppliedCopy)
  AppliedCopy Fresh(uint32_t generation) const;
};

std::unique_ptr<SetBackend> MakeNftBackend(const TableSpec& spec);

}  // namespace iocwall
