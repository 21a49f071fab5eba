#include "feeds/stix.h"

#include <cctype>
#include <ctime>

namespace iocwall {

namespace {

bool IsTypeChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

void SkipSpaces(std::string_view s, size_t* i) {
  while (*i < s.size() && std::isspace(static_cast<unsigned char>(s[*i]))) ++*i;
}

// Reads `n` digits at s[*i] into *out.
bool Digits(std::string_view s, size_t* i, int n, int* out) {
  int v = 0;
  for (int k = 0; k < n; ++k) {
    if (*i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[*i]))) return false;
    v = v * 10 + (s[*i] - '0');
    ++*i;
  }
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* i, char c) {
  if (*i >= s.size() || s[*i] != c) return false;
  ++*i;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm): timegm
// depends on the C library and the TZ machinery, this does not.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::optional<std::vector<PatternValue>> ParseStixPattern(std::string_view p) {
  static constexpr std::string_view kValue = ":value";
  std::vector<PatternValue> out;
  size_t pos = 0;
  while ((pos = p.find(kValue, pos)) != std::string_view::npos) {
    size_t type_begin = pos;
    while (type_begin > 0 && IsTypeChar(p[type_begin - 1])) --type_begin;
    std::string type(p.substr(type_begin, pos - type_begin));
    size_t i = pos + kValue.size();
    SkipSpaces(p, &i);
    if (type.empty() || i >= p.size() || p[i] != '=') {
      pos = i;
      continue;
    }
    ++i;
    SkipSpaces(p, &i);
    if (i >= p.size() || p[i] != '\'') {
      pos = i;
      continue;
    }
    ++i;
    std::string value;
    bool closed = false;
    while (i < p.size()) {
      if (p[i] == '\\' && i + 1 < p.size()) {  // STIX escapes \' and \\ inside literals
        value.push_back(p[i + 1]);
        i += 2;
      } else if (p[i] == '\'') {
        closed = true;
        ++i;
        break;
      } else {
        value.push_back(p[i++]);
      }
    }
    if (!closed) return std::nullopt;
    out.push_back({std::move(type), std::move(value)});
    pos = i;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<int64_t> ParseRfc3339(std::string_view s) {
  size_t i = 0;
  int year, month, day, hour, minute, second;
  if (!Digits(s, &i, 4, &year) || !Expect(s, &i, '-') || !Digits(s, &i, 2, &month) ||
      !Expect(s, &i, '-') || !Digits(s, &i, 2, &day)) {
    return std::nullopt;
  }
  if (i >= s.size() || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) return std::nullopt;
  ++i;
  if (!Digits(s, &i, 2, &hour) || !Expect(s, &i, ':') || !Digits(s, &i, 2, &minute) ||
      !Expect(s, &i, ':') || !Digits(s, &i, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t digits_begin = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == digits_begin) return std::nullopt;
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '+' ? 1 : -1;
    ++i;
    int oh, om;
    if (!Digits(s, &i, 2, &oh) || !Expect(s, &i, ':') || !Digits(s, &i, 2, &om)) {
      return std::nullopt;
    }
    offset = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return days * 86400 + hour * 3600 + minute * 60 + second - offset;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace iocwall
