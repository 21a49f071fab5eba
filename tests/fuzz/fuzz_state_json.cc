// libFuzzer target: state.json, the last cycle's report that --status and the daemon read back
// (ReportFromJson). Never throws or crashes on any bytes; a report it accepts writes
// back (ReportToJson) to JSON that it reads again to the same report.
#include <string>

#include "agent/report_json.h"
#include "tests/fuzz/fuzz_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::optional<CycleReport> r = ReportFromJson(text);
  if (!r) return 0;
  const std::string json = ReportToJson(*r);
  const std::optional<CycleReport> again = ReportFromJson(json);
  FuzzCheck(again.has_value(), "a report writes back to readable JSON");
  FuzzCheck(ReportToJson(*again) == json, "report round trip");
  FuzzCheck(again->outcome == r->outcome && again->sources.size() == r->sources.size(),
            "outcome and sources survive");
  return 0;
}
