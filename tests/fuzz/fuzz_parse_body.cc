// libFuzzer target: ParseBody on arbitrary bytes. Counts add up, line numbers are right and
// continue across calls (a body split at a line boundary parses as the whole), and every
// accepted prefix is canonical. The result then goes through Normalise, whose output must be
// sorted, disjoint and non-adjacent.
#include <string_view>
#include <vector>

#include "core/interval_set.h"
#include "tests/fuzz/fuzz_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::vector<Prefix> out;
  ParseStats stats;
  ParseBody(body, &out, &stats);

  size_t lines = 0;
  for (char c : body) lines += c == '\n';
  if (!body.empty() && body.back() != '\n') ++lines;
  FuzzCheck(stats.lines == lines, "one line per LF, last line with or without one");
  FuzzCheck(stats.accepted == out.size(), "accepted count");
  FuzzCheck(stats.accepted + stats.rejected <= stats.lines, "counts within lines");
  FuzzCheck(stats.samples.size() <= ParseStats::kMaxSamples, "samples capped");
  FuzzCheck(stats.samples.size() == std::min(stats.rejected, ParseStats::kMaxSamples),
            "first rejects sampled");
  size_t prev = 0;
  for (const RejectedLine& s : stats.samples) {
    FuzzCheck(s.line_no > prev && s.line_no <= stats.lines, "sample line numbers");
    FuzzCheck(!s.reason.empty(), "sample reason");
    FuzzCheck(s.text.size() <= 123, "sample cut to 120 bytes and an ellipsis");
    for (char c : s.text) FuzzCheck(c >= 0x20 && c < 0x7f, "sample escaped");
    prev = s.line_no;
  }
  for (const Prefix& p : out) CheckAcceptedPrefix(p);

  // Two pages split after the middle line break give the same result, numbered on.
  const size_t cut = body.find('\n', body.size() / 2);
  if (cut != std::string_view::npos) {
    std::vector<Prefix> paged;
    ParseStats paged_stats;
    ParseBody(body.substr(0, cut + 1), &paged, &paged_stats);
    ParseBody(body.substr(cut + 1), &paged, &paged_stats);
    FuzzCheck(paged == out, "paged prefixes");
    FuzzCheck(paged_stats.lines == stats.lines && paged_stats.rejected == stats.rejected,
              "paged counts");
    for (size_t i = 0; i < paged_stats.samples.size(); ++i) {
      FuzzCheck(paged_stats.samples[i].line_no == stats.samples[i].line_no, "paged numbering");
    }
  }

  std::vector<TaggedPrefix> tagged;
  for (size_t i = 0; i < out.size(); ++i) tagged.push_back({out[i], uint32_t(i % 3)});
  const IntervalSet set = Normalise(tagged, Policy{0, 0}, nullptr);
  for (const FamilyRanges* f : {&set.v4, &set.v6}) {
    for (size_t i = 0; i < f->ranges.size(); ++i) {
      FuzzCheck(f->ranges[i].first <= f->ranges[i].last, "range order");
      if (i) FuzzCheck(f->ranges[i - 1].last + 1 < f->ranges[i].first, "minimal set");
    }
  }
  return 0;
}
