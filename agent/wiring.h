// Builds the real edges (feed sources, the netlink backend, the state store, host info) from a
// configuration. Kept apart from main so that tests can build the same things.
#pragma once

#include <memory>
#include <string>
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

// The files and directories the configuration names, checked as the agent will use them: each
// [files] path and [api] ca_file a readable regular file; [sync] state_dir and the [metrics]
// textfile's directory trusted directories (safe_file.h), or absent where iocwall or its unit
// creates them. One message per problem, each naming the key and what to do; empty when none.
// Not part of CheckConfig: the daemon starts, and a reload applies, with a list file missing
// (that source keeps its last good list), while --check-config refuses it.
std::vector<std::string> CheckPaths(const Config& config);

}  // namespace iocwall
