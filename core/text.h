// Words for counts in operator messages: "1 line", "2 lines". Pure; shared by agent/, feeds/
// and netlink/ so that no message says "1 lines".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace iocwall {

// "1 page", "0 pages", "2 entries": `one` and `many` both given, for the irregular plurals.
inline std::string Count(uint64_t n, std::string_view one, std::string_view many) {
  std::string out = std::to_string(n);
  out += ' ';
  out += n == 1 ? one : many;
  return out;
}

}  // namespace iocwall
