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
  // Appended into one reserved buffer rather than chained operator+: GCC 12 at -O3 inlines
  // the temporaries' copies and reports a -Wrestrict overlap that cannot happen (GCC PR
  // 105329); this also makes one allocation instead of four.
  const std::string prio = std::to_string(static_cast<int>(level));
  std::string out;
  out.reserve(prio.size() + line.size() + 3);
  out.push_back('<');
  out.append(prio);
  out.push_back('>');
  out.append(line);
  out.push_back('\n');
  fwrite(out.data(), 1, out.size(), stderr);
  fflush(stderr);
}

}  // namespace iocwall
