// --explain: is one address blocked, and why (or why not)? From the configuration, the last
// good lists in the state directory, the host's protected addresses and one kernel lookup:
// every input is handed in, so the answer is tested without root or a kernel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/host_info.h"
#include "agent/state.h"
#include "core/prefix.h"
#include "core/status.h"
#include "netlink/set_backend.h"

namespace iocwall {

// The one IP address --explain takes (a prefix or a name is a usage error, with the message).
Result<Prefix> ParseExplainAddress(const std::string& text);

struct ExplainSource {
  std::string name;
  Result<std::optional<Snapshot>> snapshot = std::optional<Snapshot>();  // as the store read it
  // The entries the feed wrote otherwise than they were taken (host bits set), from the last
  // report: the operator recognises the feed's own text, not the widened prefix.
  std::vector<WidenedLine> widened;
};

struct ExplainInput {
  Prefix address;  // one address (ParseExplainAddress)
  int64_t now = 0;
  std::vector<ProtectedAddress> host;  // the host's addresses, gateways, API endpoint
  std::vector<ExplainSource> sources;
};

// Why an entry listing the address does not block it.
enum class Refusal {
  kExpired,          // its valid_until has passed
  kNotYetValid,      // its valid_from is still ahead
  kTooShort,         // shorter than [sync] min_prefix_v4 / min_prefix_v6: refused whole
  kAlwaysProtected,  // the address is in loopback, link-local, multicast, ...
  kAllowlisted,      // the address is in an [allowlist] prefix
  kHost,             // the address is the host's own, a gateway, the API endpoint
};

struct ExplainListing {
  std::string source;
  SnapshotEntry entry;
  std::optional<WidenedLine> feed;  // the feed's own text when it differs from the entry
  std::vector<Refusal> refusals;    // empty: the last good list puts it in force here
  std::vector<std::string> why;     // one operator-readable line per refusal
};

struct ExplainResult {
  bool blocked = false;  // the kernel blocks the address (exit 0; else 1)
  bool protected_address = false;
  std::vector<ExplainListing> listings;
  std::string text;  // what --explain prints
};

// Reads the kernel through `kernel` (ReadStatus, then Lookup: no dump).
ExplainResult Explain(const Config& config, const ExplainInput& input, SetBackend& kernel);

}  // namespace iocwall
