#include "agent/verify.h"

#include <algorithm>

namespace iocwall {
namespace {

// A sample this close to its expiry may already be gone from the kernel (timer rounding):
// it proves nothing either way.
constexpr int64_t kExpiryMarginSeconds = 5;

}  // namespace

Verification VerifyKernel(SetBackend* backend, const TableSpec& spec, const KernelStatus& kernel,
                          const CommitRecord& c, int64_t now) {
  Verification v;
  if (!kernel.table_present || c.table != spec.table) return v;
  v.ran = true;
  v.unchanged = !c.boot_id.empty() && c.boot_id == kernel.boot_id && c.netns == kernel.netns &&
                c.table_handle == kernel.table_handle && c.generation == kernel.generation;
  for (Family f : {Family::kV4, Family::kV6}) {
    std::vector<const SampleRange*> picked;
    std::vector<u128> addrs;
    for (const auto& s : c.samples) {
      if (s.family != f) continue;
      if (s.expires != 0 && s.expires <= now + kExpiryMarginSeconds) {
        ++v.skipped;
        continue;
      }
      picked.push_back(&s);
      addrs.push_back(s.range.first);
      addrs.push_back(s.range.last);
    }
    if (addrs.empty()) continue;
    std::vector<std::optional<u128>> starts;
    Status st = backend->Lookup(f, addrs, &starts);
    const std::string& set = f == Family::kV4 ? spec.set_v4 : spec.set_v6;
    if (!st.ok()) {
      v.failures.push_back("set " + set + " could not be looked up: " + st.message());
      continue;
    }
    for (size_t i = 0; i < picked.size(); ++i) {
      ++v.checked;
      const Range& r = picked[i]->range;
      const auto& a = starts[2 * i];
      const auto& b = starts[2 * i + 1];
      if (!a && !b) {
        v.failures.push_back("set " + set + " lacks " + FormatRange(f, r));
      } else if (a != r.first || b != r.first) {
        v.failures.push_back("set " + set + " holds " + FormatRange(f, r) +
                             " as another element (reshaped by hand)");
      }
    }
  }
  const size_t total = c.samples.size() - v.skipped;
  if (v.unchanged) {
    v.how = "ruleset unchanged since iocwall's commit (generation " + std::to_string(c.generation) +
            "), and " + std::to_string(v.checked) + " of " + std::to_string(total) +
            " sampled elements looked up in the kernel";
  } else {
    v.how = "the ruleset changed since iocwall's commit (generation " +
            std::to_string(c.generation) + " -> " + std::to_string(kernel.generation) +
            "): table, chains, rules and flags read back, and " + std::to_string(v.checked) +
            " sampled elements looked up in the kernel (a change to elements outside the "
            "sample is found and repaired by the next cycle)";
  }
  return v;
}

}  // namespace iocwall
