#include "agent/schedule.h"

#include <algorithm>

namespace iocwall {

const char* WakeReasonName(WakeReason r) {
  switch (r) {
    case WakeReason::kInterval:
      return "interval";
    case WakeReason::kBackoff:
      return "back-off after a failed cycle";
    case WakeReason::kValidFrom:
      return "an indicator becomes valid";
  }
  return "unknown";
}

int FailuresAfter(int failures, Outcome o) {
  return o == Outcome::kEnforcedFresh ? 0 : failures + 1;
}

Wake NextWake(const SyncConfig& sync, int failures, int64_t next_valid_from, uint64_t random,
              Clock& clock) {
  Wake w;
  // After a failure, retry sooner (30 s, doubling) but never more often than the interval
  // allows the API: the WAF blocks clients that hammer it.
  auto base = sync.interval;
  if (failures > 0) {
    auto backoff = std::chrono::seconds(int64_t{30} << std::min(failures - 1, 10));
    if (backoff < base) w.reason = WakeReason::kBackoff;
    base = std::min(base, backoff);
  }
  const int64_t jitter = sync.jitter.count();
  w.wait =
      base + std::chrono::seconds(jitter > 0 ? static_cast<int64_t>(random % (jitter + 1)) : 0);
  // An indicator that becomes valid before then is blocked when it does, not a cycle later
  // (with one second to spare for the clock's rounding).
  if (next_valid_from > 0) {
    const auto until =
        std::chrono::seconds(std::max<int64_t>(next_valid_from - clock.NowUnix() + 1, 1));
    if (until < w.wait) {
      w.wait = until;
      w.reason = WakeReason::kValidFrom;
    }
  }
  w.at = clock.Now() + w.wait;
  return w;
}

}  // namespace iocwall
