// SetBackend: the kernel side of iocwall. Abstract so that the agent can be tested with a
// recording fake and run with a dry-run backend; the real one speaks netlink (nft_backend.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/diff.h"
#include "core/interval_set.h"
#include "core/status.h"

namespace iocwall {

enum class Hook : uint8_t { kInput, kForward, kOutput };
enum class Action : uint8_t { kDrop, kReject };

// The nftables objects iocwall owns. Nothing outside `table inet <table>` is ever touched.
struct TableSpec {
  std::string table = "iocwall";
  std::string set_v4 = "blocklist_v4";
  std::string set_v6 = "blocklist_v6";
  std::vector<Hook> hooks = {Hook::kInput, Hook::kForward, Hook::kOutput};
  int priority = -200;  // before most filter chains: blocked traffic is dropped first
  Action action = Action::kDrop;
  bool log = false;               // log (rate-limited) before dropping
  bool element_counters = false;  // per-element packet/byte counters (for --status --top)
  // Per-element kernel timeouts: the sets get the timeout flag, and each desired range whose
  // FamilyRanges::expires is set (Unix seconds, from NormaliseTimed) is added with the time it
  // has left, so the kernel drops it on time by itself, agent running or not. A range whose
  // expiry changes is deleted and re-added in the same transaction. Off: expires are ignored.
  bool timeouts = false;
};

struct ApplyResult {
  bool bootstrapped = false;   // table/sets/chains were (re)created in this transaction
  bool repaired = false;       // drift was found and corrected in this transaction
  std::string repair_reason;   // what drift was found ("set blocklist_v4 was flushed", ...)
  size_t added = 0;            // elements (ranges) added
  size_t removed = 0;          // elements (ranges) removed
  size_t refreshed = 0;        // ranges re-added with a new expiry (not counted in added/removed)
  size_t already_expired = 0;  // desired ranges whose expiry had passed: not added
  size_t held = 0;      // covered ranges kept in the hold sets during the change (hold_bridge.h)
  size_t messages = 0;  // netlink messages in the batch (0: nothing was sent)
  size_t batch_bytes = 0;
  int retries = 0;          // generation-id races retried
  uint32_t generation = 0;  // ruleset generation after the commit
  double seconds = 0;
  bool kernel_read = false;      // the kernel was read (and the sets dumped): the generation had
                                 // moved since our last commit, or this was the first cycle
  bool kernel_verified = false;  // the generation had moved, and the table's structure and
                                 // element lookups showed the copy of our commit still holds
};

struct ChainCounter {
  std::string name;  // counter object name, e.g. "input_v4_saddr"
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct ElementHits {
  int family = 4;
  Range range;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct KernelStatus {
  bool table_present = false;
  // The table carries iocwall's ownership mark (set when iocwall created it; see
  // nft_backend.cc). A table of the configured name without it is never changed.
  bool table_owned = false;
  bool table_dormant = false;  // NFT_TABLE_F_DORMANT: its chains see no packet
  uint64_t table_handle = 0;   // changes when the table is deleted and created again
  bool sets_present = false;
  bool chains_present = false;  // every configured base chain with its rules
  size_t v4_elements = 0;       // ranges in the kernel set (valid when elements_counted)
  size_t v6_elements = 0;
  bool elements_counted = false;  // false: counting would need a dump (the ruleset changed
                                  // since this process last committed, or it never did)
  std::vector<ChainCounter> counters;
  uint32_t generation = 0;
  // Where the generation counts: it starts again at each boot and in each network namespace.
  std::string boot_id;  // /proc/sys/kernel/random/boot_id
  uint64_t netns = 0;   // inode of the caller's network namespace
  // Every configured chain, set and rule as iocwall wants it, in an awake table it owns.
  bool Enforcing() const {
    return table_present && table_owned && !table_dormant && sets_present && chains_present;
  }
};

// What the backend last committed (or found in the kernel and verified), with where it holds:
// the ruleset generation right after, the table's handle, the boot and the network namespace.
// Kept across processes (the state directory) so that a restart, a --once from cron or a
// --restore does not need a set dump (quadratic in the kernel: about a minute at 1M elements)
// to know what the kernel holds.
struct AppliedCopy {
  std::string table;
  std::string spec;  // the TableSpec it was made under: another layout is not this copy's
  uint32_t generation = 0;
  uint64_t table_handle = 0;
  std::string boot_id;
  uint64_t netns = 0;
  int64_t full_read_at = 0;  // when the sets were last known whole: a dump, or their creation
  bool timeouts = false;     // expires are meaningful (sets with per-element timeouts)
  FamilyRanges v4;           // ranges, and expires when timeouts
  FamilyRanges v6;
  const FamilyRanges& of(Family f) const { return f == Family::kV4 ? v4 : v6; }
  FamilyRanges& of(Family f) { return f == Family::kV4 ? v4 : v6; }
};

class SetBackend {
 public:
  virtual ~SetBackend() = default;

  // Makes the kernel hold exactly `desired`, in ONE transaction: creates the table, sets and
  // chains if missing, repairs drift (elements deleted or added by hand, set flushed, chain or
  // rule changed or deleted, table deleted), and applies the diff of elements. Either the whole
  // transaction commits or nothing changes. Sends nothing when the kernel already matches.
  // With TableSpec::timeouts, `desired`'s expires (empty: all permanent) become per-element
  // timeouts, and a changed expiry is a refresh in the same transaction.
  virtual Status Reconcile(const IntervalSet& desired, ApplyResult* result) = 0;

  // Reads the kernel: presence of the objects, element counts, per-chain counters. Does not
  // dump elements (dumps are quadratic in the kernel).
  virtual Status ReadStatus(KernelStatus* status) = 0;

  // Reads every element of both sets (a dump: slow for very large sets; for --explain and tests).
  // With timeouts, `expires` holds each range's expiry as the kernel has it (0: permanent).
  virtual Status ReadElements(IntervalSet* current) = 0;

  // Per-element counters, most hit first (needs element_counters).
  virtual Status ReadTopHits(size_t n, std::vector<ElementHits>* hits) = 0;

  // Looks addresses up one by one without a dump (NFT_MSG_GETSETELEM, a tree walk each in the
  // kernel, so usable at any set size): for each address, the start of the element of the
  // family's set that covers it, or nullopt when none does.
  virtual Status Lookup(Family family, std::span<const u128> addresses,
                        std::vector<std::optional<u128>>* starts) = 0;

  // Deletes table inet `table` if iocwall created it (it carries the ownership mark); an
  // error, and no change, when it does not. `*removed` says whether there was one to delete
  // (absent is a success).
  virtual Status RemoveTable(const std::string& table, bool* removed) = 0;

  // Deletes iocwall's own table (RemoveTable of the configured name).
  Status Flush() {
    bool removed = false;
    return RemoveTable(TableName(), &removed);
  }
  virtual std::string TableName() const = 0;

  // The copy of what was last committed, to save (nullptr: none, or not trusted).
  virtual const AppliedCopy* Applied() const { return nullptr; }
  // A copy saved by an earlier process: used only if it was made in this boot, in this
  // namespace, for this table, and the kernel still holds it (the generation, or the table's
  // structure and element lookups, say so); otherwise the kernel is read as before.
  virtual void Seed(AppliedCopy copy) { (void)copy; }
};

}  // namespace iocwall
