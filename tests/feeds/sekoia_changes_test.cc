// Incremental sync: after a full format=json snapshot, FetchChanges asks iocwall-feedsim (over
// HTTPS on 127.0.0.1) for what changed since, and must get exactly the changes made through the
// simulator's write API: additions, validity extensions, expiries and revocations.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "feeds/file_source.h"
#include "feeds/sekoia_source.h"
#include "feeds/stix.h"
#include "tests/feeds/sim_fixture.h"

namespace iocwall {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::FeedSim;

constexpr int64_t kDay = 86400;

struct Change {
  bool revoked = false;
  int64_t valid_until = 0;
  std::string id;
};

// A changes result by prefix text; fails the test when the parallel vectors disagree.
std::map<std::string, Change> ByPrefix(const FetchResult& r) {
  std::map<std::string, Change> out;
  EXPECT_EQ(r.revoked.size(), r.prefixes.size());
  EXPECT_EQ(r.valid_until.size(), r.prefixes.size());
  EXPECT_EQ(r.ids.size(), r.prefixes.size());
  for (size_t i = 0; i < r.prefixes.size() && i < r.revoked.size() && i < r.ids.size(); ++i) {
    EXPECT_TRUE(
        out.emplace(r.prefixes[i].ToString(), Change{r.revoked[i] != 0, r.valid_until[i], r.ids[i]})
            .second)
        << "reported twice: " << r.prefixes[i].ToString();
  }
  return out;
}

std::vector<std::string> Generated(int first, int count) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i)
    out.push_back("11.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  return out;
}

class SekoiaChangesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The collections are loaded an hour back on the simulator's clock, well before the
    // overlap window of a changes fetch made now; the clock then returns to the real time.
    sim_ = std::make_unique<FeedSim>(std::vector<std::string>{
        "--clock-offset", "-3600", "--collection", "c=gen:20", "--collection", "big=gen:3000"});
    ASSERT_TRUE(sim_->ok()) << sim_->error();
    ASSERT_TRUE(sim_->SetClockOffset(0));
  }

  SekoiaOptions Options(const std::string& collection,
                        SekoiaFormat format = SekoiaFormat::kJson) const {
    SekoiaOptions o = sim_->ClientOptions(collection);
    o.format = format;
    return o;
  }

  void ExpectFailedWhole(const FetchResult& r, FetchError e, const std::string& text) {
    EXPECT_FALSE(r.status.ok());
    EXPECT_EQ(FetchErrorName(r.error), std::string(FetchErrorName(e))) << r.status.message();
    EXPECT_NE(r.status.message().find(text), std::string::npos) << r.status.message();
    EXPECT_EQ(r.status.message().rfind("collection c: ", 0), 0u) << r.status.message();
    EXPECT_EQ(r.status.message().find(sim_->key()), std::string::npos);
    EXPECT_TRUE(r.incremental);
    EXPECT_TRUE(r.prefixes.empty()) << "a failed changes fetch must not hand over half the changes";
    EXPECT_TRUE(r.revoked.empty());
    EXPECT_TRUE(r.valid_until.empty());
    EXPECT_TRUE(r.ids.empty());
  }

  std::unique_ptr<FeedSim> sim_;
  FakeClock clock_;
};

TEST_F(SekoiaChangesTest, ChangesAreExactlyTheAdditionsExtensionsExpiriesAndRevocations) {
  SekoiaSource source(Options("c"), &clock_);
  ASSERT_TRUE(source.SupportsChanges());
  const FetchResult full = source.Fetch();
  ASSERT_TRUE(full.status.ok()) << full.status.message();
  ASSERT_EQ(full.prefixes.size(), 20u);
  EXPECT_FALSE(full.incremental);
  EXPECT_TRUE(full.revoked.empty()) << "a full fetch flags nothing";
  ASSERT_EQ(full.ids.size(), 20u);
  ASSERT_EQ(full.valid_until.size(), 20u);
  std::map<std::string, std::string> snapshot_ids;
  for (size_t i = 0; i < full.prefixes.size(); ++i) {
    EXPECT_GT(full.valid_until[i], clock_.NowUnix());
    snapshot_ids[full.prefixes[i].ToString()] = full.ids[i];
  }

  const int64_t since = clock_.NowUnix();
  ASSERT_TRUE(sim_->AddIndicators("c", {"198.51.100.1", "2001:db8::7"}));
  ASSERT_TRUE(sim_->AddIndicators("c", {"11.0.0.5"}, since + 90 * kDay));  // extended
  ASSERT_TRUE(sim_->AddIndicators("c", {"192.0.2.99"}, since - 60));       // born expired
  ASSERT_TRUE(sim_->RevokeIndicators("c", {"11.0.0.3", "11.0.0.4"}));

  const size_t log_start = sim_->Requests().size();
  const FetchResult changes = source.FetchChanges(since);
  ASSERT_TRUE(changes.status.ok()) << changes.status.message();
  EXPECT_TRUE(changes.incremental);
  EXPECT_EQ(changes.pages, 1u);
  EXPECT_GT(changes.bytes, 0u);
  EXPECT_EQ(changes.stats.rejected, 0u);
  const std::map<std::string, Change> got = ByPrefix(changes);
  std::set<std::string> keys;
  for (const auto& [k, v] : got) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"11.0.0.3", "11.0.0.4", "11.0.0.5", "192.0.2.99",
                                         "198.51.100.1", "2001:db8::7"}));
  ASSERT_EQ(got.size(), 6u);
  EXPECT_TRUE(got.at("11.0.0.3").revoked);
  EXPECT_TRUE(got.at("11.0.0.4").revoked);
  EXPECT_EQ(got.at("11.0.0.3").id, snapshot_ids.at("11.0.0.3")) << "the same indicator";
  EXPECT_FALSE(got.at("11.0.0.5").revoked);
  EXPECT_EQ(got.at("11.0.0.5").valid_until, since + 90 * kDay);
  EXPECT_EQ(got.at("11.0.0.5").id, snapshot_ids.at("11.0.0.5"));
  EXPECT_FALSE(got.at("192.0.2.99").revoked);
  EXPECT_EQ(got.at("192.0.2.99").valid_until, since - 60) << "expired, reported as such";
  for (const char* added : {"198.51.100.1", "2001:db8::7"}) {
    EXPECT_FALSE(got.at(added).revoked) << added;
    EXPECT_NEAR(static_cast<double>(got.at(added).valid_until),
                static_cast<double>(since + 30 * kDay), 120.0)
        << added;
    EXPECT_EQ(got.at(added).id.rfind("indicator--", 0), 0u) << added;
  }

  const std::vector<json> reqs = sim_->RequestsSince(log_start);
  ASSERT_EQ(reqs.size(), 1u);
  const json& params = reqs[0]["params"];
  EXPECT_EQ(params["format"], "json");
  EXPECT_EQ(params["limit"], "2000");
  EXPECT_EQ(params["skip_expired"], "false");
  EXPECT_EQ(params["include_revoked"], "true");
  EXPECT_EQ(params["modified_after"], FormatRfc3339(since - kChangesOverlapSeconds));
  EXPECT_FALSE(params.contains("cursor"));
  EXPECT_EQ(reqs[0]["status"], 200);

  // Nothing changed since: an empty change set, not an empty list.
  const FetchResult none = source.FetchChanges(clock_.NowUnix() + kChangesOverlapSeconds + 5);
  ASSERT_TRUE(none.status.ok()) << none.status.message();
  EXPECT_TRUE(none.incremental);
  EXPECT_TRUE(none.prefixes.empty());
  EXPECT_EQ(none.pages, 1u);
}

TEST_F(SekoiaChangesTest, ChangesFollowTheCursorWhichCarriesTheFilter) {
  SekoiaOptions o = Options("c");
  o.page_limit = 2;
  SekoiaSource source(o, &clock_);
  const int64_t since = clock_.NowUnix();
  const std::vector<std::string> revoked = Generated(10, 5);
  ASSERT_TRUE(sim_->RevokeIndicators("c", revoked));
  const size_t log_start = sim_->Requests().size();
  const FetchResult r = source.FetchChanges(since);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.pages, 3u);  // 2 + 2 + 1
  const std::map<std::string, Change> got = ByPrefix(r);
  ASSERT_EQ(got.size(), 5u) << "no unchanged indicator may leak into later pages";
  for (const std::string& v : revoked) EXPECT_TRUE(got.count(v) && got.at(v).revoked) << v;

  const std::vector<json> reqs = sim_->RequestsSince(log_start);
  ASSERT_EQ(reqs.size(), 3u);
  const std::string want = FormatRfc3339(since - kChangesOverlapSeconds);
  EXPECT_EQ(reqs[0]["params"]["modified_after"], want);
  for (size_t i = 1; i < reqs.size(); ++i) {
    EXPECT_FALSE(reqs[i]["params"].contains("modified_after")) << "never next to a cursor";
    EXPECT_EQ(reqs[i]["params"]["cursor"], reqs[i - 1]["cursor_out"]);
    EXPECT_EQ(reqs[i]["params"]["include_revoked"], "true");
    EXPECT_EQ(reqs[i]["status"], 200);
  }
  EXPECT_EQ(reqs[2]["cursor_out"], "") << "the last page ends the walk";
}

TEST_F(SekoiaChangesTest, ManyChangesSpanFullPages) {
  SekoiaSource source(Options("big"), &clock_);
  const int64_t since = clock_.NowUnix();
  ASSERT_TRUE(sim_->RevokeIndicators("big", Generated(0, 2500)));
  ASSERT_TRUE(sim_->AddIndicators("big", {"203.0.113.9"}));
  const size_t log_start = sim_->Requests().size();
  const FetchResult r = source.FetchChanges(since);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.pages, 2u);
  ASSERT_EQ(r.prefixes.size(), 2501u);
  ASSERT_EQ(r.revoked.size(), 2501u);
  size_t revoked = 0;
  for (uint8_t f : r.revoked) revoked += f;
  EXPECT_EQ(revoked, 2500u);
  EXPECT_EQ(r.prefixes.back().ToString(), "203.0.113.9");
  const std::vector<json> reqs = sim_->RequestsSince(log_start);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0]["entries"], 2000);
  EXPECT_EQ(reqs[1]["entries"], 501);
}

TEST_F(SekoiaChangesTest, AChangesFetchFailingMidwayFailsWhole) {
  SekoiaOptions o = Options("c");
  o.page_limit = 2;
  SekoiaSource source(o, &clock_);
  const int64_t since = clock_.NowUnix();
  ASSERT_TRUE(sim_->RevokeIndicators("c", Generated(0, 5)));

  ASSERT_TRUE(sim_->AddFault({{"status", 500}, {"skip", 1}, {"times", -1}}));
  ExpectFailedWhole(source.FetchChanges(since), FetchError::kServer, "page 2");
  ASSERT_TRUE(sim_->ClearFaults());

  ASSERT_TRUE(sim_->AddFault({{"garbage", true}, {"skip", 2}}));
  ExpectFailedWhole(source.FetchChanges(since), FetchError::kBadBody, "page 3");

  ASSERT_TRUE(sim_->AddFault({{"cut_after_bytes", 40}, {"skip", 1}, {"times", -1}}));
  ExpectFailedWhole(source.FetchChanges(since), FetchError::kBadBody, "truncated");
  ASSERT_TRUE(sim_->ClearFaults());

  // The caller keeps its `since` after a failure; the next try gets the whole change set.
  const FetchResult r = source.FetchChanges(since);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 5u);
}

TEST_F(SekoiaChangesTest, ChangesObeyTheSameCapsAndCursorRules) {
  SekoiaOptions o = Options("c");
  o.page_limit = 2;
  o.max_pages = 2;
  const int64_t since = clock_.NowUnix();
  ASSERT_TRUE(sim_->RevokeIndicators("c", Generated(0, 5)));
  ExpectFailedWhole(SekoiaSource(o, &clock_).FetchChanges(since), FetchError::kBadBody,
                    "max_pages");
  o.max_pages = 500;
  const size_t log_start = sim_->Requests().size();
  ASSERT_TRUE(SekoiaSource(o, &clock_).FetchChanges(since).status.ok());
  const std::vector<json> reqs = sim_->RequestsSince(log_start);
  ASSERT_EQ(reqs.size(), 3u);
  // Room for the first page and half the second: the cap counts all pages together.
  o.max_body_bytes = reqs[0]["bytes"].get<size_t>() + reqs[1]["bytes"].get<size_t>() / 2;
  ExpectFailedWhole(SekoiaSource(o, &clock_).FetchChanges(since), FetchError::kTooLarge,
                    "max_body_bytes");
  o.max_body_bytes = 1u << 20;

  // A server handing back the same cursor with entries: its paging loops, and neither
  // following it nor stopping there gives the whole set of changes.
  ASSERT_TRUE(sim_->AddFault({{"repeat_cursor", true}, {"times", -1}}));
  ExpectFailedWhole(SekoiaSource(o, &clock_).FetchChanges(since), FetchError::kBadBody,
                    "paging loops");
}

TEST_F(SekoiaChangesTest, TextSourcesAndTheEpochFallBackToAFullFetch) {
  SekoiaSource text(Options("c", SekoiaFormat::kText), &clock_);
  EXPECT_FALSE(text.SupportsChanges());
  const int64_t since = clock_.NowUnix();
  ASSERT_TRUE(sim_->RevokeIndicators("c", {"11.0.0.1"}));
  size_t log_start = sim_->Requests().size();
  const FetchResult t = text.FetchChanges(since);
  ASSERT_TRUE(t.status.ok()) << t.status.message();
  EXPECT_FALSE(t.incremental);
  EXPECT_EQ(t.prefixes.size(), 19u) << "the whole list, without the revoked entry";
  EXPECT_TRUE(t.revoked.empty());
  std::vector<json> reqs = sim_->RequestsSince(log_start);
  ASSERT_EQ(reqs.size(), 2u);  // the page, then the empty page its cursor leads to
  EXPECT_EQ(reqs[0]["params"]["format"], "text");
  EXPECT_EQ(reqs[0]["params"]["skip_expired"], "true");
  EXPECT_FALSE(reqs[0]["params"].contains("modified_after"));

  // No earlier sync to start from: the whole list, even in format=json.
  SekoiaSource json_source(Options("c"), &clock_);
  log_start = sim_->Requests().size();
  const FetchResult j = json_source.FetchChanges(0);
  ASSERT_TRUE(j.status.ok()) << j.status.message();
  EXPECT_FALSE(j.incremental);
  EXPECT_EQ(j.prefixes.size(), 19u);
  EXPECT_TRUE(j.revoked.empty());
  reqs = sim_->RequestsSince(log_start);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_FALSE(reqs[0]["params"].contains("modified_after"));
  EXPECT_EQ(reqs[0]["params"]["include_revoked"], "false");

  FileSourceOptions fo;
  fo.path = sim_->dir().Write("list.txt", "192.0.2.1\n");
  FileSource file(fo);
  EXPECT_FALSE(file.SupportsChanges());
  const FetchResult f = file.FetchChanges(since);
  ASSERT_TRUE(f.status.ok()) << f.status.message();
  EXPECT_FALSE(f.incremental);
  EXPECT_EQ(f.prefixes.size(), 1u);
}

}  // namespace
}  // namespace iocwall
