#include "agent/state.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <tuple>

#include "agent/guards.h"
#include "agent/health.h"
#include "agent/host_info.h"
#include "agent/privileges.h"
#include "tests/agent/fakes.h"

namespace iocwall {
namespace {

Snapshot Sample() {
  Snapshot s;
  s.source = "collection abc";
  s.fetched_at = 1800000000;
  s.entries = {{*ParsePrefix("192.0.2.0/24"), 1700000000, 0, ""},
               {*ParsePrefix("2001:db8::1"), 1700000001, 1900000000,
                "indicator--6a7e0a52-6f2c-4b39-9d55-0e4b5f3c1a01"}};
  return s;
}

TEST(SnapshotTest, RoundTrips) {
  Snapshot s = Sample();
  auto back = ParseSnapshot(SerializeSnapshot(s));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->source, s.source);
  EXPECT_EQ(back->fetched_at, s.fetched_at);
  EXPECT_EQ(back->entries, s.entries);
}

TEST(SnapshotTest, TruncatedOrDamagedIsRefused) {
  std::string text = SerializeSnapshot(Sample());
  EXPECT_FALSE(ParseSnapshot(text.substr(0, text.size() - 6)).ok()) << "no end marker";
  std::string bad = text;
  bad.replace(bad.find("192.0.2.0/24"), 12, "192.0.2.0/99");
  EXPECT_FALSE(ParseSnapshot(bad).ok());
  EXPECT_FALSE(ParseSnapshot("").ok());
  EXPECT_FALSE(ParseSnapshot("hello\n").ok());
}

// A million-entry file is read a megabyte at a time: a line cut anywhere between two pieces
// must read exactly as the whole text does, entries, header and errors alike.
TEST(SnapshotTest, ReadInPiecesOfAnySizeAsWhole) {
  Snapshot s = Sample();
  s.digest = {0x0123456789abcdefull, 0xfedcba9876543210ull, 42};
  s.entries.push_back({*ParsePrefix("198.51.100.7"), 1700000002, 0, "", 1750000000});
  const std::string text = SerializeSnapshot(s);
  for (size_t piece = 1; piece <= text.size(); ++piece) {
    SnapshotInfo info;
    std::vector<SnapshotEntry> got;
    const SnapshotEntryFn keep = [&](const SnapshotEntry& e) { got.push_back(e); };
    SnapshotParser parser(&info, &keep);
    for (size_t at = 0; at < text.size(); at += piece) parser.Feed(text.substr(at, piece));
    Status st = parser.Finish();
    ASSERT_TRUE(st.ok()) << piece << ": " << st.message();
    EXPECT_EQ(got, s.entries) << piece;
    EXPECT_EQ(info.digest, s.digest) << piece;
    EXPECT_EQ(info.earliest_until, 1900000000);
    EXPECT_EQ(info.latest_from, 1750000000);
    SnapshotInfo head;
    SnapshotParser header_only(&head, nullptr);
    for (size_t at = 0; at < text.size(); at += piece) header_only.Feed(text.substr(at, piece));
    EXPECT_TRUE(header_only.Finish().ok()) << piece;
    EXPECT_EQ(head.entries, 3u);
    // Cut short: refused whole or in pieces, with or without the entries.
    const std::string cut = text.substr(0, text.size() - 3);
    SnapshotParser cut_head(&head, nullptr);
    for (size_t at = 0; at < cut.size(); at += piece) cut_head.Feed(cut.substr(at, piece));
    EXPECT_FALSE(cut_head.Finish().ok()) << piece;
  }
}

TEST(SnapshotTest, HeaderBoundsSayWhenEveryEntryIsInForce) {
  Snapshot s = Sample();  // one entry ends at 1900000000
  SnapshotInfo info = InfoOf(s);
  EXPECT_EQ(info.AllInForce(1800000000), std::optional<size_t>(2));
  EXPECT_EQ(info.AllInForce(1900000000), std::nullopt) << "one has ended: count them";
  s.entries[0].valid_from = 1850000000;
  info = InfoOf(s);
  EXPECT_EQ(info.AllInForce(1800000000), std::nullopt) << "one has not begun";
  EXPECT_EQ(info.AllInForce(1850000000), std::optional<size_t>(2));
}

TEST(SnapshotTest, ALineWithoutEndIsRefusedNotBuffered) {
  SnapshotInfo info;
  const SnapshotEntryFn none = [](const SnapshotEntry&) {};
  SnapshotParser parser(&info, &none);
  parser.Feed("# iocwall snapshot v1\n# source: x\n# fetched_at: 1\n# entries: 1\n");
  for (int i = 0; i < 100; ++i) parser.Feed(std::string(1000, '1'));
  EXPECT_FALSE(parser.Finish().ok());
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/iocwall-state-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileStoreTest, WritesPrivateFilesAndReadsThemBack) {
  auto store = MakeFileStateStore(dir_);
  ASSERT_TRUE(store->SaveSnapshot(Sample()).ok());
  ASSERT_TRUE(store->SaveReport("{\"x\":1}\n").ok());
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_ + "/state.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/sources")) {
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << e.path();
  }
  auto snap = store->LoadSnapshot("collection abc");
  ASSERT_TRUE(snap.ok() && snap.value());
  EXPECT_EQ((*snap.value()).entries.size(), 2u);
  auto none = store->LoadSnapshot("collection other");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value().has_value());
}

// The cycle's streamed write gives the same file as a whole snapshot saved at once, and the
// streamed reads see what was written.
TEST_F(FileStoreTest, StreamedWriteAndReadsMatchTheWholeSnapshot) {
  auto store = MakeFileStateStore(dir_);
  Snapshot s = Sample();
  s.digest = {1, 2, 3};
  // Enough entries for several pieces of a megabyte each way.
  for (uint32_t i = 0; i < 120000; ++i) {
    s.entries.push_back(
        {Prefix(Family::kV4, u128{0x0a000000u + 2 * i}, 32), 1700000000 + i, 0, ""});
  }
  std::sort(s.entries.begin(), s.entries.end(), [](const SnapshotEntry& a, const SnapshotEntry& b) {
    return std::tie(a.prefix.family, a.prefix.addr, a.prefix.len) <
           std::tie(b.prefix.family, b.prefix.addr, b.prefix.len);
  });
  ASSERT_TRUE(store
                  ->WriteSnapshot(InfoOf(s),
                                  [&](const SnapshotEntryFn& each) {
                                    for (const auto& e : s.entries) each(e);
                                  })
                  .ok());
  const std::string path =
      dir_ + "/sources/" +
      std::filesystem::directory_iterator(dir_ + "/sources")->path().filename().string();
  std::ifstream in(path);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(written, SerializeSnapshot(s));
  auto info = store->LoadSnapshotInfo(s.source);
  ASSERT_TRUE(info.ok() && info.value()) << info.message();
  EXPECT_EQ((*info.value()).entries, s.entries.size());
  EXPECT_EQ((*info.value()).digest, s.digest);
  std::vector<SnapshotEntry> read;
  auto found = store->ReadSnapshot(s.source, [&](const SnapshotEntry& e) { read.push_back(e); });
  ASSERT_TRUE(found.ok() && found.value());
  EXPECT_EQ(read, s.entries);
  // Cut short on disk: even the header alone is refused, and the file set aside.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  auto cut = store->LoadSnapshotInfo(s.source);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.message().find("set aside"), std::string::npos) << cut.message();
  auto gone = store->LoadSnapshotInfo(s.source);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone.value().has_value());
}

TEST_F(FileStoreTest, APreparedSnapshotReplacesTheOldOnlyWhenCommitted) {
  auto store = MakeFileStateStore(dir_);
  Snapshot old = Sample();
  ASSERT_TRUE(store->SaveSnapshot(old).ok());
  Snapshot fresh = Sample();
  fresh.entries.pop_back();
  auto each = [&](const SnapshotEntryFn& f) {
    for (const auto& e : fresh.entries) f(e);
  };
  auto files = [&] {
    size_t n = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir_ + "/sources"))
      n += !f.is_directory();
    return n;
  };
  {
    auto dropped = store->PrepareSnapshot(InfoOf(fresh), each);
    ASSERT_TRUE(dropped.ok()) << dropped.message();
    EXPECT_EQ(files(), 2u) << "written aside";
  }
  EXPECT_EQ(files(), 1u) << "dropped uncommitted: no temporary left";
  auto loaded = store->LoadSnapshot(old.source);
  ASSERT_TRUE(loaded.ok() && loaded.value());
  EXPECT_EQ((*loaded.value()).entries, old.entries);
  auto kept = store->PrepareSnapshot(InfoOf(fresh), each);
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE((*kept)->Commit().ok());
  EXPECT_EQ(files(), 1u);
  loaded = store->LoadSnapshot(old.source);
  ASSERT_TRUE(loaded.ok() && loaded.value());
  EXPECT_EQ((*loaded.value()).entries, fresh.entries);
}

TEST_F(FileStoreTest, CorruptFileIsReportedAndSetAside) {
  auto store = MakeFileStateStore(dir_);
  ASSERT_TRUE(store->SaveSnapshot(Sample()).ok());
  std::string path;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/sources")) path = e.path();
  std::ofstream(path, std::ios::trunc) << "# iocwall snapshot v1\ngarbage";
  auto snap = store->LoadSnapshot("collection abc");
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.message().find("corrupt"), std::string::npos);
  EXPECT_NE(snap.message().find("set aside"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
  auto again = store->LoadSnapshot("collection abc");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again.value().has_value());
}

TEST_F(FileStoreTest, UnwritableDirectoryIsAnError) {
  auto store = MakeFileStateStore("/proc/iocwall-cannot-exist");
  Status s = store->SaveReport("{}");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/proc/iocwall-cannot-exist"), std::string::npos);
}

// Planted files where the store expects its own: nothing hangs, nothing aborts, nothing huge is
// read; each is refused with a message and moved aside, and the next save starts clean.
size_t CountAside(const std::string& dir, const std::string& tag) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    n += e.path().filename().string().find(tag) != std::string::npos;
  }
  return n;
}

TEST_F(FileStoreTest, FifoAsStateJsonIsSetAsideWithoutHanging) {
  auto store = MakeFileStateStore(dir_);
  ASSERT_TRUE(store->SaveReport("{}").ok());
  ASSERT_EQ(::unlink((dir_ + "/state.json").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir_ + "/state.json").c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = store->LoadReport();  // a blocking open would hang here: no writer ever comes
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("FIFO"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("set aside as"), std::string::npos) << r.message();
  EXPECT_EQ(CountAside(dir_, "state.json.bad-"), 1u);
  EXPECT_TRUE(store->SaveReport("{\"a\":1}").ok());
  auto again = store->LoadReport();
  ASSERT_TRUE(again.ok() && again.value());
  EXPECT_EQ(**again, "{\"a\":1}");
}

TEST_F(FileStoreTest, SnapshotLinkedToDevZeroIsRefusedNotRead) {
  auto store = MakeFileStateStore(dir_);
  ASSERT_TRUE(store->SaveSnapshot(Sample()).ok());
  std::string path;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/sources")) path = e.path();
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::symlink("/dev/zero", path.c_str()), 0);
  auto snap = store->LoadSnapshot("collection abc");  // the old reader died of bad_alloc
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.message().find("symbolic link"), std::string::npos) << snap.message();
  EXPECT_EQ(CountAside(dir_ + "/sources", ".bad-"), 1u);
  struct stat st;
  EXPECT_EQ(::stat("/dev/zero", &st), 0) << "the link itself was moved, not its target";
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(FileStoreTest, HugeStateJsonIsRefusedByItsSize) {
  FileStateLimits limits;
  auto store = MakeFileStateStore(dir_, limits);
  ASSERT_TRUE(store->SaveReport("{}").ok());
  // 400 MB, sparse: the size alone must refuse it, before any byte is read.
  const int fd = ::open((dir_ + "/state.json").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, off_t{400} << 20), 0);
  ::close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = store->LoadReport();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("larger than"), std::string::npos) << r.message();
  // Negative control: with a cap above it, the same file is read (the cap is what refused).
  limits.report_max_bytes = size_t{1} << 10;
  ASSERT_TRUE(store->SaveReport(std::string(900, ' ')).ok());
  EXPECT_TRUE(MakeFileStateStore(dir_, limits)->LoadReport().ok());
  ASSERT_TRUE(store->SaveReport(std::string(2000, ' ')).ok());
  EXPECT_FALSE(MakeFileStateStore(dir_, limits)->LoadReport().ok());
}

TEST_F(FileStoreTest, SymlinkedStateDirIsRefusedAndItsTargetLeftAlone) {
  const std::string target = dir_ + "-target";
  std::filesystem::remove_all(target);
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(target.c_str(), 0755), 0);  // whatever the umask
  ASSERT_EQ(::symlink(target.c_str(), dir_.c_str()), 0);
  auto store = MakeFileStateStore(dir_);
  Status s = store->SaveReport("{}");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("readlink -f"), std::string::npos) << s.message();
  EXPECT_FALSE(store->LoadReport().ok());
  struct stat st;
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u) << "the link's target must not be chmodded";
  EXPECT_FALSE(std::filesystem::exists(target + "/state.json"));
  std::filesystem::remove_all(target);
}

TEST_F(FileStoreTest, GroupWritableStateDirIsRefusedWithTheFix) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0770), 0);
  Status s = MakeFileStateStore(dir_)->SaveReport("{}");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("writable by group or others (mode 0770)"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("chmod go-w " + dir_), std::string::npos) << s.message();
  // Readable by others but not writable: tightened to 0700 and used.
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  EXPECT_TRUE(MakeFileStateStore(dir_)->SaveReport("{}").ok());
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(FileStoreTest, StateDirOwnedBySomeoneElseIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir_.c_str(), 65534, 65534), 0);
  Status s = MakeFileStateStore(dir_)->SaveReport("{}");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("owned by uid 65534, not root"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("chown root:root"), std::string::npos) << s.message();
  ASSERT_EQ(::chown(dir_.c_str(), 0, 0), 0);  // control: the same directory, owned by root
  EXPECT_TRUE(MakeFileStateStore(dir_)->SaveReport("{}").ok());
}

TEST(MetricsFileTest, WritesReadableFileInACheckedDirectory) {
  const std::string dir = ::testing::TempDir() + "/iocwall-metrics-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomic(dir + "/m.prom", "x 1\n", 0644, "metrics directory").ok());
  struct stat st;
  ASSERT_EQ(::stat((dir + "/m.prom").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += e.exists();
  EXPECT_EQ(entries, 1u) << "no temporary left behind";
  ASSERT_EQ(::chmod(dir.c_str(), 0775), 0);
  Status s = WriteFileAtomic(dir + "/m.prom", "x 2\n", 0644, "metrics directory");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("metrics directory " + dir + " is writable"), std::string::npos)
      << s.message();
  std::filesystem::remove_all(dir);
}

TEST(HostInfoTest, ConnectedNetworksFromTheRoutes) {
  const std::string v4 =
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"   // default via
      "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"   // 192.0.2.0/24
      "eth1\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n"   // 10.0.0.0/8
      "wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000080\t0\t0\t0\n"    // 0.0.0.0/1
      "eth2\t0000A8C0\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0\n"   // reject
      "eth3\t0010A8C0\t0100A8C0\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";  // via gateway
  auto nets = ConnectedNetworks4(v4, 8);
  ASSERT_EQ(nets.size(), 2u);
  EXPECT_EQ(nets[0].prefix.ToString(), "192.0.2.0/24");
  EXPECT_EQ(nets[0].why, "directly connected network on eth0");
  EXPECT_EQ(nets[1].prefix.ToString(), "10.0.0.0/8");
  EXPECT_EQ(ConnectedNetworks4(v4, 9).size(), 1u) << "shorter than the minimum: not protected";
  const std::string v6 =
      "fd000077000000000000000000000000 40 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000002 00000000 00000001       v0\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
      "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000002 00000000 00000001       v0\n";
  auto nets6 = ConnectedNetworks6(v6, 32);
  ASSERT_EQ(nets6.size(), 1u);
  EXPECT_EQ(nets6[0].prefix.ToString(), "fd00:77::/64");
  EXPECT_TRUE(ConnectedNetworks4("garbage\nx y z\n", 8).empty());
}

// PR_SET_DUMPABLE, in a child so that the test runner stays dumpable.
int DumpableAfter(bool call) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (call) MakeNonDumpable();
    ::_exit(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PrivilegesTest, MakeNonDumpable) {
  EXPECT_EQ(DumpableAfter(false), 1) << "control: a process is dumpable by default";
  EXPECT_EQ(DumpableAfter(true), 0);
}

TEST(GuardsTest, EachRule) {
  GuardInput in;
  in.have_previous = true;
  in.previous_elements = 1000;
  in.new_elements = 500;
  in.max_shrink_percent = 50;
  EXPECT_TRUE(CheckGuards(in).ok) << "exactly 50% is allowed";
  in.new_elements = 499;
  EXPECT_FALSE(CheckGuards(in).ok);
  in.max_shrink_percent = 100;
  EXPECT_TRUE(CheckGuards(in).ok);
  in.max_entries = 400;
  EXPECT_FALSE(CheckGuards(in).ok);
  in.max_entries = 1000000;
  in.sources = {{"collection a", 0, 10}};
  EXPECT_FALSE(CheckGuards(in).ok);
  in.sources = {{"collection a", 0, 0}};
  EXPECT_TRUE(CheckGuards(in).ok) << "a source that never had entries may stay empty";
}

TEST(HostInfoTest, HostOfUrl) {
  EXPECT_EQ(HostOfUrl("https://app.sekoia.io/api"), "app.sekoia.io");
  EXPECT_EQ(HostOfUrl("https://u@h.test:8443/x?y"), "h.test");
  EXPECT_EQ(HostOfUrl("http://[::1]:8080/"), "::1");
  EXPECT_EQ(HostOfUrl("http://127.0.0.1"), "127.0.0.1");
}

CycleReport FreshReport(int64_t fetched_at) {
  CycleReport r;
  r.outcome = Outcome::kEnforcedFresh;
  r.enforced_fetched_at = fetched_at;
  return r;
}

TEST(StatusTest, HealthFollowsKernelAndReport) {
  Config c;
  KernelStatus k = EnforcingKernel();
  CycleReport r = FreshReport(1000);
  const int64_t now = 1100;
  EXPECT_EQ(Evaluate(c, &k, "", r, now).health, Health::kOk);
  r.outcome = Outcome::kKeptLastGood;
  EXPECT_EQ(Evaluate(c, &k, "", r, now).health, Health::kWarning);
  r.outcome = Outcome::kGuardRefused;
  EXPECT_EQ(Evaluate(c, &k, "", r, now).health, Health::kWarning);
  r.outcome = Outcome::kEnforcedFresh;
  EXPECT_EQ(Evaluate(c, &k, "", r, 1000 + 86401).health, Health::kCritical) << "older than max_age";
  k.table_present = false;
  EXPECT_EQ(Evaluate(c, &k, "", r, now).health, Health::kCritical);
  EXPECT_EQ(Evaluate(c, nullptr, "permission denied", r, now).health, Health::kUnknown);
  k.table_present = true;
  k.chains_present = false;
  EXPECT_EQ(Evaluate(c, &k, "", r, now).health, Health::kCritical);
}

TEST(StatusTest, ATableNotOursOrDormantIsCritical) {
  Config c;
  KernelStatus k = EnforcingKernel();
  CycleReport r = FreshReport(1000);
  ASSERT_EQ(Evaluate(c, &k, "", r, 1100).health, Health::kOk) << "control";
  k.table_dormant = true;
  StatusView v = Evaluate(c, &k, "", r, 1100);
  EXPECT_EQ(v.health, Health::kCritical);
  EXPECT_NE(v.reasons.at(0).find("dormant"), std::string::npos) << v.reasons.at(0);
  k.table_dormant = false;
  k.table_owned = false;
  v = Evaluate(c, &k, "", r, 1100);
  EXPECT_EQ(v.health, Health::kCritical);
  EXPECT_NE(v.reasons.at(0).find("not created by iocwall"), std::string::npos) << v.reasons.at(0);
  k.table_owned = true;
  r.stale_tables = {"oldname"};
  v = Evaluate(c, &k, "", r, 1100);
  EXPECT_EQ(v.health, Health::kWarning);
  EXPECT_NE(v.reasons.at(0).find("table inet oldname"), std::string::npos) << v.reasons.at(0);
}

TEST(StatusTest, FailedSpotChecksAreCriticalAndUnverifiedIsAWarning) {
  Config c;
  KernelStatus k = EnforcingKernel();
  CycleReport r = FreshReport(1000);
  r.enforced_elements = 100;
  Verification ok;
  ok.ran = true;
  ok.checked = 32;
  EXPECT_EQ(Evaluate(c, &k, "", r, 1100, ok).health, Health::kOk);
  Verification bad = ok;
  bad.failures = {"set blocklist_v4 lacks 192.0.2.0/24"};
  StatusView v = Evaluate(c, &k, "", r, 1100, bad);
  EXPECT_EQ(v.health, Health::kCritical);
  EXPECT_NE(v.reasons.at(0).find("192.0.2.0/24"), std::string::npos) << v.reasons.at(0);
  v = Evaluate(c, &k, "", r, 1100, Verification{});
  EXPECT_EQ(v.health, Health::kWarning) << "nothing to verify against is never OK";
  EXPECT_NE(v.reasons.at(0).find("not verified"), std::string::npos) << v.reasons.at(0);
}

TEST(StatusTest, KernelCountsAreComparedWithWhatWasEnforced) {
  Config c;
  KernelStatus k;
  k.table_present = k.sets_present = k.chains_present = k.table_owned = true;
  k.elements_counted = true;
  k.v4_elements = 90;
  k.v6_elements = 10;
  CycleReport r;
  r.outcome = Outcome::kEnforcedFresh;
  r.enforced_fetched_at = 1000;
  r.enforced_elements = 100;
  EXPECT_EQ(Evaluate(c, &k, "", r, 1100).health, Health::kOk);
  k.v4_elements = 80;
  EXPECT_EQ(Evaluate(c, &k, "", r, 1100).health, Health::kWarning);
  k.v4_elements = k.v6_elements = 0;
  EXPECT_EQ(Evaluate(c, &k, "", r, 1100).health, Health::kCritical);
  k.elements_counted = false;
  EXPECT_EQ(Evaluate(c, &k, "", r, 1100).health, Health::kWarning)
      << "neither counted nor verified: never OK";
}

}  // namespace
}  // namespace iocwall
