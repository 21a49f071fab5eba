// The sync cycle against recording fakes: fail-static, guards, restore, expiry, state.
#include "agent/agent.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <tuple>
#include <unordered_map>

#include "agent/report_json.h"
#include "tests/agent/fakes.h"

namespace iocwall {
namespace {

// The merge as it was first written (strings, std::map, unordered_map): the reference the
// compact one is checked against.
FetchResult ReferenceMerge(const Snapshot& base, FetchResult changes) {
  FetchResult out;
  struct Item {
    Prefix prefix;
    int64_t valid_until;
    std::string id;
    bool gone;
    int64_t valid_from = 0;
  };
  std::vector<Item> items;
  items.reserve(base.entries.size() + changes.prefixes.size());
  std::unordered_map<std::string, size_t> by_id;
  std::map<std::tuple<Family, u128, uint8_t>, size_t> by_prefix;
  auto index = [&](size_t k) {
    if (!items[k].id.empty()) by_id[items[k].id] = k;
    by_prefix[{items[k].prefix.family, items[k].prefix.addr, items[k].prefix.len}] = k;
  };
  for (const auto& e : base.entries) {
    items.push_back({e.prefix, e.valid_until, e.id, false, e.valid_from});
    index(items.size() - 1);
  }
  // The tests give every parallel vector in full.
  for (size_t j = 0; j < changes.prefixes.size(); ++j) {
    const Prefix& p = changes.prefixes.at(j);
    const std::string id = changes.ids[j];
    const int64_t until = changes.valid_until.at(j), from = changes.valid_from.at(j);
    const bool revoked = changes.revoked.at(j) != 0;
    long k = -1;
    if (!id.empty()) {
      auto it = by_id.find(id);
      if (it != by_id.end()) k = static_cast<long>(it->second);
    } else {
      auto it = by_prefix.find({p.family, p.addr, p.len});
      if (it != by_prefix.end()) k = static_cast<long>(it->second);
    }
    if (revoked) {
      if (k >= 0) items[k].gone = true;  // revocation is final
      continue;
    }
    if (k >= 0 && !items[k].gone) {
      items[k].prefix = p;  // an indicator's value may be edited, and its validity extended
      items[k].valid_until = until;
      items[k].valid_from = from;
    } else {
      items.push_back({p, until, id, false, from});
      index(items.size() - 1);
    }
  }
  for (const auto& it : items) {
    if (it.gone) continue;
    out.prefixes.push_back(it.prefix);
    out.valid_until.push_back(it.valid_until);
    out.valid_from.push_back(it.valid_from);
    out.ids.push_back(it.id);
  }
  return out;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.collections = {"a"};
    config_.files = {"/b"};
  }
  // Builds an agent over fakes; the two sources stay reachable through a_ and b_.
  std::unique_ptr<Agent> Make() {
    std::vector<std::unique_ptr<Source>> sources;
    auto a = std::make_unique<FakeSource>("collection a");
    auto b = std::make_unique<FakeSource>("file /b");
    a->entries = a_entries_;
    b->entries = b_entries_;
    a_ = a.get();
    b_ = b.get();
    sources.push_back(std::move(a));
    sources.push_back(std::move(b));
    auto agent =
        std::make_unique<Agent>(config_, std::move(sources), &backend_, &state_, &host_, &clock_);
    agent->LoadState();
    return agent;
  }
  Config config_;
  FakeBackend backend_;
  MemoryStateStore state_;
  FakeHost host_;
  FakeClock clock_;
  std::vector<std::string> a_entries_ = {"198.51.100.7", "203.0.113.0/24", "2001:db8::1"};
  std::vector<std::string> b_entries_ = {"192.0.2.1", "192.0.2.2"};
  FakeSource* a_ = nullptr;
  FakeSource* b_ = nullptr;

  // An agent whose collection a supports changes fetches, after its first (full) cycle.
  std::unique_ptr<Agent> FirstFullFetchWithIds() {
    a_entries_ = {"198.51.100.1", "198.51.100.2"};
    auto agent = Make();
    a_->ids = {"indicator--1", "indicator--2"};
    a_->valid_until = {clock_.NowUnix() + 86400, clock_.NowUnix() + 86400};
    a_->supports_changes = true;
    EXPECT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
    return agent;
  }
};

TEST_F(AgentTest, FreshCycleEnforcesTheUnionOfAllSources) {
  auto agent = Make();
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kEnforcedFresh) << r.summary;
  EXPECT_TRUE(backend_.Blocks("198.51.100.7"));
  EXPECT_TRUE(backend_.Blocks("203.0.113.200"));
  EXPECT_TRUE(backend_.Blocks("2001:db8::1"));
  EXPECT_TRUE(backend_.Blocks("192.0.2.2"));
  EXPECT_FALSE(backend_.Blocks("192.0.2.3"));
  // 192.0.2.1 and .2 are adjacent: one element.
  EXPECT_EQ(r.desired_v4, 3u);
  EXPECT_EQ(r.desired_v6, 1u);
  EXPECT_EQ(r.sources[0].entries, 3u);
  EXPECT_GT(r.sources[0].last_success, 0);
}

TEST_F(AgentTest, AllowlistLoopbackAndHostAddressesAreNeverBlocked) {
  a_entries_ = {"10.0.0.0/16", "127.0.0.1", "192.0.2.0/24"};
  config_.allowlist = {*ParsePrefix("10.0.5.0/24")};
  host_.addresses = {{*ParsePrefix("192.0.2.10"), "address of eth0"}};
  auto agent = Make();
  CycleReport r = agent->RunCycle(false);
  ASSERT_EQ(r.outcome, Outcome::kEnforcedFresh);
  EXPECT_TRUE(backend_.Blocks("10.0.4.255"));
  EXPECT_FALSE(backend_.Blocks("10.0.5.1"));
  EXPECT_TRUE(backend_.Blocks("10.0.6.0"));
  EXPECT_FALSE(backend_.Blocks("127.0.0.1"));
  EXPECT_FALSE(backend_.Blocks("192.0.2.10"));
  EXPECT_TRUE(backend_.Blocks("192.0.2.11"));
  bool said = false;
  for (const auto& c : r.carved_out) said = said || c.find("address of eth0") != std::string::npos;
  EXPECT_TRUE(said) << "the host address carve-out must be reported";
}

TEST_F(AgentTest, AFailedSourceKeepsTheLastGoodListAndChangesNothing) {
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  a_->entries = {"198.51.100.99"};  // the fresh list would differ...
  b_->fail = true;                  // ...but one source is down
  int before = backend_.transactions;
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kKeptLastGood);
  EXPECT_NE(r.summary.find("HTTP 503"), std::string::npos) << r.summary;
  EXPECT_EQ(backend_.transactions, before) << "no kernel change when the kernel already holds it";
  EXPECT_TRUE(backend_.Blocks("198.51.100.7"));
  EXPECT_FALSE(backend_.Blocks("198.51.100.99"));
  EXPECT_FALSE(r.sources[1].ok);
  EXPECT_EQ(r.sources[1].error_class, "server");
}

TEST_F(AgentTest, AFailedSourceRestoresTheLastGoodListWhenTheKernelLostIt) {
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  backend_.Flush();  // a reboot, or someone deleted the table
  a_->fail = true;
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kKeptLastGood);
  EXPECT_TRUE(backend_.Blocks("198.51.100.7"));
  EXPECT_TRUE(backend_.Blocks("192.0.2.1"));
}

TEST_F(AgentTest, NeverFetchedAndFeedDownLeavesTheKernelAlone) {
  auto agent = Make();
  a_->fail = true;
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kNothing);
  EXPECT_EQ(backend_.reconciles, 0);
}

TEST_F(AgentTest, RestoreFromStateNeedsNoNetwork) {
  {
    auto agent = Make();
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  }
  backend_.Flush();  // reboot: the kernel is empty
  auto agent = Make();
  a_->fail = b_->fail = true;
  CycleReport r = agent->Restore();
  EXPECT_EQ(r.outcome, Outcome::kKeptLastGood) << r.summary;
  EXPECT_EQ(a_->fetches + b_->fetches, 0) << "restore must not touch the network";
  EXPECT_TRUE(backend_.Blocks("203.0.113.9"));
  EXPECT_TRUE(backend_.Blocks("2001:db8::1"));
}

TEST_F(AgentTest, ShrinkGuardRefusesThenForceAccepts) {
  a_entries_.clear();
  for (int i = 0; i < 100; ++i) a_entries_.push_back("198.51.100." + std::to_string(i * 2));
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  a_->entries.resize(30);  // 100+1 elements -> 31: a 69% shrink
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kGuardRefused);
  ASSERT_FALSE(r.guard_reasons.empty());
  EXPECT_NE(r.guard_reasons[0].find("max_shrink_percent"), std::string::npos);
  EXPECT_TRUE(backend_.Blocks("198.51.100.198")) << "refused: the old list stays";
  r = agent->RunCycle(true);
  EXPECT_EQ(r.outcome, Outcome::kEnforcedFresh);
  EXPECT_FALSE(backend_.Blocks("198.51.100.198"));
}

// The guard's baseline of a source whose last good list is damaged (found when its entries are
// counted, past the header) is what the state remembers of it, never zero: zero would let the
// source come back empty unnoticed.
TEST_F(AgentTest, ADamagedLastGoodListDoesNotSwitchTheGuardOff) {
  b_entries_.clear();
  for (int i = 0; i < 100; ++i) b_entries_.push_back("192.0.2." + std::to_string(i));
  a_entries_ = {"198.51.100.1", "198.51.100.2", "198.51.100.3"};
  auto agent = Make();
  // One entry ends soon: the header's bounds cannot say how many are in force later.
  a_->valid_until = {clock_.NowUnix() + 10, clock_.NowUnix() + 86400, clock_.NowUnix() + 86400};
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  clock_.Advance(20);
  std::string& file = state_.files["snap:collection a"];
  file.replace(file.find("198.51.100.2 "), 12, "not-an-ip!!!");
  a_->entries.clear();
  a_->valid_until.clear();
  auto restarted = Make();
  a_->entries.clear();
  CycleReport r = restarted->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kGuardRefused) << r.summary;
  ASSERT_FALSE(r.guard_reasons.empty());
  EXPECT_NE(r.guard_reasons[0].find("returned no entries"), std::string::npos)
      << r.guard_reasons[0];
}

TEST_F(AgentTest, ShrinkWithinTheLimitIsAccepted) {
  a_entries_.clear();
  for (int i = 0; i < 100; ++i) a_entries_.push_back("198.51.100." + std::to_string(i * 2));
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  a_->entries.resize(60);
  EXPECT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
}

TEST_F(AgentTest, EmptySourceAfterHavingEntriesIsRefused) {
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  b_->entries.clear();
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kGuardRefused);
  EXPECT_NE(r.guard_reasons[0].find("file /b returned no entries"), std::string::npos);
  EXPECT_TRUE(backend_.Blocks("192.0.2.1"));
}

TEST_F(AgentTest, MaxEntriesGuard) {
  config_.sync.max_entries = 2;
  auto agent = Make();
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kGuardRefused);
  EXPECT_NE(r.guard_reasons.at(0).find("max_entries"), std::string::npos);
  EXPECT_FALSE(backend_.table_present);
}

TEST_F(AgentTest, KernelRefusalIsReportedAndNothingIsSaved) {
  auto agent = Make();
  backend_.fail = true;
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_NE(r.apply_error.find("kernel said no"), std::string::npos);
  EXPECT_EQ(state_.files.count("snap:collection a"), 0u)
      << "a list the kernel refused is not a last good list";
}

TEST_F(AgentTest, ExpiredIndicatorsAreNotEnforcedEvenFromTheLastGoodList) {
  a_entries_ = {"198.51.100.1", "198.51.100.50"};
  auto agent = Make();
  a_->valid_until = {clock_.NowUnix() + 3600, 0};
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  EXPECT_TRUE(backend_.Blocks("198.51.100.1"));
  clock_.Advance(7200);  // past its validity, and the feed is down that day
  a_->fail = true;
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kKeptLastGood);
  EXPECT_FALSE(backend_.Blocks("198.51.100.1")) << "fail-static must not extend a validity";
  EXPECT_TRUE(backend_.Blocks("198.51.100.50"));
}

TEST_F(AgentTest, APrefixListedForeverAndWithAValidityNeverExpires) {
  a_entries_ = {"198.51.100.1", "198.51.100.1"};
  auto agent = Make();
  a_->valid_until = {0, clock_.NowUnix() + 60};
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  auto snap = state_.LoadSnapshot("collection a");
  ASSERT_TRUE(snap.ok() && snap.value());
  ASSERT_EQ((*snap.value()).entries.size(), 1u);
  EXPECT_EQ((*snap.value()).entries[0].valid_until, 0) << "0 means never: it wins";
  long i = Find(backend_.kernel.v4, ParsePrefix("198.51.100.1")->addr);
  ASSERT_GE(i, 0);
  ASSERT_EQ(backend_.kernel.v4.expires.size(), backend_.kernel.v4.size());
  EXPECT_EQ(backend_.kernel.v4.expires[i], 0) << "the kernel element gets no timeout";
}

TEST(MergeChangesTest, TheCompactMergeIsTheReferenceOne) {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  // Entries without an id (matched by prefix) and with one (matched by id, their value may be
  // edited) use separate addresses: where an edited value meets an id-less entry the two
  // merges differ on purpose (the reference kept matching the value as first seen).
  auto entry = [&] {
    const bool with_id = pick(3) != 0;
    const int host = with_id ? 6 + pick(6) : pick(6);
    return std::pair(*ParsePrefix("198.51.100." + std::to_string(host)),
                     with_id ? "indicator--" + std::to_string(pick(10)) : std::string());
  };
  for (int round = 0; round < 5000; ++round) {
    Snapshot base;
    for (int i = pick(8); i > 0; --i) {
      auto [p, id] = entry();
      base.entries.push_back({p, 1, int64_t{pick(3)} * 1000, id, pick(2) * 500});
    }
    FetchResult changes;
    changes.incremental = true;
    for (int i = pick(10); i > 0; --i) {
      auto [p, id] = entry();
      changes.prefixes.push_back(p);
      changes.ids.push_back(id);
      changes.valid_until.push_back(pick(4) * 1000);
      changes.valid_from.push_back(pick(2) * 700);
      changes.revoked.push_back(pick(4) == 0);
    }
    const FetchResult want = ReferenceMerge(base, changes);
    const FetchResult got = MergeChanges(base, changes);
    ASSERT_EQ(got.prefixes, want.prefixes) << round;
    ASSERT_EQ(got.valid_until, want.valid_until) << round;
    ASSERT_EQ(got.valid_from, want.valid_from) << round;
    ASSERT_EQ(got.ids, want.ids) << round;
  }
}

TEST(MergeChangesTest, AddsUpdatesAndRevokesByIdOrPrefix) {
  Snapshot base;
  base.source = "collection a";
  base.entries = {{*ParsePrefix("198.51.100.1"), 1, 1000, "indicator--1"},
                  {*ParsePrefix("198.51.100.2"), 1, 1000, "indicator--2"},
                  {*ParsePrefix("198.51.100.3"), 1, 0, ""}};
  FetchResult changes;
  changes.incremental = true;
  changes.prefixes = {*ParsePrefix("198.51.100.1"), *ParsePrefix("198.51.100.2"),
                      *ParsePrefix("198.51.100.9"), *ParsePrefix("198.51.100.3")};
  changes.ids = {"indicator--1", "indicator--2", "indicator--9", ""};
  changes.valid_until = {5000, 1000, 7000, 0};
  changes.revoked = {0, 1, 0, 1};
  FetchResult merged = MergeChanges(base, std::move(changes));
  ASSERT_EQ(merged.prefixes.size(), 2u);
  EXPECT_EQ(merged.prefixes[0].ToString(), "198.51.100.1");
  EXPECT_EQ(merged.valid_until[0], 5000) << "validity extended";
  EXPECT_EQ(merged.prefixes[1].ToString(), "198.51.100.9");
  EXPECT_EQ(merged.ids[1], "indicator--9");
  EXPECT_TRUE(merged.incremental);
}

// The base of a changes fetch is read from its file as the merge runs: a file that vanished (or
// is damaged) since its header was read means the changes alone are not the list, and the
// source is fetched whole instead.
TEST_F(AgentTest, AChangesFetchWhoseBaseVanishedFetchesTheWholeList) {
  auto agent = FirstFullFetchWithIds();
  clock_.Advance(300);
  a_->changed = {"198.51.100.7"};
  a_->changed_ids = {"indicator--7"};
  a_->changed_until = {clock_.NowUnix() + 86400};
  a_->changed_revoked = {0};
  state_.files.erase("snap:collection a");
  const int fetches = a_->fetches;
  CycleReport r = agent->RunCycle(false);
  ASSERT_EQ(r.outcome, Outcome::kEnforcedFresh) << r.summary;
  EXPECT_EQ(a_->change_fetches, 1);
  EXPECT_EQ(a_->fetches, fetches + 2)
      << "the fake counts its changes fetch too; then the whole list";
  EXPECT_EQ(r.sources[0].mode, "full");
  EXPECT_TRUE(backend_.Blocks("198.51.100.1"));
  EXPECT_TRUE(backend_.Blocks("198.51.100.2"));
}

TEST_F(AgentTest, IncrementalSyncAppliesChangesOnTopOfTheLastFullSnapshot) {
  auto agent = FirstFullFetchWithIds();
  EXPECT_EQ(a_->change_fetches, 0) << "the first fetch is a full one";
  const int64_t first = clock_.NowUnix();
  clock_.Advance(300);
  a_->changed = {"198.51.100.2", "198.51.100.7"};
  a_->changed_ids = {"indicator--2", "indicator--7"};
  a_->changed_until = {clock_.NowUnix() + 86400, clock_.NowUnix() + 86400};
  a_->changed_revoked = {1, 0};
  CycleReport r = agent->RunCycle(false);
  ASSERT_EQ(r.outcome, Outcome::kEnforcedFresh) << r.summary;
  EXPECT_EQ(a_->change_fetches, 1);
  EXPECT_EQ(a_->last_since, first) << "changes since the enforced snapshot was fetched";
  EXPECT_EQ(r.sources[0].mode, "changes");
  EXPECT_TRUE(backend_.Blocks("198.51.100.1"));
  EXPECT_FALSE(backend_.Blocks("198.51.100.2")) << "revoked: gone within one cycle";
  EXPECT_TRUE(backend_.Blocks("198.51.100.7"));
  // A full resync comes back after [sync] full_resync.
  clock_.Advance(config_.sync.full_resync.count());
  int fetches = a_->fetches;
  r = agent->RunCycle(false);
  EXPECT_EQ(r.sources[0].mode, "full");
  EXPECT_EQ(a_->fetches, fetches + 1);
}

TEST_F(AgentTest, StateWriteFailureKeepsEnforcingAndWarns) {
  auto agent = Make();
  state_.disk_full = true;
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kEnforcedFresh);
  EXPECT_TRUE(backend_.Blocks("198.51.100.7"));
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("No space left"), std::string::npos);
}

TEST_F(AgentTest, FirstSeenSurvivesLaterSnapshots) {
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  int64_t t0 = clock_.NowUnix();
  clock_.Advance(600);
  a_->entries.push_back("198.51.100.8");
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  auto snap = state_.LoadSnapshot("collection a");
  ASSERT_TRUE(snap.ok() && snap.value());
  for (const auto& e : (*snap.value()).entries) {
    if (e.prefix.ToString() == "198.51.100.7") {
      EXPECT_EQ(e.first_seen, t0);
    }
    if (e.prefix.ToString() == "198.51.100.8") {
      EXPECT_EQ(e.first_seen, t0 + 600);
    }
  }
}

// Issue 13: a restart (or cron) over an unchanged collection recognises it by the digest in
// the snapshot's header: the entries are neither read nor written again.
TEST_F(AgentTest, AnUnchangedFetchNeitherReadsNorRewritesTheSnapshot) {
  ASSERT_EQ(Make()->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  const int saves = state_.snapshot_saves;
  EXPECT_EQ(saves, 2) << "one per source";
  const std::string before = state_.files["snap:collection a"];
  clock_.Advance(600);
  auto restarted = Make();
  restarted->LoadState();
  ASSERT_EQ(restarted->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  EXPECT_EQ(state_.snapshot_saves, saves);
  EXPECT_EQ(state_.snapshot_loads, 0) << "the header was enough";
  EXPECT_EQ(state_.files["snap:collection a"], before);
  // One entry more: source a's list is rewritten, its old entries read once to carry their
  // first_seen; source b's stays as it is.
  a_->entries.push_back("198.51.100.9");
  ASSERT_EQ(restarted->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  EXPECT_EQ(state_.snapshot_saves, saves + 1);
  EXPECT_EQ(state_.snapshot_loads, 1);
}

// The digest is over the feed's order too: the same entries served in another order are
// written again, with nothing lost and the first_seen of each kept.
TEST_F(AgentTest, AReorderedListIsRewrittenWithItsFirstSeenKept) {
  a_entries_ = {"198.51.100.7", "198.51.100.1", "203.0.113.0/24"};
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  const int64_t t0 = clock_.NowUnix();
  auto first = state_.LoadSnapshot("collection a");
  ASSERT_TRUE(first.ok() && first.value());
  clock_.Advance(600);
  std::reverse(a_->entries.begin(), a_->entries.end());
  const int saves = state_.snapshot_saves;
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  EXPECT_EQ(state_.snapshot_saves, saves + 1);
  auto second = state_.LoadSnapshot("collection a");
  ASSERT_TRUE(second.ok() && second.value());
  ASSERT_EQ((*second.value()).entries.size(), 3u);
  for (const auto& e : (*second.value()).entries)
    EXPECT_EQ(e.first_seen, t0) << e.prefix.ToString();
  EXPECT_EQ((*second.value()).entries, (*first.value()).entries);
  EXPECT_NE((*second.value()).digest, (*first.value()).digest);
}

// A restore streams each last good list into the build: one found damaged after some of its
// entries were read adds none of them (and is set aside by the store), the others still stand.
TEST_F(AgentTest, ASnapshotDamagedHalfwayAddsNothingToARestore) {
  ASSERT_EQ(Make()->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  std::string& file = state_.files["snap:collection a"];
  const size_t at = file.find("2001:db8::1 ");
  ASSERT_NE(at, std::string::npos);
  file.replace(at, 11, "not-an-ip!!");
  backend_ = FakeBackend();
  auto agent = Make();
  CycleReport r = agent->Restore();
  EXPECT_EQ(r.outcome, Outcome::kKeptLastGood) << r.summary;
  EXPECT_TRUE(backend_.Blocks("192.0.2.1")) << "file /b's list";
  EXPECT_FALSE(backend_.Blocks("198.51.100.7")) << "read before the damage, rolled back";
  EXPECT_FALSE(backend_.Blocks("2001:db8::1"));
}

// A changed list is written while the kernel commits, and put in place only if the kernel took
// it: after a refusal the last good list on disk is still the one the kernel holds.
TEST_F(AgentTest, ARefusedUpdateLeavesTheLastGoodListAsItWas) {
  auto agent = Make();
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  const std::string before = state_.files["snap:collection a"];
  const int saves = state_.snapshot_saves;
  a_->entries.push_back("198.51.100.9");
  backend_.fail = true;
  EXPECT_EQ(agent->RunCycle(false).outcome, Outcome::kFailed);
  EXPECT_EQ(state_.snapshot_saves, saves);
  EXPECT_EQ(state_.files["snap:collection a"], before);
  backend_.fail = false;
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  EXPECT_EQ(state_.snapshot_saves, saves + 1);
  EXPECT_NE(state_.files["snap:collection a"].find("198.51.100.9 "), std::string::npos);
}

TEST(FetchDigestTest, EveryFieldTheSnapshotKeepsChangesIt) {
  FetchResult fr;
  fr.prefixes = {*ParsePrefix("192.0.2.1"), *ParsePrefix("2001:db8::/48")};
  fr.valid_until = {100, 0};
  fr.valid_from = {0, 50};
  fr.ids = std::vector<std::string>{"indicator--a", ""};
  const FetchDigest key{1, 2, 0};
  const FetchDigest d = FetchDigestOf(fr, key);
  EXPECT_EQ(FetchDigestOf(fr, key), d) << "deterministic";
  EXPECT_EQ(d.k0, 1u);
  EXPECT_EQ(d.k1, 2u);
  EXPECT_NE(FetchDigestOf(fr, FetchDigest{1, 3, 0}).value, d.value) << "keyed";
  auto changed = [&](auto edit) {
    FetchResult f = fr;
    edit(f);
    return FetchDigestOf(f, key).value != d.value;
  };
  EXPECT_TRUE(changed([](FetchResult& f) { f.prefixes[0] = *ParsePrefix("192.0.2.2"); }));
  EXPECT_TRUE(changed([](FetchResult& f) { f.prefixes[1] = *ParsePrefix("2001:db8::/47"); }));
  EXPECT_TRUE(changed([](FetchResult& f) { f.valid_until[1] = 1; }));
  EXPECT_TRUE(changed([](FetchResult& f) { f.valid_from[0] = 1; }));
  EXPECT_TRUE(changed([](FetchResult& f) {
    f.ids = std::vector<std::string>{"indicator--b", ""};
  }));
  EXPECT_TRUE(changed([](FetchResult& f) { f.ids = IdList(); }));
  EXPECT_TRUE(changed([](FetchResult& f) { std::swap(f.prefixes[0], f.prefixes[1]); }));
  EXPECT_TRUE(changed([](FetchResult& f) {
    f.prefixes.push_back(f.prefixes[0]);
    f.valid_until.push_back(100);
    f.valid_from.push_back(0);
    f.ids.push_back("indicator--a");
  }));
}

TEST_F(AgentTest, ReportSurvivesARoundTripThroughJson) {
  auto agent = Make();
  b_->fail = true;
  CycleReport r = agent->RunCycle(false);
  auto back = ReportFromJson(ReportToJson(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->outcome, r.outcome);
  EXPECT_EQ(back->summary, r.summary);
  ASSERT_EQ(back->sources.size(), 2u);
  EXPECT_EQ(back->sources[1].error, r.sources[1].error);
  EXPECT_FALSE(ReportFromJson("{not json").has_value());
  // Numbers of the wrong kind or out of range fall back to defaults (found by fuzz_state_json:
  // a float cast overflow, undefined behaviour).
  auto odd = ReportFromJson(
      R"({"version":1,"outcome":"enforced-fresh","apply":{"added":1e300,"retries":-5e99},)"
      R"("enforced_elements":-3,"started_at":1.5e300,"sources":[{"name":"x","pages":1e300}]})");
  ASSERT_TRUE(odd.has_value());
  EXPECT_EQ(odd->apply.added, 0u);
  EXPECT_EQ(odd->enforced_elements, 0u);
  EXPECT_EQ(odd->started_at, 0);
  EXPECT_FALSE(ReportFromJson("{}").has_value());
}

TEST_F(AgentTest, RememberedStateCarriesAcrossRestarts) {
  {
    auto agent = Make();
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  }
  auto agent = Make();
  EXPECT_GT(agent->last_report().enforced_elements, 0u);
  EXPECT_GT(agent->last_report().sources[0].last_success, 0);
}

TEST_F(AgentTest, DryRunChangesNothing) {
  auto agent = Make();
  auto plan = agent->DryRun(false);
  ASSERT_TRUE(plan.ok()) << plan.message();
  EXPECT_EQ(plan->diff.v4.add.size(), 3u);
  EXPECT_FALSE(backend_.table_present);
  EXPECT_EQ(backend_.reconciles, 0);
  EXPECT_TRUE(state_.files.empty());
}

}  // namespace
}  // namespace iocwall
