// Files root writes and reads in directories someone else might reach: the state directory,
// the metrics directory, local list files, the API key file. Everything here resists a local
// user who plants a symbolic link, a FIFO, a device or a huge file where iocwall expects its
// own small regular file: directories are opened once (no symlink) and checked, files are
// created with O_EXCL|O_NOFOLLOW relative to that directory, and reads accept only regular
// files under a size cap, opened without blocking.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace iocwall {

// Owns one file descriptor; closes it once.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// What a trusted directory may look like. Always: not a symbolic link, a directory, owned by
// the effective user (root in production), not writable by group or others.
struct DirRules {
  bool create = false;        // mkdir (mode `mode`) when absent
  bool private_mode = false;  // also tighten an existing directory to `mode` (state: 0700)
  mode_t mode = 0700;
  std::string what = "directory";  // "state_dir", "metrics directory": named in messages
};

// Opens `path` as a directory for the *at calls, refusing what DirRules forbid with a message
// that says how to fix it ("run: chown root:root X", "run: chmod go-w X", ...).
Result<UniqueFd> OpenTrustedDir(const std::string& path, const DirRules& rules);
// The same for `name` inside an already trusted directory.
Result<UniqueFd> OpenTrustedSubdir(int dir_fd, const std::string& dir_path, const std::string& name,
                                   const DirRules& rules);

// The outcome of reading a file that must be a regular file of bounded size.
struct ReadOutcome {
  enum Kind { kOk, kAbsent, kUnusable, kError } kind = kError;
  std::string data;        // kOk
  std::string message;     // kUnusable (not a regular file, too large, a symlink) or kError
  bool too_large = false;  // kUnusable because of the cap
};

// Reads the whole of `name` (relative to dir_fd; AT_FDCWD with an absolute path) when it is a
// regular file of at most max_bytes. Opened with O_NONBLOCK (a FIFO does not hang the open)
// and, unless follow_symlinks, O_NOFOLLOW. A file that grows past the cap while being read is
// unusable too.
ReadOutcome ReadRegularFile(int dir_fd, const std::string& name, size_t max_bytes,
                            bool follow_symlinks);
// The same checks, the file handed to `piece` a megabyte at a time instead of held whole
// (data stays empty). Pieces handed out before an error are the caller's to discard.
using ByteSink = std::function<void(std::string_view)>;
// `on_size`, when given, learns the file's size (as opened) before the first piece.
ReadOutcome ReadRegularFileInPieces(int dir_fd, const std::string& name, size_t max_bytes,
                                    bool follow_symlinks, const ByteSink& piece,
                                    const std::function<void(size_t)>& on_size = nullptr);

// Replaces `name` in dir_fd with `data` atomically: a temporary created in the same directory
// with O_CREAT|O_EXCL|O_NOFOLLOW (a planted name is never followed nor reused), written,
// fsynced, fchmodded to `mode`, renamed over `name` (which replaces a planted symlink itself,
// never its target), then the directory fsynced. `path` only names the file in messages.
Status WriteFileAtomicAt(int dir_fd, const std::string& name, const std::string& data, mode_t mode,
                         const std::string& path);
// The same with the data produced in pieces, so that a large file is never held whole:
// `produce` calls the sink it is given once per piece, in order.
Status WriteFileAtomicAt(int dir_fd, const std::string& name,
                         const std::function<void(const ByteSink&)>& produce, mode_t mode,
                         const std::string& path);

// A file written aside: a synced temporary next to `name`, renamed over it by Commit, removed
// when destroyed uncommitted (what it was to replace stays as it was). WriteFileAtomicAt is
// Write then Commit; a caller may do work between the two (iocwall writes a list while the
// kernel commits it, and puts it in place only if the kernel took it).
class PendingFile {
 public:
  static Result<PendingFile> Write(int dir_fd, const std::string& name,
                                   const std::function<void(const ByteSink&)>& produce, mode_t mode,
                                   const std::string& path);
  PendingFile(PendingFile&& o) noexcept { *this = std::move(o); }
  PendingFile& operator=(PendingFile&& o) noexcept;
  ~PendingFile();
  Status Commit();

 private:
  PendingFile() = default;
  UniqueFd dir_;
  std::string tmp_;  // empty once renamed (or never created)
  std::string name_;
  std::string path_;
};

// Moves an unusable `name` in dir_fd aside as name.<tag>-<unix time> (the link itself when it
// is one), and returns the words for a log line: "set aside as X" or "could not set it aside".
std::string SetAsideAt(int dir_fd, const std::string& name, const std::string& dir_path,
                       const std::string& tag);

}  // namespace iocwall
