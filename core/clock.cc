// The real Clock: the only part of the core that touches the OS.
#include "core/clock.h"

#include <thread>

namespace iocwall {
namespace {

class RealClock final : public Clock {
 public:
  int64_t NowUnix() override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point Now() override { return std::chrono::steady_clock::now(); }
  void SleepFor(std::chrono::milliseconds d) override { std::this_thread::sleep_for(d); }
};

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

}  // namespace iocwall
