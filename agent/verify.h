// Verification of what the kernel enforces against what iocwall last committed, without a
// dump (set dumps are quadratic in the kernel: about a minute at 1M elements). Used by
// --status and --explain, in a process other than the one that committed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "netlink/set_backend.h"

namespace iocwall {

struct Verification {
  bool ran = false;        // there was a commit record and an enforcing table to check
  bool unchanged = false;  // same boot, namespace, table handle and ruleset generation as
                           // right after iocwall's commit: nobody changed any rule or set since
  size_t checked = 0;      // sampled ranges looked up (both ends of each)
  size_t skipped = 0;      // samples that have expired or are about to (timeouts)
  std::vector<std::string> failures;  // one sentence per missing or reshaped sample
  std::string how;                    // how it was verified, for the output
};

// Looks the record's samples up in the kernel (two non-dump lookups each: the first and the
// last address must both fall in an element starting at the sample's first address).
Verification VerifyKernel(SetBackend* backend, const TableSpec& spec, const KernelStatus& kernel,
                          const CommitRecord& committed, int64_t now);

}  // namespace iocwall
