// SetBackend: the kernel side of iocwall. Abstract so that the agent can be tested with a
// recording fake and run with a dry-run backend; the real one speaks netlink (nft_backend.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/core/diff.h"
#include "agent/core/interval_set.h"
#include "agent/core/status.h"

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
  bool kernel_read = false;  // the kernel was read (and the sets dumped): the generation had
                             // moved since our last commit, or this was the first cycle
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
  bool sets_present = false;
  bool chains_present = false;  // every configured base chain with its rules
  size_t v4_elements = 0;       // ranges in the kernel set (valid when elements_counted)
  size_t v6_elements = 0;
  bool elements_counted = false;  // false: counting would need a dump (the ruleset changed
                                  // since this process last committed, or it never did)
  std::vector<ChainCounter> counters;
  uint32_t generation = 0;
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

  // Deletes iocwall's table (and only it). Succeeds when the table is already absent.
  virtual Status Flush() = 0;
};

}  // namespace iocwall
