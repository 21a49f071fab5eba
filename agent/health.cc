#include "agent/health.h"

#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/metrics.h"
#include "agent/report_json.h"

namespace iocwall {

const char* HealthName(Health h) {
  switch (h) {
    case Health::kOk:
      return "OK";
    case Health::kWarning:
      return "WARNING";
    case Health::kCritical:
      return "CRITICAL";
    case Health::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

std::string Age(int64_t then, int64_t now) {
  if (then <= 0) return "never";
  int64_t d = now - then;
  if (d < 0) return "in the future";
  if (d < 60) return std::to_string(d) + "s ago";
  if (d < 3600) return std::to_string(d / 60) + "m ago";
  if (d < 86400) return std::to_string(d / 3600) + "h " + std::to_string(d % 3600 / 60) + "m ago";
  return std::to_string(d / 86400) + "d " + std::to_string(d % 86400 / 3600) + "h ago";
}

std::string IsoTime(int64_t t) {
  if (t <= 0) return "never";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Long on purpose: every check of --status in the order of its precedence (UNKNOWN, then
// CRITICAL, then WARNING), so that which condition wins stays visible in one place.
StatusView Evaluate(const Config& config, const KernelStatus* kernel,
                    const std::string& kernel_error, const std::optional<CycleReport>& report,
                    int64_t now, const Verification& verification) {
  StatusView v;
  v.now = now;
  v.verification = verification;
  v.report = report;
  v.kernel_error = kernel_error;
  if (kernel) v.kernel = *kernel;
  if (!kernel) {
    v.health = Health::kUnknown;
    v.reasons.push_back("cannot read the kernel: " + kernel_error);
    return v;
  }
  v.health = Health::kOk;
  auto worsen = [&](Health h, std::string why) {
    if (static_cast<int>(h) > static_cast<int>(v.health)) v.health = h;
    v.reasons.push_back(std::move(why));
  };
  const std::string table = "table inet " + config.nft.table;
  if (!kernel->table_present) {
    worsen(Health::kCritical, "not enforcing: " + table + " is absent");
  } else if (!kernel->table_owned) {
    worsen(Health::kCritical, "not enforcing: " + table +
                                  " was not created by iocwall (it lacks iocwall's mark) and "
                                  "iocwall never changes it; set [nftables] table to a name "
                                  "of its own");
  } else if (kernel->table_dormant) {
    worsen(Health::kCritical, "not enforcing: " + table +
                                  " is dormant (its chains see no packet); the next cycle "
                                  "wakes it");
  } else if (!kernel->sets_present || !kernel->chains_present) {
    worsen(Health::kCritical,
           "not enforcing: " + table + " is incomplete (a set, chain or rule is missing)");
  }
  if (!report) {
    worsen(Health::kWarning, "no cycle has run yet (no state in " + config.sync.state_dir + ")");
    return v;
  }
  if (verification.ran && !verification.failures.empty()) {
    worsen(Health::kCritical, "not enforcing the list iocwall committed: " +
                                  std::to_string(verification.failures.size()) + " of " +
                                  std::to_string(verification.checked) +
                                  " sampled elements are not in the kernel (" +
                                  verification.failures.front() + "); the next cycle repairs it");
  } else if (kernel->Enforcing() && !verification.ran && !kernel->elements_counted &&
             report->enforced_elements > 0) {
    worsen(Health::kWarning,
           "not verified: the state holds no record of iocwall's last commit "
           "to " +
               table + " (the next cycle writes one)");
  }
  for (const auto& t : report->stale_tables) {
    worsen(Health::kWarning, "table inet " + t +
                                 ", enforced under a previous [nftables] table name, is still "
                                 "in the kernel");
  }
  // The anchors' worst failure: the agent says healthy while the kernel set is empty. Compare
  // what the kernel really holds with what the agent enforced.
  if (kernel->table_present && kernel->elements_counted) {
    size_t held = kernel->v4_elements + kernel->v6_elements;
    if (held == 0 && report->enforced_elements > 0) {
      worsen(Health::kCritical, "not enforcing: the kernel sets are empty, the agent enforced " +
                                    Count(report->enforced_elements, "element", "elements"));
    } else if (held != report->enforced_elements) {
      worsen(Health::kWarning, "drift: the kernel holds " + Count(held, "element", "elements") +
                                   ", the agent enforced " +
                                   std::to_string(report->enforced_elements) +
                                   " (repaired at the next cycle)");
    }
  }
  if (report->enforced_fetched_at > 0) {
    int64_t age = now - report->enforced_fetched_at;
    if (age > config.sync.max_age.count()) {
      worsen(Health::kCritical, "the enforced list was fetched " +
                                    Age(report->enforced_fetched_at, now) + ", over max_age");
    }
  } else {
    worsen(Health::kCritical, "no list has ever been enforced");
  }
  switch (report->outcome) {
    case Outcome::kEnforcedFresh:
      break;
    case Outcome::kKeptLastGood:
      worsen(Health::kWarning, "last cycle: " + report->summary);
      break;
    case Outcome::kGuardRefused:
      worsen(Health::kWarning,
             "last cycle: a guard refused the fresh list: " +
                 (report->guard_reasons.empty() ? report->summary : report->guard_reasons[0]));
      break;
    case Outcome::kFailed:
      worsen(Health::kWarning, "last cycle: " + report->summary);
      break;
    case Outcome::kNothing:
      worsen(Health::kWarning, "last cycle: " + report->summary);
      break;
  }
  for (const auto& w : report->warnings) worsen(Health::kWarning, w);
  return v;
}

std::string TopCountersOffHint(const Config& c) {
  const std::string file = c.path.empty() ? "the configuration file" : c.path;
  return "--top: no hits to rank: per-element counters are off; set element_counters = true "
         "in the [nftables] section of " +
         file +
         " and reload iocwall (systemctl reload iocwall): its next cycle creates the sets "
         "again with a counter on each element, counting from then";
}

namespace {

// Plugin output may not hold '|' (it starts the performance data) or a newline (it ends line 1).
std::string PluginText(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? '/' : (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

uint64_t DroppedPackets(const StatusView& v) {
  uint64_t n = 0;
  for (const auto& c : v.kernel.counters) n += c.packets;
  return n;
}

}  // namespace

std::string StatusPluginLine(const Config& config, const StatusView& v) {
  std::string text;
  if (!v.reasons.empty()) {
    for (size_t i = 0; i < v.reasons.size(); ++i) text += (i ? "; " : "") + v.reasons[i];
  } else if (v.report) {
    const CycleReport& r = *v.report;
    text = Count(r.enforced_elements, "element", "elements") + " enforced from " +
           Count(r.sources.size(), "source", "sources") + ", list fetched " +
           Age(r.enforced_fetched_at, v.now);
  } else {
    text = "no report";
  }
  // Performance data (label=value[UOM];warn;crit;min;max): only the figures this run knows.
  std::string perf;
  auto add = [&](const std::string& item) { perf += (perf.empty() ? "" : " ") + item; };
  if (v.report) {
    add("elements=" + std::to_string(v.report->enforced_elements) + ";;;0");
    if (v.report->enforced_fetched_at > 0) {
      add("age=" + std::to_string(v.now - v.report->enforced_fetched_at) + "s;;" +
          std::to_string(config.sync.max_age.count()) + ";0");
    }
    size_t failed = 0;
    for (const auto& s : v.report->sources) failed += s.ok ? 0 : 1;
    add("sources_failed=" + std::to_string(failed) + ";;;0;" +
        std::to_string(v.report->sources.size()));
  }
  if (v.kernel_error.empty() && v.kernel.table_present) {
    // Only a count the kernel gave: a figure verified against the commit is the commit's.
    if (v.kernel.elements_counted) {
      add("kernel_elements=" + std::to_string(v.kernel.v4_elements + v.kernel.v6_elements) +
          ";;;0");
    }
    add("dropped=" + std::to_string(DroppedPackets(v)) + "c");
  }
  std::string line = "iocwall " + std::string(HealthName(v.health)) + " - " + PluginText(text);
  if (!perf.empty()) line += " | " + perf;
  return line;
}

std::string RenderStatusText(const Config& config, const StatusView& v) {
  std::ostringstream o;
  o << StatusPluginLine(config, v) << "\n";
  for (const auto& r : v.reasons) o << "  ! " << r << "\n";
  o << "\nkernel (table inet " << config.nft.table << "): ";
  if (!v.kernel_error.empty()) {
    o << "unreadable: " << v.kernel_error << "\n";
  } else if (!v.kernel.table_present) {
    o << "absent\n";
  } else {
    o << "present, generation " << v.kernel.generation
      << (v.kernel.table_owned ? "" : ", NOT created by iocwall")
      << (v.kernel.table_dormant ? ", DORMANT" : "") << "\n";
    if (v.verification.ran) o << "  verified: " << v.verification.how << "\n";
    if (!v.kernel.elements_counted && v.report && v.report->committed) {
      o << "  " << config.nft.set_v4 << "  "
        << Count(v.report->committed->v4, "element", "elements") << " committed by iocwall\n";
      o << "  " << config.nft.set_v6 << "  "
        << Count(v.report->committed->v6, "element", "elements") << " committed by iocwall\n";
    } else if (v.kernel.elements_counted) {
      o << "  " << config.nft.set_v4 << "  " << Count(v.kernel.v4_elements, "element", "elements")
        << "\n";
      o << "  " << config.nft.set_v6 << "  " << Count(v.kernel.v6_elements, "element", "elements")
        << "\n";
    } else {
      o << "  " << config.nft.set_v4 << ", " << config.nft.set_v6
        << ": not counted (a dump of a set this large is slow; the agent applied "
        << Count(v.report ? v.report->enforced_elements : 0, "element", "elements") << ")\n";
    }
    if (!v.kernel.counters.empty()) o << "  dropped:\n";
    for (const auto& c : v.kernel.counters) {
      o << "    " << c.name << "  " << Count(c.packets, "packet", "packets") << ", "
        << Count(c.bytes, "byte", "bytes") << "\n";
    }
  }
  if (v.report) {
    const CycleReport& r = *v.report;
    o << "\nlast cycle: " << IsoTime(r.started_at) << " (" << Age(r.started_at, v.now)
      << "): " << OutcomeName(r.outcome) << "\n  " << r.summary << "\n";
    o << "last apply: " << IsoTime(r.last_apply_at) << " (" << Age(r.last_apply_at, v.now) << "), +"
      << r.apply.added << " -" << r.apply.removed << " elements, "
      << Count(r.apply.messages, "message", "messages") << " in one transaction\n";
    o << "enforced list: " << Count(r.enforced_elements, "element", "elements") << ", fetched "
      << Age(r.enforced_fetched_at, v.now) << " (max_age " << config.sync.max_age.count() << "s)\n";
    o << "\nsources:\n";
    for (const auto& s : r.sources) {
      o << "  " << s.name << ": " << (s.ok ? "ok" : "FAILED") << ", "
        << Count(s.entries, "entry", "entries") << ", last success " << Age(s.last_success, v.now)
        << ", " << Count(s.pages, "page", "pages") << ", " << Count(s.bytes, "byte", "bytes");
      if (s.mode == "changes") o << ", changes only (" << s.changes << " changed)";
      if (s.last_full > 0) o << ", last full fetch " << Age(s.last_full, v.now);
      if (s.rejected) o << ", " << Count(s.rejected, "line", "lines") << " skipped";
      if (s.expired) o << ", " << s.expired << " expired";
      o << "\n";
      if (!s.ok && !s.error.empty()) o << "      last error: " << s.error << "\n";
    }
    for (const auto& c : r.carved_out) o << "  note: " << c << "\n";
  }
  if (!v.top.empty()) {
    o << "\nmost hit entries:\n";
    for (const auto& h : v.top) {
      o << "  " << FormatRange(h.family == 4 ? Family::kV4 : Family::kV6, h.range) << "  "
        << Count(h.packets, "packet", "packets") << ", " << Count(h.bytes, "byte", "bytes") << "\n";
    }
  }
  return o.str();
}

std::string RenderStatusJson(const Config& config, const StatusView& v) {
  using Json = nlohmann::json;
  Json j;
  // 2: kernel.elements, kernel.elements_committed and kernel.counters became arrays of objects
  // (1 keyed them by set or counter name).
  j["schema_version"] = kStatusJsonSchemaVersion;
  j["health"] = HealthName(v.health);
  j["exit_code"] = static_cast<int>(v.health);
  j["reasons"] = v.reasons;
  j["plugin_output"] = StatusPluginLine(config, v);
  j["table"] = config.nft.table;
  Json k;
  k["readable"] = v.kernel_error.empty();
  if (!v.kernel_error.empty()) k["error"] = v.kernel_error;
  k["table_present"] = v.kernel.table_present;
  k["table_owned"] = v.kernel.table_owned;
  k["table_dormant"] = v.kernel.table_dormant;
  k["verified"] = v.verification.ran && v.verification.failures.empty();
  k["verification"] = {{"ran", v.verification.ran},
                       {"unchanged_since_commit", v.verification.unchanged},
                       {"checked", v.verification.checked},
                       {"failures", v.verification.failures},
                       {"how", v.verification.how}};
  k["sets_present"] = v.kernel.sets_present;
  k["chains_present"] = v.kernel.chains_present;
  k["generation"] = v.kernel.generation;
  k["elements_counted"] = v.kernel.elements_counted;
  auto per_set = [&](uint64_t v4, uint64_t v6) {
    return Json::array({{{"set", config.nft.set_v4}, {"family", "ipv4"}, {"elements", v4}},
                        {{"set", config.nft.set_v6}, {"family", "ipv6"}, {"elements", v6}}});
  };
  // Empty when not counted: no figure rather than a guess.
  k["elements"] = v.kernel.elements_counted ? per_set(v.kernel.v4_elements, v.kernel.v6_elements)
                                            : Json::array();
  k["elements_committed"] = v.report && v.report->committed
                                ? per_set(v.report->committed->v4, v.report->committed->v6)
                                : Json::array();
  Json counters = Json::array();
  for (const auto& c : v.kernel.counters) {
    Json item = {{"name", c.name}, {"packets", c.packets}, {"bytes", c.bytes}};
    if (auto l = SplitCounterName(c.name)) {
      item["hook"] = l->hook;
      item["family"] = l->family;
      item["direction"] = l->direction;
    }
    counters.push_back(item);
  }
  k["counters"] = counters;
  k["dropped_packets"] = DroppedPackets(v);
  j["kernel"] = k;
  if (v.report) {
    j["last_cycle"] = Json::parse(ReportToJson(*v.report));
    j["enforced_age_seconds"] =
        v.report->enforced_fetched_at > 0 ? v.now - v.report->enforced_fetched_at : -1;
  }
  Json top = Json::array();
  for (const auto& h : v.top) {
    top.push_back({{"entry", FormatRange(h.family == 4 ? Family::kV4 : Family::kV6, h.range)},
                   {"family", h.family == 4 ? "ipv4" : "ipv6"},
                   {"packets", h.packets},
                   {"bytes", h.bytes}});
  }
  j["top"] = top;
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace iocwall
