#include "agent/report_json.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <vector>

namespace iocwall {
namespace {

using Json = nlohmann::json;
namespace k = report_key;

Json ApplyToJson(const ApplyResult& a) {
  return {{k::kAdded, a.added},
          {k::kRemoved, a.removed},
          {k::kMessages, a.messages},
          {k::kBytes, a.batch_bytes},
          {k::kBootstrapped, a.bootstrapped},
          {k::kRepaired, a.repaired},
          {k::kRepairReason, a.repair_reason},
          {k::kSeconds, a.seconds},
          {k::kRetries, a.retries},
          {k::kRefreshed, a.refreshed}};
}

Json SourceToJson(const SourceReport& s) {
  Json rej = Json::array();
  for (const auto& x : s.rejected_samples) {
    rej.push_back({{k::kLine, x.line_no}, {k::kText, x.text}, {k::kReason, x.reason}});
  }
  Json widened = Json::array();
  for (const auto& x : s.widened_samples) {
    widened.push_back(
        {{k::kLine, x.line_no}, {k::kText, x.text}, {k::kPrefix, x.prefix.ToString()}});
  }
  return {{k::kName, s.name},
          {k::kOk, s.ok},
          {k::kError, s.error},
          {k::kErrorClass, s.error_class},
          {k::kHttpStatus, s.http_status},
          {k::kEntries, s.entries},
          {k::kRejected, s.rejected},
          {k::kWarnings, s.warnings},
          {k::kExpired, s.expired},
          {k::kPages, s.pages},
          {k::kBytes, s.bytes},
          {k::kSeconds, s.seconds},
          {k::kLastAttempt, s.last_attempt},
          {k::kLastSuccess, s.last_success},
          {k::kLastFull, s.last_full},
          {k::kMode, s.mode},
          {k::kNotYetValid, s.not_yet_valid},
          {k::kChanges, s.changes},
          {k::kRejectedSamples, rej},
          {k::kWidenedSamples, widened}};
}

Json CommitToJson(const CommitRecord& c) {
  Json samples = Json::array();
  for (const auto& x : c.samples) {
    samples.push_back({{k::kFamily, x.family == Family::kV4 ? 4 : 6},
                       {k::kFirst, FormatAddress(x.family, x.range.first)},
                       {k::kLast, FormatAddress(x.family, x.range.last)},
                       {k::kExpires, x.expires}});
  }
  return {{k::kTable, c.table},
          {k::kGeneration, c.generation},
          {k::kTableHandle, c.table_handle},
          {k::kBootId, c.boot_id},
          {k::kNetns, c.netns},
          {k::kAt, c.at},
          {k::kV4, c.v4},
          {k::kV6, c.v6},
          {k::kSamples, samples}};
}

// A number from a state file, or `def` when it is missing, of another type, or out of range:
// a damaged file must not turn into undefined behaviour (a float cast overflow, found by
// fuzz_state_json).
template <typename T>
T Num(const Json& j, const char* key, T def) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return def;
  if constexpr (std::is_floating_point_v<T>) {
    return it->template get<double>();
  } else {
    if (it->is_number_unsigned()) {
      uint64_t v = it->template get<uint64_t>();
      return v <= static_cast<uint64_t>(std::numeric_limits<T>::max()) ? static_cast<T>(v) : def;
    }
    if (it->is_number_integer()) {
      int64_t v = it->template get<int64_t>();
      if (v < 0 && !std::is_signed_v<T>) return def;
      if (std::is_signed_v<T> && (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                                  v > static_cast<int64_t>(std::numeric_limits<T>::max()))) {
        return def;
      }
      return static_cast<T>(v);
    }
    return def;  // a float where a count belongs
  }
}

ApplyResult ApplyFromJson(const Json& a) {
  ApplyResult r;
  r.added = Num(a, k::kAdded, size_t{0});
  r.removed = Num(a, k::kRemoved, size_t{0});
  r.messages = Num(a, k::kMessages, size_t{0});
  r.batch_bytes = Num(a, k::kBytes, size_t{0});
  r.bootstrapped = a.value(k::kBootstrapped, false);
  r.repaired = a.value(k::kRepaired, false);
  r.repair_reason = a.value(k::kRepairReason, "");
  r.seconds = Num(a, k::kSeconds, 0.0);
  r.retries = Num(a, k::kRetries, 0);
  r.refreshed = Num(a, k::kRefreshed, size_t{0});
  return r;
}

SourceReport SourceFromJson(const Json& s) {
  SourceReport x;
  x.name = s.at(k::kName).get<std::string>();
  x.ok = s.value(k::kOk, false);
  x.error = s.value(k::kError, "");
  x.error_class = s.value(k::kErrorClass, "");
  x.http_status = Num(s, k::kHttpStatus, 0);
  x.entries = Num(s, k::kEntries, size_t{0});
  x.rejected = Num(s, k::kRejected, size_t{0});
  x.warnings = Num(s, k::kWarnings, size_t{0});
  x.expired = Num(s, k::kExpired, size_t{0});
  x.pages = Num(s, k::kPages, size_t{0});
  x.bytes = Num(s, k::kBytes, size_t{0});
  x.seconds = Num(s, k::kSeconds, 0.0);
  x.last_attempt = Num(s, k::kLastAttempt, int64_t{0});
  x.last_success = Num(s, k::kLastSuccess, int64_t{0});
  x.last_full = Num(s, k::kLastFull, int64_t{0});
  x.mode = s.value(k::kMode, "");
  x.not_yet_valid = Num(s, k::kNotYetValid, size_t{0});
  x.changes = Num(s, k::kChanges, size_t{0});
  for (const auto& rj : s.value(k::kRejectedSamples, Json::array())) {
    x.rejected_samples.push_back(
        {Num(rj, k::kLine, size_t{0}), rj.value(k::kText, ""), rj.value(k::kReason, "")});
  }
  for (const auto& wj : s.value(k::kWidenedSamples, Json::array())) {
    auto p = ParsePrefix(wj.value(k::kPrefix, ""));
    if (p) x.widened_samples.push_back({Num(wj, k::kLine, size_t{0}), wj.value(k::kText, ""), *p});
  }
  return x;
}

CommitRecord CommitFromJson(const Json& j) {
  CommitRecord c;
  c.table = j.value(k::kTable, "");
  c.generation = Num(j, k::kGeneration, uint32_t{0});
  c.table_handle = Num(j, k::kTableHandle, uint64_t{0});
  c.boot_id = j.value(k::kBootId, "");
  c.netns = Num(j, k::kNetns, uint64_t{0});
  c.at = Num(j, k::kAt, int64_t{0});
  c.v4 = Num(j, k::kV4, size_t{0});
  c.v6 = Num(j, k::kV6, size_t{0});
  for (const auto& x : j.value(k::kSamples, Json::array())) {
    auto first = ParsePrefix(x.value(k::kFirst, ""));
    auto last = ParsePrefix(x.value(k::kLast, ""));
    // A damaged sample is dropped: it must not fail a verification nor the whole report.
    if (!first || !last || first->family != last->family ||
        first->len != AddressBits(first->family) || last->len != first->len ||
        last->addr < first->addr) {
      continue;
    }
    c.samples.push_back(
        {first->family, Range{first->addr, last->addr}, Num(x, k::kExpires, int64_t{0})});
  }
  return c;
}

}  // namespace

std::string ReportToJson(const CycleReport& r) {
  Json sources = Json::array();
  for (const auto& s : r.sources) sources.push_back(SourceToJson(s));
  Json host = Json::array();
  for (const auto& h : r.host_protected) {
    host.push_back({{k::kPrefix, h.prefix.ToString()}, {k::kWhy, h.why}});
  }
  Json j = {{k::kVersion, kReportJsonVersion},
            {k::kOutcome, OutcomeName(r.outcome)},
            {k::kSummary, r.summary},
            {k::kStartedAt, r.started_at},
            {k::kSeconds, r.seconds},
            {k::kDesiredV4, r.desired_v4},
            {k::kDesiredV6, r.desired_v6},
            {k::kApplied, r.applied},
            {k::kApply, ApplyToJson(r.apply)},
            {k::kApplyError, r.apply_error},
            {k::kEnforcedFetchedAt, r.enforced_fetched_at},
            {k::kEnforcedElements, r.enforced_elements},
            {k::kLastApplyAt, r.last_apply_at},
            {k::kGuardReasons, r.guard_reasons},
            {k::kCarvedOut, r.carved_out},
            {k::kWarnings, r.warnings},
            {k::kSources, sources},
            {k::kHostProtected, host},
            {k::kStaleTables, r.stale_tables},
            {k::kNextValidFrom, r.next_valid_from}};
  if (r.committed) j[k::kCommitted] = CommitToJson(*r.committed);
  // Invalid UTF-8 from a hostile feed line must not make the report unwritable.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::optional<CycleReport> ReportFromJson(const std::string& text) {
  try {
    Json j = Json::parse(text);
    if (Num(j, k::kVersion, 0) != kReportJsonVersion) return std::nullopt;
    CycleReport r;
    std::string outcome = j.at(k::kOutcome).get<std::string>();
    r.outcome = Outcome::kNothing;
    for (Outcome o : {Outcome::kEnforcedFresh, Outcome::kKeptLastGood, Outcome::kGuardRefused,
                      Outcome::kFailed, Outcome::kNothing}) {
      if (outcome == OutcomeName(o)) r.outcome = o;
    }
    r.summary = j.value(k::kSummary, "");
    r.started_at = Num(j, k::kStartedAt, int64_t{0});
    r.seconds = Num(j, k::kSeconds, 0.0);
    r.desired_v4 = Num(j, k::kDesiredV4, size_t{0});
    r.desired_v6 = Num(j, k::kDesiredV6, size_t{0});
    r.applied = j.value(k::kApplied, false);
    r.apply = ApplyFromJson(j.at(k::kApply));
    r.apply_error = j.value(k::kApplyError, "");
    r.enforced_fetched_at = Num(j, k::kEnforcedFetchedAt, int64_t{0});
    r.enforced_elements = Num(j, k::kEnforcedElements, size_t{0});
    r.last_apply_at = Num(j, k::kLastApplyAt, int64_t{0});
    r.guard_reasons = j.value(k::kGuardReasons, std::vector<std::string>{});
    r.carved_out = j.value(k::kCarvedOut, std::vector<std::string>{});
    r.warnings = j.value(k::kWarnings, std::vector<std::string>{});
    for (const auto& s : j.at(k::kSources)) r.sources.push_back(SourceFromJson(s));
    if (auto it = j.find(k::kCommitted); it != j.end() && it->is_object()) {
      r.committed = CommitFromJson(*it);
    }
    for (const auto& h : j.value(k::kHostProtected, Json::array())) {
      auto p = ParsePrefix(h.value(k::kPrefix, ""));
      if (p) r.host_protected.push_back({*p, h.value(k::kWhy, "")});
    }
    r.next_valid_from = Num(j, k::kNextValidFrom, int64_t{0});
    for (const auto& t : j.value(k::kStaleTables, Json::array())) {
      if (t.is_string()) r.stale_tables.push_back(t.get<std::string>());
    }
    return r;
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

}  // namespace iocwall
