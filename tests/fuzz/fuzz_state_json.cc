// libFuzzer target: state.json, the last cycle's report that --status and the daemon read back
// (Agent::ReportFromJson). Never throws or crashes on any bytes; a report it accepts writes
// back (ReportToJson) to JSON that it reads again to the same report.
#include <string>

#include "agent/agent.h"
#include "tests/fuzz/fuzz_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::optional<CycleReport> r = Agent::ReportFromJson(text);
  if (!r) return 0;
  const std::string json = Agent::ReportToJson(*r);
  const std::optional<CycleReport> again = Agent::ReportFromJson(json);
  FuzzCheck(again.has_value(), "a report writes back to readable JSON");
  FuzzCheck(Agent::ReportToJson(*again) == json, "report round trip");
  FuzzCheck(again->outcome == r->outcome && again->sources.size() == r->sources.size(),
            "outcome and sources survive");
  return 0;
}
