// The cycle report as JSON: state.json (read back by --status, --restore and the next daemon)
// and the "last_cycle" object of --status --json. Every key is named once here, so that the
// writer and the reader cannot drift apart and a rename shows in one place (and in the test
// that pins the keys: monitoring scripts read these names).
#pragma once

#include <optional>
#include <string>

#include "agent/agent.h"

namespace iocwall {
namespace report_key {

// The top level.
inline constexpr char kVersion[] = "version";
inline constexpr char kOutcome[] = "outcome";
inline constexpr char kSummary[] = "summary";
inline constexpr char kStartedAt[] = "started_at";
inline constexpr char kSeconds[] = "seconds";  // also in "apply" and each source
inline constexpr char kDesiredV4[] = "desired_v4";
inline constexpr char kDesiredV6[] = "desired_v6";
inline constexpr char kApplied[] = "applied";
inline constexpr char kApply[] = "apply";
inline constexpr char kApplyError[] = "apply_error";
inline constexpr char kEnforcedFetchedAt[] = "enforced_fetched_at";
inline constexpr char kEnforcedElements[] = "enforced_elements";
inline constexpr char kLastApplyAt[] = "last_apply_at";
inline constexpr char kGuardReasons[] = "guard_reasons";
inline constexpr char kCarvedOut[] = "carved_out";
inline constexpr char kWarnings[] = "warnings";  // also in each source (a count there)
inline constexpr char kSources[] = "sources";
inline constexpr char kCommitted[] = "committed";
inline constexpr char kHostProtected[] = "host_protected";
inline constexpr char kStaleTables[] = "stale_tables";
inline constexpr char kNextValidFrom[] = "next_valid_from";

// "apply".
inline constexpr char kAdded[] = "added";
inline constexpr char kRemoved[] = "removed";
inline constexpr char kMessages[] = "messages";
inline constexpr char kBytes[] = "bytes";  // also in each source
inline constexpr char kBootstrapped[] = "bootstrapped";
inline constexpr char kRepaired[] = "repaired";
inline constexpr char kRepairReason[] = "repair_reason";
inline constexpr char kRetries[] = "retries";
inline constexpr char kRefreshed[] = "refreshed";

// Each of "sources".
inline constexpr char kName[] = "name";
inline constexpr char kOk[] = "ok";
inline constexpr char kError[] = "error";
inline constexpr char kErrorClass[] = "error_class";
inline constexpr char kHttpStatus[] = "http_status";
inline constexpr char kEntries[] = "entries";
inline constexpr char kRejected[] = "rejected";
inline constexpr char kExpired[] = "expired";
inline constexpr char kPages[] = "pages";
inline constexpr char kLastAttempt[] = "last_attempt";
inline constexpr char kLastSuccess[] = "last_success";
inline constexpr char kLastFull[] = "last_full";
inline constexpr char kMode[] = "mode";
inline constexpr char kNotYetValid[] = "not_yet_valid";
inline constexpr char kChanges[] = "changes";
inline constexpr char kRejectedSamples[] = "rejected_samples";
inline constexpr char kWidenedSamples[] = "widened_samples";
// Each of "rejected_samples" and "widened_samples".
inline constexpr char kLine[] = "line";
inline constexpr char kText[] = "text";
inline constexpr char kReason[] = "reason";  // "rejected_samples" only
// "prefix": each of "widened_samples" (what the line became) and of "host_protected".

// "committed".
inline constexpr char kTable[] = "table";
inline constexpr char kGeneration[] = "generation";
inline constexpr char kTableHandle[] = "table_handle";
inline constexpr char kBootId[] = "boot_id";
inline constexpr char kNetns[] = "netns";
inline constexpr char kAt[] = "at";
inline constexpr char kV4[] = "v4";
inline constexpr char kV6[] = "v6";
inline constexpr char kSamples[] = "samples";
// Each of "samples".
inline constexpr char kFamily[] = "family";
inline constexpr char kFirst[] = "first";
inline constexpr char kLast[] = "last";
inline constexpr char kExpires[] = "expires";

// Each of "host_protected".
inline constexpr char kPrefix[] = "prefix";
inline constexpr char kWhy[] = "why";

}  // namespace report_key

// The layout's version, written as "version"; a report of another version is not read.
inline constexpr int kReportJsonVersion = 1;

// The report as JSON text (two-space indentation, keys sorted, a final newline). Invalid
// UTF-8 (a hostile feed line in a rejected sample) is replaced, never an error.
std::string ReportToJson(const CycleReport& r);
// nullopt when the text is not a report of this version. Missing or damaged fields take their
// defaults: a damaged state.json must not stop --status or the daemon.
std::optional<CycleReport> ReportFromJson(const std::string& text);

}  // namespace iocwall
