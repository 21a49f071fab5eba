// libFuzzer target: one text page as the feed client takes it (feeds/list_body.h + ParseBody):
// the shape check, the entry count that decides paging, the parse, and the rejected-ratio check
// over the whole source. The first byte picks the Content-Type the server claims. A page the
// shape check passes never holds a NUL or starts with '<' or '{'; paging counts agree with the
// parser; every message is printable and short enough for a log line.
#include <cstring>
#include <string_view>
#include <vector>

#include "feeds/list_body.h"
#include "tests/fuzz/fuzz_invariants.h"

namespace {

void CheckMessage(const iocwall::Status& s) {
  using iocwall::FuzzCheck;
  FuzzCheck(!s.ok() && !s.message().empty(), "failure with a message");
  // The rejected-ratio message quotes one excerpted sample line: bounded whatever the page.
  FuzzCheck(s.message().size() < 512, "message bounded");
  for (char c : s.message()) FuzzCheck(c != '\0' && c != '\n', "message is one printable line");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  static constexpr std::string_view kTypes[] = {"",
                                                "text/plain",
                                                "text/html; charset=utf-8",
                                                "TEXT/HTML",
                                                "application/xhtml+xml",
                                                "application/json"};
  if (size == 0) return 0;
  const std::string_view content_type = kTypes[data[0] % std::size(kTypes)];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Status shape = CheckListShape(body, content_type);
  if (shape.ok()) {
    FuzzCheck(std::memchr(body.data(), '\0', body.size()) == nullptr, "no NUL in a list");
    FuzzCheck(content_type.find("html") == std::string_view::npos &&
                  content_type.find("HTML") == std::string_view::npos,
              "HTML content type refused");
  } else {
    CheckMessage(shape);
  }

  std::vector<Prefix> out;
  ParseStats stats;
  ParseBody(body, &out, &stats);
  const size_t entries = CountEntryLines(body);
  FuzzCheck(entries <= stats.lines, "entry lines within lines");
  // Every accepted or rejected line holds something; a blank line is neither.
  FuzzCheck(stats.accepted + stats.rejected <= entries, "entries counted by the pager");
  for (const Prefix& p : out) CheckAcceptedPrefix(p);

  for (double ratio : {0.0, 0.5, 1.0}) {
    const Status r = CheckRejectedRatio(stats, ratio);
    if (ratio >= 1.0 || stats.rejected == 0) FuzzCheck(r.ok(), "ratio check disabled or clean");
    if (!r.ok()) CheckMessage(r);
  }
  return 0;
}
