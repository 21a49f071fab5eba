#include "feeds/stix.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "feeds/list_body.h"

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

void AddRejected(ParseStats* stats, std::string_view text, std::string reason) {
  ++stats->rejected;
  if (stats->samples.size() < ParseStats::kMaxSamples) {
    RejectedLine line;
    line.line_no = stats->lines;
    line.text = Excerpt(text.substr(0, 120));
    line.reason = std::move(reason);
    stats->samples.push_back(std::move(line));
  }
}

// Ids go to logs, snapshots and --explain: anything else than a plain token is dropped.
std::string PrintableId(const nlohmann::json& item) {
  const auto it = item.find("id");
  if (it == item.end() || !it->is_string()) return {};
  const std::string& id = it->get_ref<const std::string&>();
  const bool plain = !id.empty() && id.size() <= 200 &&
                     std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  return plain ? id : std::string();
}

// A boolean field, also when a server sends it as a string in either case ("True", "false"):
// a revocation missed for its spelling would keep an address blocked forever.
bool Flag(const nlohmann::json& item, const char* name) {
  const auto it = item.find(name);
  if (it == item.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (!it->is_string()) return false;
  std::string v = it->get<std::string>();
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true";
}

// One item of a page, into *out (or nowhere, when the options leave it out).
void TakeIndicator(const nlohmann::json& item, const IndicatorPageOptions& o, FetchResult* out) {
  ParseStats* stats = &out->stats;
  if (!item.is_object()) {
    ++stats->lines;
    AddRejected(stats, item.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                "not a JSON object");
    return;
  }
  const bool revoked = Flag(item, "revoked");
  // The server filters these in a full fetch; checking again costs nothing and keeps a lagging
  // mirror from resurrecting an entry.
  if (revoked && !o.keep_inactive) return;
  int64_t valid_until = 0;
  if (const auto vu = item.find("valid_until"); vu != item.end() && vu->is_string()) {
    if (const auto t = ParseRfc3339(vu->get_ref<const std::string&>())) {
      if (*t <= o.now && !o.keep_inactive) return;
      valid_until = *t;
    }
  }
  int64_t valid_from = 0;
  if (const auto vf = item.find("valid_from"); vf != item.end() && vf->is_string()) {
    valid_from = ParseRfc3339(vf->get_ref<const std::string&>()).value_or(0);
  }
  std::string id = PrintableId(item);
  std::string_view pattern;
  if (const auto p = item.find("pattern"); p != item.end() && p->is_string())
    pattern = p->get_ref<const std::string&>();
  const auto values = ParseStixPattern(pattern);
  if (!values) {
    ++stats->lines;
    AddRejected(stats, pattern.empty() ? std::string_view(id) : pattern,
                "no value in the indicator's pattern");
    return;
  }
  for (const PatternValue& v : *values) {
    ++stats->lines;
    if (v.type != "ipv4-addr" && v.type != "ipv6-addr") {
      AddRejected(stats, v.value, "not an IP indicator (" + v.type + ")");
      continue;
    }
    const ParsedLine line = ParseLine(v.value);
    if (line.kind != LineKind::kAccepted) {
      AddRejected(stats, v.value,
                  line.kind == LineKind::kRejected ? std::string(line.reason) : "empty value");
      continue;
    }
    ++stats->accepted;
    stats->host_bits_cleared += line.host_bits_cleared ? 1 : 0;
    if (line.host_bits_cleared && stats->widened.size() < ParseStats::kMaxSamples) {
      stats->widened.push_back(
          WidenedLine{stats->lines, Excerpt(v.value.substr(0, 120)), line.prefix});
    }
    stats->mapped_v4 += line.mapped_v4 ? 1 : 0;
    out->prefixes.push_back(line.prefix);
    out->valid_until.push_back(valid_until);
    out->valid_from.push_back(valid_from);
    out->ids.push_back(id);
    if (o.keep_inactive) out->revoked.push_back(revoked ? 1 : 0);
  }
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
  const int64_t t = days * 86400 + hour * 3600 + minute * 60 + second - offset;
  // An offset can push a time out of the four-digit years (9999-12-31T23:59:59-23:59), which
  // no RFC 3339 text could then state in UTC.
  static const int64_t kFirst = DaysFromCivil(0, 1, 1) * 86400;
  static const int64_t kLast = DaysFromCivil(9999, 12, 31) * 86400 + 86399;
  if (t < kFirst || t > kLast) return std::nullopt;
  return t;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  // Not strftime: its %Y leaves out the leading zeros of years below 1000.
  char buf[64];
  snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02dZ",
           static_cast<long long>(tm.tm_year) + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec);
  return buf;
}

Status ParseIndicatorPage(std::string_view body, const IndicatorPageOptions& options,
                          IndicatorPage* page, FetchResult* out) {
  const nlohmann::json doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded()) {
    // An HTML page or binary garbage says more about what went wrong than "not JSON" does; a
    // broken object (cut short, say) is just that.
    const size_t first = body.find_first_not_of(" \t\r\n");
    const bool brace = first != std::string_view::npos && body[first] == '{';
    Status shape = brace ? Status::Ok() : CheckListShape(body, "");
    return shape.ok() ? Status::Error("the answer is not valid JSON") : shape;
  }
  if (!doc.is_object()) return Status::Error("the JSON answer is not an object");
  const auto items = doc.find("items");
  if (items == doc.end() || !items->is_array()) {
    return Status::Error("the JSON answer has no \"items\" list");
  }
  page->items = items->size();
  page->next_cursor.clear();
  page->last = false;
  if (const auto nc = doc.find("next_cursor"); nc != doc.end() && nc->is_string()) {
    page->next_cursor = nc->get<std::string>();
  } else if (nc != doc.end() && nc->is_null()) {
    page->last = true;
  } else if (nc != doc.end()) {
    // Taken as "no cursor", a mangled one would end the walk early: a truncated collection.
    return Status::Error("the JSON answer's \"next_cursor\" is neither a string nor null");
  }
  for (const auto& item : *items) TakeIndicator(item, options, out);
  return Status::Ok();
}

}  // namespace iocwall
