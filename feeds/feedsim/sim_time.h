// RFC 3339 for the simulator, written apart from the client's parser so that a bug in one is
// not mirrored by the other.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace iocwall::feedsim {

std::optional<int64_t> ParseTime(const std::string& text);  // "2024-05-01T12:00:00Z" (UTC only)
std::string FormatTime(int64_t unix_seconds);               // "2024-05-01T12:00:00.000000Z"

}  // namespace iocwall::feedsim
