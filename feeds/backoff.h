// Backoff: when the feed client may send its next request, and whether a failed request is
// worth another attempt. Pure policy over the Clock interface, so tests drive it with a fake
// clock and assert the exact waits.
//
// Three rules combine, the longest wait wins:
//  - retries back off exponentially with full jitter (a random wait in [0, base * 2^(n-1)],
//    capped), and never sooner than a Retry-After the server sent;
//  - Sekoia's WAF allows at most 5 requests per second (a sliding one-second window);
//  - after 2 error answers (4xx/5xx) within 10 s the WAF blocks the client for 30 s to 10 min,
//    so the client pauses on its own before it would be blocked.
// A fetch has a budget of waiting; a wait beyond it fails the fetch (the agent keeps its last
// good list and tries again next cycle) instead of stalling the agent for minutes.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace iocwall {

struct BackoffOptions {
  int max_attempts = 3;  // per page, the first try included
  std::chrono::milliseconds base_delay{1000};
  std::chrono::milliseconds max_delay{30000};  // cap on one exponential step
  int max_requests_per_second = 5;             // 0: no rate limit (a local mirror)
  int waf_error_limit = 2;                     // error answers within waf_window ...
  std::chrono::milliseconds waf_window{10000};
  std::chrono::milliseconds waf_pause{30000};  // ... make the client pause this long
  std::chrono::milliseconds max_wait_per_fetch{60000};
};

class Backoff {
 public:
  using Ms = std::chrono::milliseconds;

  Backoff(Clock* clock, BackoffOptions options, uint64_t seed);

  const BackoffOptions& options() const { return options_; }

  // Starts the waiting budget of one fetch.
  void StartFetch();

  // For the fetch under way: time_left says how much of its deadline is left (a wait that would
  // reach it fails at once); tick is called at least once a second while AwaitSlot sleeps.
  // Either may be empty.
  void SetFetchHooks(std::function<Ms()> time_left, std::function<void()> tick);

  // How long the next request must wait under the rate limit, the WAF pause and any
  // Retry-After (without sleeping).
  Ms WaitNeeded();

  // Sleeps on the clock until the next request may go, then counts it as sent. Fails, without
  // sleeping, when the wait would exceed what is left of the fetch's budget; the message says
  // why ("pausing 30 s after 2 error answers within 10 s (Sekoia's WAF)").
  Status AwaitSlot();

  // The answer of the request just sent. An error answer is any 4xx/5xx (what the WAF counts).
  void RecordAnswer(bool error_answer);

  // After attempt number `attempt` (1-based) failed with a retryable error: sets the earliest
  // time of the next attempt and returns the chosen delay, or nullopt when attempts are used up.
  // retry_after_seconds, when the server sent it, is a floor on the delay.
  std::optional<Ms> ScheduleRetry(int attempt, std::optional<int64_t> retry_after_seconds);

  // The random part alone: the delay before retry number `attempt`, without Retry-After.
  Ms JitteredDelay(int attempt);

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  Clock* clock_;
  BackoffOptions options_;
  std::mt19937_64 rng_;
  bool pacing_only_ = false;  // the wait WaitNeeded() computed is plain rate-limit pacing
  std::deque<TimePoint> recent_requests_;  // at most max_requests_per_second entries
  std::deque<TimePoint> recent_errors_;    // within waf_window
  TimePoint paused_until_{};
  TimePoint retry_not_before_{};
  Ms waited_this_fetch_{0};
  std::string pause_reason_;
  std::function<Ms()> time_left_;
  std::function<void()> tick_;
  std::string retry_reason_;
};

}  // namespace iocwall
