// Prometheus text exposition for node_exporter's textfile collector, and the counts behind it
// that outlive one cycle. Names and labels follow the Prometheus naming guide: base units
// (seconds, bytes), `_total` on counters, one dimension per label.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "core/status.h"
#include "netlink/set_backend.h"

namespace iocwall {

// A source name ("collection ID", "file /path") as two labels.
struct SourceLabels {
  std::string type;  // "collection", "file"
  std::string name;  // the collection id or the path
};
SourceLabels SplitSourceName(const std::string& source);

// A kernel counter name ("forward_v6_daddr") as labels: hook "forward", family "ipv6",
// direction "daddr" (the blocked address was the destination) or "saddr" (the source).
struct CounterLabels {
  std::string hook;
  std::string family;
  std::string direction;
};
std::optional<CounterLabels> SplitCounterName(const std::string& counter);

// Upper bounds of the cycle duration histogram, in seconds. A cycle is a fetch (seconds to
// minutes for a large collection behind a rate limit) and one transaction.
inline constexpr std::array<double, 10> kCycleDurationBuckets = {0.1, 0.25, 0.5, 1,  2.5,
                                                                 5,   10,   30,  60, 300};

// What the metrics count across cycles, for the life of the agent process (and across SIGHUP
// reloads, which rebuild everything else). A restart starts them at zero again: that is what
// Prometheus expects of a counter (rate() and increase() treat a drop as a reset), and
// iocwall_start_time_seconds tells a restart apart.
class MetricsRecorder {
 public:
  explicit MetricsRecorder(int64_t start_time, std::string version);

  // Counts one finished cycle (its outcome, duration, element changes and fetches).
  void Record(const CycleReport& report);

  // The whole exposition: the counts so far, the last report, and the kernel (nullptr: the
  // kernel could not be read, and no kernel figure is written rather than a wrong one).
  std::string Render(const CycleReport& last, const KernelStatus* kernel, int64_t now) const;

 private:
  int64_t start_time_;
  std::string version_;
  std::map<Outcome, uint64_t> cycles_;
  std::array<uint64_t, kCycleDurationBuckets.size()> duration_buckets_{};  // not cumulative
  uint64_t duration_count_ = 0;
  double duration_sum_ = 0;
  uint64_t elements_added_ = 0;
  uint64_t elements_removed_ = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> fetches_;  // source -> (ok, failed)
};

// Writes the file atomically (a temporary file renamed over it, so node_exporter never reads
// half of it) with exactly `mode`, whatever the process umask (the unit's is 0077).
Status WriteMetricsFile(const std::string& path, const std::string& text, mode_t mode);

}  // namespace iocwall
