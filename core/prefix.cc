// Feed-line parsing: hand-written, allocation-free parsers (a feed can hold millions of lines
// and is re-read every few minutes, so no regex and no locale-dependent library calls).
#include "core/prefix.h"

#include <algorithm>
#include <cstring>

namespace iocwall {
namespace {

// The longest token that can be a prefix: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128"
// is 49 bytes. Anything longer is rejected before any parsing work is spent on it.
constexpr size_t kMaxTokenLength = 64;
// How much of a rejected line is kept as a sample for the operator.
constexpr size_t kSampleBytes = 120;

// ::ffff:0:0/96, the IPv4-mapped block (RFC 4291 2.5.5.2).
constexpr u128 kMappedPrefix = u128{0xffff} << 32;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view Trim(std::string_view s) {
  // A UTF-8 byte order mark: editors on Windows put one at the start of a saved list.
  if (s.size() >= 3 && s[0] == '\xEF' && s[1] == '\xBB' && s[2] == '\xBF') s.remove_prefix(3);
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

u128 HostMask(Family f, int len) {
  const int host_bits = AddressBits(f) - len;
  if (host_bits <= 0) return 0;
  if (host_bits >= 128) return ~u128{0};
  return (u128{1} << host_bits) - 1;
}

// Reasons are static strings: ParsedLine::reason is a string_view into them.
constexpr std::string_view kReasonNul = "contains a NUL byte";
constexpr std::string_view kReasonTooLong = "too long to be an IP address or CIDR";
constexpr std::string_view kReasonTrailing = "unexpected text after the address";
constexpr std::string_view kReasonUrl = "a URL, not an IP address";
constexpr std::string_view kReasonDomain = "a domain name, not an IP address";
constexpr std::string_view kReasonZone = "IPv6 zone index (%) is not allowed";
constexpr std::string_view kReasonOctetRange = "IPv4 octet above 255";
constexpr std::string_view kReasonOctetCount = "IPv4 address needs exactly 4 octets";
constexpr std::string_view kReasonLeadingZero = "leading zero in IPv4 octet (ambiguous octal)";
constexpr std::string_view kReasonBadV4 = "malformed IPv4 address";
constexpr std::string_view kReasonBadV6 = "malformed IPv6 address";
constexpr std::string_view kReasonNoLen = "missing prefix length after '/'";
constexpr std::string_view kReasonBadLen = "malformed prefix length";
constexpr std::string_view kReasonLenRange = "prefix length out of range";
constexpr std::string_view kReasonGarbage = "not an IP address or CIDR";

// Parses exactly four dotted decimal octets; on failure sets *reason.
bool ParseV4(std::string_view s, uint32_t* out, std::string_view* reason) {
  uint32_t addr = 0;
  int octets = 0;
  size_t i = 0;
  while (true) {
    if (i >= s.size() || !IsDigit(s[i])) {
      *reason = kReasonBadV4;
      return false;
    }
    const size_t start = i;
    uint32_t v = 0;
    while (i < s.size() && IsDigit(s[i]) && i - start < 4) v = v * 10 + (s[i++] - '0');
    if (i - start > 3 || v > 255) {
      *reason = kReasonOctetRange;
      return false;
    }
    if (i - start > 1 && s[start] == '0') {
      *reason = kReasonLeadingZero;
      return false;
    }
    addr = (addr << 8) | v;
    ++octets;
    if (i == s.size()) break;
    if (s[i] != '.' || octets == 4) {
      *reason = octets == 4 ? kReasonOctetCount : kReasonBadV4;
      return false;
    }
    ++i;
  }
  if (octets != 4) {
    *reason = kReasonOctetCount;
    return false;
  }
  *out = addr;
  return true;
}

// RFC 4291 2.2 text forms: eight groups of 1-4 hex digits, one "::" standing for one or more
// zero groups, and an optional dotted IPv4 tail in place of the last two groups.
bool ParseV6(std::string_view s, u128* out) {
  uint16_t groups[8] = {};
  int n = 0;     // groups written
  int gap = -1;  // index in groups where "::" stands
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    if (n == 8) return false;
    // A dotted IPv4 tail: the remaining text contains a '.' before any ':'.
    size_t j = i;
    while (j < s.size() && HexValue(s[j]) >= 0) ++j;
    if (j < s.size() && s[j] == '.') {
      if (n > 6) return false;
      uint32_t v4 = 0;
      std::string_view ignored;
      if (!ParseV4(s.substr(i), &v4, &ignored)) return false;
      groups[n++] = static_cast<uint16_t>(v4 >> 16);
      groups[n++] = static_cast<uint16_t>(v4 & 0xffff);
      i = s.size();
      break;
    }
    if (j == i || j - i > 4) return false;
    uint16_t g = 0;
    for (size_t k = i; k < j; ++k) g = static_cast<uint16_t>((g << 4) | HexValue(s[k]));
    groups[n++] = g;
    i = j;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (gap >= 0) return false;  // a second "::"
      gap = n;
      ++i;
    } else if (i == s.size()) {
      return false;  // a single trailing ':'
    }
  }
  if (gap >= 0) {
    if (n >= 8) return false;  // "::" must stand for at least one group
    const int zeros = 8 - n;
    std::memmove(groups + gap + zeros, groups + gap, sizeof(uint16_t) * (n - gap));
    std::fill(groups + gap, groups + gap + zeros, uint16_t{0});
  } else if (n != 8) {
    return false;
  }
  u128 addr = 0;
  for (uint16_t g : groups) addr = (addr << 16) | g;
  *out = addr;
  return true;
}

// A reason that says what the token looks like, for a token that failed to parse as either family.
std::string_view ClassifyGarbage(std::string_view token) {
  if (token.find("://") != std::string_view::npos) return kReasonUrl;
  bool has_letter = false, has_dot = false;
  for (char c : token) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) has_letter = true;
    if (c == '.') has_dot = true;
  }
  if (has_letter && has_dot) return kReasonDomain;
  return kReasonGarbage;
}

// Parses one token (no blanks) as an address or CIDR. Long on purpose: the hot loop of every
// feed line, kept in one piece so that the parse of a million lines stays branch-light.
ParsedLine ParseToken(std::string_view token) {
  ParsedLine r;
  r.kind = LineKind::kRejected;
  if (token.size() > kMaxTokenLength) {
    r.reason = kReasonTooLong;
    return r;
  }
  std::string_view addr_text = token;
  std::string_view len_text;
  bool has_len = false;
  if (size_t slash = token.find('/'); slash != std::string_view::npos) {
    addr_text = token.substr(0, slash);
    len_text = token.substr(slash + 1);
    has_len = true;
  }
  if (addr_text.find(':') != std::string_view::npos) {
    if (addr_text.find('%') != std::string_view::npos) {
      r.reason = kReasonZone;
      return r;
    }
    if (!ParseV6(addr_text, &r.prefix.addr)) {
      r.reason = token.find("://") != std::string_view::npos ? kReasonUrl : kReasonBadV6;
      return r;
    }
    r.prefix.family = Family::kV6;
  } else {
    uint32_t v4 = 0;
    if (!ParseV4(addr_text, &v4, &r.reason)) {
      // Text that is not digits and dots is better described by what it looks like.
      bool digits_and_dots = !addr_text.empty();
      for (char c : addr_text) digits_and_dots = digits_and_dots && (IsDigit(c) || c == '.');
      if (!digits_and_dots) r.reason = ClassifyGarbage(token);
      return r;
    }
    r.prefix.family = Family::kV4;
    r.prefix.addr = v4;
  }
  const int max_len = AddressBits(r.prefix.family);
  int len = max_len;
  if (has_len) {
    if (len_text.empty()) {
      r.reason = kReasonNoLen;
      return r;
    }
    if (len_text.size() > 3 || (len_text.size() > 1 && len_text[0] == '0')) {
      r.reason = len_text.size() > 3 ? kReasonLenRange : kReasonBadLen;
      for (char c : len_text) {
        if (!IsDigit(c)) r.reason = kReasonBadLen;
      }
      return r;
    }
    len = 0;
    for (char c : len_text) {
      if (!IsDigit(c)) {
        r.reason = kReasonBadLen;
        return r;
      }
      len = len * 10 + (c - '0');
    }
    if (len > max_len) {
      r.reason = kReasonLenRange;
      return r;
    }
  }
  const u128 host = HostMask(r.prefix.family, len);
  if (r.prefix.addr & host) {
    r.prefix.addr &= ~host;
    r.host_bits_cleared = true;
  }
  r.prefix.len = static_cast<uint8_t>(len);
  // ::ffff:a.b.c.d is how dual-stack software writes an IPv4 peer; the v4 set must hold it.
  if (r.prefix.family == Family::kV6 && len >= 96 &&
      (r.prefix.addr >> 32) == (kMappedPrefix >> 32)) {
    r.prefix.family = Family::kV4;
    r.prefix.addr &= 0xffffffffu;
    r.prefix.len = static_cast<uint8_t>(len - 96);
    r.mapped_v4 = true;
  }
  r.kind = LineKind::kAccepted;
  r.reason = {};
  return r;
}

// Appends one byte of a rejected line for display, escaping what a terminal would garble.
void AppendEscaped(std::string* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (c >= 0x20 && c < 0x7f && c != '\\') {
    out->push_back(static_cast<char>(c));
  } else {
    out->append("\\x");
    out->push_back(kHex[c >> 4]);
    out->push_back(kHex[c & 15]);
  }
}

std::string SampleText(std::string_view line) {
  std::string out;
  out.reserve(std::min(line.size(), kSampleBytes) + 3);
  for (size_t i = 0; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    const size_t width = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
    if (out.size() + width > kSampleBytes) {
      out.append("...");
      break;
    }
    AppendEscaped(&out, c);
  }
  return out;
}

}  // namespace

u128 Prefix::Last() const { return addr | HostMask(family, len); }

std::string Prefix::ToString() const {
  std::string s = FormatAddress(family, addr);
  if (len != AddressBits(family)) {
    s.push_back('/');
    s.append(std::to_string(len));
  }
  return s;
}

std::string FormatAddress(Family family, u128 addr) {
  char buf[48];
  char* p = buf;
  if (family == Family::kV4) {
    const uint32_t a = static_cast<uint32_t>(addr);
    for (int shift = 24; shift >= 0; shift -= 8) {
      const unsigned v = (a >> shift) & 0xff;
      if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
      if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
      *p++ = static_cast<char>('0' + v % 10);
      if (shift) *p++ = '.';
    }
    return std::string(buf, p);
  }
  uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = static_cast<uint16_t>(addr >> (112 - 16 * i));
  // RFC 5952 4.2: "::" replaces the longest run of two or more zero groups, the first if tied.
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      *p++ = ':';
      if (i == 0) *p++ = ':';
      i += best_len - 1;
      continue;
    }
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const int nibble = (g[i] >> shift) & 15;
      if (nibble || started || shift == 0) {
        *p++ = kHex[nibble];
        started = true;
      }
    }
    if (i < 7) *p++ = ':';
  }
  return std::string(buf, p);
}

ParsedLine ParseLine(std::string_view line) {
  ParsedLine r;
  // A NUL byte means a binary or corrupted body; it would also truncate the line in any C API.
  if (std::memchr(line.data(), '\0', line.size()) != nullptr) {
    r.kind = LineKind::kRejected;
    r.reason = kReasonNul;
    return r;
  }
  line = Trim(line);
  if (line.empty() || line[0] == '#') return r;  // kSkip
  // The entry ends at the first blank; what follows may only be a comment ("1.2.3.4 # why").
  size_t end = 0;
  while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
  const std::string_view token = line.substr(0, end);
  if (end < line.size()) {
    std::string_view rest = Trim(line.substr(end));
    if (!rest.empty() && rest[0] != '#') {
      r.kind = LineKind::kRejected;
      r.reason = token.size() > kMaxTokenLength ? kReasonTooLong : kReasonTrailing;
      return r;
    }
  }
  return ParseToken(token);
}

Result<Prefix> ParsePrefixWithReason(std::string_view text) {
  text = Trim(text);
  if (text.empty()) return Status::Error("empty: expected an IP address or CIDR prefix");
  // One pass for both checks (a NUL byte is the first reason given).
  bool nul = false, blank = false;
  for (char c : text) {
    nul |= c == '\0';
    blank |= c == ' ' || c == '\t' || c == '#';
  }
  if (nul) return Status::Error(std::string(kReasonNul));
  if (blank) {
    return Status::Error("expected one IP address or CIDR prefix, without spaces or comment");
  }
  const ParsedLine r = ParseToken(text);
  if (r.kind != LineKind::kAccepted) return Status::Error(std::string(r.reason));
  // An operator's "10.0.0.1/8" is most likely a typo: refuse rather than guess.
  if (r.host_bits_cleared) {
    return Status::Error("host bits set: the network is " + r.prefix.ToString());
  }
  return r.prefix;
}

std::optional<Prefix> ParsePrefix(std::string_view text) {
  Result<Prefix> r = ParsePrefixWithReason(text);
  if (!r.ok()) return std::nullopt;
  return r.value();
}

void ParseStats::Merge(const ParseStats& other) {
  lines += other.lines;
  accepted += other.accepted;
  rejected += other.rejected;
  host_bits_cleared += other.host_bits_cleared;
  mapped_v4 += other.mapped_v4;
  for (const RejectedLine& s : other.samples) {
    if (samples.size() >= kMaxSamples) break;
    samples.push_back(s);
  }
  for (const WidenedLine& w : other.widened) {
    if (widened.size() >= kMaxSamples) break;
    widened.push_back(w);
  }
}

void ParseBody(std::string_view body, std::vector<Prefix>* out, ParseStats* stats) {
  ParseBodyInto(body, stats, [out](const Prefix& p) { out->push_back(p); });
}

namespace internal {

bool ParseBodyLine(std::string_view line, ParseStats* stats, Prefix* prefix) {
  ++stats->lines;
  const ParsedLine r = ParseLine(line);
  switch (r.kind) {
    case LineKind::kSkip:
      return false;
    case LineKind::kAccepted:
      ++stats->accepted;
      stats->host_bits_cleared += r.host_bits_cleared;
      stats->mapped_v4 += r.mapped_v4;
      if (r.host_bits_cleared && stats->widened.size() < ParseStats::kMaxSamples) {
        std::string_view text = line;
        while (!text.empty() &&
               (text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
          text.remove_suffix(1);
        }
        while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
          text.remove_prefix(1);
        stats->widened.push_back(WidenedLine{stats->lines, SampleText(text), r.prefix});
      }
      *prefix = r.prefix;
      return true;
    case LineKind::kRejected:
      ++stats->rejected;
      if (stats->samples.size() < ParseStats::kMaxSamples) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        stats->samples.push_back(
            RejectedLine{stats->lines, SampleText(line), std::string(r.reason)});
      }
      return false;
  }
  return false;
}

}  // namespace internal

}  // namespace iocwall
