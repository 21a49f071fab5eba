// The small part of STIX 2.1 that format=json answers need: the observable values of an
// indicator's pattern and RFC 3339 timestamps.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
// Unix seconds. nullopt for anything else.
std::optional<int64_t> ParseRfc3339(std::string_view text);

// Unix seconds -> "2024-05-01T12:00:00Z".
std::string FormatRfc3339(int64_t unix_seconds);

}  // namespace iocwall
