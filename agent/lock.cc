#include "agent/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <sstream>
#include <thread>

#include "agent/state.h"
#include "feeds/safe_file.h"

namespace iocwall {
namespace {

constexpr char kLockFile[] = "iocwall.lock";
constexpr char kRequestFile[] = "handover.request";
constexpr char kAnswerFile[] = "handover.answer";

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Opens the state directory itself, never through a symbolic link, creating it (0700) when
// it does not exist yet; refuses one that another user owns or could write (safe_file.h).
Result<UniqueFd> OpenDir(const std::string& dir) {
  DirRules rules;
  rules.create = true;
  rules.private_mode = true;
  rules.mode = 0700;
  rules.what = "state_dir";
  return OpenTrustedDir(dir, rules);
}

// Reads a small file of the state directory (a regular file, never through a link).
std::optional<std::string> ReadSmall(const std::string& dir, const char* name) {
  Result<UniqueFd> dfd = OpenDir(dir);
  if (!dfd.ok()) return std::nullopt;
  ReadOutcome r = ReadRegularFile(dfd->get(), name, 4096, /*follow_symlinks=*/false);
  if (r.kind != ReadOutcome::kOk) return std::nullopt;
  return r.data;
}

LockHolder ParseHolder(const std::string& text) {
  LockHolder h;
  std::istringstream in(text);
  in >> h.pid >> h.mode;
  return h;
}

}  // namespace

Result<WriterLock> WriterLock::Acquire(const std::string& state_dir, const std::string& mode,
                                       std::chrono::seconds wait,
                                       std::optional<LockHolder>* holder) {
  holder->reset();
  Result<UniqueFd> dir = OpenDir(state_dir);
  IOCWALL_TRY(dir);
  // An existing lock file is opened as is, never through a link; a new one is created with
  // O_EXCL (another iocwall may create it at the same moment: then open that one).
  constexpr int kOpen = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  const int dfd = dir->get();
  UniqueFd opened(::openat(dfd, kLockFile, kOpen));
  if (!opened.valid() && errno == ENOENT) {
    opened.reset(::openat(dfd, kLockFile, kOpen | O_CREAT | O_EXCL, 0600));
  }
  if (!opened.valid() && errno == EEXIST) opened.reset(::openat(dfd, kLockFile, kOpen));
  if (!opened.valid())
    return Status::Error(ErrnoText("cannot open " + state_dir + "/" + kLockFile));
  const int fd = opened.get();
  struct stat lst {};
  if (::fstat(fd, &lst) != 0 || !S_ISREG(lst.st_mode)) {
    return Status::Error(state_dir + "/" + kLockFile + " is not a regular file; remove it");
  }
  WriterLock lock(std::move(opened));
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return Status::Error(ErrnoText("cannot lock " + state_dir + "/" + kLockFile));
    }
    char buf[128] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    LockHolder h = ParseHolder(n > 0 ? std::string(buf, static_cast<size_t>(n)) : "");
    if (h.mode == "daemon" || std::chrono::steady_clock::now() >= deadline) {
      *holder = h;
      return Status::Error("another iocwall (pid " + std::to_string(h.pid) + ", " +
                           (h.mode.empty() ? std::string("unknown mode") : h.mode) +
                           ") is changing table and state in " + state_dir);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string me = std::to_string(::getpid()) + " " + mode + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    return Status::Error(ErrnoText("cannot write " + state_dir + "/" + kLockFile));
  }
  return lock;
}

Result<std::string> HandToDaemon(const std::string& state_dir, const LockHolder& daemon, bool force,
                                 std::chrono::seconds wait) {
  std::random_device rd;
  const std::string id = std::to_string(::getpid()) + "-" + std::to_string(rd());
  Status st =
      WriteFileAtomic(state_dir + "/" + kRequestFile, id + " " + (force ? "force" : "sync") + "\n");
  if (!st.ok()) return st.Wrap("handing the request to the daemon");
  if (::kill(daemon.pid, SIGUSR1) != 0) {
    return Status::Error(
        ErrnoText("cannot signal the iocwall daemon (pid " + std::to_string(daemon.pid) + ")"));
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto answer = ReadSmall(state_dir, kAnswerFile);
    if (answer && answer->rfind(id + "\n", 0) == 0) {
      std::string line = answer->substr(id.size() + 1);
      while (!line.empty() && line.back() == '\n') line.pop_back();
      return line;
    }
    if (::kill(daemon.pid, 0) != 0 && errno == ESRCH) {
      return Status::Error("the iocwall daemon (pid " + std::to_string(daemon.pid) +
                           ") exited before it answered");
    }
  }
  return Status::Error("the iocwall daemon (pid " + std::to_string(daemon.pid) +
                       ") did not answer within " + std::to_string(wait.count()) +
                       " s; its cycle may still be running: see iocwall --status");
}

std::optional<HandOver> TakeHandOver(const std::string& state_dir) {
  auto text = ReadSmall(state_dir, kRequestFile);
  if (!text) return std::nullopt;
  ::unlink((state_dir + "/" + kRequestFile).c_str());
  std::istringstream in(*text);
  HandOver h;
  std::string what;
  in >> h.id >> what;
  if (h.id.empty()) return std::nullopt;
  h.force = what == "force";
  return h;
}

void AnswerHandOver(const std::string& state_dir, const HandOver& request,
                    const std::string& outcome_line) {
  (void)WriteFileAtomic(state_dir + "/" + kAnswerFile, request.id + "\n" + outcome_line + "\n");
}

}  // namespace iocwall
