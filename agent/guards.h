// Guards: rules that refuse a fresh result that looks wrong, so that a broken feed cannot
// silently open the firewall. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace iocwall {

struct GuardSource {
  std::string name;
  size_t entries = 0;           // accepted entries in this fetch, still valid
  size_t previous_entries = 0;  // entries of its last good list still valid (0 when none)
};

struct GuardInput {
  bool have_previous = false;    // something was enforced before
  size_t previous_elements = 0;  // kernel elements of the enforced list
  size_t new_elements = 0;       // kernel elements of the fresh result
  unsigned max_shrink_percent = 50;
  uint64_t max_entries = 1000000;
  size_t min_source_loss = 10;  // a source losing fewer entries is not checked for shrinking
  std::vector<GuardSource> sources;
};

struct GuardVerdict {
  bool ok = true;
  std::vector<std::string> reasons;  // one sentence each, for the log and --status
};

GuardVerdict CheckGuards(const GuardInput& in);

}  // namespace iocwall
