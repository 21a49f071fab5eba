// "Never OK while wrong" at the agent's level, over the recording fakes: verification of the
// kernel against the commit record, the guards' baselines, the commit record itself, restore's
// remembered host addresses, stale tables, the writer lock and the hand-over to the daemon.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "agent/agent.h"
#include "agent/applied_state.h"
#include "agent/guards.h"
#include "agent/lock.h"
#include "agent/report_json.h"
#include "agent/verify.h"
#include "tests/agent/fakes.h"

namespace iocwall {
namespace {

class TrustTest : public ::testing::Test {
 protected:
  std::unique_ptr<Agent> Make(std::vector<std::vector<std::string>> lists) {
    std::vector<std::unique_ptr<Source>> sources;
    sources_.clear();
    for (size_t i = 0; i < lists.size(); ++i) {
      auto s = std::make_unique<FakeSource>("file /s" + std::to_string(i));
      s->entries = lists[i];
      sources_.push_back(s.get());
      sources.push_back(std::move(s));
    }
    auto agent =
        std::make_unique<Agent>(config_, std::move(sources), &backend_, &state_, &host_, &clock_);
    agent->LoadState();
    return agent;
  }
  // n distinct addresses, none adjacent to another: n kernel elements.
  static std::vector<std::string> Spread(size_t n, int first_octet = 11) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      out.push_back(FormatAddress(Family::kV4, (u128(first_octet) << 24) + 2 * i));
    }
    return out;
  }
  Config config_;
  FakeBackend backend_;
  MemoryStateStore state_;
  FakeHost host_;
  FakeClock clock_;
  std::vector<FakeSource*> sources_;
};

TEST(PickSamplesTest, SpreadsEvenlyWithFirstAndLast) {
  IntervalSet s;
  for (u128 i = 0; i < 1000; ++i) s.v4.ranges.push_back({i * 10, i * 10 + 3});
  s.v6.ranges.push_back({5, 5});
  auto picked = PickSamples(s, 32);
  ASSERT_EQ(picked.size(), 33u);
  EXPECT_EQ(picked.front().range, s.v4.ranges.front());
  EXPECT_EQ(picked[31].range, s.v4.ranges.back());
  EXPECT_EQ(picked[32].family, Family::kV6);
  EXPECT_TRUE(PickSamples(IntervalSet{}, 32).empty());
}

TEST_F(TrustTest, EachCommitIsRecordedAndVerifiesUntilTheKernelIsFlushed) {
  auto agent = Make({Spread(500)});
  CycleReport r = agent->RunCycle(false);
  ASSERT_EQ(r.outcome, Outcome::kEnforcedFresh);
  ASSERT_TRUE(r.committed.has_value());
  EXPECT_EQ(r.committed->table, "iocwall");
  EXPECT_EQ(r.committed->generation, backend_.generation);
  EXPECT_EQ(r.committed->v4, r.desired_v4);
  EXPECT_EQ(r.committed->samples.size(), 32u);
  auto back = ReportFromJson(ReportToJson(r));
  ASSERT_TRUE(back && back->committed);
  EXPECT_EQ(back->committed->samples.size(), 32u);
  EXPECT_EQ(back->committed->samples[5].range, r.committed->samples[5].range);

  KernelStatus k;
  ASSERT_TRUE(backend_.ReadStatus(&k).ok());
  Verification v = VerifyKernel(&backend_, config_.nft, k, *back->committed, clock_.NowUnix());
  EXPECT_TRUE(v.ran);
  EXPECT_TRUE(v.unchanged);
  EXPECT_EQ(v.checked, 32u);
  EXPECT_TRUE(v.failures.empty());
  // A hand flush: every sample fails.
  backend_.kernel = IntervalSet{};
  ++backend_.generation;
  ASSERT_TRUE(backend_.ReadStatus(&k).ok());
  v = VerifyKernel(&backend_, config_.nft, k, *back->committed, clock_.NowUnix());
  EXPECT_FALSE(v.unchanged);
  EXPECT_EQ(v.failures.size(), 32u);
}

TEST_F(TrustTest, AReshapedSampleFailsVerification) {
  auto agent = Make({{"192.0.2.0/24"}});
  CycleReport r = agent->RunCycle(false);
  ASSERT_TRUE(r.committed);
  backend_.kernel.v4.ranges = {
      {r.committed->samples[0].range.first, r.committed->samples[0].range.last - 10}};
  KernelStatus k;
  ASSERT_TRUE(backend_.ReadStatus(&k).ok());
  Verification v = VerifyKernel(&backend_, config_.nft, k, *r.committed, clock_.NowUnix());
  ASSERT_EQ(v.failures.size(), 1u);
  EXPECT_NE(v.failures[0].find("192.0.2.0/24"), std::string::npos) << v.failures[0];
}

TEST_F(TrustTest, ExpiringSamplesProveNothingAndAreSkipped) {
  CommitRecord c;
  c.table = "iocwall";
  c.samples = {{Family::kV4, {100, 200}, clock_.NowUnix() + 2}};
  backend_.table_present = true;
  KernelStatus k;
  ASSERT_TRUE(backend_.ReadStatus(&k).ok());
  Verification v = VerifyKernel(&backend_, config_.nft, k, c, clock_.NowUnix());
  EXPECT_EQ(v.skipped, 1u);
  EXPECT_TRUE(v.failures.empty());
}

TEST_F(TrustTest, ShrinkBaselineSurvivesALostReportThroughTheSnapshots) {
  auto big = Spread(1000);
  {
    auto agent = Make({big});
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  }
  state_.files.erase("report");  // state.json lost
  auto agent = Make({{big.begin(), big.begin() + 10}});
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kGuardRefused);
  EXPECT_EQ(backend_.kernel.v4.size(), 1000u) << "the last good list stays";
}

TEST_F(TrustTest, ShrinkBaselineComesFromTheKernelWhenEveryStateFileIsLost) {
  auto big = Spread(1000);
  {
    auto agent = Make({big});
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  }
  state_.files.clear();
  auto agent = Make({{big.begin(), big.begin() + 10}});
  EXPECT_EQ(agent->RunCycle(false).outcome, Outcome::kGuardRefused);
  EXPECT_EQ(backend_.kernel.v4.size(), 1000u);
}

TEST_F(TrustTest, ExpiryIsNotAShrink) {
  auto big = Spread(1000);
  auto agent = Make({big});
  sources_[0]->valid_until.assign(big.size(), clock_.NowUnix() + 3600);
  for (size_t i = 900; i < 1000; ++i) sources_[0]->valid_until[i] = 0;
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  clock_.Advance(7200);  // 900 of 1000 expire, as the feed says
  EXPECT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  EXPECT_EQ(backend_.kernel.v4.size(), 100u);
}

TEST_F(TrustTest, ACollapsingSourceIsRefusedByNameWhateverTheTotal) {
  auto big = Spread(5000, 11);
  auto small = Spread(400, 12);
  auto agent = Make({big, small});
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  sources_[1]->entries.resize(1);
  CycleReport r = agent->RunCycle(false);
  ASSERT_EQ(r.outcome, Outcome::kGuardRefused);
  EXPECT_NE(r.guard_reasons.at(0).find("file /s1 would shrink from 400 to 1"), std::string::npos)
      << r.guard_reasons.at(0);
  r = agent->RunCycle(true);
  EXPECT_EQ(r.outcome, Outcome::kEnforcedFresh) << "--force accepts it once";
  EXPECT_NE(r.summary.find("accepted with --force"), std::string::npos) << r.summary;
}

TEST(GuardsTest, SmallLossesOfSmallSourcesAreNotACollapse) {
  GuardInput in;
  in.sources = {{"s", 1, 9}};
  EXPECT_TRUE(CheckGuards(in).ok) << "8 of 9 lost: under min_source_loss";
  in.sources = {{"s", 9, 20}};
  EXPECT_FALSE(CheckGuards(in).ok) << "11 of 20 lost";
}

TEST_F(TrustTest, RestoreLeavesOutTheHostsAddressesOfTheLastGoodCycle) {
  host_.addresses = {{*ParsePrefix("192.0.2.9"), "address of eth0"}};
  {
    auto agent = Make({{"192.0.2.0/24", "198.51.100.1"}});
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  }
  EXPECT_FALSE(backend_.Blocks("192.0.2.9"));
  backend_.Flush();         // a reboot
  host_.addresses.clear();  // early in boot: eth0 has no address yet
  auto agent = Make({{}});
  CycleReport r = agent->Restore();
  ASSERT_TRUE(r.apply_error.empty()) << r.apply_error;
  EXPECT_TRUE(backend_.Blocks("192.0.2.8"));
  EXPECT_FALSE(backend_.Blocks("192.0.2.9")) << "remembered from the last good cycle";
}

TEST_F(TrustTest, ATableUnderAPreviousNameIsRemovedOnceTheNewOneEnforces) {
  {
    auto agent = Make({{"192.0.2.1"}});
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  }
  // The same state, a new table name; the fake holds the old one as marked (iocwall's).
  std::string json = state_.files["report"];
  auto rep = ReportFromJson(json);
  rep->committed->table = "oldname";
  state_.files["report"] = ReportToJson(*rep);
  backend_.other_tables["oldname"] = true;
  auto agent = Make({{"192.0.2.1"}});
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kEnforcedFresh);
  EXPECT_EQ(backend_.other_tables.count("oldname"), 0u);
  EXPECT_NE(r.summary.find("removed table inet oldname"), std::string::npos) << r.summary;
  EXPECT_TRUE(r.stale_tables.empty());
  // An unmarked table under the old name is never deleted: it stays reported.
  rep->committed->table = "adminname";
  state_.files["report"] = ReportToJson(*rep);
  backend_.other_tables["adminname"] = false;
  agent = Make({{"192.0.2.1"}});
  r = agent->RunCycle(false);
  EXPECT_EQ(backend_.other_tables.count("adminname"), 1u);
  ASSERT_EQ(r.stale_tables, std::vector<std::string>{"adminname"});
  EXPECT_FALSE(r.warnings.empty());
}

TEST_F(TrustTest, DryRunMakesTheSameDecisionAsTheCycle) {
  auto big = Spread(1000);
  auto agent = Make({big});
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  const auto files = state_.files;
  sources_[0]->entries.clear();
  auto plan = agent->DryRun(false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->outcome, Outcome::kGuardRefused);
  ASSERT_FALSE(plan->guard_reasons.empty());
  EXPECT_NE(plan->guard_reasons[0].find("returned no entries"), std::string::npos);
  EXPECT_TRUE(plan->diff.empty()) << "the last good list would stay";
  EXPECT_EQ(state_.files, files) << "a dry run writes nothing";
  EXPECT_EQ(agent->RunCycle(false).outcome, Outcome::kGuardRefused);
  plan = agent->DryRun(true);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->outcome, Outcome::kEnforcedFresh);
  EXPECT_TRUE(plan->forced);
  sources_[0]->fail = true;
  plan = agent->DryRun(false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->outcome, Outcome::kKeptLastGood);
}

TEST_F(TrustTest, AnUnownedTableFailsTheCycleAndIsLeftAlone) {
  backend_.table_present = true;
  backend_.owned = false;
  backend_.kernel.v4.ranges = {{1, 2}};
  auto agent = Make({{"192.0.2.1"}});
  CycleReport r = agent->RunCycle(false);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(backend_.kernel.v4.ranges.size(), 1u);
  auto plan = agent->DryRun(false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->outcome, Outcome::kFailed);
  EXPECT_FALSE(plan->table_error.empty());
}

TEST_F(TrustTest, AnIndicatorIsBlockedFromItsValidFromAndNotBefore) {
  auto agent = Make({{"192.0.2.1", "198.51.100.7"}});
  sources_[0]->valid_from = {0, clock_.NowUnix() + 600};
  CycleReport r = agent->RunCycle(false);
  ASSERT_EQ(r.outcome, Outcome::kEnforcedFresh);
  EXPECT_TRUE(backend_.Blocks("192.0.2.1"));
  EXPECT_FALSE(backend_.Blocks("198.51.100.7")) << "not valid yet";
  EXPECT_EQ(r.sources[0].not_yet_valid, 1u);
  EXPECT_EQ(r.next_valid_from, clock_.NowUnix() + 600) << "the daemon wakes up then";
  // A restore before it is valid does not block it either (the snapshot keeps valid_from).
  backend_.Flush();
  {
    auto again = Make({{}});
    ASSERT_TRUE(again->Restore().apply_error.empty());
    EXPECT_TRUE(backend_.Blocks("192.0.2.1"));
    EXPECT_FALSE(backend_.Blocks("198.51.100.7"));
  }
  clock_.Advance(601);
  r = agent->RunCycle(false);
  EXPECT_TRUE(backend_.Blocks("198.51.100.7")) << "valid now";
  EXPECT_EQ(r.next_valid_from, 0);
}

TEST(SnapshotValidFromTest, RoundTripsAndOldFilesStillParse) {
  Snapshot s;
  s.source = "collection a";
  s.fetched_at = 5;
  s.entries = {{*ParsePrefix("192.0.2.1"), 1, 2, "", 0},
               {*ParsePrefix("192.0.2.2"), 1, 2, "", 99},
               {*ParsePrefix("192.0.2.3"), 1, 2, "indicator--x", 77}};
  auto back = ParseSnapshot(SerializeSnapshot(s));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->entries, s.entries);
  auto old = ParseSnapshot(
      "# iocwall snapshot v1\n# source: x\n# fetched_at: 1\n# entries: 1\n"
      "192.0.2.9 1 0 indicator--y\n# end\n");
  ASSERT_TRUE(old.ok()) << old.message();
  EXPECT_EQ(old->entries.at(0).valid_from, 0);
  EXPECT_EQ(old->entries.at(0).id, "indicator--y");
}

TEST_F(TrustTest, ARepeatedNoteIsLoggedOnceNotEveryCycle) {
  config_.allowlist = {*ParsePrefix("192.0.2.0/28")};
  auto agent = Make({{"192.0.2.0/24"}});
  ::testing::internal::CaptureStderr();
  agent->RunCycle(false);
  agent->RunCycle(false);
  agent->RunCycle(false);
  std::string log = ::testing::internal::GetCapturedStderr();
  const std::string note = "not blocking 192.0.2.0/28 (allowlisted)";
  size_t count = 0;
  for (size_t at = log.find(note); at != std::string::npos; at = log.find(note, at + 1)) ++count;
  EXPECT_EQ(count, 1u) << log;
  // A note that changes is logged again.
  config_.allowlist = {*ParsePrefix("192.0.2.0/29")};
  agent = Make({{"192.0.2.0/24"}});
  ::testing::internal::CaptureStderr();
  agent->RunCycle(false);
  log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("not blocking 192.0.2.0/29"), std::string::npos) << log;
}

// The daemon runs an unchanged cycle every few minutes all day: each is one line in the journal,
// its outcome, whatever notes the first cycle logged.
TEST_F(TrustTest, AnUnchangedCycleLogsOneLine) {
  config_.allowlist = {*ParsePrefix("192.0.2.0/28")};
  auto agent = Make({{"192.0.2.0/24", "198.51.100.7"}, {"203.0.113.0/24"}});
  ::testing::internal::CaptureStderr();
  agent->RunCycle(false);
  const std::string first = ::testing::internal::GetCapturedStderr();
  EXPECT_GT(std::count(first.begin(), first.end(), '\n'), 1) << "control: a note, then the cycle\n"
                                                             << first;
  for (int i = 0; i < 2; ++i) {
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    EXPECT_NE(log.find("cycle enforced-fresh"), std::string::npos) << log;
  }
}

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("iocwall-lock-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LockTest, ADaemonHolderIsNamedAtOnceAndAnotherHolderIsWaitedFor) {
  std::optional<LockHolder> holder;
  auto a = WriterLock::Acquire(dir_, "daemon", std::chrono::seconds(0), &holder);
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_TRUE(std::filesystem::exists(dir_ / "iocwall.lock"));
  // flock is per open file description: a second Acquire in this process contends like
  // another process would.
  auto b = WriterLock::Acquire(dir_, "once", std::chrono::seconds(5), &holder);
  ASSERT_FALSE(b.ok());
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->pid, ::getpid());
  EXPECT_EQ(holder->mode, "daemon");
  EXPECT_NE(b.message().find("pid " + std::to_string(::getpid())), std::string::npos);
  { WriterLock released = std::move(a.value()); }
  auto c = WriterLock::Acquire(dir_, "once", std::chrono::seconds(0), &holder);
  EXPECT_TRUE(c.ok()) << "released with its holder";
  auto d = WriterLock::Acquire(dir_, "flush", std::chrono::seconds(1), &holder);
  EXPECT_FALSE(d.ok()) << "a --once holder is waited for, then reported";
  EXPECT_EQ(holder->mode, "once");
}

TEST_F(LockTest, AHandOverReachesTheDaemonAndItsAnswerComesBack) {
  std::filesystem::create_directories(dir_);
  // The "daemon" is a child that waits for SIGUSR1, takes the request and answers it.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int sig = 0;
    sigwait(&set, &sig);
    auto req = TakeHandOver(dir_);
    if (!req) _exit(3);
    AnswerHandOver(dir_, *req, std::string(req->force ? "forced" : "plain") + ": done");
    _exit(0);
  }
  auto answer = HandToDaemon(dir_, LockHolder{child, "daemon"}, true, std::chrono::seconds(20));
  int status = 0;
  ::waitpid(child, &status, 0);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ASSERT_TRUE(answer.ok()) << answer.message();
  EXPECT_EQ(*answer, "forced: done");
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(TakeHandOver(dir_).has_value()) << "a request is taken once";
}

}  // namespace
}  // namespace iocwall

namespace iocwall {
namespace {

TEST(AppliedStateTest, RoundTripsAndRefusesDamage) {
  AppliedCopy c;
  c.table = "iocwall";
  c.spec = "iocwall|blocklist_v4|blocklist_v6|-200|0|00|inputforwardoutput";
  c.generation = 42;
  c.table_handle = 7;
  c.boot_id = "0b4c9c2e-6f0a-4f3a-9e63-1d2b3c4d5e6f";
  c.netns = 4026531840u;
  c.full_read_at = 1800000000;
  c.timeouts = true;
  c.v4.ranges = {{1, 2}, {10, 20}, {0xfffffff0u, 0xffffffffu}};
  c.v4.expires = {0, 1800003600, 5};
  c.v6.ranges = {{u128(1) << 100, (u128(1) << 100) + 5}, {~u128(0) - 1, ~u128(0)}};
  c.v6.expires = {0, 0};
  const std::string data = SerializeApplied(c);
  auto back = ParseApplied(data);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->table, c.table);
  EXPECT_EQ(back->spec, c.spec);
  EXPECT_EQ(back->generation, 42u);
  EXPECT_EQ(back->table_handle, 7u);
  EXPECT_EQ(back->boot_id, c.boot_id);
  EXPECT_EQ(back->netns, c.netns);
  EXPECT_EQ(back->full_read_at, c.full_read_at);
  EXPECT_TRUE(back->timeouts);
  EXPECT_EQ(back->v4.ranges, c.v4.ranges);
  EXPECT_EQ(back->v4.expires, c.v4.expires);
  EXPECT_EQ(back->v6.ranges, c.v6.ranges);
  // Truncated, padded, a count that lies, ranges out of order: refused.
  EXPECT_FALSE(ParseApplied(data.substr(0, data.size() - 1)).ok());
  EXPECT_FALSE(ParseApplied(data + "x").ok());
  std::string lie = data;
  lie.replace(lie.find("v4 3"), 4, "v4 9");
  EXPECT_FALSE(ParseApplied(lie).ok());
  std::string huge = data;
  huge.replace(huge.find("v4 3"), 4, "v4 999999999999");
  EXPECT_FALSE(ParseApplied(huge).ok());
  AppliedCopy bad = c;
  std::swap(bad.v4.ranges[0], bad.v4.ranges[1]);
  EXPECT_FALSE(ParseApplied(SerializeApplied(bad)).ok());
  EXPECT_FALSE(ParseApplied("").ok());
  EXPECT_FALSE(ParseApplied("iocwall-applied 2\n\n").ok());
}

TEST_F(TrustTest, TheCopyOfEachCommitIsSavedAndSeedsTheNextProcess) {
  backend_.copy = AppliedCopy{};
  backend_.copy->table = "iocwall";
  {
    auto agent = Make({{"192.0.2.1", "198.51.100.0/24"}});
    EXPECT_FALSE(backend_.seeded.has_value()) << "nothing saved yet";
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
    EXPECT_EQ(state_.applied_saves, 1);
    ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
    EXPECT_EQ(state_.applied_saves, 1) << "the kernel did not change: nothing to write";
  }
  ASSERT_TRUE(state_.applied.has_value());
  EXPECT_EQ(state_.applied->generation, backend_.generation);
  const uint32_t committed = backend_.generation;
  auto agent = Make({{"192.0.2.1"}});
  // Read when the kernel is first needed, after the list is built (not held beside the build).
  EXPECT_FALSE(backend_.seeded.has_value()) << "not read before the kernel is needed";
  ASSERT_EQ(agent->RunCycle(false).outcome, Outcome::kEnforcedFresh);
  ASSERT_TRUE(backend_.seeded.has_value()) << "the next process starts from the copy";
  EXPECT_EQ(backend_.seeded->generation, committed);
}

}  // namespace
}  // namespace iocwall
