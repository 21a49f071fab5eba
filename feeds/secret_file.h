// The API key lives in a file that only its owner can read; it is read when needed, kept in a
// buffer that is wiped when dropped, and never printed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace iocwall {

// The key's bytes live in their own anonymous mapping: page-aligned, marked MADV_DONTDUMP so
// that a core dump (when one is allowed at all) leaves them out, never copied by std::string
// growth, and wiped with explicit_bzero before the mapping is returned.
class Secret {
 public:
  static constexpr size_t kStorageBytes =
      8192;  // two pages: a 4 KiB key plus one byte to spot more

  Secret() = default;
  explicit Secret(std::string_view value);
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& o) noexcept;
  Secret& operator=(Secret&& o) noexcept;
  ~Secret();

  std::string_view value() const { return {data_ ? data_ : "", size_}; }
  const char* c_str() const { return data_ ? data_ : ""; }  // NUL-terminated, for libcurl
  bool empty() const { return size_ == 0; }
  // The protected mapping (nullptr when empty): for tests that check its page flags.
  const void* storage() const { return data_; }

 private:
  friend Status ReadSecretFile(const std::string& path, Secret* out);
  bool Allocate();  // false when mmap fails
  void Wipe();
  char* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a secret from `path`: refuses a file that is not a regular file, is readable or
// writable by group or others (the message gives the mode and the chmod to run), is empty,
// larger than 4 KiB, or holds control characters (a key with a CR or LF could inject HTTP
// headers). A trailing newline (LF or CRLF) and surrounding blanks are stripped.
// Messages name the file, never the content.
Status ReadSecretFile(const std::string& path, Secret* out);

// Every form in which a server, a proxy or libcurl could quote the key back: the key itself,
// base64 of the key and of "user:key" (Basic auth; without padding, so an unpadded echo
// matches too), their base64url spellings, and the key percent-encoded. The forms are kept in
// Secret storage like the key.
class KeyScrubber {
 public:
  KeyScrubber() = default;
  KeyScrubber(std::string_view user, std::string_view key);
  // `text` with every form replaced by "[redacted]"; the longest forms first.
  std::string Scrub(std::string text) const;

 private:
  std::vector<Secret> forms_;
};

// Replaces every occurrence of `secret` in `text` by "[redacted]": a last line of defence for
// messages built from text the program does not control (libcurl errors, server bodies).
std::string Redact(std::string text, std::string_view secret);

}  // namespace iocwall
