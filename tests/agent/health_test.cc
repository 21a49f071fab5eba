// --status output for monitoring: line 1 is a Nagios plugin line, the JSON has plain fields.
#include "agent/health.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <regex>

#include "agent/guards.h"
#include "tests/agent/fakes.h"

namespace iocwall {
namespace {

// Nagios plugin guidelines: "TEXT | 'label'=value[UOM];[warn];[crit];[min];[max] ...", UOM one
// of s ms us % B KB MB GB TB c, or none.
const std::regex kPluginLine(
    R"(^iocwall (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+?( \| (('[^'=]+'|[^'= ]+)=-?[0-9.]+(s|ms|us|%|B|KB|MB|GB|TB|c)?(;-?[0-9.]*){0,4})( ('[^'=]+'|[^'= ]+)=-?[0-9.]+(s|ms|us|%|B|KB|MB|GB|TB|c)?(;-?[0-9.]*){0,4})*)?$)");

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

StatusView Enforced(const Config& c) {
  KernelStatus k =
      EnforcingKernel(std::pair{2, 1}, {{"input_v4_saddr", 5, 300}, {"output_v6_daddr", 1, 60}});
  CycleReport r;
  r.outcome = Outcome::kEnforcedFresh;
  r.summary = "ok";
  r.started_at = 1000;
  r.enforced_fetched_at = 1000;
  r.enforced_elements = 3;
  SourceReport s;
  s.name = "collection abc";
  s.ok = true;
  s.entries = 1;
  s.pages = 1;
  s.bytes = 1;
  r.sources = {s};
  return Evaluate(c, &k, "", r, 1060);
}

TEST(StatusTest, FirstLineIsANagiosPluginLineWithPerfdata) {
  Config c;
  StatusView v = Enforced(c);
  ASSERT_EQ(v.health, Health::kOk) << v.reasons[0];
  std::string text = RenderStatusText(c, v);
  std::string line = FirstLine(text);
  EXPECT_TRUE(std::regex_match(line, kPluginLine)) << line;
  EXPECT_EQ(line,
            "iocwall OK - 3 elements enforced from 1 source, list fetched 1m ago | "
            "elements=3;;;0 age=60s;;86400;0 sources_failed=0;;;0;1 kernel_elements=3;;;0 "
            "dropped=6c");
  // Plurals: one of a thing is singular.
  EXPECT_NE(text.find("1 entry, "), std::string::npos) << text;
  EXPECT_NE(text.find("1 page, 1 byte"), std::string::npos) << text;
  EXPECT_EQ(text.find("1 pages"), std::string::npos) << text;
}

TEST(StatusTest, ReasonsGoOnLineOneWithoutBreakingIt) {
  Config c;
  StatusView v = Enforced(c);
  v.report->outcome = Outcome::kKeptLastGood;
  v.report->summary = "a | pipe\nand a newline";
  v = Evaluate(c, &v.kernel, "", v.report, 1060);
  ASSERT_EQ(v.health, Health::kWarning);
  std::string line = FirstLine(RenderStatusText(c, v));
  EXPECT_TRUE(std::regex_match(line, kPluginLine)) << line;
  EXPECT_NE(line.find("iocwall WARNING - last cycle: a / pipe and a newline | elements=3"),
            std::string::npos)
      << line;

  // Negative control: the old first line ("iocwall WARNING", no reason) does not pass.
  EXPECT_FALSE(std::regex_match(std::string("iocwall WARNING"), kPluginLine));
  EXPECT_FALSE(std::regex_match(std::string("iocwall OK - x | a=1 b"), kPluginLine));

  StatusView unknown = Evaluate(c, nullptr, "permission denied", std::nullopt, 1060);
  line = FirstLine(RenderStatusText(c, unknown));
  EXPECT_TRUE(std::regex_match(line, kPluginLine)) << line;
  EXPECT_EQ(line, "iocwall UNKNOWN - cannot read the kernel: permission denied");
}

TEST(StatusTest, JsonHasASchemaVersionAndNoCompositeKeys) {
  Config c;
  StatusView v = Enforced(c);
  auto j = nlohmann::json::parse(RenderStatusJson(c, v));
  EXPECT_EQ(j["schema_version"], 2);
  EXPECT_EQ(j["plugin_output"], FirstLine(RenderStatusText(c, v)));
  ASSERT_TRUE(j["kernel"]["elements"].is_array());
  EXPECT_EQ(j["kernel"]["elements"][0],
            (nlohmann::json{{"set", "blocklist_v4"}, {"family", "ipv4"}, {"elements", 2}}));
  ASSERT_TRUE(j["kernel"]["counters"].is_array());
  EXPECT_EQ(j["kernel"]["counters"][1], (nlohmann::json{{"name", "output_v6_daddr"},
                                                        {"hook", "output"},
                                                        {"family", "ipv6"},
                                                        {"direction", "daddr"},
                                                        {"packets", 1},
                                                        {"bytes", 60}}));
  EXPECT_EQ(j["kernel"]["dropped_packets"], 6);
  // No object in the document is keyed by data (a set, counter or source name): every key is
  // a fixed field name.
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& x) {
    if (x.is_object()) {
      for (auto it = x.begin(); it != x.end(); ++it) {
        for (const char* data : {"blocklist_v4", "blocklist_v6", "input_v4_saddr",
                                 "output_v6_daddr", "collection abc"}) {
          EXPECT_NE(it.key(), data);
        }
        walk(it.value());
      }
    } else if (x.is_array()) {
      for (const auto& e : x) walk(e);
    }
  };
  walk(j);
}

}  // namespace
}  // namespace iocwall

namespace iocwall {
namespace {

TEST(StatusTest, TopWithoutCountersSaysWhichKeyTurnsThemOn) {
  Config c;
  c.path = "/etc/iocwall/iocwall.conf";
  const std::string hint = TopCountersOffHint(c);
  EXPECT_NE(hint.find("element_counters = true in the [nftables] section of "
                      "/etc/iocwall/iocwall.conf"),
            std::string::npos)
      << hint;
  EXPECT_NE(hint.find("systemctl reload iocwall"), std::string::npos);
  c.path.clear();
  EXPECT_NE(TopCountersOffHint(c).find("of the configuration file"), std::string::npos);
}

TEST(PluralTest, OneOfAThingIsSingular) {
  EXPECT_EQ(Count(1, "page", "pages"), "1 page");
  EXPECT_EQ(Count(0, "page", "pages"), "0 pages");
  EXPECT_EQ(Count(2, "entry", "entries"), "2 entries");
  GuardInput in;
  in.have_previous = true;
  in.previous_elements = 10;
  in.new_elements = 1;
  GuardVerdict v = CheckGuards(in);
  ASSERT_FALSE(v.ok);
  EXPECT_NE(v.reasons[0].find("from 10 to 1 element (90%)"), std::string::npos) << v.reasons[0];
  GuardInput src;
  GuardSource g;
  g.name = "file /s1";
  g.entries = 1;
  g.previous_entries = 400;
  src.sources.push_back(g);
  v = CheckGuards(src);
  ASSERT_FALSE(v.ok);
  EXPECT_NE(v.reasons[0].find("file /s1 would shrink from 400 to 1 entry (99%)"), std::string::npos)
      << v.reasons[0];
}

}  // namespace
}  // namespace iocwall
