// Clock: time behind an interface so that back-off, intervals and expiry can be tested with a
// fake clock. The real implementation lives outside the pure core.
#pragma once

#include <chrono>
#include <cstdint>

namespace iocwall {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, seconds since the Unix epoch (for validity and "since when").
  virtual int64_t NowUnix() = 0;
  // Monotonic time, for durations and back-off.
  virtual std::chrono::steady_clock::time_point Now() = 0;
  virtual void SleepFor(std::chrono::milliseconds d) = 0;
};

// Real clock (defined in core/clock.cc; the only part of core that touches the OS).
Clock& SystemClock();

}  // namespace iocwall
