// iocwall: a thin main over the agent library. Parses flags, picks the mode, maps results to
// exit codes. Everything it calls is tested through the libraries.
#include <signal.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/explain.h"
#include "agent/health.h"
#include "agent/host_info.h"
#include "agent/lock.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/privileges.h"
#include "agent/report_json.h"
#include "agent/schedule.h"
#include "agent/state.h"
#include "agent/verify.h"
#include "agent/wiring.h"
#include "core/text.h"
#include "netlink/nft_backend.h"

#ifndef IOCWALL_VERSION
#define IOCWALL_VERSION "0.0.0"
#endif

namespace iocwall {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// sysexits.h's EX_CONFIG, which systemd shows as "status=78/CONFIG": the unit's
// RestartPreventExitStatus= stops on it rather than restarting into the same error.
constexpr int kExitConfig = 78;

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
  rt->host = MakeSystemHostInfo(urls, HostOptionsFor(config));
  auto sources = MakeSources(config, &SystemClock());
  // Under systemd's watchdog a long fetch (a million entries, a slow server, back-off waits)
  // must not look like a hang: each page, and each second of a transfer or a wait, pets it.
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
    for (auto& src : sources) {
      src->SetProgressCallback([](const FetchProgress&) { sd_notify(0, "WATCHDOG=1"); });
    }
  }
  rt->agent = std::make_unique<Agent>(config, std::move(sources), rt->backend.get(),
                                      rt->state.get(), rt->host.get(), &SystemClock());
  rt->agent->LoadState();
  return rt;
}

// Outlives the Runtime (rebuilt on SIGHUP): the metrics' counters count for the process.
MetricsRecorder g_metrics(std::time(nullptr), IOCWALL_VERSION);

void WriteMetrics(const Runtime& rt, const CycleReport& r) {
  g_metrics.Record(r);
  if (rt.config.metrics_textfile.empty()) return;
  KernelStatus k;
  bool have = rt.backend->ReadStatus(&k).ok();
  Status s = WriteMetricsFile(rt.config.metrics_textfile,
                              g_metrics.Render(r, have ? &k : nullptr, SystemClock().NowUnix()),
                              rt.config.metrics_mode);
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
  if (text.ok() && text.value()) report = ReportFromJson(**text);
  const int64_t now = SystemClock().NowUnix();
  // No dump, whatever the size (dumps are quadratic in the kernel: about a minute at 1M
  // elements): the generation, the structure and lookups of sampled elements.
  Verification ver;
  if (ks.ok() && k.Enforcing() && report && report->committed) {
    ver = VerifyKernel(backend.get(), c.nft, k, *report->committed, now);
  }
  StatusView v = Evaluate(c, ks.ok() ? &k : nullptr, ks.message(), report, now, ver);
  if (!text.ok()) v.reasons.push_back(text.message());  // untrusted state_dir, a planted file
  if (text.ok() && text.value() && !report) {
    v.reasons.push_back("state.json in " + c.sync.state_dir + " is unreadable");
  }
  const bool top_off = inv.top > 0 && !c.nft.element_counters;
  if (inv.top > 0 && !top_off && ks.ok() && k.table_present) {
    Status ts = backend->ReadTopHits(inv.top, &v.top);
    if (!ts.ok()) v.reasons.push_back("--top: " + ts.message());
  }
  std::cout << (inv.json ? RenderStatusJson(c, v) : RenderStatusText(c, v));
  if (top_off) std::cerr << "iocwall: " << TopCountersOffHint(c) << "\n";
  return static_cast<int>(v.health);
}

int RunExplain(const Invocation& inv) {
  const Config& c = inv.config;
  auto ip = ParseExplainAddress(inv.explain);
  if (!ip.ok()) {
    std::cerr << "iocwall: " << ip.message() << "\n";
    return kExitUsage;
  }
  ExplainInput in;
  in.address = *ip;
  in.now = SystemClock().NowUnix();
  auto host = MakeSystemHostInfo(
      c.collections.empty() ? std::vector<std::string>{} : std::vector<std::string>{c.api.url},
      HostOptionsFor(c));
  in.host = host->ProtectedAddresses();
  auto store = MakeFileStateStore(c.sync.state_dir);
  // The last report keeps each source's lines in the feed's own words; without it (lost,
  // damaged) --explain still answers, from the snapshots alone.
  std::optional<CycleReport> report;
  auto text = store->LoadReport();
  if (text.ok() && text.value()) report = ReportFromJson(**text);
  for (const auto& src : MakeSources(c, &SystemClock())) {
    ExplainSource es;
    es.name = src->Name();
    es.snapshot = store->LoadSnapshot(es.name);
    for (size_t i = 0; report && i < report->sources.size(); ++i) {
      if (report->sources[i].name == es.name) es.widened = report->sources[i].widened_samples;
    }
    in.sources.push_back(std::move(es));
  }
  auto backend = MakeNftBackend(c.nft);
  ExplainResult r = Explain(c, in, *backend);
  std::cout << r.text;
  return r.blocked ? kExitOk : kExitFailed;
}

// --list: what the last good lists put in force, entry by entry, with where each came from.
// From the state alone (no set dump): the kernel's side is what --status verifies.
int RunList(const Invocation& inv) {
  using Json = nlohmann::json;
  const Config& c = inv.config;
  auto store = MakeFileStateStore(c.sync.state_dir);
  auto sources = MakeSources(c, &SystemClock());
  const int64_t now = SystemClock().NowUnix();
  // What is never blocked, as the cycle computes it: always-protected ranges, the allowlist and
  // the host's own addresses and networks.
  std::vector<Prefix> keep_out = c.allowlist;
  auto host = MakeSystemHostInfo(
      c.collections.empty() ? std::vector<std::string>{} : std::vector<std::string>{c.api.url},
      HostOptionsFor(c));
  for (const auto& h : host->ProtectedAddresses()) keep_out.push_back(h.prefix);
  IntervalSet carve = ProtectedRanges();
  IntervalSet listed_out = FromPrefixes(keep_out);
  Json entries = Json::array();
  size_t shown = 0, in_force = 0;
  int status = kExitOk;
  for (const auto& src : sources) {
    if (!inv.source.empty() && src->Name().find(inv.source) == std::string::npos) continue;
    auto snap = store->LoadSnapshot(src->Name());
    if (!snap.ok()) {
      std::cerr << "iocwall: " << src->Name() << ": " << snap.message() << "\n";
      status = kExitFailed;
      continue;
    }
    if (!snap.value()) continue;
    for (const auto& e : (*snap.value()).entries) {
      if (e.valid_until != 0 && e.valid_until <= now) continue;  // expired: not in force
      std::string state;
      const int min_len =
          e.prefix.family == Family::kV4 ? c.sync.min_prefix_v4 : c.sync.min_prefix_v6;
      if (e.valid_from > now) {
        state = "not yet valid";
      } else if (e.prefix.len < min_len) {
        state = "refused: shorter than [sync] min_prefix_v" +
                std::string(e.prefix.family == Family::kV4 ? "4" : "6") + " = " +
                std::to_string(min_len);
      } else {
        const Prefix one[1] = {e.prefix};
        IntervalSet whole = FromPrefixes(one);
        IntervalSet left = Subtract(Subtract(whole, carve), listed_out);
        const u128 all = AddressCount(whole.of(e.prefix.family));
        const u128 kept = AddressCount(left.of(e.prefix.family));
        // What the last good list puts in force; whether the kernel holds it is --status's
        // (verified) answer, never claimed here.
        state = kept == all ? "in force"
                : kept == 0 ? "not in force: protected or allowlisted"
                            : "partly in force: protected or allowlisted addresses carved out";
      }
      in_force += state == "in force" || state.rfind("partly", 0) == 0;
      ++shown;
      if (inv.json) {
        entries.push_back({{"entry", e.prefix.ToString()},
                           {"source", src->Name()},
                           {"id", e.id},
                           {"first_seen", e.first_seen},
                           {"valid_until", e.valid_until},
                           {"valid_from", e.valid_from},
                           {"state", state}});
      } else {
        std::cout << e.prefix.ToString() << "  " << src->Name() << (e.id.empty() ? "" : "  " + e.id)
                  << "  since " << IsoTime(e.first_seen) << "  until "
                  << (e.valid_until ? IsoTime(e.valid_until) : "no end") << "  " << state << "\n";
      }
    }
  }
  if (inv.json) {
    Json j = {
        {"schema_version", 1}, {"entries", entries}, {"count", shown}, {"in_force", in_force}};
    std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    std::cout << Count(shown, "entry", "entries") << " listed, " << in_force
              << " in force in whole or in part (what the kernel holds, verified: iocwall "
                 "--status)\n";
  }
  return status;
}

int RunDryRun(const Invocation& inv) {
  auto rt = MakeRuntime(inv.config);
  auto plan = rt->agent->DryRun(inv.force);
  if (!plan.ok()) {
    std::cerr << "iocwall: " << plan.message() << "\n";
    return kExitFailed;
  }
  const Config& c = inv.config;
  for (const auto& s : plan->sources) {
    std::cout << s.name << ": ";
    if (!s.ok) {
      std::cout << "FAILED: " << s.error << "\n";
      continue;
    }
    std::cout << Count(s.entries, "entry", "entries") << ", " << Count(s.rejected, "line", "lines")
              << " skipped, " << Count(s.pages, "page", "pages") << ", "
              << Count(s.bytes, "byte", "bytes") << "\n";
  }
  for (const auto& g : plan->guard_reasons) {
    std::cout << (plan->forced ? "guard overridden by --force: " : "guard refuses: ") << g << "\n";
  }
  if (!plan->table_error.empty()) std::cout << "refused: " << plan->table_error << "\n";
  std::cout << "the cycle would end " << OutcomeName(plan->outcome) << ": " << plan->summary
            << "\n";
  if (plan->outcome != Outcome::kNothing && plan->table_error.empty()) {
    if (!plan->table_present) {
      std::cout << "table inet " << c.nft.table << " is absent: it would be created\n";
    }
    constexpr size_t kShow = 10;
    for (Family f : {Family::kV4, Family::kV6}) {
      const RangeDiff& d = plan->diff.of(f);
      std::cout << "set " << (f == Family::kV4 ? c.nft.set_v4 : c.nft.set_v6) << ": "
                << Count(plan->desired.of(f).size(), "element", "elements") << " wanted, +"
                << d.add.size() << " -" << d.remove.size() << "\n";
      for (size_t i = 0; i < d.add.size() && i < kShow; ++i)
        std::cout << "  + " << FormatRange(f, d.add[i]) << "\n";
      if (d.add.size() > kShow) std::cout << "  + ... " << d.add.size() - kShow << " more\n";
      for (size_t i = 0; i < d.remove.size() && i < kShow; ++i)
        std::cout << "  - " << FormatRange(f, d.remove[i]) << "\n";
      if (d.remove.size() > kShow) std::cout << "  - ... " << d.remove.size() - kShow << " more\n";
    }
  }
  for (const auto& n : plan->carved_out) std::cout << "note: " << n << "\n";
  std::cout << "dry run: nothing was changed\n";
  // The exit code --once would give.
  return plan->outcome == Outcome::kEnforcedFresh ? kExitOk : kExitFailed;
}

// Takes the writer lock for `mode`. While the daemon holds it, prints what to do instead and
// returns nullopt with *daemon set.
std::optional<WriterLock> LockOrExplain(const Config& c, const std::string& mode,
                                        std::optional<LockHolder>* daemon) {
  auto lock = WriterLock::Acquire(c.sync.state_dir, mode, std::chrono::minutes(10), daemon);
  if (lock.ok()) return std::move(lock.value());
  if (!*daemon || (*daemon)->mode != "daemon") {
    std::cerr << "iocwall: " << lock.message() << "\n";
  }
  return std::nullopt;
}

std::string DaemonAdvice(const LockHolder& d) {
  return "the iocwall daemon (pid " + std::to_string(d.pid) +
         ") is running and is the only writer of the table and the state: use `iocwall --once` "
         "(handed to the daemon) or `systemctl reload iocwall`; to run this yourself, stop it "
         "first (`systemctl stop iocwall`: the table keeps enforcing)";
}

int RunOnce(const Invocation& inv) {
  std::optional<LockHolder> daemon;
  auto lock = LockOrExplain(inv.config, "once", &daemon);
  if (!lock) {
    if (!daemon || daemon->mode != "daemon") return kExitFailed;
    // The daemon runs the cycle itself (with --force if asked): a forced acceptance it did not
    // make would otherwise be judged again, and undone, by its next cycle.
    std::cout << "iocwall: the daemon (pid " << daemon->pid << ") runs this cycle"
              << (inv.force ? " with --force" : "") << "\n";
    auto answer =
        HandToDaemon(inv.config.sync.state_dir, *daemon, inv.force, std::chrono::minutes(30));
    if (!answer.ok()) {
      std::cerr << "iocwall: " << answer.message() << "\n";
      return kExitFailed;
    }
    std::cout << "cycle " << *answer << "\n";
    return answer->rfind(OutcomeName(Outcome::kEnforcedFresh), 0) == 0 ? kExitOk : kExitFailed;
  }
  auto rt = MakeRuntime(inv.config);
  CycleReport r = rt->agent->RunCycle(inv.force);
  WriteMetrics(*rt, r);
  return r.outcome == Outcome::kEnforcedFresh ? kExitOk : kExitFailed;
}

// The writer lock for a mode the daemon cannot run for us (--restore, --flush): while the
// daemon holds it, says what to do instead.
std::optional<WriterLock> LockOrAdvise(const Config& c, const std::string& mode) {
  std::optional<LockHolder> daemon;
  auto lock = LockOrExplain(c, mode, &daemon);
  if (!lock && daemon && daemon->mode == "daemon") {
    std::cerr << "iocwall: --" << mode << ": " << DaemonAdvice(*daemon) << "\n";
  }
  return lock;
}

int RunRestore(const Invocation& inv) {
  auto lock = LockOrAdvise(inv.config, "restore");
  if (!lock) return kExitFailed;
  auto rt = MakeRuntime(inv.config);
  CycleReport r = rt->agent->Restore();
  return r.outcome == Outcome::kKeptLastGood && r.apply_error.empty() ? kExitOk : kExitFailed;
}

int RunFlush(const Invocation& inv) {
  auto lock = LockOrAdvise(inv.config, "flush");
  if (!lock) return kExitFailed;
  auto backend = MakeNftBackend(inv.config.nft);
  bool removed = false;
  Status s = backend->RemoveTable(inv.config.nft.table, &removed);
  if (!s.ok()) {
    std::cerr << "iocwall: flush: " << s.message() << "\n";
    return kExitFailed;
  }
  std::cout << "table inet " << inv.config.nft.table
            << (removed ? " removed: nothing is blocked by iocwall\n"
                        : " was already absent: nothing is blocked by iocwall\n");
  return kExitOk;
}

sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT}) sigaddset(&set, s);
  return set;
}

// The daemon between cycles, and what a signal may change in it.
struct Daemon {
  explicit Daemon(const std::vector<std::string>& a) : args(a), signals(HandledSignals()) {}
  const std::vector<std::string>& args;  // the command line, read again on SIGHUP
  sigset_t signals;
  std::unique_ptr<Runtime> rt;
  bool watchdog = false;
  uint64_t watchdog_usec = 0;
  std::optional<HandOver> request;  // a manual `iocwall --once [--force]` handed to us
  bool force = false;
  bool ready = false;
};

// Tells the hand-over's waiting --once and systemd how the cycle ended.
void ReportCycle(Daemon* d, const CycleReport& r) {
  std::string status = std::string(OutcomeName(r.outcome)) + ": " + r.summary;
  if (d->request) {
    AnswerHandOver(d->rt->config.sync.state_dir, *d->request, status);
    d->request.reset();
  }
  if (status.size() > 200) status.resize(200);
  if (!d->ready) {
    sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
    d->ready = true;
  } else {
    sd_notifyf(0, "STATUS=%s", status.c_str());
  }
}

// SIGHUP: the configuration again, taken whole or not at all. True when it was taken.
bool Reload(Daemon* d) {
  sd_notify(0, "RELOADING=1");
  auto fresh = ParseInvocation(d->args);
  Status s = fresh.ok() ? CheckConfig(fresh->config) : fresh.status();
  if (s.ok() && fresh->config.sync.state_dir != d->rt->config.sync.state_dir) {
    s = Status::Error(
        "[sync] state_dir cannot change on reload (the daemon holds the "
        "writer lock there): restart the service");
  }
  if (!s.ok()) {
    LogError("reload refused, keeping the running configuration: " + s.message());
  } else {
    d->rt = MakeRuntime(fresh->config);
    LogInfo("configuration reloaded from " + fresh->config.path);
  }
  sd_notify(0, "READY=1");
  return s.ok();
}

// Sleeps until `deadline`, petting the watchdog, taking the signals as they come. True to run
// the next cycle (the deadline passed, a hand-over, SIGUSR1, a reload), false to stop.
bool SleepUntil(Daemon* d, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return true;
    if (d->watchdog) {
      sd_notify(0, "WATCHDOG=1");
      left = std::min<std::chrono::steady_clock::duration>(
          left, std::chrono::microseconds(d->watchdog_usec / 2));
    }
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    int sig = sigtimedwait(&d->signals, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      sd_notify(0, "STOPPING=1");
      LogInfo("stopping on signal; table inet " + d->rt->config.nft.table +
              " stays in place and keeps enforcing");
      return false;
    }
    if (sig == SIGUSR1) {
      d->request = TakeHandOver(d->rt->config.sync.state_dir);
      d->force = d->request && d->request->force;
      LogInfo(d->request ? std::string("iocwall --once") + (d->force ? " --force" : "") +
                               " handed over: syncing now"
                         : "SIGUSR1: syncing now");
      return true;
    }
    if (sig == SIGHUP && Reload(d)) return true;
  }
}

int RunDaemon(const Invocation& inv, const std::vector<std::string>& args) {
  Daemon d(args);
  // Blocked here and taken with sigtimedwait: no handler runs in the middle of a cycle.
  sigprocmask(SIG_BLOCK, &d.signals, nullptr);
  std::optional<LockHolder> holder;
  auto lock =
      WriterLock::Acquire(inv.config.sync.state_dir, "daemon", std::chrono::minutes(10), &holder);
  if (!lock.ok()) {
    LogError("not starting: " + lock.message());
    // Without a holder the state directory itself was refused (untrusted, unusable): only an
    // operator fixes that, so systemd must not restart the unit every 10 s for nothing
    // (RestartPreventExitStatus=78). Another holder may go away: a plain failure.
    return holder ? kExitFailed : kExitConfig;
  }
  d.rt = MakeRuntime(inv.config);
  d.watchdog = sd_watchdog_enabled(0, &d.watchdog_usec) > 0;
  d.force = inv.force;
  std::mt19937_64 rng(std::random_device{}());
  int failures = 0;
  LogInfo("iocwall " IOCWALL_VERSION " starting: " +
          Count(d.rt->config.collections.size(), "collection", "collections") + ", " +
          Count(d.rt->config.files.size(), "file", "files") + ", table inet " +
          d.rt->config.nft.table);
  for (;;) {
    CycleReport r = d.rt->agent->RunCycle(d.force);
    d.force = false;
    WriteMetrics(*d.rt, r);
    ReportCycle(&d, r);
    failures = FailuresAfter(failures, r.outcome);
    Wake next = NextWake(d.rt->config.sync, failures, r.next_valid_from, rng(), SystemClock());
    LogDebug("next sync in " + std::to_string(next.wait.count()) + " s (" +
             WakeReasonName(next.reason) + ")");
    if (!SleepUntil(&d, next.at)) return kExitOk;
  }
}

// The table the configuration names must be absent or iocwall's own: a configuration that would
// point iocwall at an administrator's table is not valid on this host. *unchecked gets why the
// kernel could not be read (nothing is refused then).
Status CheckTableOwner(const Config& c, std::string* unchecked) {
  KernelStatus k;
  Status ks = MakeNftBackend(c.nft)->ReadStatus(&k);
  if (!ks.ok()) *unchecked = ks.message();
  if (ks.ok() && k.table_present && !k.table_owned) {
    return Status::Error("[nftables] table = " + c.nft.table + ": table inet " + c.nft.table +
                         " exists and was not created by iocwall, which never changes it; "
                         "choose a name of iocwall's own");
  }
  return Status::Ok();
}

// Every problem, one line each, so that one run shows all there is to fix.
int RunCheckConfig(const Invocation& inv) {
  const Config& c = inv.config;
  std::vector<std::string> problems;
  std::string unchecked;
  for (const Status& s : {CheckConfig(c), CheckTableOwner(c, &unchecked)}) {
    if (!s.ok()) problems.push_back(s.message());
  }
  if (inv.check_paths) {
    for (auto& p : CheckPaths(c)) problems.push_back(std::move(p));
  }
  for (const auto& p : problems) std::cerr << "iocwall: " << p << "\n";
  if (!problems.empty()) return kExitConfig;
  std::cout << "configuration " << c.path << " is valid\n";
  if (!unchecked.empty()) {
    std::cerr << "iocwall: (the kernel was not checked: " << unchecked << ")\n";
  }
  return kExitOk;
}

int Main(int argc, char** argv) {
  MakeNonDumpable();  // before anything reads the key or a flag that might hold it
  std::vector<std::string> args(argv, argv + argc);
  bool config_error = false;
  auto inv = ParseInvocation(args, &config_error);
  if (!inv.ok()) {
    std::cerr << "iocwall: " << inv.message() << "\n";
    // A monitoring plugin cannot judge what it could not read: UNKNOWN, and the reason as the
    // plugin line that NRPE and Icinga show (they read stdout only).
    if (std::find(args.begin(), args.end(), "--status") != args.end()) {
      std::cout << "iocwall " << HealthName(Health::kUnknown) << " - " << inv.message() << "\n";
      return static_cast<int>(Health::kUnknown);
    }
    return config_error ? kExitConfig : kExitUsage;
  }
  if (inv->verbose) SetLogLevel(LogLevel::kDebug);
  switch (inv->mode) {
    case Mode::kHelp:
      std::cout << HelpText();
      return kExitOk;
    case Mode::kVersion:
      std::cout << "iocwall " IOCWALL_VERSION "\n";
      return kExitOk;
    case Mode::kCheckConfig:
      return RunCheckConfig(*inv);
    case Mode::kStatus:
      return RunStatus(*inv);
    case Mode::kExplain:
      return RunExplain(*inv);
    case Mode::kList:
      return RunList(*inv);
    case Mode::kFlush:
      return RunFlush(*inv);
    default:
      break;
  }
  // The daemon refuses to start on what --check-config refuses, its paths aside (a missing list
  // file fails its source only), and exits kExitConfig itself: systemd's RestartPreventExitStatus=
  // looks at the main process only, never at an ExecStartPre=.
  std::string unchecked;
  Status s = Validate(inv->config);
  if (s.ok() && inv->mode == Mode::kDaemon) s = CheckConfig(inv->config);
  if (s.ok() && inv->mode == Mode::kDaemon) s = CheckTableOwner(inv->config, &unchecked);
  if (!s.ok()) {
    std::cerr << "iocwall: " << s.message() << "\n";
    return kExitConfig;
  }
  DropPrivileges();  // configuration loaded, no cycle yet: keep only CAP_NET_ADMIN from here on
  switch (inv->mode) {
    case Mode::kDryRun:
      return RunDryRun(*inv);
    case Mode::kRestore:
      return RunRestore(*inv);
    case Mode::kOnce:
      return RunOnce(*inv);
    default:
      return RunDaemon(*inv, args);
  }
}

}  // namespace
}  // namespace iocwall

int main(int argc, char** argv) {
  // A million-entry cycle allocates a few vectors of tens of megabytes, some on a second thread
  // (the snapshots written during the kernel commit). glibc's default raises its mmap threshold
  // each time such a block is freed, after which the next ones come from arenas that keep their
  // pages: 14 MB of peak RSS at a million for nothing. A fixed threshold keeps every large
  // block mapped on its own and returned when freed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  return iocwall::Main(argc, argv);
}
