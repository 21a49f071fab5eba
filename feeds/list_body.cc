#include "feeds/list_body.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/text.h"

namespace iocwall {

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view SkipBomAndBlanks(std::string_view s) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  return s;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

Status CheckListShape(std::string_view body, std::string_view content_type) {
  if (StartsWithNoCase(content_type, "text/html") ||
      StartsWithNoCase(content_type, "application/xhtml")) {
    return Status::Error("the answer is an HTML page, not a list (a proxy or login page?)");
  }
  const std::string_view head = SkipBomAndBlanks(body);
  if (!head.empty() && head.front() == '<') {
    return Status::Error("the answer looks like HTML or XML, not a list (a proxy or login page?)");
  }
  if (!head.empty() && head.front() == '{') {
    return Status::Error("the answer is a JSON object, not a list (an error message?)");
  }
  // A text list never holds NUL bytes; garbage or a binary file does.
  if (std::memchr(body.data(), '\0', body.size()) != nullptr) {
    return Status::Error("the answer holds binary data (NUL bytes), not a list");
  }
  return Status::Ok();
}

Status CheckRejectedRatio(const ParseStats& stats, double max_rejected_ratio) {
  const size_t entries = stats.accepted + stats.rejected;
  if (stats.rejected == 0 || max_rejected_ratio >= 1.0) return Status::Ok();
  if (static_cast<double>(stats.rejected) > max_rejected_ratio * static_cast<double>(entries)) {
    std::string msg = std::to_string(stats.rejected) + " of " + Count(entries, "entry", "entries") +
                      (stats.rejected == 1 ? " is" : " are") +
                      " not IP addresses or prefixes: not an IP list";
    if (!stats.samples.empty()) {
      msg += " (line " + std::to_string(stats.samples.front().line_no) + ": \"" +
             stats.samples.front().text + "\": " + stats.samples.front().reason + ")";
    }
    return Status::Error(msg);
  }
  return Status::Ok();
}

std::string Excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 160)) {
    const unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : ' ');
  }
  const size_t begin = out.find_first_not_of(' ');
  const size_t end = out.find_last_not_of(' ');
  return begin == std::string::npos ? std::string() : out.substr(begin, end - begin + 1);
}

size_t CountEntryLines(std::string_view body) {
  size_t count = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view line = body.substr(pos, end - pos);
    if (std::any_of(line.begin(), line.end(), [](char c) { return !IsBlank(c); })) ++count;
    pos = end + 1;
  }
  return count;
}

}  // namespace iocwall
