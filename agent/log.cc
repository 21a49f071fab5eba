#include "agent/log.h"

#include <cstdio>
#include <mutex>

namespace iocwall {
namespace {
LogLevel g_max = LogLevel::kInfo;
std::mutex g_mu;
}  // namespace

void SetLogLevel(LogLevel max) { g_max = max; }

void Log(LogLevel level, const std::string& line) {
  if (static_cast<int>(level) > static_cast<int>(g_max)) return;
  std::lock_guard<std::mutex> lock(g_mu);
  // One write per line so that concurrent writers to the journal do not interleave.
  std::string out = "<" + std::to_string(static_cast<int>(level)) + ">" + line + "\n";
  fwrite(out.data(), 1, out.size(), stderr);
  fflush(stderr);
}

}  // namespace iocwall
