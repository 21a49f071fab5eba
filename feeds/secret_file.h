// The API key lives in a file that only its owner can read; it is read when needed, kept in a
// buffer that is wiped when dropped, and never printed.
#pragma once

#include <string>
#include <string_view>

#include "agent/core/status.h"

namespace iocwall {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& o) noexcept;
  Secret& operator=(Secret&& o) noexcept;
  ~Secret();

  const std::string& value() const { return value_; }
  std::string& mutable_value() { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  void Wipe();
  std::string value_;
};

// Reads a secret from `path`: refuses a file that is not a regular file, is readable or
// writable by group or others (the message gives the mode and the chmod to run), is empty,
// larger than 4 KiB, or holds control characters (a key with a CR or LF could inject HTTP
// headers). A trailing newline (LF or CRLF) and surrounding blanks are stripped.
// Messages name the file, never the content.
Status ReadSecretFile(const std::string& path, Secret* out);

// Replaces every occurrence of `secret` in `text` by "[redacted]": a last line of defence for
// messages built from text the program does not control (libcurl errors, server bodies).
std::string Redact(std::string text, std::string_view secret);

}  // namespace iocwall
