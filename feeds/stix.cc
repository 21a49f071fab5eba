#include "feeds/stix.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

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
std::string PrintableId(std::string_view id) {
  const bool plain = !id.empty() && id.size() <= 200 &&
                     std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  return plain ? std::string(id) : std::string();
}

// A boolean field, also when a server sends it as a string in either case ("True", "false"):
// a revocation missed for its spelling would keep an address blocked forever.
bool FlagText(std::string_view v) {
  return v.size() == 4 && std::tolower(static_cast<unsigned char>(v[0])) == 't' &&
         std::tolower(static_cast<unsigned char>(v[1])) == 'r' &&
         std::tolower(static_cast<unsigned char>(v[2])) == 'u' &&
         std::tolower(static_cast<unsigned char>(v[3])) == 'e';
}

// What an indicator's own (top-level) fields say; nested objects and everything else of the
// item are never kept, so a 3 KB item costs only these few bytes while it is read.
struct ItemFields {
  bool revoked = false;
  std::optional<int64_t> valid_until;  // set only when a readable RFC 3339 string
  std::optional<int64_t> valid_from;
  std::string id;  // already through PrintableId
  std::string pattern;
};

// One item of a page, into *out (or nowhere, when the options leave it out).
void TakeIndicator(const ItemFields& item, const IndicatorPageOptions& o, FetchResult* out) {
  ParseStats* stats = &out->stats;
  // The server filters these in a full fetch; checking again costs nothing and keeps a lagging
  // mirror from resurrecting an entry.
  if (item.revoked && !o.keep_inactive) return;
  int64_t valid_until = 0;
  if (item.valid_until) {
    if (*item.valid_until <= o.now && !o.keep_inactive) return;
    valid_until = *item.valid_until;
  }
  const int64_t valid_from = item.valid_from.value_or(0);
  const auto values = ParseStixPattern(item.pattern);
  if (!values) {
    ++stats->lines;
    AddRejected(stats, item.pattern.empty() ? std::string_view(item.id) : item.pattern,
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
    out->ids.push_back(item.id);
    if (o.keep_inactive) out->revoked.push_back(item.revoked ? 1 : 0);
  }
}

// The start of what a rejected sample quotes of an item that is not an object: the same text
// as nlohmann's compact dump (dump(-1, ' ', false, replace)) of that item, cut where the
// sample is cut, so that an item of any size costs at most this much while it is read.
class CappedDump {
 public:
  static constexpr size_t kCap = 120;  // AddRejected quotes no more

  bool full() const { return text_.size() >= kCap; }
  const std::string& text() const { return text_; }
  void Clear() {
    text_.clear();
    need_comma_.clear();
    after_key_ = false;
  }
  // A scalar, as its own compact dump.
  template <typename T>
  void Value(const T& v) {
    if (full()) return;
    Separate();
    text_ += nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  void String(std::string_view s) {
    if (full()) return;
    Separate();
    // Escaping only lengthens the text, so kCap + a few input bytes fill the output past kCap;
    // a UTF-8 sequence cut by this shows only beyond it.
    text_ += nlohmann::json(std::string(s.substr(0, kCap + 8)))
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  void Key(std::string_view k) {
    String(k);
    if (full()) return;
    text_ += ':';
    after_key_ = true;
  }
  void Open(char c) {
    if (full()) return;
    Separate();
    text_ += c;
    need_comma_.push_back(false);
  }
  void Close(char c) {
    if (full()) return;
    text_ += c;
    need_comma_.pop_back();
    if (!need_comma_.empty()) need_comma_.back() = true;
  }

 private:
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (need_comma_.empty()) return;
    if (need_comma_.back()) text_ += ',';
    need_comma_.back() = true;
  }

  std::string text_;
  std::vector<bool> need_comma_;  // per open container: an element already written
  bool after_key_ = false;
};

// nlohmann's SAX events for one page, turned straight into entries: no document tree, so a
// page costs its body and one item's fields, whatever its items carry besides. It follows the
// tree parser's rules where a page bends them: a duplicate key's last value wins (for "items"
// too: what the first list appended is taken back), and fields are an item's own keys only,
// never the same names inside its nested objects (kill_chain_phases, external_references).
class PageSax {
 public:
  using json = nlohmann::json;

  PageSax(const IndicatorPageOptions& o, FetchResult* out)
      : o_(o),
        out_(out),
        stats_at_start_(out->stats),
        prefixes_at_start_(out->prefixes.size()),
        valid_until_at_start_(out->valid_until.size()),
        valid_from_at_start_(out->valid_from.size()),
        ids_at_start_(out->ids.size()),
        revoked_at_start_(out->revoked.size()) {}

  enum class Cursor : uint8_t { kAbsent, kString, kNull, kOther };

  bool root_is_object() const { return root_is_object_; }
  bool items_is_array() const { return items_is_array_; }
  size_t items() const { return items_; }
  Cursor cursor() const { return cursor_; }
  std::string& cursor_text() { return cursor_text_; }

  // Takes back everything this page appended: a refused page leaves *out as it found it.
  void Rollback() {
    out_->prefixes.resize(prefixes_at_start_);
    out_->valid_until.resize(valid_until_at_start_);
    out_->valid_from.resize(valid_from_at_start_);
    out_->ids.resize(ids_at_start_);
    out_->revoked.resize(revoked_at_start_);
    out_->stats = stats_at_start_;
  }

  // The SAX interface (nlohmann::json_sax).
  bool null() { return Scalar(nullptr); }
  bool boolean(bool v) { return Scalar(v); }
  bool number_integer(json::number_integer_t v) { return Scalar(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Scalar(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return Scalar(v); }
  bool string(json::string_t& v) { return Scalar(v); }
  bool binary(json::binary_t&) { return true; }  // never in JSON text
  bool start_object(std::size_t) { return Open('{'); }
  bool end_object() { return Close('}'); }
  bool start_array(std::size_t) { return Open('['); }
  bool end_array() { return Close(']'); }
  bool key(json::string_t& k) {
    if (depth_ == 1) {
      root_key_ = k == "items"         ? RootKey::kItems
                  : k == "next_cursor" ? RootKey::kNextCursor
                                       : RootKey::kOther;
      // The last of duplicate keys wins, as in the tree parser: forget the earlier value.
      if (root_key_ == RootKey::kItems) {
        Rollback();
        items_ = 0;
        items_is_array_ = false;
      } else if (root_key_ == RootKey::kNextCursor) {
        cursor_ = Cursor::kOther;  // until its value says otherwise
        cursor_text_.clear();
      }
    } else if (in_item_ && depth_ == 3) {
      field_ = k == "pattern"       ? Field::kPattern
               : k == "id"          ? Field::kId
               : k == "revoked"     ? Field::kRevoked
               : k == "valid_until" ? Field::kValidUntil
               : k == "valid_from"  ? Field::kValidFrom
                                    : Field::kOther;
      // A duplicate key's last value wins, whatever its type: a container or a null clears.
      SetField(nullptr);
    } else if (dumping_) {
      dump_.Key(k);
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  enum class RootKey : uint8_t { kItems, kNextCursor, kOther };
  enum class Field : uint8_t { kPattern, kId, kRevoked, kValidUntil, kValidFrom, kOther };

  // Whether the samples can still take the dump of a non-object item.
  bool WantDump() const { return out_->stats.samples.size() < ParseStats::kMaxSamples; }

  void RejectNonObject() {
    ParseStats* stats = &out_->stats;
    ++stats->lines;
    AddRejected(stats, dump_.text(), "not a JSON object");
    dump_.Clear();
  }

  // Always true: nothing read stops the parse, so that a page is refused only once it is read
  // whole (an invalid page must say "not valid JSON" whatever came before).
  template <typename T>
  bool Scalar(T&& v) {
    using V = std::decay_t<T>;
    if (depth_ == 0) return true;  // a root that is not an object: refused at the end
    if (depth_ == 1) {
      if (root_key_ == RootKey::kNextCursor) {
        if constexpr (std::is_same_v<V, std::string>) {
          cursor_ = Cursor::kString;
          cursor_text_ = std::move(v);
        } else {
          cursor_ = std::is_same_v<V, std::nullptr_t> ? Cursor::kNull : Cursor::kOther;
        }
      }
      return true;
    }
    if (in_items_ && depth_ == 2) {  // an item that is not an object
      ++items_;
      if (WantDump()) Dump(v);
      RejectNonObject();
      return true;
    }
    if (in_item_ && depth_ == 3) {
      SetField(std::forward<T>(v));
      return true;
    }
    if (dumping_) Dump(v);
    return true;
  }

  template <typename T>
  void Dump(const T& v) {
    if constexpr (std::is_same_v<T, std::string>) {
      dump_.String(v);
    } else {
      dump_.Value(v);
    }
  }

  // The value of the current field; any other type than the field's leaves it unset.
  template <typename T>
  void SetField(T&& v) {
    using V = std::decay_t<T>;
    std::string* s = nullptr;
    if constexpr (std::is_same_v<V, std::string>) s = &v;
    switch (field_) {
      case Field::kPattern:
        item_.pattern = s != nullptr ? std::move(*s) : std::string();
        break;
      case Field::kId:
        item_.id = s != nullptr ? PrintableId(*s) : std::string();
        break;
      case Field::kRevoked:
        if constexpr (std::is_same_v<V, bool>) {
          item_.revoked = v;
        } else {
          item_.revoked = s != nullptr && FlagText(*s);
        }
        break;
      case Field::kValidUntil:
        item_.valid_until = s != nullptr ? ParseRfc3339(*s) : std::nullopt;
        break;
      case Field::kValidFrom:
        item_.valid_from = s != nullptr ? ParseRfc3339(*s) : std::nullopt;
        break;
      case Field::kOther:
        break;
    }
  }

  bool Open(char c) {
    if (depth_ == 0) {
      root_is_object_ = c == '{';
    } else if (depth_ == 1 && root_key_ == RootKey::kItems && root_is_object_) {
      items_is_array_ = c == '[';
      in_items_ = items_is_array_;
    } else if (depth_ == 1 && root_key_ == RootKey::kNextCursor) {
      cursor_ = Cursor::kOther;
    } else if (in_items_ && depth_ == 2) {
      ++items_;
      if (c == '{') {
        in_item_ = true;
        item_ = ItemFields{};
        field_ = Field::kOther;
      } else {
        dumping_ = true;
        dump_.Clear();
      }
    }
    if (dumping_ && WantDump()) dump_.Open(c);
    ++depth_;
    return true;
  }

  bool Close(char c) {
    --depth_;
    if (dumping_ && WantDump()) dump_.Close(c);
    if (depth_ == 2 && in_item_) {
      in_item_ = false;
      TakeIndicator(item_, o_, out_);
    } else if (depth_ == 2 && dumping_) {
      dumping_ = false;
      RejectNonObject();
    } else if (depth_ == 1 && in_items_) {
      in_items_ = false;
    }
    return true;
  }

  const IndicatorPageOptions& o_;
  FetchResult* out_;
  const ParseStats stats_at_start_;
  const size_t prefixes_at_start_, valid_until_at_start_, valid_from_at_start_, ids_at_start_,
      revoked_at_start_;

  size_t depth_ = 0;  // containers open around the next event
  bool root_is_object_ = false;
  RootKey root_key_ = RootKey::kOther;
  bool items_is_array_ = false;
  bool in_items_ = false;  // depth 2 is the "items" list
  size_t items_ = 0;
  Cursor cursor_ = Cursor::kAbsent;
  std::string cursor_text_;
  bool in_item_ = false;  // depth 3 is an item's own keys
  Field field_ = Field::kOther;
  ItemFields item_;
  bool dumping_ = false;  // inside an item that is a list: quoted in its sample
  CappedDump dump_;
};

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
  PageSax sax(options, out);
  bool valid = false;
  try {
    valid = nlohmann::json::sax_parse(body.data(), body.data() + body.size(), &sax);
  } catch (const nlohmann::json::exception&) {
    valid = false;  // the SAX path reports through parse_error; this is belt and braces
  }
  // Checked in the order the tree parser did, so that each page gets the same message.
  Status status = Status::Ok();
  if (!valid) {
    // An HTML page or binary garbage says more about what went wrong than "not JSON" does; a
    // broken object (cut short, say) is just that.
    const size_t first = body.find_first_not_of(" \t\r\n");
    const bool brace = first != std::string_view::npos && body[first] == '{';
    Status shape = brace ? Status::Ok() : CheckListShape(body, "");
    status = shape.ok() ? Status::Error("the answer is not valid JSON") : shape;
  } else if (!sax.root_is_object()) {
    status = Status::Error("the JSON answer is not an object");
  } else if (!sax.items_is_array()) {
    status = Status::Error("the JSON answer has no \"items\" list");
  } else if (sax.cursor() == PageSax::Cursor::kOther) {
    // Taken as "no cursor", a mangled one would end the walk early: a truncated collection.
    status = Status::Error("the JSON answer's \"next_cursor\" is neither a string nor null");
  }
  if (!status.ok()) {
    sax.Rollback();
    return status;
  }
  page->items = sax.items();
  page->next_cursor =
      sax.cursor() == PageSax::Cursor::kString ? std::move(sax.cursor_text()) : std::string();
  page->last = sax.cursor() == PageSax::Cursor::kNull;
  return Status::Ok();
}

}  // namespace iocwall
