// Logging to stderr, one line per event. Under systemd (stderr is the journal's stream) each
// line carries a syslog priority prefix ("<3>") that journald turns into the priority; on a
// terminal or a file the prefix would be noise, so it is left out. The API key never reaches a
// log call (it is never held in anything that is logged).
#pragma once

#include <sys/types.h>

#include <string>

namespace iocwall {

enum class LogLevel { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

// Lines above `max` are dropped (kInfo by default; kDebug with --verbose).
void SetLogLevel(LogLevel max);
void Log(LogLevel level, const std::string& line);
inline void LogError(const std::string& l) { Log(LogLevel::kError, l); }
inline void LogWarning(const std::string& l) { Log(LogLevel::kWarning, l); }
inline void LogNotice(const std::string& l) { Log(LogLevel::kNotice, l); }
inline void LogInfo(const std::string& l) { Log(LogLevel::kInfo, l); }
inline void LogDebug(const std::string& l) { Log(LogLevel::kDebug, l); }

// True when `journal_stream` (the JOURNAL_STREAM variable systemd sets, "<dev>:<ino>" in
// decimal) names the file (dev, ino). systemd documents this comparison as the way to know
// that stderr is still the journal and not a file or pipe a child inherited the variable with.
bool IsJournalStream(const char* journal_stream, dev_t dev, ino_t ino);
// True when the process's stderr (fd 2) is the journal stream JOURNAL_STREAM names.
bool StderrIsJournal();
// One log line as written: "<5>text\n" with the prefix, "text\n" without.
std::string FormatLogLine(LogLevel level, const std::string& line, bool priority_prefix);

}  // namespace iocwall
