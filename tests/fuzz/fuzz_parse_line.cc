// libFuzzer target: ParseLine on arbitrary bytes. Never crashes, and whatever it accepts is a
// canonical prefix that prints and re-parses to itself.
#include <string_view>

#include "tests/fuzz/fuzz_invariants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const ParsedLine r = ParseLine(line);
  switch (r.kind) {
    case LineKind::kAccepted:
      FuzzCheck(r.reason.empty(), "accepted without a reason");
      CheckAcceptedPrefix(r.prefix);
      break;
    case LineKind::kRejected:
      FuzzCheck(!r.reason.empty(), "rejected with a reason");
      break;
    case LineKind::kSkip:
      FuzzCheck(r.reason.empty(), "skipped without a reason");
      break;
  }
  // The strict parser never accepts what the line parser refuses, and agrees on the value.
  if (const std::optional<Prefix> p = ParsePrefix(line)) {
    FuzzCheck(r.kind == LineKind::kAccepted && r.prefix == *p, "ParsePrefix within ParseLine");
    FuzzCheck(!r.host_bits_cleared, "ParsePrefix refuses host bits");
  }
  return 0;
}
