// The small part of STIX 2.1 that format=json answers need: the observable values of an
// indicator's pattern, RFC 3339 timestamps, and a page of indicators as the objects endpoint
// returns it. Pure (no I/O), so that the whole page path can be fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "feeds/source.h"

namespace iocwall {

struct PatternValue {
  std::string type;   // "ipv4-addr", "ipv6-addr", "domain-name", ...
  std::string value;  // unquoted ('' inside a literal is ')
};

// Extracts every "<type>:value = '<literal>'" comparison of a pattern such as
// "[ipv4-addr:value = '94.24.86.201']" or "[ipv4-addr:value = 'a' OR ipv6-addr:value = 'b']".
// Returns nullopt when the pattern holds no such comparison or a literal is unterminated.
std::optional<std::vector<PatternValue>> ParseStixPattern(std::string_view pattern);

// "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123456Z", "2024-05-01T14:00:00+02:00" ->
// Unix seconds. nullopt for anything else, and for a time outside years 0000..9999 in UTC.
std::optional<int64_t> ParseRfc3339(std::string_view text);

// Unix seconds -> "2024-05-01T12:00:00Z".
std::string FormatRfc3339(int64_t unix_seconds);

struct IndicatorPageOptions {
  int64_t now = 0;  // an indicator whose valid_until is at or before now has expired
  // false (a full snapshot): revoked and expired indicators are left out, as the server should
  // already have done (skip_expired=true, include_revoked=false). true (a changes fetch): they
  // are kept, expired ones with their past valid_until, revoked ones flagged in
  // FetchResult::revoked, because the receiver must remove what it holds of them.
  bool keep_inactive = false;
};

struct IndicatorPage {
  size_t items = 0;         // entries in "items", whatever they hold (for the short-page rule)
  std::string next_cursor;  // empty when null or absent: nothing follows
  // "next_cursor": null, the server's explicit word that nothing follows. The client ends the
  // walk on an empty next_cursor (null or absent); any other type fails the page.
  bool last = false;
};

// Parses one format=json page, {"items": [...], "next_cursor": "..." | null}. Each IP value of
// each indicator's pattern is appended to out->prefixes, with out->valid_until (0: no end or
// unreadable), out->valid_from (0: absent or unreadable), out->ids (the STIX id; empty unless it
// is 1..200 printable ASCII bytes without spaces) and, when keep_inactive, out->revoked. Other
// values (domains, URLs) and malformed items are counted in out->stats as rejected. Fails,
// appending nothing, when the body is not a JSON object with an "items" list, or when next_cursor
// is neither a string nor null; the message says what arrived instead. Read as SAX events: no
// document tree is built, so a page of 2,000 full (3 KB) indicators costs its body and the
// entries kept, not a tree of every field; duplicate keys resolve as in nlohmann's tree parser
// (the last wins) and only an item's own keys count, never the same names in nested objects.
Status ParseIndicatorPage(std::string_view body, const IndicatorPageOptions& options,
                          IndicatorPage* page, FetchResult* out);

}  // namespace iocwall
