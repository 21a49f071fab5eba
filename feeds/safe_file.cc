#include "feeds/safe_file.h"

#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

namespace iocwall {

namespace {

std::string Mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string Join(const std::string& dir, const std::string& name) {
  if (name.empty() || name[0] == '/') return name;
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string FileType(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

Status CheckOwner(const struct stat& st, const std::string& path, const DirRules& rules) {
  const uid_t me = geteuid();
  if (st.st_uid == me) return Status::Ok();
  return Status::Error(rules.what + " " + path + " is owned by uid " + std::to_string(st.st_uid) +
                       ", not " + (me == 0 ? std::string("root") : "uid " + std::to_string(me)) +
                       ": another user could replace what iocwall writes there; run: chown " +
                       (me == 0 ? std::string("root:root") : std::to_string(me)) + " " + path);
}

// Checks an open directory against the rules; path only names it in messages.
Status CheckDir(int fd, const std::string& path, const DirRules& rules) {
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return Status::Error(rules.what + " " + path + ": cannot stat: " + strerror(errno));
  }
  Status owner = CheckOwner(st, path, rules);
  if (!owner.ok()) return owner;
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::Error(rules.what + " " + path + " is writable by group or others (mode " +
                         Mode(st.st_mode) +
                         "): another user could plant files there; run: " + "chmod go-w " + path);
  }
  if (rules.private_mode && (st.st_mode & 07777) != rules.mode) {
    // Owned by us and not writable by others: tightening it through the fd cannot touch
    // anything but this directory.
    if (fchmod(fd, rules.mode) != 0) {
      return Status::Error(rules.what + " " + path + ": cannot chmod " + Mode(rules.mode) + ": " +
                           strerror(errno));
    }
  }
  return Status::Ok();
}

Result<UniqueFd> OpenDirAt(int at, const std::string& name, const std::string& path,
                           const DirRules& rules) {
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd fd(openat(at, name.c_str(), flags));
  if (!fd.valid() && errno == ENOENT && rules.create) {
    if (mkdirat(at, name.c_str(), rules.mode) != 0 && errno != EEXIST) {
      return Status::Error("cannot create " + rules.what + " " + path + ": " + strerror(errno));
    }
    fd.reset(openat(at, name.c_str(), flags));
  }
  if (!fd.valid()) {
    const int err = errno;
    struct stat st {};
    if ((err == ELOOP || err == ENOTDIR) &&
        fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      return Status::Error(rules.what + " " + path +
                           " is a symbolic link: iocwall does not follow it (whoever can change "
                           "the link could redirect root's writes); name the real directory, "
                           "see: readlink -f " +
                           path);
    }
    if (err == ENOTDIR) return Status::Error(rules.what + " " + path + " is not a directory");
    // Without CAP_DAC_OVERRIDE (dropped after start-up) root cannot enter another user's
    // private directory: say whose it is rather than "Permission denied".
    if (err == EACCES && fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      Status owner = CheckOwner(st, path, rules);
      if (!owner.ok()) return owner;
    }
    return Status::Error("cannot open " + rules.what + " " + path + ": " + strerror(err));
  }
  Status s = CheckDir(fd.get(), path, rules);
  if (!s.ok()) return s;
  return fd;
}

std::string RandomSuffix() {
  unsigned char b[6];
  if (getrandom(b, sizeof b, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof b)) {
    // No entropy yet (early boot): the pid and the clock still make a collision unlikely, and
    // O_EXCL makes one harmless.
    const uint64_t v = static_cast<uint64_t>(getpid()) << 32 ^ static_cast<uint64_t>(clock());
    for (size_t i = 0; i < sizeof b; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
  }
  char hex[13];
  for (size_t i = 0; i < sizeof b; ++i) std::snprintf(hex + 2 * i, 3, "%02x", b[i]);
  return hex;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

Result<UniqueFd> OpenTrustedDir(const std::string& path, const DirRules& rules) {
  if (path.empty()) return Status::Error(rules.what + " is empty");
  // Trailing slashes would make O_NOFOLLOW follow a final symlink ("link/" names the target).
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return OpenDirAt(AT_FDCWD, p, path, rules);
}

Result<UniqueFd> OpenTrustedSubdir(int dir_fd, const std::string& dir_path, const std::string& name,
                                   const DirRules& rules) {
  return OpenDirAt(dir_fd, name, Join(dir_path, name), rules);
}

namespace {

void TooLarge(ReadOutcome* out, size_t max_bytes, uint64_t size) {
  out->kind = ReadOutcome::kUnusable;
  out->too_large = true;
  out->message = "is larger than the " + std::to_string(max_bytes) + "-byte cap (" +
                 std::to_string(size) + " bytes)";
  out->data.clear();
}

// Opens `name` for ReadRegularFile*: an invalid fd with *out saying why when it is absent, a
// link (unless followed), not a regular file or over the cap; else its size in *size.
UniqueFd OpenRegular(int dir_fd, const std::string& name, size_t max_bytes, bool follow_symlinks,
                     ReadOutcome* out, size_t* size) {
  int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  if (!follow_symlinks) flags |= O_NOFOLLOW;
  UniqueFd fd(openat(dir_fd, name.c_str(), flags));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) {
      out->kind = ReadOutcome::kAbsent;
    } else if (err == ELOOP && !follow_symlinks) {
      out->kind = ReadOutcome::kUnusable;
      out->message = "is a symbolic link";
    } else {
      out->message = std::string("cannot open: ") + strerror(err);
    }
    return fd;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    out->message = std::string("cannot stat: ") + strerror(errno);
    return UniqueFd();
  }
  if (!S_ISREG(st.st_mode)) {
    out->kind = ReadOutcome::kUnusable;
    out->message = "is " + FileType(st.st_mode) + ", not a regular file";
    return UniqueFd();
  }
  *size = static_cast<size_t>(st.st_size);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    TooLarge(out, max_bytes, *size);
    return UniqueFd();
  }
  return fd;
}

}  // namespace

ReadOutcome ReadRegularFile(int dir_fd, const std::string& name, size_t max_bytes,
                            bool follow_symlinks) {
  std::string data;
  ReadOutcome out = ReadRegularFileInPieces(
      dir_fd, name, max_bytes, follow_symlinks, [&](std::string_view piece) { data += piece; },
      [&](size_t size) { data.reserve(size); });
  if (out.kind == ReadOutcome::kOk) out.data = std::move(data);
  return out;
}

ReadOutcome ReadRegularFileInPieces(int dir_fd, const std::string& name, size_t max_bytes,
                                    bool follow_symlinks, const ByteSink& piece,
                                    const std::function<void(size_t)>& on_size) {
  ReadOutcome out;
  size_t size = 0;
  UniqueFd fd = OpenRegular(dir_fd, name, max_bytes, follow_symlinks, &out, &size);
  if (!fd.valid()) return out;
  if (on_size) on_size(size);
  std::string buf(std::min(size + 1, size_t{1} << 20), '\0');
  size_t used = 0;
  for (;;) {
    const ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      out.message = std::string("cannot read: ") + strerror(errno);
      return out;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
    // A file that grew past the cap while being read is refused like a large one.
    if (used > max_bytes) {
      TooLarge(&out, max_bytes, used);
      return out;
    }
    piece(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  out.kind = ReadOutcome::kOk;
  return out;
}

Status WriteFileAtomicAt(int dir_fd, const std::string& name, const std::string& data, mode_t mode,
                         const std::string& path) {
  return WriteFileAtomicAt(
      dir_fd, name, [&](const ByteSink& write) { write(data); }, mode, path);
}

Status WriteFileAtomicAt(int dir_fd, const std::string& name,
                         const std::function<void(const ByteSink&)>& produce, mode_t mode,
                         const std::string& path) {
  auto pending = PendingFile::Write(dir_fd, name, produce, mode, path);
  if (!pending.ok()) return pending.status();
  return pending->Commit();
}

Result<PendingFile> PendingFile::Write(int dir_fd, const std::string& name,
                                       const std::function<void(const ByteSink&)>& produce,
                                       mode_t mode, const std::string& path) {
  PendingFile p;
  p.name_ = name;
  p.path_ = path;
  // Its own descriptor of the directory: the rename may come after the caller's is closed.
  p.dir_.reset(fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  if (!p.dir_.valid()) {
    return Status::Error("cannot write " + path + ": " + strerror(errno));
  }
  UniqueFd fd;
  for (int attempt = 0; attempt < 16 && !fd.valid(); ++attempt) {
    p.tmp_ = "." + name + ".tmp." + RandomSuffix();
    fd.reset(openat(p.dir_.get(), p.tmp_.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600));
    if (!fd.valid() && errno != EEXIST) break;
  }
  if (!fd.valid()) {
    const int err = errno;
    p.tmp_.clear();
    return Status::Error("cannot create a temporary file next to " + path + ": " + strerror(err));
  }
  // From here on the destructor removes the temporary on any failure.
  auto fail = [&](const std::string& what, int err) {
    return Status::Error(what + " " + path + ": " + strerror(err));
  };
  int write_errno = 0;  // the first failed write; the pieces after it are dropped
  produce([&](std::string_view data) {
    size_t off = 0;
    while (write_errno == 0 && off < data.size()) {
      const ssize_t n = write(fd.get(), data.data() + off, data.size() - off);
      if (n < 0) {
        if (errno != EINTR) write_errno = errno;
        continue;
      }
      off += static_cast<size_t>(n);
    }
  });
  if (write_errno != 0) return fail("cannot write", write_errno);
  if (fchmod(fd.get(), mode) != 0) return fail("cannot chmod", errno);
  if (fsync(fd.get()) != 0) return fail("cannot sync", errno);
  if (close(fd.release()) != 0) return fail("cannot write", errno);
  return p;
}

Status PendingFile::Commit() {
  if (tmp_.empty()) return Status::Error("nothing to put in place as " + path_);
  if (renameat(dir_.get(), tmp_.c_str(), dir_.get(), name_.c_str()) != 0) {
    return Status::Error("cannot rename into " + path_ + ": " + strerror(errno));
  }
  tmp_.clear();
  // The rename is durable only once the directory entry is on disk.
  fsync(dir_.get());
  return Status::Ok();
}

PendingFile& PendingFile::operator=(PendingFile&& o) noexcept {
  if (this != &o) {
    if (!tmp_.empty() && dir_.valid()) unlinkat(dir_.get(), tmp_.c_str(), 0);
    dir_ = std::move(o.dir_);
    tmp_ = std::exchange(o.tmp_, std::string());
    name_ = std::move(o.name_);
    path_ = std::move(o.path_);
  }
  return *this;
}

PendingFile::~PendingFile() {
  if (!tmp_.empty() && dir_.valid()) unlinkat(dir_.get(), tmp_.c_str(), 0);
}

std::string SetAsideAt(int dir_fd, const std::string& name, const std::string& dir_path,
                       const std::string& tag) {
  const std::string aside = name + "." + tag + "-" + std::to_string(std::time(nullptr));
  if (renameat(dir_fd, name.c_str(), dir_fd, aside.c_str()) != 0) {
    return std::string("could not set it aside: ") + strerror(errno);
  }
  return "set aside as " + Join(dir_path, aside);
}

}  // namespace iocwall
