// Logging to stderr with syslog priority prefixes ("<3>"), which journald turns into
// priorities. One line per event; the API key never reaches a log call (it is never held in
// anything that is logged).
#pragma once

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

}  // namespace iocwall
