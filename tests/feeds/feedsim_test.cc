// The simulator itself: a double is only useful if it behaves like the real endpoint.
#include <gtest/gtest.h>
#include <httplib.h>

#include "feeds/feedsim/sim_time.h"
#include "feeds/feedsim/store.h"
#include "feeds/sekoia_source.h"
#include "tests/feeds/sim_fixture.h"

namespace iocwall {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::FeedSim;
using testing::FeedSimPath;
using testing::RunProgram;
using testing::TempDir;

TEST(FeedSimStoreTest, CursorsRoundTripAndRejectForgeries) {
  for (size_t offset : {0ul, 1ul, 10000ul, 123456789ul}) {
    for (std::optional<int64_t> after :
         {std::optional<int64_t>(), std::optional<int64_t>(0), std::optional<int64_t>(1714564800),
          std::optional<int64_t>(-86400)}) {
      const auto state = feedsim::DecodeCursor(feedsim::EncodeCursor(offset, after));
      ASSERT_TRUE(state.has_value()) << feedsim::EncodeCursor(offset, after);
      EXPECT_EQ(*state, (feedsim::CursorState{offset, after}));
    }
  }
  EXPECT_FALSE(feedsim::DecodeCursor("c1.10.0").has_value());
  EXPECT_FALSE(feedsim::DecodeCursor("garbage").has_value());
  EXPECT_FALSE(feedsim::DecodeCursor(feedsim::EncodeCursor(5) + "x").has_value());
  // The filter cannot be edited out of, or into, a cursor.
  const std::string c2 = feedsim::EncodeCursor(7, 1714564800);
  EXPECT_EQ(c2.rfind("c2.", 0), 0u);
  std::string edited = c2;
  edited[edited.find('.', 3) + 1] ^= 1;
  EXPECT_FALSE(feedsim::DecodeCursor(edited).has_value()) << edited;
  EXPECT_FALSE(feedsim::DecodeCursor("c1" + c2.substr(2)).has_value());
}

TEST(FeedSimStoreTest, ModifiedAfterSeesCreationsUpdatesAndRevocations) {
  feedsim::Store store;
  store.Declare("c");
  store.Add("c", {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}, "ipv4-addr", 1000, 9000);
  store.Add("c", {"192.0.2.2"}, "ipv4-addr", 2000, 9500);  // validity extended at 2000
  EXPECT_EQ(store.Revoke("c", {"192.0.2.3"}, 2500), 1u);
  EXPECT_EQ(store.Revoke("c", {"192.0.2.3"}, 2600), 0u) << "already revoked: no change";
  store.Add("c", {"192.0.2.5"}, "ipv4-addr", 3000, 3100);  // expires at 3100
  feedsim::PageRequest req;
  req.limit = 10;
  req.now = 4000;
  req.modified_after = 1000;
  auto values = [&] {
    std::vector<std::string> out;
    for (const feedsim::Indicator* ind : store.Scan("c", req).items) out.push_back(ind->value);
    return out;
  };
  EXPECT_EQ(values(), (std::vector<std::string>{"192.0.2.2", "192.0.2.3", "192.0.2.5"}));
  req.modified_after = 2000;  // strictly after
  EXPECT_EQ(values(), (std::vector<std::string>{"192.0.2.3", "192.0.2.5"}));
  req.include_revoked = false;
  req.skip_expired = true;  // the filters combine
  EXPECT_TRUE(values().empty());
  req.modified_after.reset();
  EXPECT_EQ(values(), (std::vector<std::string>{"192.0.2.1", "192.0.2.2", "192.0.2.4"}));
}

TEST(FeedSimStoreTest, ScanFiltersExpiredRevokedAndFutureIndicators) {
  feedsim::Store store;
  store.Declare("c");
  store.Add("c", {"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"}, "ipv4-addr", 1000, 5000);
  store.Revoke("c", {"192.0.2.2"}, 1500);
  feedsim::PageRequest req;
  req.limit = 10;
  req.now = 2000;
  req.skip_expired = true;
  req.include_revoked = false;
  feedsim::Page page = store.Scan("c", req);
  ASSERT_EQ(page.items.size(), 2u);  // the IPv6 value was not of the announced type
  EXPECT_EQ(page.items[0]->value, "192.0.2.1");
  EXPECT_EQ(page.items[1]->value, "192.0.2.3");
  req.now = 6000;
  EXPECT_TRUE(store.Scan("c", req).items.empty());
  req.skip_expired = false;
  req.include_revoked = true;
  EXPECT_EQ(store.Scan("c", req).items.size(), 3u);
  req.now = 500;  // before valid_from
  EXPECT_TRUE(store.Scan("c", req).items.empty());
}

TEST(FeedSimTest, HelpDocumentsEveryFlag) {
  std::string out;
  ASSERT_EQ(RunProgram({FeedSimPath(), "--help"}, &out), 0);
  for (const char* flag :
       {"--port",         "--tls-port",        "--tls-dir",    "--api-key-file", "--auth",
        "--collection",   "--collections-dir", "--valid-days", "--clock-offset", "--fault",
        "--strict-query", "--request-log",     "--port-file",  "gen-ca",         "add",
        "revoke",         "cut_after_bytes",   "retry_after",  "slow_ms",        "garbage",
        "html",           "/_sim/clock"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(RunProgram({FeedSimPath(), "--port", "0"}, &out), 0) << "a key file is required";
}

class FeedSimServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ = new FeedSim({"--collection", "live", "--collection", "gen=gen:5"});
  }
  static void TearDownTestSuite() { delete sim_; }
  void SetUp() override { ASSERT_TRUE(sim_->ok()) << sim_->error(); }

  httplib::Client Client() const {
    httplib::Client c(sim_->http_url().substr(0, sim_->http_url().size() - 4));
    return c;
  }

  std::vector<std::string> Fetch(const std::string& collection) {
    SekoiaOptions o;
    o.url = sim_->https_url();
    o.collection_id = collection;
    o.api_key_file = sim_->key_file();
    o.ca_file = sim_->ca_file();
    FakeClock clock;
    const FetchResult r = SekoiaSource(o, &clock).Fetch();
    EXPECT_TRUE(r.status.ok()) << r.status.message();
    std::vector<std::string> out;
    for (const Prefix& p : r.prefixes) out.push_back(p.ToString());
    return out;
  }

  int Cli(const std::string& cmd, std::vector<std::string> extra) {
    std::vector<std::string> argv = {FeedSimPath(),    cmd,
                                     "--url",          sim_->https_url(),
                                     "--collection",   "live",
                                     "--api-key-file", sim_->key_file(),
                                     "--ca-file",      sim_->ca_file()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string out;
    const int rc = RunProgram(argv, &out);
    EXPECT_EQ(out.find(sim_->key()), std::string::npos);
    return rc;
  }

  static FeedSim* sim_;
};

FeedSim* FeedSimServerTest::sim_ = nullptr;

TEST_F(FeedSimServerTest, AddThenRevokeThroughTheCommandLine) {
  EXPECT_TRUE(Fetch("live").empty());
  ASSERT_EQ(Cli("add", {"198.51.100.66", "2001:db8::66", "203.0.113.0/24"}), 0);
  EXPECT_EQ(Fetch("live"),
            (std::vector<std::string>{"198.51.100.66", "203.0.113.0/24", "2001:db8::66"}));
  ASSERT_EQ(Cli("revoke", {"198.51.100.66"}), 0);
  EXPECT_EQ(Fetch("live"), (std::vector<std::string>{"203.0.113.0/24", "2001:db8::66"}));
  EXPECT_NE(Cli("add", {"not-an-ip"}), 0);
}

TEST_F(FeedSimServerTest, AddedIndicatorsExpireAfterTheirValidity) {
  ASSERT_EQ(Cli("add", {"--valid-for", "2", "192.0.2.200"}), 0);
  auto has = [](const std::vector<std::string>& v) {
    return std::find(v.begin(), v.end(), "192.0.2.200") != v.end();
  };
  EXPECT_TRUE(has(Fetch("live")));
  ASSERT_TRUE(sim_->SetClockOffset(3 * 86400));
  EXPECT_FALSE(has(Fetch("live")));
  ASSERT_TRUE(sim_->SetClockOffset(0));
}

TEST_F(FeedSimServerTest, ChecksAuthAndQuery) {
  httplib::Client c = Client();
  const std::string path = "/api/v2/inthreat/collections/gen/objects";
  auto res = c.Get(path + "?format=text&limit=10");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  c.set_bearer_token_auth(sim_->key());
  res = c.Get(path + "?format=text&limit=10");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "11.0.0.0\n11.0.0.1\n11.0.0.2\n11.0.0.3\n11.0.0.4\n");
  EXPECT_TRUE(res->has_header("Cursor"));
  for (const char* bad :
       {"?format=text&limit=10001", "?format=json&limit=2001", "?format=csv",
        "?format=text&limit=0", "?format=text&skip_expired=yes", "?format=text&cursor=forged"}) {
    res = c.Get(path + bad);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << bad;
  }
  res = c.Get("/api/v2/inthreat/collections/nope/objects?format=text");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  // JSON: the last page's next_cursor is null.
  res = c.Get(path + "?format=json&limit=5");
  ASSERT_TRUE(res);
  const json page = json::parse(res->body);
  EXPECT_EQ(page["items"].size(), 5u);
  EXPECT_TRUE(page["next_cursor"].is_null());
  EXPECT_EQ(page["items"][0]["pattern"], "[ipv4-addr:value = '11.0.0.0']");
}

TEST_F(FeedSimServerTest, ModifiedAfterFiltersBothFormatsAndTravelsInTheCursor) {
  FeedSim sim({"--clock-offset", "-3600", "--collection", "m=gen:6"});
  ASSERT_TRUE(sim.ok()) << sim.error();
  ASSERT_TRUE(sim.SetClockOffset(0));
  const int64_t since = static_cast<int64_t>(time(nullptr)) - 600;
  ASSERT_TRUE(sim.RevokeIndicators("m", {"11.0.0.1"}));
  ASSERT_TRUE(sim.AddIndicators("m", {"192.0.2.50"}));
  httplib::Client c(sim.http_url().substr(0, sim.http_url().size() - 4));
  c.set_bearer_token_auth(sim.key());
  const std::string path = "/api/v2/inthreat/collections/m/objects";
  const std::string after = "&modified_after=" + feedsim::FormatTime(since);

  // Text, one entry a page: the filter holds on the pages fetched by cursor alone.
  std::string all;
  std::string query = "?format=text&limit=1" + after;
  for (int page = 0; page < 5; ++page) {
    auto res = c.Get(path + query);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    all += res->body;
    if (res->body.empty()) break;
    query = "?format=text&limit=1&cursor=" + res->get_header_value("Cursor");
  }
  EXPECT_EQ(all, "11.0.0.1\n192.0.2.50\n");
  const std::vector<json> log = sim.Requests();
  ASSERT_GE(log.size(), 3u);
  EXPECT_EQ(log.back()["modified_after"], feedsim::FormatTime(since)) << "carried by the cursor";
  EXPECT_FALSE(log.back()["params"].contains("modified_after"));

  auto res = c.Get(path + "?format=text&include_revoked=false" + after);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "192.0.2.50\n");

  res = c.Get(path + "?format=json&limit=1" + after);
  ASSERT_TRUE(res);
  json page = json::parse(res->body);
  ASSERT_EQ(page["items"].size(), 1u);
  EXPECT_EQ(page["items"][0]["revoked"], true);
  EXPECT_GE(feedsim::ParseTime(page["items"][0]["modified"].get<std::string>()), since);
  ASSERT_TRUE(page["next_cursor"].is_string());
  res = c.Get(path + "?format=json&limit=1&cursor=" + page["next_cursor"].get<std::string>());
  ASSERT_TRUE(res);
  page = json::parse(res->body);
  ASSERT_EQ(page["items"].size(), 1u);
  EXPECT_EQ(page["items"][0]["name"], "192.0.2.50");

  for (const std::string& bad : {"?format=json" + after + "&cursor=" + feedsim::EncodeCursor(1),
                                 std::string("?format=json&modified_after=yesterday"),
                                 std::string("?format=json&modified_after=")}) {
    res = c.Get(path + bad);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << bad;
  }
}

TEST_F(FeedSimServerTest, StrictModeWantsTheArticlesQuery) {
  FeedSim strict({"--strict-query", "--collection", "s=gen:3"});
  ASSERT_TRUE(strict.ok()) << strict.error();
  httplib::Client c(strict.http_url().substr(0, strict.http_url().size() - 4));
  c.set_basic_auth("username", strict.key());
  const std::string path = "/api/v2/inthreat/collections/s/objects";
  auto res = c.Get(path + "?format=text&limit=10000&skip_expired=true&include_revoked=false");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = c.Get(path + "?format=text&limit=100&skip_expired=true&include_revoked=false");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = c.Get(path +
              "?format=text&limit=10000&skip_expired=true&include_revoked=false"
              "&modified_after=2024-01-01T00:00:00Z");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST_F(FeedSimServerTest, UncompressedPagesEndWithAnEmptyPage) {
  FeedSim plain({"--compression", "none", "--collection", "full=gen:10000"});
  ASSERT_TRUE(plain.ok()) << plain.error();
  SekoiaOptions o;
  o.url = plain.https_url();
  o.collection_id = "full";
  o.api_key_file = plain.key_file();
  o.ca_file = plain.ca_file();
  o.request_timeout = std::chrono::milliseconds(5000);
  FakeClock clock;
  const FetchResult r = SekoiaSource(o, &clock).Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 10000u);
  EXPECT_EQ(r.pages, 2u);
  for (const json& q : plain.Requests()) EXPECT_FALSE(q.contains("content_encoding"));
}

TEST_F(FeedSimServerTest, LoadsJsonIndicatorFilesWithValidityAndRevocation) {
  TempDir dir;
  const std::string file =
      dir.Write("c.json",
                R"([{"value": "192.0.2.1", "valid_until": "2999-01-01T00:00:00Z"},
          {"value": "192.0.2.2", "valid_until": "2000-01-01T00:00:00Z"},
          {"value": "192.0.2.3", "revoked": true},
          {"value": "192.0.2.4", "valid_until": null}])");
  FeedSim sim({"--collection", "c=" + file});
  ASSERT_TRUE(sim.ok()) << sim.error();
  SekoiaOptions o;
  o.url = sim.https_url();
  o.collection_id = "c";
  o.api_key_file = sim.key_file();
  o.ca_file = sim.ca_file();
  o.format = SekoiaFormat::kJson;
  FakeClock clock;
  const FetchResult r = SekoiaSource(o, &clock).Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.prefixes.size(), 2u);
  EXPECT_EQ(r.prefixes[0].ToString(), "192.0.2.1");
  EXPECT_EQ(r.valid_until[0], 32472144000);
  EXPECT_EQ(r.prefixes[1].ToString(), "192.0.2.4");
  EXPECT_EQ(r.valid_until[1], 0);
}

}  // namespace
}  // namespace iocwall
