// Prometheus text exposition, written atomically for node_exporter's textfile collector.
#pragma once

#include <string>

#include "agent/agent.h"
#include "netlink/set_backend.h"

namespace iocwall {

std::string RenderMetrics(const CycleReport& report, const KernelStatus* kernel, int64_t now);

}  // namespace iocwall
