#include "feeds/feedsim/sim_time.h"

#include <ctime>

namespace iocwall::feedsim {

std::optional<int64_t> ParseTime(const std::string& text) {
  struct tm tm {};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  if (*end == '.') {  // fractional seconds are allowed and ignored
    ++end;
    while (*end >= '0' && *end <= '9') ++end;
  }
  if (std::string(end) != "Z" && std::string(end) != "+00:00") return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::string FormatTime(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
  return buf;
}

}  // namespace iocwall::feedsim
