#include "agent/metrics.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <sstream>

#include "agent/state.h"

namespace iocwall {
namespace {

// Label values escape backslash, double quote and newline (exposition format).
std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string Braces(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  return out + "}";
}

Labels SourceLabelsOf(const std::string& source) {
  SourceLabels s = SplitSourceName(source);
  return {{"source_type", s.type}, {"source", s.name}};
}

// Shortest decimal that reads back as the same double ("0.25", "300"), as Go's parser takes.
std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    o_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <typename T>
  void Sample(const std::string& name, const Labels& labels, T value) {
    o_ << name << Braces(labels) << ' ';
    if constexpr (std::is_floating_point_v<T>) {
      o_ << Number(value);
    } else {
      o_ << value;
    }
    o_ << '\n';
  }
  std::string str() const { return o_.str(); }

 private:
  std::ostringstream o_;
};

constexpr Outcome kOutcomes[] = {Outcome::kEnforcedFresh, Outcome::kKeptLastGood,
                                 Outcome::kGuardRefused, Outcome::kFailed, Outcome::kNothing};

}  // namespace

SourceLabels SplitSourceName(const std::string& source) {
  size_t sp = source.find(' ');
  if (sp == std::string::npos) return {"unknown", source};
  return {source.substr(0, sp), source.substr(sp + 1)};
}

std::optional<CounterLabels> SplitCounterName(const std::string& counter) {
  // <hook>_<v4|v6>_<saddr|daddr>, as netlink/nft_backend.cc names them.
  size_t b = counter.rfind('_');
  if (b == std::string::npos || b == 0) return std::nullopt;
  size_t a = counter.rfind('_', b - 1);
  if (a == std::string::npos || a == 0) return std::nullopt;
  std::string family = counter.substr(a + 1, b - a - 1);
  std::string direction = counter.substr(b + 1);
  if (family != "v4" && family != "v6") return std::nullopt;
  if (direction != "saddr" && direction != "daddr") return std::nullopt;
  return CounterLabels{counter.substr(0, a), family == "v4" ? "ipv4" : "ipv6", direction};
}

MetricsRecorder::MetricsRecorder(int64_t start_time, std::string version)
    : start_time_(start_time), version_(std::move(version)) {}

void MetricsRecorder::Record(const CycleReport& r) {
  ++cycles_[r.outcome];
  for (size_t i = 0; i < kCycleDurationBuckets.size(); ++i) {
    if (r.seconds <= kCycleDurationBuckets[i]) {
      ++duration_buckets_[i];
      break;
    }
  }
  ++duration_count_;
  duration_sum_ += r.seconds;
  if (r.applied) {
    elements_added_ += r.apply.added;
    elements_removed_ += r.apply.removed;
  }
  for (const auto& s : r.sources) {
    // Sources not tried in this cycle (their report is remembered) are not a fetch.
    if (s.last_attempt < r.started_at || s.last_attempt == 0) continue;
    auto& f = fetches_[s.name];
    ++(s.ok ? f.first : f.second);
  }
}

// Long on purpose: one block per metric family, in the order of the exposition file and of
// iocwall(8)'s METRICS list.
std::string MetricsRecorder::Render(const CycleReport& r, const KernelStatus* k,
                                    int64_t now) const {
  Writer w;
  w.Family("iocwall_build_info", "gauge", "Always 1; the agent's version as a label.");
  w.Sample("iocwall_build_info", {{"version", version_}}, 1);
  w.Family("iocwall_start_time_seconds", "gauge",
           "When the agent process started (its counters start at zero then).");
  w.Sample("iocwall_start_time_seconds", {}, start_time_);

  w.Family("iocwall_cycles_total", "counter", "Sync cycles since the agent started, by outcome.");
  for (Outcome o : kOutcomes) {
    auto it = cycles_.find(o);
    w.Sample("iocwall_cycles_total", {{"outcome", OutcomeName(o)}},
             it == cycles_.end() ? uint64_t{0} : it->second);
  }
  w.Family("iocwall_cycle_duration_seconds", "histogram",
           "Duration of the sync cycles since the agent started (fetch and apply).");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kCycleDurationBuckets.size(); ++i) {
    cumulative += duration_buckets_[i];
    w.Sample("iocwall_cycle_duration_seconds_bucket", {{"le", Number(kCycleDurationBuckets[i])}},
             cumulative);
  }
  w.Sample("iocwall_cycle_duration_seconds_bucket", {{"le", "+Inf"}}, duration_count_);
  w.Sample("iocwall_cycle_duration_seconds_sum", {}, duration_sum_);
  w.Sample("iocwall_cycle_duration_seconds_count", {}, duration_count_);
  w.Family("iocwall_element_changes_total", "counter",
           "Set elements added or removed by committed transactions since the agent started.");
  w.Sample("iocwall_element_changes_total", {{"op", "add"}}, elements_added_);
  w.Sample("iocwall_element_changes_total", {{"op", "remove"}}, elements_removed_);

  w.Family("iocwall_last_cycle_timestamp_seconds", "gauge", "Start of the last sync cycle.");
  w.Sample("iocwall_last_cycle_timestamp_seconds", {}, r.started_at);
  w.Family("iocwall_last_cycle_duration_seconds", "gauge", "Duration of the last sync cycle.");
  w.Sample("iocwall_last_cycle_duration_seconds", {}, r.seconds);
  w.Family("iocwall_last_cycle_success", "gauge", "1 if the last cycle enforced the fresh list.");
  w.Sample("iocwall_last_cycle_success", {}, r.outcome == Outcome::kEnforcedFresh ? 1 : 0);
  w.Family("iocwall_enforced_elements", "gauge",
           "Set elements (ranges) of the list the agent enforced.");
  w.Sample("iocwall_enforced_elements", {}, r.enforced_elements);
  // No list ever enforced: no sample rather than a made-up age.
  if (r.enforced_fetched_at > 0) {
    w.Family("iocwall_enforced_list_fetched_timestamp_seconds", "gauge",
             "When the enforced list was fetched.");
    w.Sample("iocwall_enforced_list_fetched_timestamp_seconds", {}, r.enforced_fetched_at);
    w.Family("iocwall_enforced_list_age_seconds", "gauge",
             "Age of the enforced list when this file was written.");
    w.Sample("iocwall_enforced_list_age_seconds", {}, now - r.enforced_fetched_at);
  }

  w.Family("iocwall_source_up", "gauge", "1 if the source's last fetch succeeded.");
  for (const auto& s : r.sources)
    w.Sample("iocwall_source_up", SourceLabelsOf(s.name), s.ok ? 1 : 0);
  w.Family("iocwall_source_entries", "gauge", "Entries in the source's last good fetch.");
  for (const auto& s : r.sources)
    w.Sample("iocwall_source_entries", SourceLabelsOf(s.name), s.entries);
  w.Family("iocwall_source_rejected_lines", "gauge",
           "Lines of the source's last fetch that were skipped (not an IP address or refused).");
  for (const auto& s : r.sources) {
    w.Sample("iocwall_source_rejected_lines", SourceLabelsOf(s.name), s.rejected);
  }
  w.Family("iocwall_source_last_success_timestamp_seconds", "gauge",
           "Last successful fetch of the source (0: never).");
  for (const auto& s : r.sources) {
    w.Sample("iocwall_source_last_success_timestamp_seconds", SourceLabelsOf(s.name),
             s.last_success);
  }
  w.Family("iocwall_source_fetches_total", "counter",
           "Fetches of the source since the agent started, by result.");
  for (const auto& s : r.sources) {
    auto it = fetches_.find(s.name);
    auto counts = it == fetches_.end() ? std::pair<uint64_t, uint64_t>{} : it->second;
    Labels ok = SourceLabelsOf(s.name), failed = ok;
    ok.push_back({"result", "ok"});
    failed.push_back({"result", "failed"});
    w.Sample("iocwall_source_fetches_total", ok, counts.first);
    w.Sample("iocwall_source_fetches_total", failed, counts.second);
  }

  if (k) {
    w.Family("iocwall_kernel_enforcing", "gauge",
             "1 if the kernel holds iocwall's own table, awake, with every set, chain and rule.");
    w.Sample("iocwall_kernel_enforcing", {}, k->Enforcing() ? 1 : 0);
    // The kernel keeps no element count; without one (a dump would be needed) write none.
    if (k->elements_counted) {
      w.Family("iocwall_kernel_elements", "gauge", "Elements (ranges) in the kernel sets.");
      w.Sample("iocwall_kernel_elements", {{"family", "ipv4"}}, k->v4_elements);
      w.Sample("iocwall_kernel_elements", {{"family", "ipv6"}}, k->v6_elements);
    }
    auto labels = [](const ChainCounter& c) -> Labels {
      auto l = SplitCounterName(c.name);
      if (!l) return {{"hook", c.name}, {"family", ""}, {"direction", ""}};
      return {{"hook", l->hook}, {"family", l->family}, {"direction", l->direction}};
    };
    w.Family("iocwall_dropped_packets_total", "counter",
             "Packets matched by iocwall's rules (dropped or rejected), from the kernel counters.");
    for (const auto& c : k->counters)
      w.Sample("iocwall_dropped_packets_total", labels(c), c.packets);
    w.Family("iocwall_dropped_bytes_total", "counter",
             "Bytes matched by iocwall's rules (dropped or rejected), from the kernel counters.");
    for (const auto& c : k->counters) w.Sample("iocwall_dropped_bytes_total", labels(c), c.bytes);
  }
  return w.str();
}

Status WriteMetricsFile(const std::string& path, const std::string& text, mode_t mode) {
  // In a directory the exporter's user may reach: the directory is checked (root's, not
  // group/other-writable, not a link) and the temporary created O_EXCL|O_NOFOLLOW (state.h).
  return WriteFileAtomic(path, text, mode, "metrics directory");
}

}  // namespace iocwall
