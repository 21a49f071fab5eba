// Prefix: an IPv4 or IPv6 network (address + length), and the parsing of one feed line.
// Pure: no syscalls, no allocation on the hot path beyond the caller's containers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace iocwall {

// 128-bit unsigned integer holds either family. For IPv4 the address is in the low 32 bits.
using u128 = unsigned __int128;

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

inline constexpr int AddressBits(Family f) { return f == Family::kV4 ? 32 : 128; }
// Largest address of the family (255.255.255.255 or ffff:...:ffff).
inline constexpr u128 MaxAddress(Family f) {
  return f == Family::kV4 ? u128{0xffffffffu} : ~u128{0};
}

// 32 bytes: the address first, so that the two small fields share its alignment padding (a
// million-entry list holds several vectors of prefixes at once).
struct Prefix {
  u128 addr = 0;  // network address: host bits are always zero
  Family family = Family::kV4;
  uint8_t len = 32;  // 0..32 for IPv4, 0..128 for IPv6

  constexpr Prefix() = default;
  // In the order people write a prefix in: its family, its address, its length.
  constexpr Prefix(Family f, u128 a, uint8_t l) : addr(a), family(f), len(l) {}

  u128 First() const { return addr; }
  u128 Last() const;             // last address covered (inclusive)
  std::string ToString() const;  // "192.0.2.0/24"; a full-length prefix prints as "192.0.2.1"
  bool operator==(const Prefix&) const = default;
};
static_assert(sizeof(Prefix) == 32);

std::string FormatAddress(Family family, u128 addr);  // "192.0.2.1", "2001:db8::1" (RFC 5952)

// The outcome of parsing one line of feed text.
enum class LineKind : uint8_t {
  kSkip,      // blank line or '#' comment: not counted as an entry
  kAccepted,  // a usable prefix
  kRejected,  // not an IP address or CIDR: skipped, counted, with a reason
};

struct ParsedLine {
  LineKind kind = LineKind::kSkip;
  Prefix prefix;                   // valid when kind == kAccepted
  bool host_bits_cleared = false;  // "10.0.0.1/8" became "10.0.0.0/8" (a warning)
  bool mapped_v4 = false;          // "::ffff:1.2.3.4" became "1.2.3.4"
  std::string_view reason;         // static text, set when kind == kRejected
};

// Parses one line: trims spaces, tabs, CR and a UTF-8 BOM; skips blank lines and '#' comments;
// accepts an address or a CIDR. Rejects everything else (domains, URLs, "1.2.3.256", "1.2.3",
// "1.2.3.4/33", "fe80::1%eth0", garbage) with a reason. Never throws.
ParsedLine ParseLine(std::string_view line);

// Strict parse of a single prefix written by an operator (allowlist, configuration): the same
// syntax as ParseLine, but no comment or trailing text, and host bits set ("10.0.0.1/8", most
// likely a typo) are refused rather than cleared.
std::optional<Prefix> ParsePrefix(std::string_view text);
// The same, saying why a text was refused, for configuration errors an operator must fix:
// "host bits set: the network is 10.0.0.0/8", "IPv4 octet above 255", ...
Result<Prefix> ParsePrefixWithReason(std::string_view text);

// A rejected line kept as an example for the operator.
struct RejectedLine {
  size_t line_no = 0;  // 1-based, counted across the whole source
  std::string text;    // the line, cut to 120 bytes, non-printable bytes escaped
  std::string reason;
};

// An accepted entry whose host bits were set ("9.9.9.9/8" became 9.0.0.0/8): the feed's own
// text, kept so that the widening can be reported in the feed's words.
struct WidenedLine {
  size_t line_no = 0;  // as RejectedLine
  std::string text;    // the entry as the source wrote it, cut to 120 bytes, escaped
  Prefix prefix;       // what it became
};

struct ParseStats {
  size_t lines = 0;  // lines seen (including skipped ones)
  size_t accepted = 0;
  size_t rejected = 0;
  size_t host_bits_cleared = 0;  // warnings
  size_t mapped_v4 = 0;
  std::vector<RejectedLine> samples;  // the first kMaxSamples rejected lines
  std::vector<WidenedLine> widened;   // the first kMaxSamples entries with host bits cleared
  static constexpr size_t kMaxSamples = 20;

  void Merge(const ParseStats& other);
};

// Parses a whole body (one entry per line; LF or CRLF; last line with or without a newline),
// appending accepted prefixes to *out and counting into *stats. line_no continues from
// stats->lines so that pages of one source number their lines consecutively.
void ParseBody(std::string_view body, std::vector<Prefix>* out, ParseStats* stats);

namespace internal {
// One line of ParseBody: counts it into *stats; true (and *prefix set) when accepted.
bool ParseBodyLine(std::string_view line, ParseStats* stats, Prefix* prefix);
}  // namespace internal

// ParseBody handing each accepted prefix to sink(const Prefix&) instead of a vector, so a
// caller can store them in its own form (tagged with a source, say) without a second copy.
template <typename Sink>
void ParseBodyInto(std::string_view body, ParseStats* stats, Sink&& sink) {
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    Prefix prefix;
    if (internal::ParseBodyLine(body.substr(pos, end - pos), stats, &prefix)) sink(prefix);
    pos = end + 1;
  }
}

}  // namespace iocwall
