// libFuzzer target: the last-good-list reader (agent/state.h ParseSnapshot), which reads files
// that survive crashes, disk-full conditions and hand edits. Never crashes; never allocates in
// proportion to a number the file merely claims; whatever it accepts serialises and parses
// back to the same snapshot. The store reads files a megabyte at a time: fed in small pieces
// the parser says exactly what it says of the whole text, and a file it accepts has a header
// it accepts alone.
#include <string>
#include <vector>

#include "agent/state.h"
#include "tests/fuzz/fuzz_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const Result<Snapshot> s = ParseSnapshot(text);
  {
    const size_t piece = size == 0 ? 1 : 1 + data[0] % 7;
    SnapshotInfo info;
    std::vector<SnapshotEntry> got;
    const SnapshotEntryFn keep = [&](const SnapshotEntry& e) { got.push_back(e); };
    SnapshotParser parser(&info, &keep);
    for (size_t at = 0; at < text.size(); at += piece) parser.Feed(text.substr(at, piece));
    const Status pieces = parser.Finish();
    FuzzCheck(pieces.ok() == s.ok(), "pieces and whole text agree");
    if (s.ok()) {
      FuzzCheck(got == s->entries && info.source == s->source, "pieces read the same entries");
      SnapshotInfo head;
      FuzzCheck(ParseSnapshotText(text, &head, nullptr).ok(), "an accepted file's header alone");
      FuzzCheck(head.entries == s->entries.size(), "the header's count");
    }
  }
  if (!s.ok()) {
    FuzzCheck(!s.message().empty(), "error with a message");
    return 0;
  }
  for (const SnapshotEntry& e : s->entries) CheckAcceptedPrefix(e.prefix);
  const Result<Snapshot> again = ParseSnapshot(SerializeSnapshot(s.value()));
  FuzzCheck(again.ok(), "a parsed snapshot serialises to a readable one");
  FuzzCheck(again->source == s->source && again->fetched_at == s->fetched_at &&
                again->entries == s->entries,
            "snapshot round trip");
  return 0;
}
