#include "feeds/backoff.h"

#include <algorithm>

namespace iocwall {

namespace {

using std::chrono::duration_cast;

std::string Seconds(Backoff::Ms d) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

Backoff::Backoff(Clock* clock, BackoffOptions options, uint64_t seed)
    : clock_(clock), options_(options), rng_(seed) {}

void Backoff::StartFetch() { waited_this_fetch_ = Ms{0}; }

void Backoff::SetFetchHooks(std::function<Ms()> time_left, std::function<void()> tick) {
  time_left_ = std::move(time_left);
  tick_ = std::move(tick);
}

Backoff::Ms Backoff::WaitNeeded() {
  const TimePoint now = clock_->Now();
  TimePoint ready = now;
  pause_reason_.clear();
  pacing_only_ = false;
  if (options_.max_requests_per_second > 0 &&
      recent_requests_.size() >= static_cast<size_t>(options_.max_requests_per_second)) {
    const TimePoint slot = recent_requests_.front() + std::chrono::seconds(1);
    if (slot > ready) {
      ready = slot;
      pause_reason_ = "rate limit of " + std::to_string(options_.max_requests_per_second) +
                      " requests/s (Sekoia's WAF)";
      pacing_only_ = true;
    }
  }
  if (retry_not_before_ > ready) {
    ready = retry_not_before_;
    pause_reason_ = retry_reason_;
    pacing_only_ = false;
  }
  if (paused_until_ > ready) {
    ready = paused_until_;
    pacing_only_ = false;
    pause_reason_ = "pause after " + std::to_string(options_.waf_error_limit) +
                    " error answers within " + Seconds(options_.waf_window) + " (Sekoia's WAF)";
  }
  // Rounded up: a wait cut short by a fraction of a millisecond put a sixth request inside the
  // WAF's one-second window (found by iocwall-feedsim --waf, 1 run in 4).
  return std::chrono::ceil<Ms>(ready - now);
}

Status Backoff::AwaitSlot() {
  const Ms wait = WaitNeeded();
  if (wait > Ms{0}) {
    // Plain pacing (at most a second a request, and max_pages bounds the requests) is the
    // price of a large collection, not trouble: only back-off and WAF pauses use the budget.
    // Otherwise a collection of over 300 pages could never be fetched at 5 requests/s.
    if (!pacing_only_ && waited_this_fetch_ + wait > options_.max_wait_per_fetch) {
      return Status::Error("would wait " + Seconds(wait) + " for the " + pause_reason_ +
                           ", beyond the fetch's budget of " +
                           Seconds(options_.max_wait_per_fetch) + "; trying again next cycle");
    }
    if (time_left_) {
      const Ms left = time_left_();
      if (wait >= left) {
        return Status::Error("would wait " + Seconds(wait) + " for the " + pause_reason_ +
                             ", beyond the fetch's deadline (" + Seconds(std::max(left, Ms{0})) +
                             " left); trying again next cycle");
      }
    }
    if (tick_) {
      // In slices, so that the caller can show it is alive during a long pause.
      for (Ms left = wait; left > Ms{0};) {
        const Ms slice = std::min(left, Ms{1000});
        clock_->SleepFor(slice);
        left -= slice;
        tick_();
      }
    } else {
      clock_->SleepFor(wait);
    }
    if (!pacing_only_) waited_this_fetch_ += wait;
  }
  const TimePoint now = clock_->Now();
  recent_requests_.push_back(now);
  const size_t keep = static_cast<size_t>(std::max(options_.max_requests_per_second, 0));
  while (recent_requests_.size() > keep) recent_requests_.pop_front();
  return Status::Ok();
}

void Backoff::RecordAnswer(bool error_answer) {
  const TimePoint now = clock_->Now();
  // The WAF counts a request when it arrives, which is after it was sent (a TLS handshake
  // first, say): counted from its answer instead, the pacing can never run ahead of the WAF's
  // window. Found by iocwall-feedsim --waf: 5 requests/s by send time was 6 in a second at the
  // server when the first one opened the connection.
  if (!recent_requests_.empty()) recent_requests_.back() = now;
  if (!error_answer) return;
  recent_errors_.push_back(now);
  while (!recent_errors_.empty() && now - recent_errors_.front() > options_.waf_window) {
    recent_errors_.pop_front();
  }
  if (options_.waf_error_limit > 0 &&
      recent_errors_.size() >= static_cast<size_t>(options_.waf_error_limit)) {
    paused_until_ = std::max(paused_until_, now + options_.waf_pause);
    recent_errors_.clear();  // the pause starts a fresh count
  }
}

Backoff::Ms Backoff::JitteredDelay(int attempt) {
  // Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. The shift is bounded so that
  // a large attempt number cannot overflow.
  const int shift = std::clamp(attempt - 1, 0, 20);
  const int64_t ceiling =
      std::min<int64_t>(options_.max_delay.count(), options_.base_delay.count() << shift);
  if (ceiling <= 0) return Ms{0};
  std::uniform_int_distribution<int64_t> dist(0, ceiling);
  return Ms{dist(rng_)};
}

std::optional<Backoff::Ms> Backoff::ScheduleRetry(int attempt,
                                                  std::optional<int64_t> retry_after_seconds) {
  if (attempt >= options_.max_attempts) return std::nullopt;
  Ms delay = JitteredDelay(attempt);
  retry_reason_ = "back-off before attempt " + std::to_string(attempt + 1);
  if (retry_after_seconds && *retry_after_seconds > 0) {
    // Clamped so that an absurd header cannot overflow the arithmetic; the fetch budget then
    // turns a long wait into a failure.
    const int64_t seconds = std::min<int64_t>(*retry_after_seconds, 86400);
    delay = std::max(delay, Ms{seconds * 1000});
    retry_reason_ += " (the server's Retry-After: " + std::to_string(seconds) + " s)";
  }
  retry_not_before_ = clock_->Now() + delay;
  return delay;
}

}  // namespace iocwall
