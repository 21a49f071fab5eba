// bench_netlink: iocwall's netlink reconciler against `nft -f`, side by side, each case in a
// fresh network namespace: apply N ranges to an empty set, then a 1% churn (N/100 removed,
// N/100 added). Wall time, element operations sent, peak RSS (ours: VmHWM of this process,
// reset before each case; nft: the child's ru_maxrss). Prints a Markdown table.
//   bench_netlink [--sizes 10000,100000,1000000] [--nft-delta-max 100000] [--no-nft]
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/diff.h"
#include "netlink/nft_backend.h"
#include "tests/kernel/kernel_test_util.h"

using namespace iocwall;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void ResetPeak() { std::ofstream("/proc/self/clear_refs") << "5"; }

long PeakKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

struct Run {
  double seconds = 0;
  long rss_kb = 0;
  int status = 0;
};

Run Nft(const std::string& file) {
  Run r;
  double t0 = Now();
  pid_t pid = fork();
  if (pid == 0) {
    execlp("nft", "nft", "-f", file.c_str(), nullptr);
    _exit(127);
  }
  int st = 0;
  rusage ru{};
  wait4(pid, &st, 0, &ru);
  r.seconds = Now() - t0;
  r.rss_kb = ru.ru_maxrss;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

void WriteElements(std::ofstream& out, const char* verb, const std::vector<Range>& ranges) {
  if (ranges.empty()) return;
  out << verb << " element inet iocwall blocklist_v4 { ";
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i) out << (i % 8 == 0 ? ",\n" : ", ");
    out << FormatRange(Family::kV4, ranges[i]);
  }
  out << " }\n";
}

const char* kTableDef =
    "table inet iocwall {\n  set blocklist_v4 {\n    type ipv4_addr\n    flags interval\n  }\n}\n";

std::string File(const std::string& name) { return "/tmp/iocwall-bench-" + name + ".nft"; }

void Row(const char* tool, const char* what, size_t n, size_t ops, double s, long kb,
         const char* note = "") {
  std::printf("| %s | %s | %zu | %zu | %.3f | %.0f | %s |\n", tool, what, n, ops, s, kb / 1024.0,
              note);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes = {10'000, 100'000, 1'000'000};
  size_t nft_delta_max = 100'000;
  bool nft = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::stringstream ss(argv[++i]);
      std::string tok;
      while (std::getline(ss, tok, ',')) sizes.push_back(std::stoul(tok));
    } else if (a == "--nft-delta-max" && i + 1 < argc) {
      nft_delta_max = std::stoul(argv[++i]);
    } else if (a == "--no-nft") {
      nft = false;
    } else {
      std::fprintf(stderr, "usage: bench_netlink [--sizes a,b,c] [--nft-delta-max n] [--no-nft]\n");
      return 2;
    }
  }
  std::printf("| tool | case | ranges in set | element ops sent | wall s | peak RSS MB | note |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (size_t n : sizes) {
    IntervalSet base = ktest::RandomBlocklist(n, 1);
    base.v4.sources = {};
    IntervalSet churn = ktest::Churn(base, base.size() / 100, 2);
    RangeDiff delta = DiffRanges(base.v4.ranges, churn.v4.ranges);
    {
      Status st = ktest::EnterFreshNetns();
      if (!st.ok()) {
        std::fprintf(stderr, "bench_netlink: %s\n", st.message().c_str());
        return 1;
      }
      NftBackend backend(TableSpec{});
      ApplyResult r;
      ResetPeak();
      st = backend.Reconcile(base, &r);
      if (!st.ok()) {
        std::fprintf(stderr, "bench_netlink: %s\n", st.message().c_str());
        return 1;
      }
      Row("iocwall", "from empty", base.size(), r.added + r.removed, r.seconds, PeakKb(),
          (std::to_string(r.messages) + " messages, one transaction").c_str());
      ResetPeak();
      st = backend.Reconcile(churn, &r);
      if (!st.ok()) {
        std::fprintf(stderr, "bench_netlink: %s\n", st.message().c_str());
        return 1;
      }
      Row("iocwall", "1% churn", base.size(), r.added + r.removed, r.seconds, PeakKb(),
          (std::to_string(r.messages) + " messages, no dump").c_str());
    }
    if (!nft) continue;
    {
      // Full replace (flush + add all), from empty and for the churn.
      ktest::EnterFreshNetns();
      std::ofstream(File("table")) << kTableDef;
      Nft(File("table"));
      {
        std::ofstream out(File("full"));
        out << "flush set inet iocwall blocklist_v4\n";
        WriteElements(out, "add", base.v4.ranges);
      }
      Run r = Nft(File("full"));
      Row("nft -f", "from empty (flush + add all)", base.size(), base.size(), r.seconds, r.rss_kb,
          r.status ? "FAILED" : "");
      {
        std::ofstream out(File("full"));
        out << "flush set inet iocwall blocklist_v4\n";
        WriteElements(out, "add", churn.v4.ranges);
      }
      r = Nft(File("full"));
      Row("nft -f", "1% churn as full replace", base.size(), churn.size(), r.seconds, r.rss_kb,
          r.status ? "FAILED" : "");
    }
    if (base.size() <= nft_delta_max) {
      ktest::EnterFreshNetns();
      {
        std::ofstream out(File("load"));
        out << kTableDef;
        WriteElements(out, "add", base.v4.ranges);
      }
      Nft(File("load"));
      {
        std::ofstream out(File("delta"));
        WriteElements(out, "delete", delta.remove);
        WriteElements(out, "add", delta.add);
      }
      Run r = Nft(File("delta"));
      Row("nft -f", "1% churn as delete/add element lines", base.size(), delta.ops(), r.seconds,
          r.rss_kb, r.status ? "FAILED" : "");
    } else {
      Row("nft -f", "1% churn as delete/add element lines", base.size(), delta.ops(), 0, 0,
          "not run: above --nft-delta-max (nft re-sorts the set per deleted element)");
    }
  }
  for (const char* f : {"table", "full", "load", "delta"}) unlink(File(f).c_str());
  return 0;
}
