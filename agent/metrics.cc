#include "agent/metrics.h"

#include <sstream>

namespace iocwall {
namespace {

// Label values escape backslash, double quote and newline (exposition format).
std::string Label(const std::string& v) {
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

}  // namespace

std::string RenderMetrics(const CycleReport& r, const KernelStatus* k, int64_t now) {
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  metric("iocwall_last_cycle_timestamp_seconds", "gauge", "Start of the last sync cycle.");
  o << "iocwall_last_cycle_timestamp_seconds " << r.started_at << "\n";
  metric("iocwall_last_cycle_success", "gauge", "1 if the last cycle enforced the fresh list.");
  o << "iocwall_last_cycle_success " << (r.outcome == Outcome::kEnforcedFresh ? 1 : 0) << "\n";
  metric("iocwall_enforced_list_age_seconds", "gauge", "Age of the enforced list.");
  o << "iocwall_enforced_list_age_seconds "
    << (r.enforced_fetched_at > 0 ? now - r.enforced_fetched_at : -1) << "\n";
  metric("iocwall_enforced_elements", "gauge", "Elements of the enforced list.");
  o << "iocwall_enforced_elements " << r.enforced_elements << "\n";
  metric("iocwall_apply_operations", "gauge", "Element operations in the last transaction.");
  o << "iocwall_apply_operations{op=\"add\"} " << r.apply.added << "\n";
  o << "iocwall_apply_operations{op=\"remove\"} " << r.apply.removed << "\n";
  metric("iocwall_source_up", "gauge", "1 if the source's last fetch succeeded.");
  for (const auto& s : r.sources) {
    o << "iocwall_source_up{source=\"" << Label(s.name) << "\"} " << (s.ok ? 1 : 0) << "\n";
  }
  metric("iocwall_source_entries", "gauge", "Entries in the source's last good fetch.");
  for (const auto& s : r.sources) {
    o << "iocwall_source_entries{source=\"" << Label(s.name) << "\"} " << s.entries << "\n";
  }
  metric("iocwall_source_rejected_lines", "gauge", "Lines of the last fetch that were skipped.");
  for (const auto& s : r.sources) {
    o << "iocwall_source_rejected_lines{source=\"" << Label(s.name) << "\"} " << s.rejected << "\n";
  }
  metric("iocwall_source_last_success_timestamp_seconds", "gauge", "Last successful fetch.");
  for (const auto& s : r.sources) {
    o << "iocwall_source_last_success_timestamp_seconds{source=\"" << Label(s.name) << "\"} "
      << s.last_success << "\n";
  }
  if (k) {
    metric("iocwall_kernel_elements", "gauge", "Elements in the kernel sets.");
    o << "iocwall_kernel_elements{family=\"ipv4\"} " << k->v4_elements << "\n";
    o << "iocwall_kernel_elements{family=\"ipv6\"} " << k->v6_elements << "\n";
    metric("iocwall_dropped_packets_total", "counter", "Packets dropped, per counter.");
    for (const auto& c : k->counters) {
      o << "iocwall_dropped_packets_total{counter=\"" << Label(c.name) << "\"} " << c.packets
        << "\n";
    }
    metric("iocwall_dropped_bytes_total", "counter", "Bytes dropped, per counter.");
    for (const auto& c : k->counters) {
      o << "iocwall_dropped_bytes_total{counter=\"" << Label(c.name) << "\"} " << c.bytes << "\n";
    }
  }
  return o.str();
}

}  // namespace iocwall
