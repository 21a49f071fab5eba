// The client against what Sekoia's real API serves (issue 14, item 6: iocwall-feedsim --sekoia)
// and the whole-fetch deadline with its progress callback (issue 12, item 3).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "feeds/sekoia_source.h"
#include "feeds/stix.h"
#include "tests/feeds/sim_fixture.h"

namespace iocwall {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::FakeClock;
using testing::FeedSim;
using testing::TempDir;

// A .json collection for the simulator: what public fixtures show of real items.
std::string FixtureCollection(int64_t now) {
  const auto t = [](int64_t unix) { return FormatRfc3339(unix); };
  json a = json::array();
  a.push_back({{"value", "198.51.100.1"}, {"valid_until", nullptr}});  // no end: left out
  a.push_back({{"value", "198.51.100.2"},
               {"pattern",
                "[ipv4-addr:value = '198.51.100.2' OR ipv4-addr:value = "
                "'198.51.100.3' OR ipv6-addr:value = '2001:db8::7']"}});
  a.push_back({{"value", "evil.example"}, {"pattern", "[domain-name:value = 'evil.example']"}});
  a.push_back(
      {{"value", "http://evil.example/x"}, {"pattern", "[url:value = 'http://evil.example/x']"}});
  a.push_back({{"value", "198.51.100.9"},
               {"valid_from", t(now + 86400)},
               {"valid_until", t(now + 10 * 86400)}});  // not valid yet
  a.push_back({{"value", "198.51.100.10"}, {"pattern", "[ipv4-addr:value='198.51.100.10']"}});
  return a.dump();
}

class SekoiaFidelityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new TempDir();
    const int64_t now = static_cast<int64_t>(time(nullptr));
    const std::string fixture = data_->Write("fixture.json", FixtureCollection(now));
    // Short WAF blocks so that the tests stay short; the rule is Sekoia's.
    sim_ = new FeedSim({"--sekoia", "--waf-block-min-ms", "1500", "--waf-block-max-ms", "2000",
                        "--collection", "p25000=gen:25000", "--collection", "mixed=gen:3000:mixed",
                        "--collection", "fixture=" + fixture, "--collection", "p100=gen:100"});
  }
  static void TearDownTestSuite() {
    delete sim_;
    delete data_;
  }

  void SetUp() override {
    ASSERT_TRUE(sim_->ok()) << sim_->error();
    ASSERT_TRUE(sim_->ClearFaults());
    // Every test starts out of any WAF block the previous one caused.
    WaitOutWaf();
    log_start_ = sim_->Requests().size();
  }

  void WaitOutWaf() {
    for (int i = 0;
         i < 40 && sim_->RawGet("/api/v2/inthreat/collections/p100/objects?limit=1") == 429; ++i) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    std::this_thread::sleep_for(milliseconds(1100));  // the probe's own request leaves the window
  }

  SekoiaOptions Options(const std::string& collection, bool json_format = true) const {
    SekoiaOptions o = sim_->ClientOptions(collection);
    o.format = json_format ? SekoiaFormat::kJson : SekoiaFormat::kText;
    return o;
  }

  std::vector<json> NewRequests() const { return sim_->RequestsSince(log_start_); }

  static TempDir* data_;
  static FeedSim* sim_;
  size_t log_start_ = 0;
};

TempDir* SekoiaFidelityTest::data_ = nullptr;
FeedSim* SekoiaFidelityTest::sim_ = nullptr;

TEST_F(SekoiaFidelityTest, FullStixItemsOfAboutThreeKilobytesParse) {
  SekoiaSource source(Options("mixed"), &SystemClock());
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.prefixes.size(), 3000u);
  EXPECT_EQ(r.stats.rejected, 0u);
  const double per_item = static_cast<double>(r.bytes) / 3000.0;
  EXPECT_GT(per_item, 2500.0);
  EXPECT_LT(per_item, 4500.0);
  ASSERT_EQ(r.valid_from.size(), 3000u);
  for (int64_t vf : r.valid_from) EXPECT_GT(vf, 0);
}

TEST_F(SekoiaFidelityTest, Base64CursorsAreUrlEncodedByTheClient) {
  SekoiaSource source(Options("p25000", /*json_format=*/false), &SystemClock());
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 25000u);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 4u);
  const std::string cursor = reqs[0]["cursor_out"];
  EXPECT_NE(cursor.find('+'), std::string::npos) << cursor;
  EXPECT_NE(cursor.find('/'), std::string::npos) << cursor;
  EXPECT_NE(cursor.find('='), std::string::npos) << cursor;
  EXPECT_EQ(reqs[1]["params"]["cursor"], cursor) << "arrived intact: the client encoded it";
  // Negative control: the same cursor sent without URL-encoding is refused ('+' is a space).
  std::string body;
  EXPECT_EQ(sim_->RawGet("/api/v2/inthreat/collections/p25000/objects?format=text&cursor=" + cursor,
                         &body),
            400)
      << body;
}

TEST_F(SekoiaFidelityTest, TheCursorIsNeverNullAndAnEmptyPageEndsTheWalk) {
  SekoiaOptions o = Options("p100");
  o.page_limit = 40;
  SekoiaSource source(o, &SystemClock());
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 100u);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 4u);  // 40, 40, 20, then the empty page
  for (const json& q : reqs) EXPECT_NE(q["cursor_out"], "") << "never null";
  EXPECT_EQ(reqs[3]["entries"], 0);
  EXPECT_EQ(reqs[3]["cursor_out"], reqs[3]["params"]["cursor"]) << "unchanged at the end";
}

TEST_F(SekoiaFidelityTest, ALimitOverTheMaximumIsCappedSilently) {
  std::string body;
  ASSERT_EQ(
      sim_->RawGet("/api/v2/inthreat/collections/mixed/objects?format=json&limit=5000", &body),
      200);
  const json page = json::parse(body);
  EXPECT_EQ(page["items"].size(), 2000u) << "capped to json's 2000, not refused";
  EXPECT_TRUE(page["next_cursor"].is_string());
}

TEST_F(SekoiaFidelityTest, BooleansAreAcceptedInEitherCase) {
  for (const char* v : {"true", "True", "TRUE", "false", "False"}) {
    EXPECT_EQ(sim_->RawGet(std::string("/api/v2/inthreat/collections/p100/objects?format=text&"
                                       "skip_expired=") +
                           v + "&include_revoked=" + v),
              200)
        << v;
    std::this_thread::sleep_for(milliseconds(250));  // under the WAF's rate
  }
  EXPECT_EQ(sim_->RawGet("/api/v2/inthreat/collections/p100/objects?skip_expired=yes"), 400);
}

TEST_F(SekoiaFidelityTest, RealItemsOrPatternsNonIpAndValidity) {
  SekoiaSource source(Options("fixture"), &SystemClock());
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  std::vector<std::string> got;
  for (const Prefix& p : r.prefixes) got.push_back(p.ToString());
  EXPECT_EQ(got, (std::vector<std::string>{"198.51.100.1", "198.51.100.2", "198.51.100.3",
                                           "2001:db8::7", "198.51.100.9", "198.51.100.10"}));
  EXPECT_EQ(r.stats.rejected, 2u) << "the domain and the URL: skipped and counted";
  ASSERT_EQ(r.valid_until.size(), 6u);
  ASSERT_EQ(r.valid_from.size(), 6u);
  EXPECT_EQ(r.valid_until[0], 0) << "no valid_until field: no end";
  const int64_t now = SystemClock().NowUnix();
  EXPECT_GT(r.valid_from[4], now + 86000) << "valid_from ahead is carried for the caller";
  EXPECT_LE(r.valid_from[0], now);
  // The three values of one OR pattern share its indicator's id and validity.
  EXPECT_EQ(r.ids[1], r.ids[2]);
  EXPECT_EQ(r.ids[1], r.ids[3]);
}

TEST_F(SekoiaFidelityTest, PagesComeOldestModifiedFirst) {
  const int64_t later = SystemClock().NowUnix() + 3600;
  ASSERT_TRUE(sim_->SetClockOffset(60));
  ASSERT_TRUE(sim_->AddIndicators("p100", {"11.0.0.5"}, later));  // re-added: modified now
  ASSERT_TRUE(sim_->SetClockOffset(0));
  SekoiaOptions o = Options("p100");
  o.page_limit = 30;
  SekoiaSource source(o, &SystemClock());
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.prefixes.size(), 100u) << "a re-sorted walk still misses nothing";
  EXPECT_EQ(r.prefixes.back().ToString(), "11.0.0.5") << "the youngest comes last";
  EXPECT_EQ(r.prefixes[5].ToString(), "11.0.0.6");
}

TEST_F(SekoiaFidelityTest, PacedRequestsStayUnderTheWafAndABurstIsBlocked) {
  // Twenty pages: at 5 requests/s the client never trips the WAF.
  SekoiaOptions o = Options("p100");
  o.page_limit = 5;
  {
    SekoiaSource source(o, &SystemClock());
    const FetchResult r = source.Fetch();
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_EQ(r.prefixes.size(), 100u);
    const std::vector<json> reqs = NewRequests();
    for (const json& q : reqs) {
      EXPECT_FALSE(q.contains("waf_blocked"))
          << "request " << q["seq"] << " at " << q["mono_us"].get<int64_t>() / 1000 << " ms";
    }
    if (HasFailure()) {
      for (const json& q : reqs) ADD_FAILURE() << q["mono_us"] << " " << q["status"];
    }
  }
  // Negative control: without pacing the burst is blocked and the fetch fails.
  const uint64_t blocks = sim_->Stats()["waf_blocks"].get<uint64_t>();
  o.backoff.max_requests_per_second = 0;
  o.backoff.max_attempts = 1;
  SekoiaSource burst(o, &SystemClock());
  const FetchResult r = burst.Fetch();
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.error, FetchError::kRateLimited) << r.status.message();
  EXPECT_TRUE(r.prefixes.empty());
  EXPECT_EQ(sim_->Stats()["waf_blocks"].get<uint64_t>(), blocks + 1);
}

TEST_F(SekoiaFidelityTest, TwoErrorsPauseTheClientLongerThanTheWafBlock) {
  // Two 500s within 10 s: the WAF blocks for 1.5 to 2 s. A client pausing 2.5 s after two
  // error answers comes back after the block.
  SekoiaOptions o = Options("p100");
  o.backoff.base_delay = milliseconds(10);
  o.backoff.waf_pause = milliseconds(2500);
  ASSERT_TRUE(sim_->AddFault({{"status", 500}, {"times", 2}}));
  {
    SekoiaSource source(o, &SystemClock());
    const FetchResult r = source.Fetch();
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_EQ(r.prefixes.size(), 100u);
    for (const json& q : NewRequests()) EXPECT_FALSE(q.contains("waf_blocked"));
  }
  // Negative control: a client that does not pause runs into the block.
  WaitOutWaf();
  log_start_ = sim_->Requests().size();
  o.backoff.waf_error_limit = 0;
  ASSERT_TRUE(sim_->AddFault({{"status", 500}, {"times", 2}}));
  SekoiaSource eager(o, &SystemClock());
  const FetchResult r = eager.Fetch();
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.http_status, 429) << r.status.message();
  EXPECT_TRUE(NewRequests().back().contains("waf_blocked"));
}

// --- The whole-fetch deadline (issue 12) -----------------------------------------------------

class FetchDeadlineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { sim_ = new FeedSim({"--collection", "p100=gen:100"}); }
  static void TearDownTestSuite() { delete sim_; }
  void SetUp() override {
    ASSERT_TRUE(sim_->ok()) << sim_->error();
    ASSERT_TRUE(sim_->ClearFaults());
  }
  static FeedSim* sim_;
};

FeedSim* FetchDeadlineTest::sim_ = nullptr;

TEST_F(FetchDeadlineTest, ADribblingServerFailsAtTheDeadlineNotAtTheEnd) {
  // Each page takes 0.6 s, under the 1 s per-request timeout: only the whole-fetch deadline
  // can stop it.
  ASSERT_TRUE(sim_->AddFault({{"dribble_ms", 600}, {"times", -1}}));
  SekoiaOptions o = sim_->ClientOptions("p100");
  o.page_limit = 20;  // five pages with entries, then an empty one
  o.request_timeout = milliseconds(1000);
  o.fetch_timeout = milliseconds(1500);
  std::atomic<int> ticks{0};
  SekoiaSource source(o, &SystemClock());
  source.SetProgressCallback([&](const FetchProgress&) { ++ticks; });
  const auto start = std::chrono::steady_clock::now();
  const FetchResult r = source.Fetch();
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.error, FetchError::kTimeout);
  EXPECT_NE(r.status.message().find("fetch_timeout (1 s)"), std::string::npos)
      << r.status.message();
  EXPECT_TRUE(r.prefixes.empty());
  EXPECT_LT(took, 2.5) << "stopped at the deadline";
  EXPECT_GE(ticks.load(), 2) << "the caller heard from the fetch meanwhile";

  // Negative control: with room, the same dribbling feed is fetched whole, in about 3 s.
  o.fetch_timeout = milliseconds(30000);
  SekoiaSource patient(o, &SystemClock());
  const FetchResult whole = patient.Fetch();
  ASSERT_TRUE(whole.status.ok()) << whole.status.message();
  EXPECT_EQ(whole.prefixes.size(), 100u);
}

TEST_F(FetchDeadlineTest, ABackOffWaitPastTheDeadlineFailsAtOnce) {
  ASSERT_TRUE(sim_->AddFault({{"status", 503}, {"retry_after", "20"}}));
  SekoiaOptions o = sim_->ClientOptions("p100");
  o.fetch_timeout = milliseconds(10000);
  FakeClock clock;
  SekoiaSource source(o, &clock);
  const FetchResult r = source.Fetch();
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("deadline"), std::string::npos) << r.status.message();
  EXPECT_EQ(clock.total_slept(), milliseconds(0));
}

TEST_F(FetchDeadlineTest, ProgressIsReportedDuringBackOffWaitsAndBetweenPages) {
  ASSERT_TRUE(sim_->AddFault({{"status", 429}, {"retry_after", "4"}}));
  SekoiaOptions o = sim_->ClientOptions("p100");
  o.page_limit = 50;
  FakeClock clock;
  std::vector<FetchProgress> seen;
  SekoiaSource source(o, &clock);
  source.SetProgressCallback([&](const FetchProgress& p) { seen.push_back(p); });
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_GE(clock.total_slept(), milliseconds(4000));
  for (milliseconds s : clock.sleeps) EXPECT_LE(s, milliseconds(1000)) << "waits in slices";
  // At least one a second of the 4 s wait, and one after each of the three pages.
  ASSERT_GE(seen.size(), 4u + 3u);
  EXPECT_EQ(seen.back().pages, 3u);
  EXPECT_EQ(seen.back().bytes, r.bytes);
  EXPECT_GE(seen.back().seconds, 4.0);
}

TEST(FetchDeadlineOptionsTest, TheDeadlineMustBePositive) {
  SekoiaOptions o;
  o.collection_id = "c";
  o.api_key_file = "/k";
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_EQ(o.fetch_timeout, milliseconds(300000)) << "well under the unit's WatchdogSec (10 min)";
  EXPECT_EQ(o.auth, SekoiaAuth::kBearer);
  o.fetch_timeout = milliseconds(0);
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace iocwall
