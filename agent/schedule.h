// When the daemon syncs next, and why: the decision alone (no sleep, no signal), from the
// configuration, the failures so far and the clock, so that back-off and the wake-up for an
// indicator becoming valid are tested with a fake clock. main.cc sleeps until it, or until a
// signal asks for a cycle sooner.
#pragma once

#include <chrono>
#include <cstdint>

#include "agent/agent.h"
#include "agent/config.h"
#include "core/clock.h"

namespace iocwall {

enum class WakeReason {
  kInterval,   // [sync] interval (plus jitter) after the last cycle
  kBackoff,    // the last cycles failed: sooner than the interval (30 s, doubling)
  kValidFrom,  // an indicator becomes valid before then: blocked when it does
};
const char* WakeReasonName(WakeReason r);

struct Wake {
  std::chrono::steady_clock::time_point at;  // on clock.Now()'s monotonic time line
  std::chrono::seconds wait{0};
  WakeReason reason = WakeReason::kInterval;
};

// Consecutive failed cycles once a cycle that ended `o` is counted: only a fresh list
// enforced is a success (a kept last good list still wants the feed back soon).
int FailuresAfter(int failures, Outcome o);

// The next cycle after one that just ended. `failures`: consecutive failed cycles
// (FailuresAfter). `next_valid_from`: the report's earliest valid_from still ahead (0: none).
// `random`: a draw of a uniform generator, for the jitter that spreads a fleet's requests.
Wake NextWake(const SyncConfig& sync, int failures, int64_t next_valid_from, uint64_t random,
              Clock& clock);

}  // namespace iocwall
