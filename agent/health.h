// --status and --explain: what the kernel enforces (read from the kernel, not from memory)
// and what the state directory remembers, for a person or for monitoring.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/verify.h"
#include "core/text.h"
#include "netlink/set_backend.h"

namespace iocwall {

// Exit codes as monitoring plugins expect them.
enum class Health { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };
const char* HealthName(Health h);

struct StatusView {
  Health health = Health::kUnknown;
  std::vector<std::string> reasons;  // why the health is not OK
  KernelStatus kernel;
  std::string kernel_error;           // the kernel could not be read
  std::optional<CycleReport> report;  // the state directory's last report
  Verification verification;          // of the kernel against the last commit
  int64_t now = 0;
  std::vector<ElementHits> top;
};

// Health from the kernel and the last report (pure).
StatusView Evaluate(const Config& config, const KernelStatus* kernel,
                    const std::string& kernel_error, const std::optional<CycleReport>& report,
                    int64_t now, const Verification& verification = {});

// Line 1 of --status, a monitoring plugin's output (Nagios plugin guidelines):
// "iocwall STATE - reasons | perfdata", perfdata as label=value[UOM];warn;crit;min;max.
std::string StatusPluginLine(const Config& config, const StatusView& view);
std::string RenderStatusText(const Config& config, const StatusView& view);
// The version of --status --json's layout; raised when a field changes meaning or shape.
inline constexpr int kStatusJsonSchemaVersion = 2;
std::string RenderStatusJson(const Config& config, const StatusView& view);

// What --top says when per-element counters are off (it has nothing to rank): how to turn
// them on. Printed on stderr: --status's output and exit code stay what monitoring expects.
std::string TopCountersOffHint(const Config& config);

// "3m ago", "2h 5m", "never".
std::string Age(int64_t then, int64_t now);
std::string IsoTime(int64_t unix_time);

}  // namespace iocwall
