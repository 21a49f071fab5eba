// Journal priority prefixes only when stderr is the journal stream (JOURNAL_STREAM).
#include "agent/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace iocwall {
namespace {

TEST(LogTest, JournalStreamMatchesOnlyItsOwnFile) {
  EXPECT_TRUE(IsJournalStream("8:1234", 8, 1234));
  EXPECT_FALSE(IsJournalStream(nullptr, 8, 1234));
  EXPECT_FALSE(IsJournalStream("", 8, 1234));
  EXPECT_FALSE(IsJournalStream("8:1235", 8, 1234));  // another inode: stderr was redirected
  EXPECT_FALSE(IsJournalStream("9:1234", 8, 1234));
  EXPECT_FALSE(IsJournalStream("8:1234x", 8, 1234));
  EXPECT_FALSE(IsJournalStream("8", 8, 1234));
}

TEST(LogTest, FormatsWithAndWithoutPrefix) {
  EXPECT_EQ(FormatLogLine(LogLevel::kNotice, "hello", true), "<5>hello\n");
  EXPECT_EQ(FormatLogLine(LogLevel::kNotice, "hello", false), "hello\n");
}

// Logs one line with stderr redirected to a fresh file and JOURNAL_STREAM set by `env_for`
// (given the file's dev and ino), and returns what was written.
template <typename EnvFor>
std::string LogToFile(EnvFor env_for) {
  char path[] = "/tmp/iocwall-log-test-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  std::string env = env_for(st);
  if (env.empty()) {
    unsetenv("JOURNAL_STREAM");
  } else {
    setenv("JOURNAL_STREAM", env.c_str(), 1);
  }
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  LogWarning("a line");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  unsetenv("JOURNAL_STREAM");
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(path);
  return ss.str();
}

TEST(LogTest, PrefixOnlyWhenStderrIsTheJournal) {
  auto same = [](const struct stat& st) {
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  };
  // stderr is the stream JOURNAL_STREAM names: journald needs the prefix.
  EXPECT_EQ(LogToFile(same), "<4>a line\n");
  // Negative controls: no variable (a terminal, a shell redirect), or a variable inherited
  // from a systemd service by a process whose stderr now goes elsewhere.
  EXPECT_EQ(LogToFile([](const struct stat&) { return std::string(); }), "a line\n");
  EXPECT_EQ(LogToFile([](const struct stat& st) {
              return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
            }),
            "a line\n");
}

}  // namespace
}  // namespace iocwall
