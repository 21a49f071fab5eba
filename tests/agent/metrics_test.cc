// The Prometheus exposition: names, labels, counters that outlive a cycle, and the file mode.
// (tests/deploy/metrics_promtool.sh parses a real agent's file with promtool.)
#include "agent/metrics.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/agent/fakes.h"

namespace iocwall {
namespace {

CycleReport Report(Outcome outcome, double seconds, int64_t started_at) {
  CycleReport r;
  r.outcome = outcome;
  r.seconds = seconds;
  r.started_at = started_at;
  r.enforced_fetched_at = started_at - 10;
  r.enforced_elements = 3;
  r.applied = true;
  r.apply.added = 3;
  r.apply.removed = 1;
  SourceReport a;
  a.name = "collection abc-123";
  a.ok = outcome == Outcome::kEnforcedFresh;
  a.entries = 2;
  a.last_attempt = started_at;
  a.last_success = started_at - 10;
  SourceReport b;
  b.name = "file /etc/iocwall/my \"list\".txt";
  b.ok = true;
  b.entries = 1;
  b.last_attempt = started_at;
  r.sources = {a, b};
  return r;
}

bool Has(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

TEST(MetricsTest, SplitsPackedNamesIntoLabels) {
  auto c = SplitCounterName("forward_v6_daddr");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->hook, "forward");
  EXPECT_EQ(c->family, "ipv6");
  EXPECT_EQ(c->direction, "daddr");
  EXPECT_FALSE(SplitCounterName("input"));
  EXPECT_FALSE(SplitCounterName("input_v5_saddr"));
  EXPECT_FALSE(SplitCounterName("_v4_saddr"));
  EXPECT_EQ(SplitSourceName("file /a b").type, "file");
  EXPECT_EQ(SplitSourceName("file /a b").name, "/a b");
  EXPECT_EQ(SplitSourceName("collection x").type, "collection");
}

TEST(MetricsTest, RendersSeparateLabelsAndCountsAcrossCycles) {
  MetricsRecorder m(900, "1.2.3");
  CycleReport first = Report(Outcome::kEnforcedFresh, 0.3, 1000);
  m.Record(first);
  CycleReport second = Report(Outcome::kKeptLastGood, 42, 1300);
  second.applied = false;
  m.Record(second);
  KernelStatus k =
      EnforcingKernel(std::pair{2, 1}, {{"input_v4_saddr", 7, 700}, {"forward_v6_daddr", 1, 80}});
  std::string t = m.Render(second, &k, 1310);

  EXPECT_TRUE(Has(t, "iocwall_build_info{version=\"1.2.3\"} 1")) << t;
  EXPECT_TRUE(Has(t, "iocwall_start_time_seconds 900")) << t;
  EXPECT_TRUE(Has(t, "# TYPE iocwall_cycles_total counter")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycles_total{outcome=\"enforced-fresh\"} 1")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycles_total{outcome=\"kept-last-good\"} 1")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycles_total{outcome=\"guard-refused\"} 0")) << t;
  // Histogram: 0.3 s falls in le=0.5, 42 s in le=60; buckets are cumulative.
  EXPECT_TRUE(Has(t, "# TYPE iocwall_cycle_duration_seconds histogram")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycle_duration_seconds_bucket{le=\"0.25\"} 0")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycle_duration_seconds_bucket{le=\"0.5\"} 1")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycle_duration_seconds_bucket{le=\"30\"} 1")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycle_duration_seconds_bucket{le=\"60\"} 2")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycle_duration_seconds_bucket{le=\"+Inf\"} 2")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycle_duration_seconds_sum 42.3")) << t;
  EXPECT_TRUE(Has(t, "iocwall_cycle_duration_seconds_count 2")) << t;
  EXPECT_TRUE(Has(t, "iocwall_last_cycle_duration_seconds 42")) << t;
  // Only the committed transaction counts.
  EXPECT_TRUE(Has(t, "iocwall_element_changes_total{op=\"add\"} 3")) << t;
  EXPECT_TRUE(Has(t, "iocwall_element_changes_total{op=\"remove\"} 1")) << t;
  EXPECT_TRUE(Has(t, "iocwall_enforced_list_age_seconds 20")) << t;
  EXPECT_TRUE(Has(t, "iocwall_source_up{source_type=\"collection\",source=\"abc-123\"} 0")) << t;
  EXPECT_TRUE(Has(
      t,
      "iocwall_source_entries{source_type=\"file\",source=\"/etc/iocwall/my \\\"list\\\".txt\"} 1"))
      << t;
  EXPECT_TRUE(Has(t,
                  "iocwall_source_fetches_total{source_type=\"collection\",source=\"abc-123\","
                  "result=\"ok\"} 1"))
      << t;
  EXPECT_TRUE(Has(t,
                  "iocwall_source_fetches_total{source_type=\"collection\",source=\"abc-123\","
                  "result=\"failed\"} 1"))
      << t;
  EXPECT_TRUE(Has(t, "iocwall_kernel_elements{family=\"ipv6\"} 1")) << t;
  EXPECT_TRUE(Has(t, "iocwall_kernel_enforcing 1")) << t;
  EXPECT_TRUE(Has(t,
                  "iocwall_dropped_packets_total{hook=\"input\",family=\"ipv4\","
                  "direction=\"saddr\"} 7"))
      << t;
  EXPECT_TRUE(Has(t,
                  "iocwall_dropped_bytes_total{hook=\"forward\",family=\"ipv6\","
                  "direction=\"daddr\"} 80"))
      << t;
  // The old packed labels and the gauge of one transaction are gone.
  EXPECT_EQ(t.find("counter=\""), std::string::npos) << t;
  EXPECT_EQ(t.find("iocwall_apply_operations"), std::string::npos) << t;
  // Every sample line's name is declared by a # TYPE line (histogram suffixes aside).
  std::istringstream in(t);
  for (std::string l; std::getline(in, l);) {
    if (l.empty() || l[0] == '#') continue;
    std::string name = l.substr(0, l.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() > strlen(suffix) && name.ends_with(suffix) &&
          t.find("# TYPE " + name.substr(0, name.size() - strlen(suffix)) + " histogram") !=
              std::string::npos) {
        name = name.substr(0, name.size() - strlen(suffix));
      }
    }
    EXPECT_NE(t.find("# TYPE " + name + " "), std::string::npos) << l;
  }
}

TEST(MetricsTest, WritesNoKernelFigureItDoesNotHave) {
  MetricsRecorder m(900, "1");
  CycleReport r = Report(Outcome::kNothing, 1, 1000);
  r.enforced_fetched_at = 0;
  std::string without = m.Render(r, nullptr, 1000);
  EXPECT_EQ(without.find("iocwall_kernel_"), std::string::npos) << without;
  EXPECT_EQ(without.find("iocwall_dropped_"), std::string::npos) << without;
  EXPECT_EQ(without.find("iocwall_enforced_list_age_seconds"), std::string::npos) << without;
  KernelStatus k;
  k.table_present = true;
  k.elements_counted = false;  // counting would need a dump: no figure rather than 0
  std::string uncounted = m.Render(r, &k, 1000);
  EXPECT_EQ(uncounted.find("iocwall_kernel_elements"), std::string::npos) << uncounted;
  EXPECT_TRUE(Has(uncounted, "iocwall_kernel_enforcing 0")) << uncounted;  // sets missing
}

TEST(MetricsTest, FileGetsTheConfiguredModeWhateverTheUmask) {
  // In a directory of its own: WriteMetricsFile refuses one others can write, such as /tmp.
  const std::string dir = ::testing::TempDir() + "/iocwall-metrics-dir-" + std::to_string(getpid());
  ::mkdir(dir.c_str(), 0755);
  ::chmod(dir.c_str(), 0755);
  std::string path = dir + "/iocwall.prom";
  mode_t old = umask(077);  // the unit's UMask
  ASSERT_TRUE(WriteMetricsFile(path, "a 1\n", 0644).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_TRUE(WriteMetricsFile(path, "a 2\n", 0640).ok());
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  umask(old);
  std::ifstream in(path);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(body, "a 2\n");
  unlink(path.c_str());
  rmdir(dir.c_str());
  EXPECT_FALSE(WriteMetricsFile("/nonexistent-dir/x.prom", "a 1\n", 0644).ok());
}

}  // namespace
}  // namespace iocwall
