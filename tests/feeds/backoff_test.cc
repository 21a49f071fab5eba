// Back-off policy on a fake clock: exact waits, no real sleeping.
#include "feeds/backoff.h"

#include <gtest/gtest.h>

#include "tests/feeds/sim_fixture.h"

namespace iocwall {
namespace {

using Ms = std::chrono::milliseconds;
using testing::FakeClock;

BackoffOptions Defaults() { return BackoffOptions{}; }

TEST(BackoffTest, AtMostFiveRequestsInAnySecond) {
  FakeClock clock;
  Backoff b(&clock, Defaults(), 1);
  b.StartFetch();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.AwaitSlot().ok());
  EXPECT_TRUE(clock.sleeps.empty());
  ASSERT_TRUE(b.AwaitSlot().ok());
  ASSERT_EQ(clock.sleeps.size(), 1u);
  EXPECT_EQ(clock.sleeps[0], Ms(1000));
  // Spread out requests never wait.
  clock.Advance(Ms(5000));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(b.AwaitSlot().ok());
    clock.Advance(Ms(200));
  }
  EXPECT_EQ(clock.sleeps.size(), 1u);
}

TEST(BackoffTest, RateLimitCanBeDisabledForALocalMirror) {
  FakeClock clock;
  BackoffOptions o = Defaults();
  o.max_requests_per_second = 0;
  Backoff b(&clock, o, 1);
  b.StartFetch();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(b.AwaitSlot().ok());
  EXPECT_TRUE(clock.sleeps.empty());
}

TEST(BackoffTest, FullJitterStaysUnderTheExponentialCeiling) {
  FakeClock clock;
  BackoffOptions o = Defaults();
  o.base_delay = Ms(1000);
  o.max_delay = Ms(8000);
  Backoff b(&clock, o, 42);
  for (int attempt = 1; attempt <= 6; ++attempt) {
    const int64_t ceiling = std::min<int64_t>(8000, 1000LL << (attempt - 1));
    int64_t lo = ceiling, hi = 0;
    for (int i = 0; i < 2000; ++i) {
      const int64_t d = b.JitteredDelay(attempt).count();
      ASSERT_GE(d, 0);
      ASSERT_LE(d, ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter spreads over the whole range rather than clustering at the ceiling.
    EXPECT_LT(lo, ceiling / 10) << "attempt " << attempt;
    EXPECT_GT(hi, ceiling * 9 / 10) << "attempt " << attempt;
  }
}

TEST(BackoffTest, RetryAfterIsAFloorAndIsWaitedFor) {
  FakeClock clock;
  Backoff b(&clock, Defaults(), 7);
  b.StartFetch();
  ASSERT_TRUE(b.AwaitSlot().ok());
  b.RecordAnswer(true);
  const auto d = b.ScheduleRetry(1, 12);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d, Ms(12000));  // the jitter of attempt 1 is at most 1 s
  ASSERT_TRUE(b.AwaitSlot().ok());
  ASSERT_EQ(clock.sleeps.size(), 1u);
  EXPECT_EQ(clock.sleeps[0], Ms(12000));
}

TEST(BackoffTest, AttemptsAreBounded) {
  FakeClock clock;
  Backoff b(&clock, Defaults(), 3);
  EXPECT_TRUE(b.ScheduleRetry(1, std::nullopt).has_value());
  EXPECT_TRUE(b.ScheduleRetry(2, std::nullopt).has_value());
  EXPECT_FALSE(b.ScheduleRetry(3, std::nullopt).has_value());
}

TEST(BackoffTest, TwoErrorAnswersWithinTenSecondsPause) {
  FakeClock clock;
  Backoff b(&clock, Defaults(), 3);
  b.StartFetch();
  b.RecordAnswer(true);
  clock.Advance(Ms(9000));
  b.RecordAnswer(true);
  EXPECT_EQ(b.WaitNeeded(), Ms(30000));
  ASSERT_TRUE(b.AwaitSlot().ok());
  EXPECT_EQ(clock.total_slept(), Ms(30000));
  EXPECT_EQ(b.WaitNeeded(), Ms(0));
}

TEST(BackoffTest, ErrorsFurtherApartDoNotPause) {
  FakeClock clock;
  Backoff b(&clock, Defaults(), 3);
  b.RecordAnswer(true);
  clock.Advance(Ms(10001));
  b.RecordAnswer(true);
  b.RecordAnswer(false);
  EXPECT_EQ(b.WaitNeeded(), Ms(0));
}

TEST(BackoffTest, AWaitBeyondTheFetchBudgetFailsWithoutSleeping) {
  FakeClock clock;
  BackoffOptions o = Defaults();
  o.max_wait_per_fetch = Ms(20000);
  Backoff b(&clock, o, 3);
  b.StartFetch();
  b.RecordAnswer(true);
  b.RecordAnswer(true);  // a 30 s pause
  const Status s = b.AwaitSlot();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("WAF"), std::string::npos) << s.message();
  EXPECT_TRUE(clock.sleeps.empty());
  // The next cycle's fetch, 30 s later, goes at once.
  clock.Advance(Ms(30000));
  b.StartFetch();
  EXPECT_TRUE(b.AwaitSlot().ok());
  EXPECT_TRUE(clock.sleeps.empty());
}

TEST(BackoffTest, BudgetCountsEveryWaitOfOneFetch) {
  FakeClock clock;
  BackoffOptions o = Defaults();
  o.max_wait_per_fetch = Ms(15000);
  o.waf_error_limit = 0;  // isolate the Retry-After waits
  Backoff b(&clock, o, 3);
  b.StartFetch();
  ASSERT_TRUE(b.ScheduleRetry(1, 10).has_value());
  ASSERT_TRUE(b.AwaitSlot().ok());  // 10 s
  ASSERT_TRUE(b.ScheduleRetry(2, 10).has_value());
  const Status s = b.AwaitSlot();  // 10 more would make 20 s > 15 s
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Retry-After"), std::string::npos) << s.message();
}

TEST(BackoffTest, PacingOfALargeCollectionDoesNotUseTheBudget) {
  FakeClock clock;
  BackoffOptions o = Defaults();
  o.max_wait_per_fetch = Ms(5000);
  Backoff b(&clock, o, 3);
  b.StartFetch();
  // 1,000 pages at 5 requests/s: about 200 s of pacing, far over a 5 s budget, all allowed.
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(b.AwaitSlot().ok()) << "request " << i;
  EXPECT_FALSE(clock.sleeps.empty());
  // A Retry-After wait still counts.
  ASSERT_TRUE(b.ScheduleRetry(1, 10).has_value());
  EXPECT_FALSE(b.AwaitSlot().ok());
}

}  // namespace
}  // namespace iocwall
