// libFuzzer target: the last-good-list reader (agent/state.h ParseSnapshot), which reads files
// that survive crashes, disk-full conditions and hand edits. Never crashes; never allocates in
// proportion to a number the file merely claims; whatever it accepts serialises and parses
// back to the same snapshot.
#include <string>

#include "agent/state.h"
#include "tests/fuzz/fuzz_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const Result<Snapshot> s = ParseSnapshot(text);
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
