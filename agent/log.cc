#include "agent/log.h"

#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace iocwall {
namespace {
LogLevel g_max = LogLevel::kInfo;
std::mutex g_mu;
}  // namespace

void SetLogLevel(LogLevel max) { g_max = max; }

bool IsJournalStream(const char* journal_stream, dev_t dev, ino_t ino) {
  if (journal_stream == nullptr) return false;
  uintmax_t d = 0, i = 0;
  char tail = 0;
  if (std::sscanf(journal_stream, "%" SCNuMAX ":%" SCNuMAX "%c", &d, &i, &tail) != 2) return false;
  return d == static_cast<uintmax_t>(dev) && i == static_cast<uintmax_t>(ino);
}

bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr) return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  return IsJournalStream(js, st.st_dev, st.st_ino);
}

std::string FormatLogLine(LogLevel level, const std::string& line, bool priority_prefix) {
  // Appended into one reserved buffer rather than chained operator+: GCC 12 at -O3 inlines
  // the temporaries' copies and reports a -Wrestrict overlap that cannot happen (GCC PR
  // 105329); this also makes one allocation.
  std::string out;
  out.reserve(line.size() + 4);
  if (priority_prefix) {
    out.push_back('<');
    out.append(std::to_string(static_cast<int>(level)));
    out.push_back('>');
  }
  out.append(line);
  out.push_back('\n');
  return out;
}

void Log(LogLevel level, const std::string& line) {
  if (static_cast<int>(level) > static_cast<int>(g_max)) return;
  std::lock_guard<std::mutex> lock(g_mu);
  // Checked at each line, not once: a log line is rare next to the fstat, and a cached answer
  // would go stale if stderr were redirected.
  std::string out = FormatLogLine(level, line, StderrIsJournal());
  // One write per line so that concurrent writers to the journal do not interleave.
  fwrite(out.data(), 1, out.size(), stderr);
  fflush(stderr);
}

}  // namespace iocwall
