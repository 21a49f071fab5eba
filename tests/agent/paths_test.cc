// --check-config's path checks: every file and directory the configuration names, one message
// per problem.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/wiring.h"

namespace iocwall {
namespace {

class CheckPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/iocwall-paths-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    list_ = dir_ + "/list.txt";
    std::ofstream(list_) << "192.0.2.1\n";
    ASSERT_EQ(::mkdir((dir_ + "/state").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((dir_ + "/metrics").c_str(), 0755), 0);
    config_.path = "test.conf";
    config_.files = {list_};
    config_.sync.state_dir = dir_ + "/state";
    config_.metrics_textfile = dir_ + "/metrics/iocwall.prom";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Problems() {
    std::string all;
    for (const auto& p : CheckPaths(config_)) all += p + "\n";
    return all;
  }

  std::string dir_, list_;
  Config config_;
};

TEST_F(CheckPathsTest, AGoodConfigurationHasNoProblem) {
  EXPECT_EQ(Problems(), "");
  config_.metrics_textfile.clear();
  EXPECT_EQ(Problems(), "") << "no metrics file, nothing to check";
}

TEST_F(CheckPathsTest, ListFilesMustBeReadableRegularFiles) {
  config_.files = {dir_ + "/missing.txt", dir_ + "/state", list_};
  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  config_.files.push_back(dir_ + "/fifo");
  auto problems = CheckPaths(config_);
  ASSERT_EQ(problems.size(), 3u) << Problems();
  EXPECT_EQ(problems[0],
            "configuration test.conf: [files] path " + dir_ + "/missing.txt does not exist");
  EXPECT_EQ(problems[1],
            "configuration test.conf: [files] path " + dir_ + "/state is a directory, not a file");
  EXPECT_EQ(problems[2],
            "configuration test.conf: [files] path " + dir_ + "/fifo is not a regular file");
}

TEST_F(CheckPathsTest, ListFileThroughASymlinkIsAccepted) {
  ASSERT_EQ(::symlink(list_.c_str(), (dir_ + "/link.txt").c_str()), 0);
  config_.files = {dir_ + "/link.txt"};
  EXPECT_EQ(Problems(), "") << "the list reader follows links";
}

TEST_F(CheckPathsTest, CaFileMustExist) {
  config_.api.ca_file = dir_ + "/ca.pem";
  EXPECT_EQ(Problems(),
            "configuration test.conf: [api] ca_file " + dir_ + "/ca.pem does not exist\n");
  std::ofstream(config_.api.ca_file) << "PEM\n";
  EXPECT_EQ(Problems(), "");
}

TEST_F(CheckPathsTest, StateDirMayBeAbsentOnlyWhereIocwallCanCreateIt) {
  config_.sync.state_dir = dir_ + "/new-state";
  EXPECT_EQ(Problems(), "") << "iocwall creates it";
  config_.sync.state_dir = dir_ + "/no-parent/state";
  EXPECT_NE(Problems().find("[sync] state_dir: state_dir " + dir_ +
                            "/no-parent/state does not exist, nor does its parent"),
            std::string::npos)
      << Problems();
  config_.sync.state_dir = list_;
  EXPECT_NE(Problems().find("[sync] state_dir: state_dir " + list_ + " is not a directory"),
            std::string::npos)
      << Problems();
}

TEST_F(CheckPathsTest, StateDirFollowsTheWritersRules) {
  ASSERT_EQ(::chmod((dir_ + "/state").c_str(), 0777), 0);
  EXPECT_NE(Problems().find("is writable by group or others (mode 0777)"), std::string::npos)
      << Problems();
  EXPECT_NE(Problems().find("chmod go-w " + dir_ + "/state"), std::string::npos) << Problems();
  ASSERT_EQ(::symlink((dir_ + "/metrics").c_str(), (dir_ + "/state-link").c_str()), 0);
  config_.sync.state_dir = dir_ + "/state-link";
  EXPECT_NE(Problems().find("is a symbolic link"), std::string::npos) << Problems();
}

TEST_F(CheckPathsTest, MetricsDirectoryMustExistAndBeTrusted) {
  config_.metrics_textfile = dir_ + "/absent/iocwall.prom";
  EXPECT_EQ(Problems(), "configuration test.conf: [metrics] textfile: metrics directory " + dir_ +
                            "/absent does not exist\n");
  config_.metrics_textfile = dir_ + "/metrics/iocwall.prom";
  ASSERT_EQ(::chmod((dir_ + "/metrics").c_str(), 0775), 0);
  EXPECT_NE(Problems().find("[metrics] textfile: metrics directory " + dir_ +
                            "/metrics is writable by group or others"),
            std::string::npos)
      << Problems();
  ASSERT_EQ(::chmod((dir_ + "/metrics").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(config_.metrics_textfile.c_str(), 0755), 0);
  EXPECT_EQ(Problems(), "configuration test.conf: [metrics] textfile " + config_.metrics_textfile +
                            " is a directory: name a file in it\n");
}

TEST_F(CheckPathsTest, RunIocwallMayBeAbsentAsTheUnitCreatesIt) {
  struct stat st {};
  if (::lstat("/run/iocwall", &st) == 0) GTEST_SKIP() << "/run/iocwall exists on this machine";
  config_.metrics_textfile = "/run/iocwall/iocwall.prom";
  EXPECT_EQ(Problems(), "");
}

TEST_F(CheckPathsTest, EveryProblemIsReportedAtOnce) {
  config_.files = {dir_ + "/a.txt", dir_ + "/b.txt"};
  config_.api.ca_file = dir_ + "/ca.pem";
  config_.sync.state_dir = list_;
  config_.metrics_textfile = dir_ + "/absent/iocwall.prom";
  EXPECT_EQ(CheckPaths(config_).size(), 5u) << Problems();
}

}  // namespace
}  // namespace iocwall
