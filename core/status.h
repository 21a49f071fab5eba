// Status and Result: errors as values. No exception crosses a module boundary in iocwall;
// every failure carries a message an operator can act on
// ("collection abc: HTTP 401: API key rejected"). A failure may also carry a code (an errno,
// for kernel and system calls), so that callers decide on codes, never on a message's text.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace iocwall {

class Status {
 public:
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }
  // A failure with its errno (ENOENT, ERESTART, ...): `code()` returns it.
  static Status Errno(int err, std::string message) {
    Status s(std::move(message));
    s.code_ = err;
    return s;
  }

  bool ok() const { return !message_.has_value(); }
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }
  // The errno of a failure made with Errno (its context wrapped around it or not); 0 otherwise.
  int code() const { return code_; }
  // Prefixes the message with context ("collection abc: " + message). No-op when ok.
  Status Wrap(const std::string& context) const {
    if (ok()) return *this;
    Status s(context + ": " + *message_);
    s.code_ = code_;
    return s;
  }

 private:
  Status() = default;
  explicit Status(std::string m) : message_(std::move(m)) {}
  std::optional<std::string> message_;
  int code_ = 0;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)), status_(Status::Ok()) {}  // NOLINT implicit
  Result(Status error) : status_(std::move(error)) {}                   // NOLINT implicit

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  const std::string& message() const { return status_.message(); }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

}  // namespace iocwall

// Returns from the enclosing function (which returns a Status or a Result) when `expr`, a
// Status or a Result, failed.
#define IOCWALL_TRY(expr)                                                           \
  do {                                                                              \
    if (const auto& iocwall_try_ = (expr); !::iocwall::StatusOf(iocwall_try_).ok()) \
      return ::iocwall::StatusOf(iocwall_try_);                                     \
  } while (0)
