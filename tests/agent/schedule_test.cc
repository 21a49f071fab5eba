// The daemon's schedule against a fake clock: the interval, the back-off after failures (never
// beyond the interval), the jitter, and the wake-up for an indicator becoming valid.
#include "agent/schedule.h"

#include <gtest/gtest.h>

#include "tests/agent/fakes.h"

namespace iocwall {
namespace {

using std::chrono::seconds;

class ScheduleTest : public ::testing::Test {
 protected:
  ScheduleTest() {
    sync_.interval = seconds(300);
    sync_.jitter = seconds(0);
  }
  SyncConfig sync_;
  testing::FakeClock clock_;
};

TEST_F(ScheduleTest, AFreshListWaitsTheInterval) {
  Wake w = NextWake(sync_, 0, 0, 0, clock_);
  EXPECT_EQ(w.wait, seconds(300));
  EXPECT_EQ(w.reason, WakeReason::kInterval);
  EXPECT_EQ(w.at, clock_.Now() + seconds(300));
}

TEST_F(ScheduleTest, FailuresBackOffFrom30sDoublingUpToTheInterval) {
  EXPECT_EQ(NextWake(sync_, 1, 0, 0, clock_).wait, seconds(30));
  EXPECT_EQ(NextWake(sync_, 1, 0, 0, clock_).reason, WakeReason::kBackoff);
  EXPECT_EQ(NextWake(sync_, 2, 0, 0, clock_).wait, seconds(60));
  EXPECT_EQ(NextWake(sync_, 4, 0, 0, clock_).wait, seconds(240));
  // Never more often than the interval lets the API be asked, never less often either.
  Wake w = NextWake(sync_, 5, 0, 0, clock_);
  EXPECT_EQ(w.wait, seconds(300));
  EXPECT_EQ(w.reason, WakeReason::kInterval);
  // The doubling stops at 2^10 (no overflow after days of failures).
  sync_.interval = seconds(86400);
  EXPECT_EQ(NextWake(sync_, 1000, 0, 0, clock_).wait, seconds(30 << 10));
}

TEST_F(ScheduleTest, OnlyAFreshListResetsTheFailures) {
  EXPECT_EQ(FailuresAfter(3, Outcome::kEnforcedFresh), 0);
  EXPECT_EQ(FailuresAfter(3, Outcome::kKeptLastGood), 4);
  EXPECT_EQ(FailuresAfter(0, Outcome::kGuardRefused), 1);
  EXPECT_EQ(FailuresAfter(0, Outcome::kFailed), 1);
  EXPECT_EQ(FailuresAfter(0, Outcome::kNothing), 1);
}

TEST_F(ScheduleTest, JitterAddsUpToItsValue) {
  sync_.jitter = seconds(30);
  EXPECT_EQ(NextWake(sync_, 0, 0, 0, clock_).wait, seconds(300));
  EXPECT_EQ(NextWake(sync_, 0, 0, 30, clock_).wait, seconds(330));
  EXPECT_EQ(NextWake(sync_, 0, 0, 31, clock_).wait, seconds(300));
  EXPECT_EQ(NextWake(sync_, 0, 0, 45, clock_).wait, seconds(314));
}

TEST_F(ScheduleTest, AnIndicatorBecomingValidWakesTheDaemonASecondAfter) {
  Wake w = NextWake(sync_, 0, clock_.NowUnix() + 100, 0, clock_);
  EXPECT_EQ(w.wait, seconds(101));
  EXPECT_EQ(w.reason, WakeReason::kValidFrom);
  EXPECT_EQ(w.at, clock_.Now() + seconds(101));
  // Later than the interval: the interval comes first.
  w = NextWake(sync_, 0, clock_.NowUnix() + 1000, 0, clock_);
  EXPECT_EQ(w.wait, seconds(300));
  EXPECT_EQ(w.reason, WakeReason::kInterval);
  // Already past (the cycle took long): at least one second, not a busy loop.
  EXPECT_EQ(NextWake(sync_, 0, clock_.NowUnix() - 50, 0, clock_).wait, seconds(1));
  // Sooner than a back-off too.
  EXPECT_EQ(NextWake(sync_, 1, clock_.NowUnix() + 5, 0, clock_).reason, WakeReason::kValidFrom);
}

TEST_F(ScheduleTest, TheWakeFollowsTheClock) {
  clock_.Advance(1000);
  Wake w = NextWake(sync_, 0, 0, 0, clock_);
  EXPECT_EQ(w.at, clock_.Now() + seconds(300));
  EXPECT_STREQ(WakeReasonName(WakeReason::kValidFrom), "an indicator becomes valid");
}

}  // namespace
}  // namespace iocwall
