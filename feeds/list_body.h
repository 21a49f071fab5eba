// Checks that a body is a list of entries and not something else that happens to arrive with
// a 200: a proxy's HTML error page, a JSON error object, binary garbage, or a collection of
// another type (domains). Shared by every source, so that a bad answer never becomes a
// half list or an empty one.
#pragma once

#include <string>
#include <string_view>

#include "core/prefix.h"
#include "core/status.h"

namespace iocwall {

// Looks at one body (a page) before parsing. content_type may be empty (files).
Status CheckListShape(std::string_view body, std::string_view content_type);

// Looks at the whole source once parsed: fails when more than max_rejected_ratio of the
// entries are not IP addresses or prefixes (1.0 disables the check).
Status CheckRejectedRatio(const ParseStats& stats, double max_rejected_ratio);

// Printable excerpt (160 bytes at most, control bytes as spaces) of text from the network.
std::string Excerpt(std::string_view body);

// Number of non-blank lines (an entry count comparable with the page limit).
size_t CountEntryLines(std::string_view body);

}  // namespace iocwall
