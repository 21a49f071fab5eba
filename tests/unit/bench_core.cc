// bench_core: the pure core's cost on a large feed: parse + normalise + subtract + diff of
// 1,000,000 lines against a previous set that differs by about 1%.
//
//   bench_core [--lines N] [--repeat R] [--seed S]
//
// Prints the median time of each phase over R runs and the process's peak RSS. Run it under
// `/usr/bin/time -v` for an outside view of memory. A plain binary rather than Google
// Benchmark: the figure that matters is one whole cycle on a realistic list, with its RSS.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/build.h"
#include "core/diff.h"
#include "core/interval_set.h"
#include "core/prefix.h"
#include "core/timed.h"

namespace iocwall {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// One feed line, a pure function of (seed, index, variant): the previous list is the same
// generator with variant 1 on about 1% of the lines.
void AppendLine(uint64_t seed, uint64_t i, uint64_t variant, std::string* out) {
  uint64_t r = SplitMix(seed ^ (i * 0x100000001b3ull) ^ (variant << 61));
  const unsigned kind = r % 1000;
  r = SplitMix(r);
  char buf[96];
  int n = 0;
  // Public-looking IPv4: first octet 1..223 but never 127, 10, 0.
  auto v4 = [&](uint64_t x) {
    unsigned a = 1 + (x >> 24) % 222;
    if (a == 127 || a == 10) a = 45;
    return std::make_tuple(a, unsigned(x >> 16) & 255, unsigned(x >> 8) & 255, unsigned(x) & 255);
  };
  if (kind < 845) {  // single IPv4 address: the bulk of a threat feed
    auto [a, b, c, d] = v4(r);
    n = std::snprintf(buf, sizeof buf, "%u.%u.%u.%u\n", a, b, c, d);
  } else if (kind < 875) {  // IPv4 CIDR, some with host bits set
    auto [a, b, c, d] = v4(r);
    const unsigned len = 16 + (r >> 40) % 16;
    n = std::snprintf(buf, sizeof buf, "%u.%u.%u.%u/%u\n", a, b, c, (r >> 50) % 4 ? 0 : d, len);
  } else if (kind < 945) {  // single IPv6 address
    n = std::snprintf(buf, sizeof buf, "2001:%x:%x:%x::%x\n", unsigned(r >> 48) & 0xfff,
                      unsigned(r >> 32) & 0xffff, unsigned(r >> 16) & 0xffff, unsigned(r) & 0xffff);
  } else if (kind < 975) {  // IPv6 prefix
    n = std::snprintf(buf, sizeof buf, "2a0%x:%x:%x::/%u\n", unsigned(r >> 60),
                      unsigned(r >> 32) & 0xffff, unsigned(r >> 16) & 0xff00,
                      48 + unsigned(r % 17));
  } else if (kind < 988) {  // a duplicate of an earlier line
    AppendLine(seed, i / 2, variant, out);
    return;
  } else if (kind < 992) {  // comments and blank lines
    n = std::snprintf(buf, sizeof buf, (r & 1) ? "# updated hourly\n" : "\n");
  } else {  // garbage a feed really carries
    static const char* const kJunk[] = {"evil.example.com\n", "http://203.0.113.9/payload\n",
                                        "1.2.3.256\n",        "198.51.100\n",
                                        "fe80::1%eth0\n",     "01.2.3.4\n",
                                        "1.2.3.4/33\n",       "<html>\n"};
    n = std::snprintf(buf, sizeof buf, "%s", kJunk[r % 8]);
  }
  out->append(buf, n);
}

std::string MakeBody(uint64_t seed, size_t lines, bool previous) {
  std::string body;
  body.reserve(lines * 17);
  for (size_t i = 0; i < lines; ++i) {
    const bool changed = previous && SplitMix(seed + 7 * i) % 100 == 0;
    AppendLine(seed, i, changed ? 1 : 0, &body);
  }
  return body;
}

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// CPU time of this thread: on a shared, loaded machine it drifts far less than wall time.
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct Cycle {
  double parse_ms = 0, normalise_ms = 0, diff_ms = 0, cpu_ms = 0;
  double total() const { return parse_ms + normalise_ms + diff_ms; }
  ParseStats stats;
  size_t desired = 0;
  size_t ops = 0;
};

// One agent cycle on `body`: what the feed client does (parse), then the core (normalise with
// the allowlist and protected ranges subtracted, diff against what the kernel holds).
Cycle RunCycle(std::string body, const IntervalSet& allow, const IntervalSet& kernel,
               IntervalSet* desired_out) {
  Cycle c;
  const double cpu0 = CpuMs();
  auto t0 = Clock::now();
  std::vector<Prefix> prefixes;
  prefixes.reserve(std::count(body.begin(), body.end(), '\n') + 1);
  ParseBodyInto(body, &c.stats, [&](const Prefix& p) { prefixes.push_back(p); });
  auto t1 = Clock::now();
  std::string().swap(body);  // the page bodies are gone once parsed
  // Two sources, as two collections would be, in force with no expiry: the agent's own build
  // path (core/build.h), each entry added straight into a TimedBuilder (no TimedPrefix copy of
  // the list), then normalised and carved out in place.
  const size_t half = prefixes.size() / 2;
  NormaliseStats nstats;
  TimedBuilder builder(Policy{}, &nstats);
  const size_t v4 = std::count_if(prefixes.begin(), prefixes.end(),
                                  [](const Prefix& p) { return p.family == Family::kV4; });
  builder.Reserve(v4, prefixes.size() - v4);
  for (size_t i = 0; i < prefixes.size(); ++i) {
    builder.Add(prefixes[i], i < half ? 0u : 1u, kNeverExpires);
  }
  std::vector<Prefix>().swap(prefixes);
  IntervalSet desired = BuildDesired(std::move(builder), allow);
  auto t2 = Clock::now();
  SetDiff diff = Diff(kernel, desired);
  auto t3 = Clock::now();
  c.cpu_ms = CpuMs() - cpu0;
  c.parse_ms = Ms(t0, t1);
  c.normalise_ms = Ms(t1, t2);
  c.diff_ms = Ms(t2, t3);
  c.desired = desired.size();
  c.ops = diff.ops();
  if (desired_out) *desired_out = std::move(desired);
  return c;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace iocwall

int main(int argc, char** argv) {
  using namespace iocwall;
  size_t lines = 1000000;
  int repeat = 5;
  uint64_t seed = 42;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--lines"))
      lines = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--repeat"))
      repeat = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--seed"))
      seed = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: bench_core [--lines N] [--repeat R] [--seed S]\n");
      return 2;
    }
  }

  // The allowlist an operator would have, plus the ranges never blocked.
  std::vector<Prefix> allow_list;
  for (const char* text : {"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "45.0.0.0/16"}) {
    allow_list.push_back(*ParsePrefix(text));
  }
  const IntervalSet allow = NeverBlocked(allow_list, {});

  // What the kernel holds: the desired set of the previous list (1% of lines differ).
  IntervalSet kernel;
  const Cycle first =
      RunCycle(MakeBody(seed, lines, /*previous=*/true), allow, IntervalSet{}, &kernel);
  // A kernel dump has ranges only: no provenance.
  std::vector<SourceMask>().swap(kernel.v4.sources);
  std::vector<SourceMask>().swap(kernel.v6.sources);

  std::vector<double> parse, normalise, diff, total, cpu;
  Cycle last;
  size_t body_bytes = 0;
  for (int r = 0; r < repeat; ++r) {
    std::string body = MakeBody(seed, lines, /*previous=*/false);
    body_bytes = body.size();
    last = RunCycle(std::move(body), allow, kernel, nullptr);
    parse.push_back(last.parse_ms);
    normalise.push_back(last.normalise_ms);
    diff.push_back(last.diff_ms);
    total.push_back(last.total());
    cpu.push_back(last.cpu_ms);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("lines %zu (%.1f MB), accepted %zu, rejected %zu, host bits cleared %zu\n", lines,
              body_bytes / 1e6, last.stats.accepted, last.stats.rejected,
              last.stats.host_bits_cleared);
  std::printf("kernel set %zu ranges, desired %zu ranges, diff %zu ops\n", kernel.size(),
              last.desired, last.ops);
  std::printf(
      "median of %d: parse %.1f ms, normalise+subtract %.1f ms, diff %.1f ms, total %.1f ms\n",
      repeat, Median(parse), Median(normalise), Median(diff), Median(total));
  std::printf("median CPU time of a cycle %.1f ms\n", Median(cpu));
  std::printf("first cycle (empty kernel, %zu additions): total %.1f ms, CPU %.1f ms\n",
              kernel.size(), first.total(), first.cpu_ms);
  std::printf("peak RSS %.1f MB\n", ru.ru_maxrss / 1024.0);
  return 0;
}
