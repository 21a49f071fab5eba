// The Sekoia.io client against iocwall-feedsim over real HTTP(S) on 127.0.0.1.
#include "feeds/sekoia_source.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <set>

#include "tests/feeds/sim_fixture.h"

namespace iocwall {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::FakeClock;
using testing::FeedSim;
using testing::TempDir;

// The simulator's gen:N collections hold 11.0.0.0 + i.
Prefix Generated(uint32_t i) {
  Prefix p;
  p.family = Family::kV4;
  p.addr = (11u << 24) + i;
  p.len = 32;
  return p;
}

class SekoiaSimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new TempDir();
    const std::string small =
        data_->Write("small.txt", "198.51.100.7\n2001:db8::1\n203.0.113.0/24\nevil.example\n");
    std::string many_domains;
    for (int i = 0; i < 10; ++i) many_domains += "host" + std::to_string(i) + ".example\n";
    many_domains += "192.0.2.1\n";
    const std::string domains = data_->Write("domains.txt", many_domains);
    sim_ = new FeedSim({"--collection", "p100=gen:100", "--collection", "p10000=gen:10000",
                        "--collection", "p10001=gen:10001", "--collection", "p25000=gen:25000",
                        "--collection", "mixed=gen:3000:mixed", "--collection", "empty",
                        "--collection", "small=" + small, "--collection", "domains=" + domains});
  }
  static void TearDownTestSuite() {
    delete sim_;
    delete data_;
  }

  void SetUp() override {
    ASSERT_TRUE(sim_->ok()) << sim_->error();
    ASSERT_TRUE(sim_->ClearFaults());
    ASSERT_TRUE(sim_->SetClockOffset(0));
    log_start_ = sim_->Requests().size();
  }

  SekoiaOptions Options(const std::string& collection, bool https = true) const {
    return sim_->ClientOptions(collection, https);
  }

  FetchResult Fetch(const SekoiaOptions& o) {
    SekoiaSource source(o, &clock_);
    return source.Fetch();
  }

  // Requests the simulator logged since this test began.
  std::vector<json> NewRequests() const { return sim_->RequestsSince(log_start_); }

  void ExpectFailed(const FetchResult& r, FetchError e, const std::string& text) {
    EXPECT_FALSE(r.status.ok());
    EXPECT_EQ(FetchErrorName(r.error), std::string(FetchErrorName(e))) << r.status.message();
    EXPECT_NE(r.status.message().find(text), std::string::npos) << r.status.message();
    EXPECT_EQ(r.status.message().rfind(r.source + ": ", 0), 0u) << r.status.message();
    EXPECT_TRUE(r.prefixes.empty()) << "a failed fetch must not hand over a partial list";
    EXPECT_EQ(r.status.message().find(sim_->key()), std::string::npos);
  }

  static TempDir* data_;
  static FeedSim* sim_;
  size_t log_start_ = 0;
  FakeClock clock_;
};

TempDir* SekoiaSimTest::data_ = nullptr;
FeedSim* SekoiaSimTest::sim_ = nullptr;

TEST_F(SekoiaSimTest, ExactlyOnePageFollowsTheCursorToAnEmptyPage) {
  const FetchResult r = Fetch(Options("p10000"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 10000u);
  EXPECT_EQ(r.pages, 2u);  // the full first page cannot tell that nothing follows
  EXPECT_EQ(r.prefixes.front(), Generated(0));
  EXPECT_EQ(r.prefixes.back(), Generated(9999));
  EXPECT_EQ(r.stats.accepted, 10000u);
  EXPECT_EQ(r.stats.rejected, 0u);
  EXPECT_GT(r.bytes, 100000u);
  EXPECT_EQ(r.http_status, 200);

  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 2u);
  for (const json& q : reqs) {
    EXPECT_EQ(q["path"], "/api/v2/inthreat/collections/p10000/objects");
    EXPECT_EQ(q["params"]["format"], "text");
    EXPECT_EQ(q["params"]["limit"], "10000");
    EXPECT_EQ(q["params"]["skip_expired"], "true");
    EXPECT_EQ(q["params"]["include_revoked"], "false");
    EXPECT_EQ(q["auth_scheme"], "bearer") << "Sekoia documents Bearer: the default";
    EXPECT_EQ(q["auth_ok"], true);
    EXPECT_EQ(q["tls"], true);
    EXPECT_EQ(q["user_agent"], DefaultUserAgent());
    EXPECT_NE(q["accept_encoding"].get<std::string>().find("gzip"), std::string::npos);
  }
  EXPECT_FALSE(reqs[0]["params"].contains("cursor"));
  EXPECT_EQ(reqs[1]["params"]["cursor"], reqs[0]["cursor_out"]);
  EXPECT_EQ(reqs[1]["entries"], 0);
  EXPECT_EQ(reqs[0]["content_encoding"], "gzip");  // compressed transfer, decoded by libcurl
  // Keep-alive: the second page came over the first page's connection.
  EXPECT_EQ(reqs[0]["remote_port"], reqs[1]["remote_port"]);
}

TEST_F(SekoiaSimTest, OneMoreThanAPageTakesAShortSecondPage) {
  const FetchResult r = Fetch(Options("p10001"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 10001u);
  // A short page is not the end when it carries a cursor (a server may cap limit): the empty
  // third page is.
  EXPECT_EQ(r.pages, 3u);
  EXPECT_EQ(r.prefixes.back(), Generated(10000));
  EXPECT_EQ(NewRequests().size(), 3u);
}

TEST_F(SekoiaSimTest, TwentyFiveThousandArriveWholeAndInOrder) {
  const FetchResult r = Fetch(Options("p25000"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.prefixes.size(), 25000u);
  EXPECT_EQ(r.pages, 4u);  // three with entries, then the empty one
  for (uint32_t i = 0; i < 25000; ++i) {
    ASSERT_EQ(r.prefixes[i], Generated(i)) << "entry " << i;
  }
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 4u);
  std::set<int> ports;
  for (const json& q : reqs) ports.insert(q["remote_port"].get<int>());
  EXPECT_EQ(ports.size(), 1u) << "all pages over one kept-alive connection";
}

TEST_F(SekoiaSimTest, PageCountIsBounded) {
  SekoiaOptions o = Options("p25000");
  o.max_pages = 2;
  const FetchResult r = Fetch(o);
  ExpectFailed(r, FetchError::kBadBody, "max_pages");
  EXPECT_EQ(NewRequests().size(), 2u);
}

TEST_F(SekoiaSimTest, SmallerPageLimitStillFetchesEverything) {
  SekoiaOptions o = Options("p100");
  o.page_limit = 30;
  const FetchResult r = Fetch(o);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 100u);
  EXPECT_EQ(r.pages, 5u);
}

TEST_F(SekoiaSimTest, BasicAuthWorksToo) {
  SekoiaOptions o = Options("p100");
  o.auth = SekoiaAuth::kBasic;  // the seed article's way: the key as password
  const FetchResult r = Fetch(o);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 100u);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0]["auth_scheme"], "basic");
  EXPECT_EQ(reqs[0]["auth_ok"], true);
}

TEST_F(SekoiaSimTest, PlainHttpWorksOnlyWhenAllowed) {
  SekoiaOptions o = Options("p100", /*https=*/false);
  const FetchResult ok = Fetch(o);
  ASSERT_TRUE(ok.status.ok()) << ok.status.message();
  EXPECT_EQ(NewRequests().back()["tls"], false);

  o.allow_http = false;
  const size_t before = NewRequests().size();
  const FetchResult refused = Fetch(o);
  ExpectFailed(refused, FetchError::kConfig, "allow_http");
  EXPECT_EQ(NewRequests().size(), before) << "the key must not be sent in clear";
}

TEST_F(SekoiaSimTest, RejectedKeyIsAnAuthError) {
  for (SekoiaAuth auth : {SekoiaAuth::kBasic, SekoiaAuth::kBearer}) {
    SekoiaOptions o = Options("p100");
    o.auth = auth;
    o.api_key_file = sim_->dir().Write("wrong_key", "sk-wrong-key-0000\n");
    const FetchResult r = Fetch(o);
    ExpectFailed(r, FetchError::kAuth, "HTTP 401: API key rejected");
    EXPECT_NE(r.status.message().find("INTHREAT_READ_IOC_COLLECTIONS"), std::string::npos);
    EXPECT_EQ(r.http_status, 401);
    EXPECT_EQ(r.status.message().find("sk-wrong-key-0000"), std::string::npos);
  }
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 2u) << "an auth failure is not retried";
  EXPECT_EQ(reqs[0]["auth_ok"], false);
}

TEST_F(SekoiaSimTest, ForbiddenIsAnAuthError) {
  ASSERT_TRUE(sim_->AddFault({{"status", 403}}));
  ExpectFailed(Fetch(Options("p100")), FetchError::kAuth, "HTTP 403");
}

TEST_F(SekoiaSimTest, BadRequestAndUnknownCollectionAreConfigErrors) {
  ASSERT_TRUE(sim_->AddFault({{"status", 400}}));
  ExpectFailed(Fetch(Options("p100")), FetchError::kConfig, "HTTP 400");
  const FetchResult missing = Fetch(Options("no-such-feed"));
  ExpectFailed(missing, FetchError::kConfig, "HTTP 404: collection not found");
  EXPECT_NE(missing.status.message().find("collection_id"), std::string::npos);
  EXPECT_EQ(missing.source, "collection no-such-feed");
}

TEST_F(SekoiaSimTest, WrongCaIsRefused) {
  SekoiaOptions o = Options("p100");
  o.ca_file = sim_->wrong_ca_file();
  ExpectFailed(Fetch(o), FetchError::kTls, "TLS");
  o.ca_file.clear();  // the system's trust store does not know the test CA either
  ExpectFailed(Fetch(o), FetchError::kTls, "TLS");
  EXPECT_TRUE(NewRequests().empty()) << "no request may pass an untrusted handshake";
}

TEST_F(SekoiaSimTest, UnreadableCaFileIsATlsError) {
  SekoiaOptions o = Options("p100");
  o.ca_file = sim_->dir().path() + "/missing-ca.pem";
  ExpectFailed(Fetch(o), FetchError::kTls, "ca_file");
}

TEST_F(SekoiaSimTest, RetryAfterIsHonouredThenTheFetchSucceeds) {
  ASSERT_TRUE(sim_->AddFault({{"status", 429}, {"retry_after", "7"}}));
  const FetchResult r = Fetch(Options("p100"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 100u);
  ASSERT_FALSE(clock_.sleeps.empty());
  EXPECT_GE(clock_.total_slept(), milliseconds(7000));
  EXPECT_EQ(NewRequests().size(), 3u);  // the 429, the page, the empty page after it
}

TEST_F(SekoiaSimTest, RetryAfterAsAnHttpDateIsHonoured) {
  // The other form RFC 9110 allows. libcurl reads it against the real clock, hence a date
  // 30 s ahead of now; a wait the fake clock records (no real sleep).
  const time_t at = time(nullptr) + 30;
  struct tm tm {};
  gmtime_r(&at, &tm);
  char date[64];
  ASSERT_GT(strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm), 0u);
  ASSERT_TRUE(sim_->AddFault({{"status", 503}, {"retry_after", date}}));
  const FetchResult r = Fetch(Options("p100"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 100u);
  EXPECT_GE(clock_.total_slept(), milliseconds(25000)) << date;
  EXPECT_LE(clock_.total_slept(), milliseconds(32000)) << date;
}

TEST_F(SekoiaSimTest, PersistentRateLimitFailsAfterBoundedAttempts) {
  ASSERT_TRUE(sim_->AddFault({{"status", 429}, {"times", -1}}));
  const FetchResult r = Fetch(Options("p100"));
  ExpectFailed(r, FetchError::kRateLimited, "HTTP 429");
  EXPECT_NE(r.status.message().find("gave up after 3 attempts"), std::string::npos)
      << r.status.message();
  EXPECT_EQ(NewRequests().size(), 3u);
  // The second error answer within 10 s triggers the WAF pause before the third attempt.
  EXPECT_GE(clock_.total_slept(), milliseconds(30000));
}

TEST_F(SekoiaSimTest, RetryAfterBeyondTheBudgetFailsWithoutWaiting) {
  ASSERT_TRUE(sim_->AddFault({{"status", 503}, {"retry_after", 3600}}));
  const FetchResult r = Fetch(Options("p100"));
  ExpectFailed(r, FetchError::kServer, "HTTP 503");
  EXPECT_NE(r.status.message().find("Retry-After"), std::string::npos) << r.status.message();
  EXPECT_EQ(r.retry_after_seconds, 3600);
  EXPECT_EQ(clock_.total_slept(), milliseconds(0));
  EXPECT_EQ(NewRequests().size(), 1u);
}

TEST_F(SekoiaSimTest, ServerErrorOnALaterPageFailsTheWholeFetch) {
  ASSERT_TRUE(sim_->AddFault({{"status", 500}, {"skip", 2}, {"times", -1}}));
  const FetchResult r = Fetch(Options("p25000"));
  ExpectFailed(r, FetchError::kServer, "HTTP 500");
  EXPECT_NE(r.status.message().find("page 3"), std::string::npos) << r.status.message();
  EXPECT_EQ(NewRequests().size(), 5u);  // two good pages, then three attempts at the third
}

TEST_F(SekoiaSimTest, TransientServerErrorIsRetried) {
  ASSERT_TRUE(sim_->AddFault({{"status", 502}, {"skip", 1}}));
  const FetchResult r = Fetch(Options("p25000"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 25000u);
  EXPECT_EQ(NewRequests().size(), 5u);
}

TEST_F(SekoiaSimTest, ConnectionRefusedIsANetworkError) {
  // A port that was free a moment ago: nothing listens there.
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(s);
  SekoiaOptions o = Options("p100");
  o.url = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/api";
  o.backoff.max_attempts = 2;
  const FetchResult r = Fetch(o);
  ExpectFailed(r, FetchError::kNetwork, "cannot connect");
  EXPECT_EQ(r.http_status, 0);

  o.url = sim_->https_url();
  o.proxy = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));  // a dead proxy
  ExpectFailed(Fetch(o), FetchError::kNetwork, "connect");
}

TEST_F(SekoiaSimTest, SlowServerTimesOut) {
  ASSERT_TRUE(sim_->AddFault({{"slow_ms", 1500}}));
  SekoiaOptions o = Options("p100");
  o.request_timeout = milliseconds(300);
  o.backoff.max_attempts = 1;
  const FetchResult r = Fetch(o);
  ExpectFailed(r, FetchError::kTimeout, "timed out");
  EXPECT_NE(r.status.message().find("gave up after 1 attempt"), std::string::npos);
}

TEST_F(SekoiaSimTest, ConnectionCutMidBodyIsATruncatedBody) {
  ASSERT_TRUE(sim_->AddFault({{"cut_after_bytes", 5000}, {"times", -1}}));
  const FetchResult r = Fetch(Options("p10000"));
  ExpectFailed(r, FetchError::kBadBody, "truncated");
  EXPECT_EQ(NewRequests().size(), 3u) << "a truncated page is retried, then the fetch fails";
}

TEST_F(SekoiaSimTest, BodyOverTheCapIsRefused) {
  SekoiaOptions o = Options("p25000");
  o.max_body_bytes = 150000;  // one page of 10,000 fits, two do not
  const FetchResult r = Fetch(o);
  ExpectFailed(r, FetchError::kTooLarge, "max_body_bytes");
  EXPECT_EQ(NewRequests().size(), 2u) << "over the cap is not retried";
}

TEST_F(SekoiaSimTest, HtmlPageGarbageAndJsonAreNotLists) {
  ASSERT_TRUE(sim_->AddFault({{"html", true}}));
  ExpectFailed(Fetch(Options("p100")), FetchError::kBadBody, "HTML");
  ASSERT_TRUE(sim_->AddFault({{"garbage", true}}));
  ExpectFailed(Fetch(Options("p100")), FetchError::kBadBody, "not a list");
}

TEST_F(SekoiaSimTest, MostlyNonIpEntriesAreNotAnIpList) {
  const FetchResult r = Fetch(Options("domains"));
  ExpectFailed(r, FetchError::kBadBody, "not an IP list");
  EXPECT_NE(r.status.message().find("host0.example"), std::string::npos) << r.status.message();
}

TEST_F(SekoiaSimTest, AFewNonIpEntriesAreSkippedAndCounted) {
  const FetchResult r = Fetch(Options("small"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 3u);
  EXPECT_EQ(r.stats.rejected, 1u);
  ASSERT_EQ(r.stats.samples.size(), 1u);
  EXPECT_EQ(r.stats.samples[0].text, "evil.example");
  EXPECT_EQ(r.stats.samples[0].line_no, 4u);
}

TEST_F(SekoiaSimTest, EmptyAnswerIsAnEmptyCollectionNotAnError) {
  ASSERT_TRUE(sim_->AddFault({{"empty", true}}));
  const FetchResult r = Fetch(Options("p100"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.prefixes.empty());
  EXPECT_EQ(r.pages, 1u);
  const FetchResult e = Fetch(Options("empty"));
  ASSERT_TRUE(e.status.ok()) << e.status.message();
  EXPECT_TRUE(e.prefixes.empty());
}

TEST_F(SekoiaSimTest, CrlfAndBomBodiesParseTheSame) {
  ASSERT_TRUE(sim_->AddFault({{"crlf", true}, {"bom", true}, {"times", -1}}));
  const FetchResult r = Fetch(Options("p25000"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.prefixes.size(), 25000u);
  EXPECT_EQ(r.stats.rejected, 0u);
  EXPECT_EQ(r.prefixes.front(), Generated(0));
  EXPECT_EQ(r.prefixes[10000], Generated(10000));  // a BOM in front of page 2 as well
}

TEST_F(SekoiaSimTest, RepeatedCursorFailsTheFetch) {
  // Page 2 comes back with the very cursor it was asked with, and entries: a loop.
  ASSERT_TRUE(sim_->AddFault({{"repeat_cursor", true}, {"skip", 1}, {"times", -1}}));
  const FetchResult r = Fetch(Options("p25000"));
  ExpectFailed(r, FetchError::kBadBody, "paging loops");
  EXPECT_NE(r.status.message().find("page 2 (10000 entries) points back to the cursor of page 2"),
            std::string::npos)
      << r.status.message();
  EXPECT_EQ(NewRequests().size(), 2u) << "detected without following the loop";
}

// A text page without a Cursor header is the server's word that nothing follows, even a full
// one: the end is the server's paging signal, never a count.
TEST_F(SekoiaSimTest, APageWithoutACursorEndsTheCollection) {
  ASSERT_TRUE(sim_->AddFault({{"drop_cursor", true}, {"skip", 1}}));
  const FetchResult r = Fetch(Options("p25000"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 20000u);
  EXPECT_EQ(NewRequests().size(), 2u);
}

TEST_F(SekoiaSimTest, KeyFileMustBePrivateAndPresent) {
  SekoiaOptions o = Options("p100");
  o.api_key_file = sim_->dir().Write("shared_key", sim_->key(), 0644);
  const FetchResult r = Fetch(o);
  ExpectFailed(r, FetchError::kSecret, "chmod 600");
  EXPECT_NE(r.status.message().find("0644"), std::string::npos);
  o.api_key_file = sim_->dir().path() + "/absent";
  ExpectFailed(Fetch(o), FetchError::kSecret, "cannot open");
  o.api_key_file = sim_->dir().Write("empty_key", "\n");
  ExpectFailed(Fetch(o), FetchError::kSecret, "empty");
  EXPECT_TRUE(NewRequests().empty()) << "nothing is sent without a usable key";
}

TEST_F(SekoiaSimTest, KeyNeverAppearsInMessagesOrLogs) {
  std::vector<std::string> messages;
  auto run = [&](SekoiaOptions o) {
    const FetchResult r = Fetch(o);
    messages.push_back(r.status.message());
  };
  ASSERT_TRUE(sim_->AddFault({{"status", 401}}));
  run(Options("p100"));
  ASSERT_TRUE(sim_->AddFault({{"status", 500}, {"times", 3}}));
  run(Options("p100"));
  ASSERT_TRUE(sim_->AddFault({{"html", true}}));
  run(Options("p100"));
  SekoiaOptions tls = Options("p100");
  tls.ca_file = sim_->wrong_ca_file();
  run(tls);
  SekoiaOptions bearer = Options("p10001");
  bearer.auth = SekoiaAuth::kBearer;
  run(bearer);
  run(Options("p10001"));
  for (const std::string& m : messages) {
    EXPECT_EQ(m.find(sim_->key()), std::string::npos) << m;
  }
  EXPECT_GE(NewRequests().size(), 8u);
  const std::string log = sim_->RawLog();
  EXPECT_EQ(log.find(sim_->key()), std::string::npos);
  EXPECT_EQ(log.find("Authorization"), std::string::npos);
  EXPECT_EQ(sim_->ProcessOutput().find(sim_->key()), std::string::npos);
}

TEST_F(SekoiaSimTest, WafPauseCarriesOverToTheNextFetch) {
  ASSERT_TRUE(sim_->AddFault({{"status", 401}, {"times", 2}}));
  SekoiaSource source(Options("p100"), &clock_);
  EXPECT_EQ(source.Fetch().error, FetchError::kAuth);
  EXPECT_EQ(source.Fetch().error, FetchError::kAuth);
  // Two error answers within 10 s: the next fetch first waits out the pause.
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_GE(clock_.total_slept(), milliseconds(30000));
}

TEST_F(SekoiaSimTest, JsonFormatCarriesValidityAndIds) {
  SekoiaOptions o = Options("mixed");
  o.format = SekoiaFormat::kJson;
  const FetchResult r = Fetch(o);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.prefixes.size(), 3000u);
  EXPECT_EQ(r.pages, 2u);  // 2000 a page at most
  ASSERT_EQ(r.valid_until.size(), 3000u);
  ASSERT_EQ(r.ids.size(), 3000u);
  size_t v6 = 0;
  for (size_t i = 0; i < r.prefixes.size(); ++i) {
    v6 += r.prefixes[i].family == Family::kV6 ? 1 : 0;
    EXPECT_NEAR(static_cast<double>(r.valid_until[i]),
                static_cast<double>(clock_.NowUnix() + 30 * 86400), 120.0);
    EXPECT_EQ(r.ids[i].rfind("indicator--", 0), 0u);
  }
  EXPECT_EQ(v6, 300u);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0]["params"]["format"], "json");
  EXPECT_EQ(reqs[0]["params"]["limit"], "2000");
  EXPECT_EQ(reqs[0]["accept"], "application/json");
}

TEST_F(SekoiaSimTest, JsonNullCursorAfterAFullPageEndsTheWalk) {
  SekoiaOptions o = Options("p100");
  o.format = SekoiaFormat::kJson;
  o.page_limit = 50;  // two full pages, the second with "next_cursor": null
  const FetchResult r = Fetch(o);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 100u);
  EXPECT_EQ(r.pages, 2u);
  EXPECT_EQ(NewRequests().size(), 2u) << "no request after the null cursor";

  ASSERT_TRUE(sim_->AddFault({{"drop_cursor", true}}));  // the field missing altogether
  const FetchResult absent = Fetch(o);
  ASSERT_TRUE(absent.status.ok()) << absent.status.message();
  EXPECT_EQ(absent.prefixes.size(), 50u) << "no next_cursor: nothing follows";
}

TEST_F(SekoiaSimTest, ExpiredIndicatorsDropOutWhenTheClockMoves) {
  ASSERT_TRUE(sim_->SetClockOffset(31 * 86400));  // list entries are valid 30 days
  const FetchResult r = Fetch(Options("p100"));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.prefixes.empty());
}

}  // namespace
}  // namespace iocwall
