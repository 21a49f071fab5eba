// NftBackend: the SetBackend that speaks nf_tables over netlink (libmnl + libnftnl; never the
// nft binary). It owns `table inet <spec.table>` and nothing else: two interval sets, one base
// chain per configured hook whose rules drop traffic from/to set members, and a named counter
// per chain, direction and family.
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

#include "agent/core/interval_set.h"
#include "netlink/batch.h"
#include "netlink/set_backend.h"
#include "netlink/socket.h"

struct nftnl_set;
struct nlmsghdr;

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
};

class NftBackend : public SetBackend {
 public:
  explicit NftBackend(TableSpec spec, NftBackendOptions options = {});
  ~NftBackend() override;

  Status Reconcile(const IntervalSet& desired, ApplyResult* result) override;
  Status ReadStatus(KernelStatus* status) override;
  Status ReadElements(IntervalSet* current) override;
  Status ReadTopHits(size_t n, std::vector<ElementHits>* hits) override;
  Status Flush() override;

  // The current ruleset generation id (NFT_MSG_GETGEN).
  Result<uint32_t> Generation();

  struct KernelView;  // what the kernel holds of our table (nft_backend.cc)

 private:
  Status EnsureSocket();
  // Sends a get or a dump (family inet) and hands each reply to `each`; `filter` adds the
  // request's attributes.
  Status Query(uint16_t type, uint16_t flags, const std::function<void(nlmsghdr*)>& filter,
               const std::function<Status(const nlmsghdr*)>& each, const std::string& what,
               int* kernel_errno = nullptr);
  // Dumps the family's set, or `other_set` of that family.
  Status DumpElements(Family family, const std::function<void(const nl::DecodedElement&)>& each,
                      const std::string& other_set = "");
  Status ReadKernel(KernelView* view, bool dump_elements);
  void ReadSet(const nftnl_set* s, KernelView* view) const;
  Status ReconcileOnce(const IntervalSet& desired, ApplyResult* result, int* kernel_errno);
  // A set whose flags, type or counters must change is recreated without a moment when
  // traffic is not matched against a full set. On Linux 6.18, a set created in the same
  // transaction as the rule that starts using it matches nothing for a short while after the
  // commit (measured: packets pass); a populated set that already exists does not. So, before
  // the main transaction: (1) build the new sets, filled, under temporary names; (2) move the
  // rules to them and delete the old sets; (3) build the sets again under their own names. The
  // main transaction then moves the rules back and deletes the temporary sets. Each step is
  // one transaction guarded by the generation id, which moves by one per step (*genid).
  // Skipped (the main transaction does it all) when there is no working blocking to keep.
  Status StageRecreatedSets(KernelView* view,
                            const std::function<const FamilyRanges&(Family)>& want_of,
                            int64_t now_ms, uint32_t* genid, bool staged[2], ApplyResult* result,
                            int* kernel_errno);
  // Records what was committed: `desired`'s ranges, or with timeouts the two timed sets
  // (v4, v6) that were sent, moved from.
  void SetApplied(const IntervalSet& desired, FamilyRanges* timed_want);

  struct Applied {
    uint32_t generation = 0;
    FamilyRanges v4;  // ranges, and expires when the sets have timeouts (sources unused)
    FamilyRanges v6;
  };

  TableSpec spec_;
  NftBackendOptions options_;
  std::optional<nl::Socket> socket_;
  std::optional<Applied> applied_;  // what the kernel held after our last commit
};

std::unique_ptr<SetBackend> MakeNftBackend(const TableSpec& spec);

}  // namespace iocwall
