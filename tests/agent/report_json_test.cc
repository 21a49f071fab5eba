// state.json's layout: monitoring scripts, the e2e tests and an older or newer iocwall read
// these names, so the keys are pinned here as literals (not through report_key::), and a
// report must come back from its JSON unchanged.
#include "agent/report_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace iocwall {
namespace {

using Json = nlohmann::json;

std::set<std::string> Keys(const Json& j) {
  std::set<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.insert(key);
  return keys;
}

CycleReport FullReport() {
  CycleReport r;
  r.outcome = Outcome::kKeptLastGood;
  r.summary = "collection abc: HTTP 503";
  r.started_at = 1700000000;
  r.seconds = 1.5;
  r.sources.push_back({});
  SourceReport& s = r.sources.back();
  s.name = "collection abc";
  s.ok = true;
  s.error = "HTTP 503";
  s.error_class = "http";
  s.http_status = 503;
  s.entries = 3;
  s.rejected = 1;
  s.warnings = 2;
  s.expired = 4;
  s.not_yet_valid = 5;
  s.pages = 6;
  s.bytes = 7;
  s.seconds = 0.25;
  s.last_attempt = 1700000001;
  s.last_success = 1700000002;
  s.last_full = 1700000003;
  s.mode = "changes";
  s.changes = 8;
  s.rejected_samples.push_back({9, "not-an-ip", "not an IP address"});
  s.widened_samples.push_back({10, "10.0.0.0/4", *ParsePrefix("0.0.0.0/4")});
  r.guard_reasons = {"shrink"};
  r.carved_out = {"10.0.0.0/8: allowlisted"};
  r.warnings = {"state could not be saved"};
  r.desired_v4 = 10;
  r.desired_v6 = 11;
  r.applied = true;
  r.apply.added = 12;
  r.apply.removed = 13;
  r.apply.messages = 14;
  r.apply.batch_bytes = 15;
  r.apply.bootstrapped = true;
  r.apply.repaired = true;
  r.apply.repair_reason = "set flushed";
  r.apply.seconds = 0.5;
  r.apply.retries = 2;
  r.apply.refreshed = 16;
  r.apply_error = "EPERM";
  r.enforced_fetched_at = 1700000004;
  r.enforced_elements = 17;
  r.last_apply_at = 1700000005;
  CommitRecord c;
  c.table = "iocwall";
  c.generation = 18;
  c.table_handle = 19;
  c.boot_id = "boot";
  c.netns = 20;
  c.at = 1700000006;
  c.v4 = 21;
  c.v6 = 22;
  c.samples.push_back({Family::kV4, Range{0x0a000000, 0x0a0000ff}, 1700000007});
  c.samples.push_back({Family::kV6, Range{u128{1} << 120, (u128{1} << 120) + 1}, 0});
  r.committed = c;
  r.host_protected.push_back({*ParsePrefix("192.0.2.1"), "address of eth0"});
  r.stale_tables = {"old"};
  r.next_valid_from = 1700000008;
  return r;
}

TEST(ReportJson, KeysArePinned) {
  Json j = Json::parse(ReportToJson(FullReport()));
  EXPECT_EQ(Keys(j), (std::set<std::string>{"version",
                                            "outcome",
                                            "summary",
                                            "started_at",
                                            "seconds",
                                            "desired_v4",
                                            "desired_v6",
                                            "applied",
                                            "apply",
                                            "apply_error",
                                            "enforced_fetched_at",
                                            "enforced_elements",
                                            "last_apply_at",
                                            "guard_reasons",
                                            "carved_out",
                                            "warnings",
                                            "sources",
                                            "committed",
                                            "host_protected",
                                            "stale_tables",
                                            "next_valid_from"}));
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["outcome"], "kept-last-good");
  EXPECT_EQ(Keys(j["apply"]), (std::set<std::string>{"added", "removed", "messages", "bytes",
                                                     "bootstrapped", "repaired", "repair_reason",
                                                     "seconds", "retries", "refreshed"}));
  ASSERT_EQ(j["sources"].size(), 1u);
  EXPECT_EQ(Keys(j["sources"][0]), (std::set<std::string>{"name",
                                                          "ok",
                                                          "error",
                                                          "error_class",
                                                          "http_status",
                                                          "entries",
                                                          "rejected",
                                                          "warnings",
                                                          "expired",
                                                          "pages",
                                                          "bytes",
                                                          "seconds",
                                                          "last_attempt",
                                                          "last_success",
                                                          "last_full",
                                                          "mode",
                                                          "not_yet_valid",
                                                          "changes",
                                                          "rejected_samples",
                                                          "widened_samples"}));
  EXPECT_EQ(Keys(j["sources"][0]["rejected_samples"][0]),
            (std::set<std::string>{"line", "text", "reason"}));
  EXPECT_EQ(Keys(j["sources"][0]["widened_samples"][0]),
            (std::set<std::string>{"line", "text", "prefix"}));
  EXPECT_EQ(j["sources"][0]["widened_samples"][0]["prefix"], "0.0.0.0/4");
  EXPECT_EQ(Keys(j["committed"]),
            (std::set<std::string>{"table", "generation", "table_handle", "boot_id", "netns", "at",
                                   "v4", "v6", "samples"}));
  EXPECT_EQ(Keys(j["committed"]["samples"][0]),
            (std::set<std::string>{"family", "first", "last", "expires"}));
  EXPECT_EQ(j["committed"]["samples"][0]["first"], "10.0.0.0");
  EXPECT_EQ(j["committed"]["samples"][1]["family"], 6);
  EXPECT_EQ(Keys(j["host_protected"][0]), (std::set<std::string>{"prefix", "why"}));
}

TEST(ReportJson, AFullReportSurvivesARoundTrip) {
  const std::string json = ReportToJson(FullReport());
  auto back = ReportFromJson(json);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(ReportToJson(*back), json);
  EXPECT_EQ(back->sources[0].rejected_samples[0].text, "not-an-ip");
  ASSERT_EQ(back->sources[0].widened_samples.size(), 1u);
  EXPECT_EQ(back->sources[0].widened_samples[0].text, "10.0.0.0/4");
  ASSERT_TRUE(back->committed.has_value());
  EXPECT_EQ(back->committed->samples.size(), 2u);
  EXPECT_EQ(back->host_protected[0].why, "address of eth0");
  EXPECT_EQ(back->next_valid_from, 1700000008);
}

// The exact bytes of an empty report: indentation, key order and the final newline are what
// the files already on disk hold.
TEST(ReportJson, EmptyReportBytesArePinned) {
  EXPECT_EQ(ReportToJson(CycleReport{}), R"({
  "applied": false,
  "apply": {
    "added": 0,
    "bootstrapped": false,
    "bytes": 0,
    "messages": 0,
    "refreshed": 0,
    "removed": 0,
    "repair_reason": "",
    "repaired": false,
    "retries": 0,
    "seconds": 0.0
  },
  "apply_error": "",
  "carved_out": [],
  "desired_v4": 0,
  "desired_v6": 0,
  "enforced_elements": 0,
  "enforced_fetched_at": 0,
  "guard_reasons": [],
  "host_protected": [],
  "last_apply_at": 0,
  "next_valid_from": 0,
  "outcome": "nothing-enforced",
  "seconds": 0.0,
  "sources": [],
  "stale_tables": [],
  "started_at": 0,
  "summary": "",
  "version": 1,
  "warnings": []
}
)");
}

TEST(ReportJson, OtherVersionsAreNotRead) {
  EXPECT_FALSE(
      ReportFromJson(R"({"version":2,"outcome":"nothing-enforced","apply":{},"sources":[]})"));
  EXPECT_TRUE(
      ReportFromJson(R"({"version":1,"outcome":"nothing-enforced","apply":{},"sources":[]})"));
}

}  // namespace
}  // namespace iocwall
