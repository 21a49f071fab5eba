#include "feeds/secret_file.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace iocwall {

namespace {

constexpr size_t kMaxSecretBytes = 4096;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Secret::Secret(Secret&& o) noexcept : value_(std::move(o.value_)) { o.Wipe(); }

Secret& Secret::operator=(Secret&& o) noexcept {
  if (this != &o) {
    Wipe();
    value_ = std::move(o.value_);
    o.Wipe();
  }
  return *this;
}

Secret::~Secret() { Wipe(); }

void Secret::Wipe() {
  // explicit_bzero is not optimised away, unlike a memset before deallocation.
  // Trimming moved bytes around within the buffer: wipe its whole capacity, not just size().
  value_.resize(value_.capacity());
  if (!value_.empty()) explicit_bzero(value_.data(), value_.size());
  value_.clear();
}

Status ReadSecretFile(const std::string& path, Secret* out) {
  const std::string what = "api_key_file " + path;
  if (path.empty()) return Status::Error("api_key_file is not set");
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ELOOP) return Status::Error(what + ": is a symbolic link; name the file itself");
    return Status::Error(what + ": cannot open: " + strerror(err));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Status::Error(what + ": cannot stat: " + strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status::Error(what + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Error(what + ": is accessible by group or others (mode " + mode +
                         "); run: chmod 600 " + path);
  }
  if (st.st_size > static_cast<off_t>(kMaxSecretBytes)) {
    return Status::Error(what + ": larger than 4 KiB; it should hold the API key alone");
  }
  Secret raw(std::string(kMaxSecretBytes + 1, '\0'));
  std::string& buf = raw.mutable_value();
  size_t used = 0;
  while (used < buf.size()) {
    const ssize_t n = read(fd.get(), buf.data() + used, buf.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Error(what + ": cannot read: " + strerror(errno));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxSecretBytes) {
    return Status::Error(what + ": larger than 4 KiB; it should hold the API key alone");
  }
  size_t begin = 0;
  size_t end = used;
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (begin < end && blank(buf[begin])) ++begin;
  while (end > begin && blank(buf[end - 1])) --end;
  if (begin == end) return Status::Error(what + ": is empty");
  for (size_t i = begin; i < end; ++i) {
    const unsigned char c = static_cast<unsigned char>(buf[i]);
    if (c < 0x20 || c == 0x7f) {
      return Status::Error(what + ": holds a control character or several lines; it should " +
                           "hold the API key alone, on one line");
    }
  }
  buf.erase(end);
  buf.erase(0, begin);
  *out = std::move(raw);
  return Status::Ok();
}

std::string Redact(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  static constexpr std::string_view kMark = "[redacted]";
  size_t pos = 0;
  while ((pos = text.find(secret, pos)) != std::string::npos) {
    text.replace(pos, secret.size(), kMark);
    pos += kMark.size();
  }
  return text;
}

}  // namespace iocwall
