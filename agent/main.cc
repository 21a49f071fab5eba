// iocwall: a thin main over the agent library. Parses flags, picks the mode, maps results to
// exit codes. Everything it calls is tested through the libraries.
#include <signal.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <iostream>
#include <random>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/host_info.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/privileges.h"
#include "agent/state.h"
#include "agent/status.h"
#include "agent/wiring.h"
#include "netlink/nft_backend.h"

#ifndef IOCWALL_VERSION
#define IOCWALL_VERSION "0.0.0"
#endif

namespace iocwall {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Everything one configuration needs, rebuilt as a whole on SIGHUP.
struct Runtime {
  Config config;
  std::unique_ptr<SetBackend> backend;
  std::unique_ptr<StateStore> state;
  std::unique_ptr<HostInfo> host;
  std::unique_ptr<Agent> agent;
};

std::unique_ptr<Runtime> MakeRuntime(const Config& config) {
  auto rt = std::make_unique<Runtime>();
  rt->config = config;
  rt->backend = MakeNftBackend(config.nft);
  rt->state = MakeFileStateStore(config.sync.state_dir);
  std::vector<std::string> urls;
  if (!config.collections.empty()) urls.push_back(config.api.url);
  if (config.api.proxy && !config.api.proxy->empty()) urls.push_back(*config.api.proxy);
  rt->host = MakeSystemHostInfo(urls);
  rt->agent =
      std::make_unique<Agent>(config, MakeSources(config, &SystemClock()), rt->backend.get(),
                              rt->state.get(), rt->host.get(), &SystemClock());
  rt->agent->LoadState();
  return rt;
}

void WriteMetrics(const Runtime& rt, const CycleReport& r) {
  if (rt.config.metrics_textfile.empty()) return;
  KernelStatus k;
  bool have = rt.backend->ReadStatus(&k).ok();
  Status s = WriteFileAtomic(rt.config.metrics_textfile,
                             RenderMetrics(r, have ? &k : nullptr, SystemClock().NowUnix()));
  if (!s.ok()) LogWarning("metrics: " + s.message());
}

int RunStatus(const Invocation& inv) {
  const Config& c = inv.config;
  auto backend = MakeNftBackend(c.nft);
  KernelStatus k;
  Status ks = backend->ReadStatus(&k);
  auto store = MakeFileStateStore(c.sync.state_dir);
  std::optional<CycleReport> report;
  auto text = store->LoadReport();
  if (text.ok() && text.value()) report = Agent::ReportFromJson(**text);
  // The kernel keeps no element count: counting is a dump, quadratic in the kernel (0.35 s at
  // 100k elements, about a minute at 1M). Count for real up to kMaxCountedDump elements;
  // beyond, say the figure is the agent's own and not the kernel's.
  constexpr size_t kMaxCountedDump = 250000;
  if (ks.ok() && k.table_present && k.sets_present && !k.elements_counted &&
      (!report || report->enforced_elements <= kMaxCountedDump)) {
    IntervalSet current;
    if (backend->ReadElements(&current).ok()) {
      k.v4_elements = current.v4.size();
      k.v6_elements = current.v6.size();
      k.elements_counted = true;
    }
  }
  StatusView v = Evaluate(c, ks.ok() ? &k : nullptr, ks.message(), report, SystemClock().NowUnix());
  if (text.ok() && text.value() && !report) {
    v.reasons.push_back("state.json in " + c.sync.state_dir + " is unreadable");
  }
  if (inv.top > 0 && ks.ok() && k.table_present) {
    Status ts = backend->ReadTopHits(inv.top, &v.top);
    if (!ts.ok()) v.reasons.push_back("--top: " + ts.message());
  }
  std::cout << (inv.json ? RenderStatusJson(c, v) : RenderStatusText(c, v));
  return static_cast<int>(v.health);
}

int RunExplain(const Invocation& inv) {
  const Config& c = inv.config;
  auto ip = ParsePrefix(inv.explain);
  if (!ip || ip->len != AddressBits(ip->family)) {
    std::cerr << "iocwall: --explain takes one IP address, got '" << inv.explain << "'\n";
    return kExitUsage;
  }
  const u128 a = ip->addr;
  std::cout << ip->ToString() << ":\n";
  bool protected_ip = false;
  IntervalSet prot = ProtectedRanges();
  long pi = Find(prot.of(ip->family), a);
  if (pi >= 0) {
    std::cout << "  never blocked: inside the always-protected range "
              << FormatRange(ip->family, prot.of(ip->family).ranges[pi]) << "\n";
    protected_ip = true;
  }
  for (const auto& p : c.allowlist) {
    if (p.family == ip->family && p.First() <= a && a <= p.Last()) {
      std::cout << "  never blocked: allowlisted by [allowlist] prefix " << p.ToString() << "\n";
      protected_ip = true;
    }
  }
  auto host = MakeSystemHostInfo(c.collections.empty() ? std::vector<std::string>{}
                                                       : std::vector<std::string>{c.api.url});
  for (const auto& h : host->ProtectedAddresses()) {
    if (h.prefix.family == ip->family && h.prefix.First() <= a && a <= h.prefix.Last()) {
      std::cout << "  never blocked: " << h.why << "\n";
      protected_ip = true;
    }
  }
  // Which sources list it, from the last good lists (what is enforced).
  auto store = MakeFileStateStore(c.sync.state_dir);
  auto sources = MakeSources(c, &SystemClock());
  const int64_t now = SystemClock().NowUnix();
  bool listed = false;
  for (const auto& src : sources) {
    auto snap = store->LoadSnapshot(src->Name());
    if (!snap.ok()) {
      std::cout << "  " << src->Name() << ": " << snap.message() << "\n";
      continue;
    }
    if (!snap.value()) continue;
    for (const auto& e : (*snap.value()).entries) {
      if (e.prefix.family != ip->family || a < e.prefix.First() || a > e.prefix.Last()) continue;
      listed = true;
      std::cout << "  listed by " << src->Name() << " as " << e.prefix.ToString()
                << (e.id.empty() ? "" : " (indicator " + e.id + ")") << ", since "
                << IsoTime(e.first_seen) << " (" << Age(e.first_seen, now) << ")";
      if (e.valid_until) {
        std::cout << (e.valid_until <= now ? ", EXPIRED at " : ", valid until ")
                  << IsoTime(e.valid_until);
      }
      std::cout << "\n";
    }
  }
  if (!listed) std::cout << "  not listed by any source's last good list\n";
  auto backend = MakeNftBackend(c.nft);
  KernelStatus k;
  Status s = backend->ReadStatus(&k);
  bool blocked = false;
  if (!s.ok()) {
    std::cout << "  kernel: cannot read: " << s.message() << "\n";
  } else if (!k.table_present) {
    std::cout << "  kernel: table inet " << c.nft.table << " is absent: NOT blocked\n";
  } else {
    IntervalSet current;
    s = backend->ReadElements(&current);
    if (!s.ok()) {
      std::cout << "  kernel: cannot read the sets: " << s.message() << "\n";
    } else {
      long i = Find(current.of(ip->family), a);
      blocked = i >= 0;
      if (blocked) {
        std::cout << "  kernel: BLOCKED by element "
                  << FormatRange(ip->family, current.of(ip->family).ranges[i]) << " of set "
                  << (ip->family == Family::kV4 ? c.nft.set_v4 : c.nft.set_v6) << "\n";
      } else {
        std::cout << "  kernel: not blocked\n";
      }
    }
  }
  if (blocked && protected_ip) {
    // Only a hand-made element can do that: iocwall subtracts protected addresses before
    // every apply, and its next cycle repairs the drift.
    std::cout << "  WARNING: the kernel blocks an address iocwall never blocks: an element was "
                 "added by hand; the next cycle removes it\n";
  }
  return blocked ? 0 : 1;
}

int RunDryRun(const Invocation& inv) {
  auto rt = MakeRuntime(inv.config);
  auto plan = rt->agent->DryRun();
  if (!plan.ok()) {
    std::cerr << "iocwall: " << plan.message() << "\n";
    return kExitFailed;
  }
  const Config& c = inv.config;
  for (const auto& s : plan->sources) {
    std::cout << s.name << ": " << s.entries << " entries, " << s.rejected << " lines skipped, "
              << s.pages << " pages, " << s.bytes << " bytes\n";
  }
  if (!plan->table_present)
    std::cout << "table inet " << c.nft.table << " is absent: it would be created\n";
  constexpr size_t kShow = 10;
  for (Family f : {Family::kV4, Family::kV6}) {
    const RangeDiff& d = plan->diff.of(f);
    std::cout << "set " << (f == Family::kV4 ? c.nft.set_v4 : c.nft.set_v6) << ": "
              << plan->desired.of(f).size() << " elements wanted, +" << d.add.size() << " -"
              << d.remove.size() << "\n";
    for (size_t i = 0; i < d.add.size() && i < kShow; ++i)
      std::cout << "  + " << FormatRange(f, d.add[i]) << "\n";
    if (d.add.size() > kShow) std::cout << "  + ... " << d.add.size() - kShow << " more\n";
    for (size_t i = 0; i < d.remove.size() && i < kShow; ++i)
      std::cout << "  - " << FormatRange(f, d.remove[i]) << "\n";
    if (d.remove.size() > kShow) std::cout << "  - ... " << d.remove.size() - kShow << " more\n";
  }
  for (const auto& n : plan->carved_out) std::cout << "note: " << n << "\n";
  for (const auto& g : plan->guard_reasons) std::cout << "guard would refuse: " << g << "\n";
  std::cout << "dry run: nothing was changed\n";
  return kExitOk;
}

sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT}) sigaddset(&set, s);
  return set;
}

int RunDaemon(const Invocation& inv, const std::vector<std::string>& args) {
  sigset_t set = HandledSignals();
  // Blocked here and taken with sigtimedwait: no handler runs in the middle of a cycle.
  sigprocmask(SIG_BLOCK, &set, nullptr);
  auto rt = MakeRuntime(inv.config);
  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  std::mt19937_64 rng(std::random_device{}());
  bool force = inv.force;
  bool ready = false;
  int failures = 0;
  LogInfo("iocwall " IOCWALL_VERSION " starting: " + std::to_string(rt->config.collections.size()) +
          " collections, " + std::to_string(rt->config.files.size()) + " files, table inet " +
          rt->config.nft.table);
  for (;;) {
    CycleReport r = rt->agent->RunCycle(force);
    force = false;
    WriteMetrics(*rt, r);
    failures = r.outcome == Outcome::kEnforcedFresh ? 0 : failures + 1;
    std::string status = std::string(OutcomeName(r.outcome)) + ": " + r.summary;
    if (status.size() > 200) status.resize(200);
    if (!ready) {
      sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
      ready = true;
    } else {
      sd_notifyf(0, "STATUS=%s", status.c_str());
    }
    // After a failure, retry sooner (30 s, doubling) but never more often than the interval
    // allows the API: the WAF blocks clients that hammer it.
    auto base = rt->config.sync.interval;
    if (failures > 0) {
      auto backoff = std::chrono::seconds(int64_t{30} << std::min(failures - 1, 10));
      base = std::min(base, backoff);
    }
    int64_t jitter = rt->config.sync.jitter.count();
    auto wait =
        base + std::chrono::seconds(jitter > 0 ? static_cast<int64_t>(rng() % (jitter + 1)) : 0);
    auto deadline = std::chrono::steady_clock::now() + wait;
    bool cycle_now = false;
    while (!cycle_now) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) break;
      if (watchdog) {
        sd_notify(0, "WATCHDOG=1");
        left = std::min<std::chrono::steady_clock::duration>(
            left, std::chrono::microseconds(watchdog_usec / 2));
      }
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      int sig = sigtimedwait(&set, nullptr, &ts);
      if (sig == SIGTERM || sig == SIGINT) {
        sd_notify(0, "STOPPING=1");
        LogInfo("stopping on signal; table inet " + rt->config.nft.table +
                " stays in place and keeps enforcing");
        return kExitOk;
      }
      if (sig == SIGUSR1) {
        LogInfo("SIGUSR1: syncing now");
        cycle_now = true;
      } else if (sig == SIGHUP) {
        sd_notify(0, "RELOADING=1");
        auto fresh = ParseInvocation(args);
        Status s = fresh.ok() ? CheckConfig(fresh->config) : fresh.status();
        if (!s.ok()) {
          LogError("reload refused, keeping the running configuration: " + s.message());
        } else {
          rt = MakeRuntime(fresh->config);
          LogInfo("configuration reloaded from " + fresh->config.path);
          cycle_now = true;
        }
        sd_notify(0, "READY=1");
      }
    }
  }
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  auto inv = ParseInvocation(args);
  if (!inv.ok()) {
    std::cerr << "iocwall: " << inv.message() << "\n";
    return kExitUsage;
  }
  if (inv->verbose) SetLogLevel(LogLevel::kDebug);
  switch (inv->mode) {
    case Mode::kHelp:
      std::cout << HelpText();
      return kExitOk;
    case Mode::kVersion:
      std::cout << "iocwall " IOCWALL_VERSION "\n";
      return kExitOk;
    case Mode::kCheckConfig: {
      Status s = CheckConfig(inv->config);
      if (!s.ok()) {
        std::cerr << "iocwall: " << s.message() << "\n";
        return kExitUsage;
      }
      std::cout << "configuration " << inv->config.path << " is valid\n";
      return kExitOk;
    }
    case Mode::kStatus:
      return RunStatus(*inv);
    case Mode::kExplain:
      return RunExplain(*inv);
    case Mode::kFlush: {
      auto backend = MakeNftBackend(inv->config.nft);
      Status s = backend->Flush();
      if (!s.ok()) {
        std::cerr << "iocwall: flush: " << s.message() << "\n";
        return kExitFailed;
      }
      std::cout << "table inet " << inv->config.nft.table
                << " removed: nothing is blocked by iocwall\n";
      return kExitOk;
    }
    default:
      break;
  }
  Status s = Validate(inv->config);
  if (!s.ok()) {
    std::cerr << "iocwall: " << s.message() << "\n";
    return kExitUsage;
  }
  DropPrivileges();  // configuration loaded, no cycle yet: keep only CAP_NET_ADMIN from here on
  switch (inv->mode) {
    case Mode::kDryRun:
      return RunDryRun(*inv);
    case Mode::kRestore: {
      auto rt = MakeRuntime(inv->config);
      CycleReport r = rt->agent->Restore();
      return r.outcome == Outcome::kKeptLastGood && r.apply_error.empty() ? kExitOk : kExitFailed;
    }
    case Mode::kOnce: {
      auto rt = MakeRuntime(inv->config);
      CycleReport r = rt->agent->RunCycle(inv->force);
      WriteMetrics(*rt, r);
      return r.outcome == Outcome::kEnforcedFresh ? kExitOk : kExitFailed;
    }
    default:
      return RunDaemon(*inv, args);
  }
}

}  // namespace
}  // namespace iocwall

int main(int argc, char** argv) { return iocwall::Main(argc, argv); }
