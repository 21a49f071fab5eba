#include "feeds/secret_file.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "feeds/safe_file.h"

namespace iocwall {

namespace {

constexpr size_t kMaxSecretBytes = 4096;
static_assert(kMaxSecretBytes + 1 < Secret::kStorageBytes, "room for one byte too many and a NUL");

}  // namespace

Secret::Secret(std::string_view value) {
  if (value.empty()) return;
  if (value.size() >= kStorageBytes || !Allocate()) return;  // callers check empty()
  std::memcpy(data_, value.data(), value.size());
  size_ = value.size();
}

bool Secret::Allocate() {
  void* p =
      mmap(nullptr, kStorageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  // Best effort: an old kernel without MADV_DONTDUMP still gets PR_SET_DUMPABLE 0 (main).
  madvise(p, kStorageBytes, MADV_DONTDUMP);
  data_ = static_cast<char*>(p);
  size_ = 0;
  return true;
}

Secret::Secret(Secret&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

Secret& Secret::operator=(Secret&& o) noexcept {
  if (this != &o) {
    Wipe();
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

Secret::~Secret() { Wipe(); }

void Secret::Wipe() {
  if (data_ == nullptr) return;
  // explicit_bzero is not optimised away; the whole mapping, not only size_ bytes, since a
  // read may have put more there than was kept.
  explicit_bzero(data_, kStorageBytes);
  munmap(data_, kStorageBytes);
  data_ = nullptr;
  size_ = 0;
}

// Not safe_file's ReadRegularFile, though it opens the same way: that returns the bytes in a
// std::string, whose buffer (and any reallocation of it) would leave copies of the key on the
// heap. Here the bytes go straight into the Secret's own mapping, kept out of core dumps and
// wiped.
Status ReadSecretFile(const std::string& path, Secret* out) {
  const std::string what = "api_key_file " + path;
  if (path.empty()) return Status::Error("api_key_file is not set");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
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
  Secret raw;
  if (!raw.Allocate()) return Status::Error(what + ": cannot allocate memory for the key");
  char* buf = raw.data_;
  const size_t room = kMaxSecretBytes + 1;
  size_t used = 0;
  while (used < room) {
    const ssize_t n = read(fd.get(), buf + used, room - used);
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
  // Kept bytes move to the front of the same mapping; the tail is zeroed, so nothing of the
  // file but the key remains.
  std::memmove(buf, buf + begin, end - begin);
  explicit_bzero(buf + (end - begin), Secret::kStorageBytes - (end - begin));
  raw.size_ = end - begin;
  *out = std::move(raw);
  return Status::Ok();
}

namespace {

std::string Base64(std::string_view in, bool url) {
  static constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* a = url ? kUrl : kStd;
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
    out += a[(n >> 18) & 63];
    out += a[(n >> 12) & 63];
    if (i + 1 < in.size()) out += a[(n >> 6) & 63];  // no padding: see KeyScrubber
    if (i + 2 < in.size()) out += a[n & 63];
  }
  return out;
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

KeyScrubber::KeyScrubber(std::string_view user, std::string_view key) {
  if (key.empty()) return;
  std::string basic(user);
  basic += ':';
  basic += key;
  std::vector<std::string> forms = {std::string(key),     Base64(key, false),  Base64(key, true),
                                    Base64(basic, false), Base64(basic, true), PercentEncode(key)};
  explicit_bzero(basic.data(), basic.size());
  // Longest first: a short form inside a longer one must not break the longer one's match.
  std::sort(forms.begin(), forms.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (std::string& f : forms) {
    bool dup = false;
    for (const Secret& s : forms_) dup = dup || s.value() == f;
    if (!dup && !f.empty()) forms_.emplace_back(f);
    explicit_bzero(f.data(), f.size());
  }
}

std::string KeyScrubber::Scrub(std::string text) const {
  for (const Secret& f : forms_) text = Redact(std::move(text), f.value());
  return text;
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
