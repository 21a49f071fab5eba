// Fetch benchmark: a 100,000-entry collection (10 pages of 10,000 over HTTPS) from
// iocwall-feedsim on loopback, through the real client. Prints wall time per run (median),
// the client's CPU time and peak RSS (the simulator is another process and is not counted).
//
//   build/bin/bench_feeds [--entries N] [--runs N] [--compression gzip|none] [--no-rate-limit]
//                         [--json] [--stix-items] [--max-body BYTES] [--changes N]
// --json fetches format=json (2,000 a page); --stix-items has the simulator serve full STIX
// indicators of about 3 KB each, as Sekoia does, instead of the minimal ones; --max-body raises
// the cap on the fetch's bytes (256 MiB by default: 500,000 full indicators are about 1.5 GB);
// --changes N revokes N entries after the collection was loaded and times the incremental fetch
// (FetchChanges) of those changes instead.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "feeds/sekoia_source.h"
#include "tests/feeds/sim_fixture.h"

namespace {

long MaxRssKiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  size_t entries = 100000;
  int runs = 5;
  std::string compression = "gzip";
  bool rate_limit = true;
  bool json = false;
  size_t changes = 0;
  bool stix_items = false;
  size_t max_body = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--entries" && i + 1 < argc) {
      entries = std::stoul(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::stoi(argv[++i]));
    } else if (a == "--compression" && i + 1 < argc) {
      compression = argv[++i];
    } else if (a == "--no-rate-limit") {
      rate_limit = false;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--stix-items") {
      stix_items = true;
      json = true;
    } else if (a == "--max-body" && i + 1 < argc) {
      max_body = std::stoull(argv[++i]);
    } else if (a == "--changes" && i + 1 < argc) {
      changes = std::stoul(argv[++i]);
      json = true;
    } else {
      fprintf(stderr,
              "usage: bench_feeds [--entries N] [--runs N] [--compression gzip|none] "
              "[--no-rate-limit] [--json] [--stix-items] [--max-body BYTES] [--changes N]\n");
      return 2;
    }
  }
  // Loaded an hour back on the simulator's clock, so that only the changes made below fall in
  // the window of a changes fetch.
  std::vector<std::string> sim_args = {"--collection",   "bench=gen:" + std::to_string(entries),
                                       "--compression",  compression,
                                       "--clock-offset", "-3600"};
  if (stix_items) sim_args.push_back("--stix-items");
  iocwall::testing::FeedSim sim(sim_args);
  if (!sim.ok() || !sim.SetClockOffset(0)) {
    fprintf(stderr, "bench_feeds: simulator: %s\n",
            sim.ok() ? "cannot set its clock" : sim.error().c_str());
    return 1;
  }
  const int64_t since = iocwall::SystemClock().NowUnix();
  if (changes > 0) {
    std::vector<std::string> values;
    for (size_t i = 0; i < changes && i < entries; ++i) {
      const uint32_t a = (11u << 24) + static_cast<uint32_t>(i * (entries / changes));
      values.push_back(std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
                       std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255));
    }
    if (!sim.RevokeIndicators("bench", values)) {
      fprintf(stderr, "bench_feeds: the simulator refused the revocations\n");
      return 1;
    }
  }
  iocwall::SekoiaOptions o = sim.ClientOptions("bench");
  o.request_timeout = std::chrono::milliseconds(60000);
  if (json) o.format = iocwall::SekoiaFormat::kJson;
  if (!rate_limit) o.backoff.max_requests_per_second = 0;
  if (max_body > 0) o.max_body_bytes = max_body;
  const long rss_before = MaxRssKiB();
  const double cpu_before = CpuSeconds();
  std::vector<double> times;
  size_t pages = 0, bytes = 0, got = 0;
  for (int r = 0; r < runs; ++r) {
    // A fresh source per run, as a fresh connection: the agent fetches every few minutes.
    iocwall::SekoiaSource source(o, &iocwall::SystemClock());
    const iocwall::FetchResult res = changes > 0 ? source.FetchChanges(since) : source.Fetch();
    if (!res.status.ok()) {
      fprintf(stderr, "bench_feeds: %s\n", res.status.message().c_str());
      return 1;
    }
    times.push_back(res.seconds);
    pages = res.pages;
    bytes = res.bytes;
    got = res.prefixes.size();
  }
  const double cpu = (CpuSeconds() - cpu_before) / runs;
  std::sort(times.begin(), times.end());
  printf(
      "%s, format %s%s: entries %zu of %zu, pages %zu, body %.3f MB (decoded), compression %s, "
      "rate limit %s\n",
      changes > 0 ? "changes fetch" : "full fetch", json ? "json" : "text",
      stix_items ? " (full STIX items)" : "", got, entries, pages, static_cast<double>(bytes) / 1e6,
      compression.c_str(), rate_limit ? "5 req/s" : "off");
  printf("wall: median %.3f s, min %.3f s, max %.3f s over %d runs\n", times[times.size() / 2],
         times.front(), times.back(), runs);
  printf("client CPU per fetch: %.3f s; peak RSS: %.1f MB (%.1f MB before the first fetch)\n", cpu,
         static_cast<double>(MaxRssKiB()) / 1024.0, static_cast<double>(rss_before) / 1024.0);
  return 0;
}
