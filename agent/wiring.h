// Builds the real edges (feed sources, the netlink backend, the state store, host info) from a
// configuration. Kept apart from main so that tests can build the same things.
#pragma once

#include <memory>
#include <vector>

#include "agent/config.h"
#include "agent/host_info.h"
#include "core/clock.h"
#include "feeds/source.h"

namespace iocwall {

std::vector<std::unique_ptr<Source>> MakeSources(const Config& config, Clock* clock);

// What the host protects, as the configuration asks ([allowlist] connected_networks, and the
// minimum prefix lengths, below which a connected route is not protected).
HostInfoOptions HostOptionsFor(const Config& config);

// The checks of --check-config that need no network: the configuration as a whole, each
// source's options, and the API key file (present, non-empty, not readable by others).
Status CheckConfig(const Config& config);

}  // namespace iocwall
