// Issue 11, item 1: a collection is fetched whole or not at all, its end decided by the
// server's paging signals (an empty page, a page without a cursor), never by counting a
// page's entries against `limit`. Each case runs against iocwall-feedsim's paging faults, and
// each has a negative control: the old counting rule replayed over the simulator's request log,
// showing that it would have enforced a truncated collection (or failed every cycle).
#include <gtest/gtest.h>

#include <optional>

#include "feeds/sekoia_source.h"
#include "tests/feeds/sim_fixture.h"

namespace iocwall {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::FeedSim;

// What the pager before issue 11 did with the pages the simulator served: stop at the first
// page shorter than `limit` (or a JSON page with "next_cursor": null), stop without a word at a
// cursor seen before, fail on a full page without a cursor. nullopt: it failed; else the number
// of entries it would have handed over as the whole collection.
std::optional<size_t> OldCountingRule(const std::vector<json>& pages, size_t limit) {
  std::vector<std::string> seen;
  size_t taken = 0;
  for (const json& p : pages) {
    const size_t entries = p["entries"].get<size_t>();
    taken += entries;
    const std::string next = p["cursor_out"].get<std::string>();
    if (entries < limit) return taken;
    if (next.empty()) return std::nullopt;  // "full but carries no cursor"
    for (const std::string& s : seen) {
      if (s == next) return taken;
    }
    seen.push_back(next);
  }
  return taken;
}

class SekoiaPagingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ =
        new FeedSim({"--collection", "p100=gen:100", "--collection", "p20000=gen:20000",
                     "--collection", "p25000=gen:25000", "--collection", "mixed=gen:3000:mixed"});
  }
  static void TearDownTestSuite() { delete sim_; }

  void SetUp() override {
    ASSERT_TRUE(sim_->ok()) << sim_->error();
    ASSERT_TRUE(sim_->ClearFaults());
    log_start_ = sim_->Requests().size();
  }

  FetchResult Fetch(const std::string& collection, bool json_format = false, int limit = 0) {
    SekoiaOptions o = sim_->ClientOptions(collection);
    if (json_format) o.format = SekoiaFormat::kJson;
    o.page_limit = limit;
    SekoiaSource source(o, &clock_);
    return source.Fetch();
  }

  std::vector<json> NewRequests() const { return sim_->RequestsSince(log_start_); }

  void ExpectWhole(const FetchResult& r, size_t n) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    ASSERT_EQ(r.prefixes.size(), n);
    // gen:N holds 11.0.0.0 + i in order: every one, once, in order.
    for (uint32_t i = 0; i < n; i += 997) {
      EXPECT_EQ(r.prefixes[i].addr, (11u << 24) + i) << "entry " << i;
    }
    EXPECT_EQ(r.prefixes.back().addr, (11u << 24) + static_cast<uint32_t>(n - 1));
  }

  static FeedSim* sim_;
  size_t log_start_ = 0;
  FakeClock clock_;
};

FeedSim* SekoiaPagingTest::sim_ = nullptr;

TEST_F(SekoiaPagingTest, BlankLinesInsideAPageDoNotEndTheWalk) {
  ASSERT_TRUE(sim_->AddFault({{"blank_lines", true}, {"times", -1}}));
  const FetchResult r = Fetch("p25000");
  ExpectWhole(r, 25000);
  EXPECT_EQ(r.stats.rejected, 0u) << "blank lines are no entries";
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 4u);  // 9998 + 9998 + 5004, then the empty page
  EXPECT_EQ(reqs[0]["entries"], 9998);
  EXPECT_EQ(reqs.back()["entries"], 0);
  // Negative control: counting lines would have stopped after page 1, "fresh" and wrong.
  EXPECT_EQ(OldCountingRule(reqs, 10000), std::optional<size_t>(9998));
}

TEST_F(SekoiaPagingTest, ASilentlyCappedLimitIsFollowedToTheEnd) {
  ASSERT_TRUE(sim_->AddFault({{"cap_limit", 3000}, {"times", -1}}));
  const FetchResult r = Fetch("p25000");
  ExpectWhole(r, 25000);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 10u);  // nine pages of at most 3000, then the empty one
  for (const json& q : reqs) EXPECT_EQ(q["params"]["limit"], "10000");
  EXPECT_EQ(OldCountingRule(reqs, 10000), std::optional<size_t>(3000));
}

TEST_F(SekoiaPagingTest, ASilentlyCappedJsonLimitIsFollowedToTheEnd) {
  ASSERT_TRUE(sim_->AddFault({{"cap_limit", 700}, {"times", -1}}));
  const FetchResult r = Fetch("mixed", /*json_format=*/true);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 3000u);
  EXPECT_EQ(r.valid_until.size(), 3000u);
  EXPECT_EQ(r.valid_from.size(), 3000u);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 5u);  // 700 x 4 + 200; the last carries next_cursor null
  EXPECT_EQ(OldCountingRule(reqs, 2000), std::optional<size_t>(700));
}

TEST_F(SekoiaPagingTest, ACursorLoopingBackFailsTheFetch) {
  // Page 2 points back to the start; page 3 (the first page again) then carries the cursor
  // page 2 was fetched with.
  ASSERT_TRUE(sim_->AddFault({{"loop_cursor", true}, {"skip", 1}, {"times", 1}}));
  const FetchResult r = Fetch("p25000");
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.error, FetchError::kBadBody);
  EXPECT_TRUE(r.prefixes.empty()) << "nothing of a failed fetch is handed over";
  EXPECT_NE(r.status.message().find("page 3 (10000 entries) points back to the cursor of page 2"),
            std::string::npos)
      << r.status.message();
  EXPECT_NE(r.status.message().find("last good list stays"), std::string::npos);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 3u);
  // Negative control: the old pager stopped there and called 30,000 entries (10,000 twice, and
  // none of the last 5,000) the whole collection.
  EXPECT_EQ(OldCountingRule(reqs, 10000), std::optional<size_t>(30000));
}

TEST_F(SekoiaPagingTest, ASameCursorLoopOnJsonFailsToo) {
  ASSERT_TRUE(sim_->AddFault({{"repeat_cursor", true}, {"times", -1}}));
  const FetchResult r = Fetch("mixed", /*json_format=*/true);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("paging loops"), std::string::npos) << r.status.message();
  EXPECT_TRUE(r.prefixes.empty());
  EXPECT_TRUE(r.valid_until.empty() && r.valid_from.empty() && r.ids.empty());
  EXPECT_EQ(OldCountingRule(NewRequests(), 2000), std::optional<size_t>(4000));
}

TEST_F(SekoiaPagingTest, AnExactMultipleWhoseLastPageHasNoCursorIsWhole) {
  ASSERT_TRUE(sim_->AddFault({{"last_page_cursor", false}, {"times", -1}}));
  const FetchResult r = Fetch("p20000");
  ExpectWhole(r, 20000);
  const std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1]["entries"], 10000);
  EXPECT_EQ(reqs[1]["cursor_out"], "");
  // Negative control: the old pager failed this collection on every cycle.
  EXPECT_EQ(OldCountingRule(reqs, 10000), std::nullopt);
}

TEST_F(SekoiaPagingTest, ACursorOnTheLastPageIsFollowedToAnEmptyPage) {
  ASSERT_TRUE(sim_->AddFault({{"last_page_cursor", true}, {"times", -1}}));
  ExpectWhole(Fetch("p20000"), 20000);
  std::vector<json> reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 3u);
  // The empty page hands the same cursor back (Sekoia's cursor is reusable): no loop, the end.
  EXPECT_EQ(reqs[2]["entries"], 0);
  EXPECT_EQ(reqs[2]["cursor_out"], reqs[2]["params"]["cursor"]);
  // A control case both rules get right.
  EXPECT_EQ(OldCountingRule(reqs, 10000), std::optional<size_t>(20000));

  log_start_ = sim_->Requests().size();
  const FetchResult j = Fetch("p100", /*json_format=*/true, /*limit=*/50);  // never null
  ASSERT_TRUE(j.status.ok()) << j.status.message();
  EXPECT_EQ(j.prefixes.size(), 100u);
  reqs = NewRequests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2]["entries"], 0);
  EXPECT_NE(reqs[2]["cursor_out"], "");
}

TEST_F(SekoiaPagingTest, AFullPageWithoutACursorEndsAJsonWalk) {
  // No next_cursor field: nothing follows, even after a full page.
  ASSERT_TRUE(sim_->AddFault({{"drop_cursor", true}, {"skip", 1}}));
  const FetchResult r = Fetch("mixed", /*json_format=*/true, /*limit=*/1000);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.prefixes.size(), 2000u);
  EXPECT_EQ(NewRequests().size(), 2u);
}

TEST_F(SekoiaPagingTest, AFaultOnAnyPageFailsTheWholeFetch) {
  // The combination: a capped, blank-lined walk whose fourth page repeats its own cursor.
  ASSERT_TRUE(sim_->AddFault({{"cap_limit", 4000}, {"blank_lines", true}, {"times", 3}}));
  ASSERT_TRUE(sim_->AddFault({{"repeat_cursor", true}, {"times", 1}}));
  const FetchResult r = Fetch("p25000");
  EXPECT_FALSE(r.status.ok());
  EXPECT_TRUE(r.prefixes.empty());
  EXPECT_NE(r.status.message().find("page 4 (10000 entries) points back to the cursor of page 4"),
            std::string::npos)
      << r.status.message();
}

}  // namespace
}  // namespace iocwall
