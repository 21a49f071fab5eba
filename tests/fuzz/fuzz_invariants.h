// Invariants every accepted prefix must satisfy, shared by the parser fuzz targets.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "core/prefix.h"

namespace iocwall {

inline void FuzzCheck(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

inline void CheckAcceptedPrefix(const Prefix& p) {
  const int bits = AddressBits(p.family);
  FuzzCheck(p.family == Family::kV4 || p.family == Family::kV6, "family");
  FuzzCheck(p.len <= bits, "length within the family");
  FuzzCheck(p.addr <= MaxAddress(p.family), "address within the family");
  const u128 host = p.len == 0 && bits == 128 ? ~u128{0}
                    : p.len == bits           ? u128{0}
                                              : (u128{1} << (bits - p.len)) - 1;
  FuzzCheck((p.addr & host) == 0, "host bits clear");
  FuzzCheck(p.Last() == (p.addr | host), "Last()");
  // What we print, we read back as the same prefix (no warning, no mapping).
  const std::string text = p.ToString();
  const ParsedLine again = ParseLine(text);
  FuzzCheck(again.kind == LineKind::kAccepted, "ToString() re-parses");
  FuzzCheck(again.prefix == p, "ToString() re-parses to the same prefix");
  FuzzCheck(!again.host_bits_cleared && !again.mapped_v4, "ToString() is canonical");
  FuzzCheck(ParsePrefix(text) == p, "ParsePrefix agrees");
}

}  // namespace iocwall
