// One writer: every mode that changes the kernel or the state (the daemon, --once, --restore,
// --flush) holds an exclusive flock on <state_dir>/iocwall.lock, which names its holder. A
// manual --once while the daemon runs is handed to the daemon (a request file and SIGUSR1)
// and reports the daemon's outcome, so that a forced acceptance is never undone by the
// daemon's next cycle.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/status.h"
#include "feeds/safe_file.h"

namespace iocwall {

struct LockHolder {
  int pid = 0;
  std::string mode;  // "daemon", "once", "restore", "flush"
};

class WriterLock {
 public:
  // Closing the last descriptor of the lock file releases the flock.
  WriterLock(WriterLock&&) noexcept = default;
  WriterLock& operator=(WriterLock&&) noexcept = default;

  // Takes the lock. When another process holds it: a daemon is reported at once through
  // *holder (and an error); any other holder (a --once, a --restore) is waited for, up to
  // `wait`, since it ends by itself.
  static Result<WriterLock> Acquire(const std::string& state_dir, const std::string& mode,
                                    std::chrono::seconds wait, std::optional<LockHolder>* holder);

 private:
  explicit WriterLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// A request handed to the running daemon: `force` accepts a result a guard refused.
struct HandOver {
  std::string id;
  bool force = false;
};

// The client side: writes the request, signals the daemon, and waits (up to `wait`) for the
// daemon to report on it. Returns the daemon's outcome line ("enforced-fresh: ...").
Result<std::string> HandToDaemon(const std::string& state_dir, const LockHolder& daemon, bool force,
                                 std::chrono::seconds wait);

// The daemon side: takes a pending request (removing it), if any.
std::optional<HandOver> TakeHandOver(const std::string& state_dir);
// The daemon side: records the outcome of the request it served.
void AnswerHandOver(const std::string& state_dir, const HandOver& request,
                    const std::string& outcome_line);

}  // namespace iocwall
