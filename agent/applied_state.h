// The copy of the last commit (AppliedCopy) as a file of the state directory: a short text
// header, then the ranges in binary (a million IPv4 ranges take 16 MB, and parse in
// milliseconds, where a set dump of the kernel takes about a minute). Pure; fuzzable.
#pragma once

#include <string>

#include "core/status.h"
#include "netlink/set_backend.h"

namespace iocwall {

std::string SerializeApplied(const AppliedCopy& copy);
// Strict: any inconsistency (header, counts, sizes, order of the ranges) is an error.
Result<AppliedCopy> ParseApplied(const std::string& data);

}  // namespace iocwall
