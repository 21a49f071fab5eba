// Small text helpers shared by every module's messages.
#pragma once

#include <cstddef>
#include <string>

namespace iocwall {

// "1 range", "2 ranges": counts in messages an operator reads.
inline std::string Plural(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

}  // namespace iocwall
