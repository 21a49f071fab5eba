#include "agent/agent.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include "agent/guards.h"
#include "agent/log.h"
#include "agent/report_json.h"
#include "core/build.h"
#include "core/siphash.h"
#include "core/text.h"
#include "core/timed.h"

namespace iocwall {
namespace {

// Entries whose host bits were set are used widened; say so in the feed's own words, a few
// per source and cycle (the count is in the report's warnings figure).
void LogWidened(const std::string& source, const ParseStats& stats) {
  constexpr size_t kShown = 3;
  for (size_t i = 0; i < stats.widened.size() && i < kShown; ++i) {
    const WidenedLine& w = stats.widened[i];
    LogNotice(w.text + " in " + source + " widened to " + w.prefix.ToString() + " (line " +
              std::to_string(w.line_no) + ": host bits were set)");
  }
  if (stats.host_bits_cleared > kShown) {
    const size_t more = stats.host_bits_cleared - kShown;
    LogNotice(source + ": " + Count(more, "more entry", "more entries") + " with host bits set " +
              (more == 1 ? "was" : "were") + " widened");
  }
}

double SecondsSince(Clock* clock, std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(clock->Now() - t0).count();
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

bool Intersects(const FamilyRanges& set, const Range& r) {
  auto it = std::lower_bound(set.ranges.begin(), set.ranges.end(), r.first,
                             [](const Range& a, u128 v) { return a.last < v; });
  return it != set.ranges.end() && it->first <= r.last;
}

bool Expired(int64_t valid_until, int64_t now) { return valid_until != 0 && valid_until <= now; }

// An indicator whose valid_from is still ahead is not blocked yet (Sekoia: "valid_from is when
// an indicator starts to be valid"); the daemon wakes up when it becomes valid.
bool NotYetValid(int64_t valid_from, int64_t now) { return valid_from > now; }

// A changes fetch sees only the changed lines: the samples of the full list stay, the newest
// last, so that --explain can still quote the feed for the entries it carries over.
void KeepWidened(const std::vector<WidenedLine>& fetched, bool incremental,
                 std::vector<WidenedLine>* kept) {
  if (!incremental) kept->clear();
  kept->insert(kept->end(), fetched.begin(), fetched.end());
  if (kept->size() > ParseStats::kMaxSamples) {
    kept->erase(kept->begin(), kept->end() - ParseStats::kMaxSamples);
  }
}

bool PrefixLess(const Prefix& a, const Prefix& b) {
  if (a.family != b.family) return a.family < b.family;
  if (a.addr != b.addr) return a.addr < b.addr;
  return a.len < b.len;
}

}  // namespace

FetchResult MergeChanges(const Snapshot& base, FetchResult changes) {
  return MergeChanges(
      [&](const SnapshotEntryFn& each) {
        for (const auto& e : base.entries) each(e);
      },
      base.entries.size(), std::move(changes));
}

namespace {

uint64_t Mix(uint64_t h) {  // splitmix64's finaliser: spreads any input over 64 bits
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

uint64_t PrefixHash(const Prefix& p) {
  return Mix(static_cast<uint64_t>(p.addr >> 64) ^
             Mix(static_cast<uint64_t>(p.addr) ^ (uint64_t{p.len} << 8 | uint8_t(p.family))));
}

}  // namespace

FetchResult MergeChanges(const SnapshotEntries& base, size_t base_hint, FetchResult changes) {
  FetchResult out;
  out.source = changes.source;
  out.status = changes.status;
  out.http_status = changes.http_status;
  out.stats = std::move(changes.stats);
  out.pages = changes.pages;
  out.bytes = changes.bytes;
  out.seconds = changes.seconds;
  out.incremental = true;
  // Compact: a 500,000-indicator json collection with an id per entry merged through strings,
  // a std::map and an unordered_map of strings held about 250 MB at once.
  struct Item {
    Prefix prefix;
    int64_t valid_until;
    int64_t valid_from;
    bool gone;
  };
  std::vector<Item> items;
  IdList ids;  // parallel to items
  items.reserve(base_hint + changes.prefixes.size());
  // Indexed by a 64-bit hash; the candidates are compared in full, and the latest item with a
  // given id (or prefix) is the one found, as a map overwritten in order would give. An id-less
  // change matches the item holding that prefix now (an edited value is indexed again).
  std::unordered_multimap<uint64_t, uint32_t> by_id, by_prefix;
  by_id.reserve(base_hint + changes.prefixes.size());
  by_prefix.reserve(base_hint + changes.prefixes.size());
  auto add = [&](const Prefix& p, int64_t until, int64_t from, std::string_view id) {
    const auto k = static_cast<uint32_t>(items.size());
    items.push_back({p, until, from, false});
    ids.push_back(id);
    if (!id.empty()) by_id.emplace(std::hash<std::string_view>()(id), k);
    by_prefix.emplace(PrefixHash(p), k);
  };
  auto find_id = [&](const std::string& id) {
    long k = -1;
    auto [lo, hi] = by_id.equal_range(std::hash<std::string_view>()(id));
    for (auto it = lo; it != hi; ++it) {
      if (static_cast<long>(it->second) > k && ids[it->second] == id) k = it->second;
    }
    return k;
  };
  auto find_prefix = [&](const Prefix& p) {
    long k = -1;
    auto [lo, hi] = by_prefix.equal_range(PrefixHash(p));
    for (auto it = lo; it != hi; ++it) {
      if (static_cast<long>(it->second) > k && items[it->second].prefix == p) k = it->second;
    }
    return k;
  };
  base([&](const SnapshotEntry& e) { add(e.prefix, e.valid_until, e.valid_from, e.id); });
  for (size_t j = 0; j < changes.prefixes.size(); ++j) {
    const Prefix& p = changes.prefixes[j];
    const std::string id = j < changes.ids.size() ? changes.ids[j] : std::string();
    const int64_t until = j < changes.valid_until.size() ? changes.valid_until[j] : 0;
    const int64_t from = j < changes.valid_from.size() ? changes.valid_from[j] : 0;
    const bool revoked = j < changes.revoked.size() && changes.revoked[j] != 0;
    const long k = id.empty() ? find_prefix(p) : find_id(id);
    if (revoked) {
      if (k >= 0) items[k].gone = true;  // revocation is final
      continue;
    }
    if (k >= 0 && !items[k].gone) {
      if (!(items[k].prefix == p)) by_prefix.emplace(PrefixHash(p), static_cast<uint32_t>(k));
      items[k].prefix = p;  // an indicator's value may be edited, and its validity extended
      items[k].valid_until = until;
      items[k].valid_from = from;
    } else {
      add(p, until, from, id);
    }
  }
  // The indexes and the changes are done with: let them go before the result is built.
  decltype(by_id)().swap(by_id);
  decltype(by_prefix)().swap(by_prefix);
  changes = FetchResult();
  size_t kept = 0;
  for (const Item& it : items) kept += !it.gone;
  out.prefixes.reserve(kept);
  out.valid_until.reserve(kept);
  out.valid_from.reserve(kept);
  for (size_t k = 0; k < items.size(); ++k) {
    const Item& it = items[k];
    if (it.gone) continue;
    out.prefixes.push_back(it.prefix);
    out.valid_until.push_back(it.valid_until);
    out.valid_from.push_back(it.valid_from);
    out.ids.push_back(ids[k]);
  }
  return out;
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kEnforcedFresh:
      return "enforced-fresh";
    case Outcome::kKeptLastGood:
      return "kept-last-good";
    case Outcome::kGuardRefused:
      return "guard-refused";
    case Outcome::kFailed:
      return "apply-failed";
    case Outcome::kNothing:
      return "nothing-enforced";
  }
  return "unknown";
}

Agent::Agent(Config config, std::vector<std::unique_ptr<Source>> sources, SetBackend* backend,
             StateStore* state, HostInfo* host, Clock* clock)
    : config_(std::move(config)),
      sources_(std::move(sources)),
      backend_(backend),
      state_(state),
      host_(host),
      clock_(clock) {
  for (const auto& s : sources_) {
    SourceReport r;
    r.name = s->Name();
    last_.sources.push_back(r);
  }
  snapshots_.resize(sources_.size());
}

SourceReport& Agent::SourceState(const std::string& name) {
  for (auto& s : last_.sources)
    if (s.name == name) return s;
  last_.sources.push_back(SourceReport{});
  last_.sources.back().name = name;
  return last_.sources.back();
}

void Agent::LoadState() {
  auto text = state_->LoadReport();
  if (!text.ok()) {
    LogWarning("state: " + text.message());
  } else if (text.value()) {
    auto r = ReportFromJson(**text);
    if (!r) {
      LogWarning("state: " + config_.sync.state_dir +
                 "/state.json is not a valid report; it will be rewritten after the next cycle");
    } else {
      // Keep the configured sources, in configuration order, with what was remembered of them.
      std::vector<SourceReport> remembered = std::move(r->sources);
      std::vector<SourceReport> current = std::move(last_.sources);
      last_ = std::move(*r);
      last_.sources.clear();
      for (auto& c : current) {
        auto it = std::find_if(remembered.begin(), remembered.end(),
                               [&](const SourceReport& m) { return m.name == c.name; });
        last_.sources.push_back(it != remembered.end() ? *it : c);
      }
    }
  }
  snapshots_loaded_ = false;
  seeded_ = false;
}

void Agent::SeedBackend() {
  if (seeded_) return;
  seeded_ = true;
  // What the last process committed: the backend uses it, if it still holds, instead of a set
  // dump (quadratic in the kernel: about a minute at 1M elements). Read only when the kernel is
  // about to be used, after the list is built: the copy (32 MB at a million) and the build's
  // own memory are not held at once.
  auto applied = state_->LoadApplied();
  if (!applied.ok()) {
    LogWarning("state: " + applied.message());
  } else if (applied.value()) {
    saved_applied_generation_ = (*applied.value()).generation;
    backend_->Seed(std::move(*applied.value()));
  }
}

void Agent::LoadSnapshots() {
  if (!snapshots_loaded_) {
    for (size_t i = 0; i < sources_.size(); ++i) {
      auto snap = state_->LoadSnapshotInfo(sources_[i]->Name());
      if (!snap.ok()) {
        LogWarning("state: " + snap.message());
        snapshots_[i].reset();
      } else {
        snapshots_[i] = std::move(snap.value());
      }
    }
    snapshots_loaded_ = true;
  }
}

void Agent::LastGoodEntries(Entries* entries, size_t* with_snapshot) {
  LoadSnapshots();
  const int64_t now = clock_->NowUnix();
  *with_snapshot = 0;
  for (size_t i = 0; i < snapshots_.size(); ++i) {
    if (!snapshots_[i]) continue;
    // A file found damaged halfway must add nothing.
    const TimedBuilder::Mark mark = entries->builder.GetMark();
    auto read = state_->ReadSnapshot(sources_[i]->Name(), [&](const SnapshotEntry& e) {
      // Fail-static never extends a validity: an indicator past its end is not enforced,
      // whether or not the feed can be reached today.
      if (Expired(e.valid_until, now)) return;
      if (NotYetValid(e.valid_from, now)) {
        NoteValidFrom(e.valid_from);
        return;
      }
      entries->builder.Add(e.prefix, static_cast<uint32_t>(i), e.valid_until);
    });
    if (!read.ok() || !read.value()) {
      // Gone or damaged since its header was read: the store said why (and set it aside).
      if (!read.ok()) LogWarning("state: " + read.message());
      entries->builder.Rollback(mark);
      snapshots_[i].reset();
      continue;
    }
    ++*with_snapshot;
  }
}

std::optional<size_t> Agent::LastGoodInForce(size_t i, int64_t now) {
  if (!snapshots_[i]) return std::nullopt;
  if (auto all = snapshots_[i]->AllInForce(now)) return all;
  size_t n = 0;
  auto read = state_->ReadSnapshot(sources_[i]->Name(), [&](const SnapshotEntry& e) {
    n += !Expired(e.valid_until, now) && !NotYetValid(e.valid_from, now);
  });
  if (!read.ok() || !read.value()) {
    // Damaged or gone since its header was read: not a baseline of zero (that would switch the
    // shrink guard off for this source), but none.
    if (!read.ok()) LogWarning("state: " + read.message());
    snapshots_[i].reset();
    return std::nullopt;
  }
  return n;
}

std::vector<SampleRange> PickSamples(const IntervalSet& set, size_t per_family) {
  std::vector<SampleRange> out;
  for (Family f : {Family::kV4, Family::kV6}) {
    const FamilyRanges& fr = set.of(f);
    const size_t n = fr.ranges.size();
    if (n == 0 || per_family == 0) continue;
    const size_t k = std::min(n, per_family);
    size_t last = SIZE_MAX;
    for (size_t j = 0; j < k; ++j) {
      size_t i = k == 1 ? 0 : j * (n - 1) / (k - 1);
      if (i == last) continue;
      last = i;
      out.push_back({f, fr.ranges[i], i < fr.expires.size() ? fr.expires[i] : 0});
    }
  }
  return out;
}

void Agent::NoteValidFrom(int64_t t) {
  if (next_valid_from_ == 0 || t < next_valid_from_) next_valid_from_ = t;
}

Policy Agent::BuildPolicy() const {
  Policy policy;
  policy.min_prefix_v4 = config_.sync.min_prefix_v4;
  policy.min_prefix_v6 = config_.sync.min_prefix_v6;
  return policy;
}

Agent::Built Agent::Build(Entries* entries, const std::vector<ProtectedAddress>& remembered) {
  Built b;
  // Each address expires at the latest validity covering it (0: never); with kernel timeouts
  // off the expiries are simply not sent.
  std::vector<Prefix> host_prefixes;
  b.host = host_->ProtectedAddresses();
  for (const auto& h : b.host) host_prefixes.push_back(h.prefix);
  for (const auto& h : remembered) host_prefixes.push_back(h.prefix);
  // What was carved out is named against the set before the carve-out.
  auto name_carve_outs = [&](const IntervalSet& merged) {
    std::set<std::string> noted;  // one line per carved-out prefix, whatever the reasons
    auto note = [&](const Prefix& p, const std::string& why) {
      if (Intersects(merged.of(p.family), Range{p.First(), p.Last()}) &&
          noted.insert(p.ToString()).second) {
        b.carved_out.push_back("not blocking " + p.ToString() + " (" + why + ")");
      }
    };
    for (const auto& p : config_.allowlist) note(p, "allowlisted");
    for (const auto& h : b.host) note(h.prefix, h.why);
    for (const auto& h : remembered) {
      note(h.prefix, h.why + ", as the host had it at the last good cycle");
    }
    IntervalSet protect = ProtectedRanges();
    for (Family f : {Family::kV4, Family::kV6}) {
      for (const auto& r : protect.of(f).ranges) {
        if (Intersects(merged.of(f), r)) {
          b.carved_out.push_back("not blocking " + FormatRange(f, r) +
                                 " (always protected: loopback, link-local, multicast, ...)");
        }
      }
    }
  };
  b.desired = BuildDesired(std::move(entries->builder),
                           NeverBlocked(config_.allowlist, host_prefixes), name_carve_outs);
  b.too_short = entries->stats.too_short;
  std::vector<std::string> refused;
  for (const auto& p : entries->stats.too_short_samples) {
    refused.push_back("refused " + p.ToString() + ": shorter than the minimum prefix length");
  }
  b.carved_out.insert(b.carved_out.begin(), refused.begin(), refused.end());
  return b;
}

Agent::Decision Agent::Decide() {
  const int64_t now = clock_->NowUnix();
  Decision d;
  CycleReport& r = d.report;
  r = last_;
  r.started_at = now;
  r.guard_reasons.clear();
  r.carved_out.clear();
  r.warnings.clear();
  r.applied = false;
  r.apply = ApplyResult{};
  r.apply_error.clear();
  r.next_valid_from = 0;
  next_valid_from_ = 0;

  LoadSnapshots();
  full_fetch_.assign(sources_.size(), true);
  for (size_t i = 0; i < sources_.size(); ++i) {
    FetchResult fr = FetchSource(i, now, &r.sources[i]);
    if (!fr.status.ok()) d.failures.push_back(r.sources[i].error);
    d.results.push_back(std::move(fr));
  }
  if (!d.failures.empty()) return d;

  std::vector<GuardSource> guard_sources;
  Entries entries(BuildPolicy());
  InForce(d.results, now, &r, &guard_sources, &entries);
  d.built = Build(&entries);
  r.carved_out = d.built.carved_out;
  r.desired_v4 = d.built.desired.v4.size();
  r.desired_v6 = d.built.desired.v6.size();

  GuardInput gi;
  gi.new_elements = d.built.desired.size();
  gi.previous_elements = PreviousElements(gi.new_elements);
  gi.have_previous = gi.previous_elements > 0;
  gi.max_shrink_percent = config_.sync.max_shrink_percent;
  gi.max_entries = config_.sync.max_entries;
  gi.sources = guard_sources;
  GuardVerdict verdict = CheckGuards(gi);
  d.guard_ok = verdict.ok;
  r.guard_reasons = verdict.reasons;
  return d;
}

// One source's fetch (its changes on top of the last good snapshot where it can), recorded in
// its report.
FetchResult Agent::FetchSource(size_t i, int64_t now, SourceReport* out) {
  SourceReport& s = *out;
  // Incremental sync: changes since the enforced snapshot was fetched, on top of it; a full
  // fetch every full_resync corrects any drift the changes could not carry.
  const SnapshotInfo* base = snapshots_[i] ? &*snapshots_[i] : nullptr;
  bool changes = sources_[i]->SupportsChanges() && base && base->fetched_at > 0 &&
                 s.last_full > 0 && now - s.last_full < config_.sync.full_resync.count();
  FetchResult fr = changes ? sources_[i]->FetchChanges(base->fetched_at) : sources_[i]->Fetch();
  bool merged = false;
  if (fr.status.ok() && fr.incremental && base) {
    // The base's entries are streamed from its file into the merge, never held whole.
    const size_t changed = fr.prefixes.size();
    Status read = Status::Ok();
    bool found = false;
    FetchResult whole = MergeChanges(
        [&](const SnapshotEntryFn& each) {
          auto r = state_->ReadSnapshot(sources_[i]->Name(), each);
          if (!r.ok()) read = r.status();
          found = r.ok() && r.value();
        },
        base->entries, std::move(fr));
    if (found) {
      fr = std::move(whole);
      merged = true;
      s.changes = changed;
    } else {
      // The base is gone: the changes alone are not the list. Fetch it whole instead.
      LogWarning("state: " +
                 (read.ok() ? "the last good list of " + sources_[i]->Name() + " is gone"
                            : read.message()) +
                 "; fetching the whole list");
      snapshots_[i].reset();
      fr = sources_[i]->Fetch();
    }
  }
  if (merged) {
    s.mode = "changes";
    full_fetch_[i] = false;
  } else {
    s.mode = "full";
    s.changes = 0;
  }
  s.name = sources_[i]->Name();
  s.last_attempt = now;
  s.ok = fr.status.ok();
  s.http_status = fr.http_status;
  s.pages = fr.pages;
  s.bytes = fr.bytes;
  s.seconds = fr.seconds;
  s.rejected = fr.stats.rejected;
  s.warnings = fr.stats.host_bits_cleared;
  s.rejected_samples = fr.stats.samples;
  KeepWidened(fr.stats.widened, !full_fetch_[i], &s.widened_samples);
  LogWidened(s.name, fr.stats);
  if (s.ok) {
    s.error.clear();
    s.error_class.clear();
    s.entries = fr.prefixes.size();
    s.last_success = now;
  } else {
    s.error = fr.status.message();
    s.error_class = FetchErrorName(fr.error);
  }
  return fr;
}

void Agent::InForce(const std::vector<FetchResult>& results, int64_t now, CycleReport* r,
                    std::vector<GuardSource>* guard_sources, Entries* entries) {
  size_t v4 = 0, v6 = 0;
  for (const auto& fr : results) {
    for (const Prefix& p : fr.prefixes) ++(p.family == Family::kV4 ? v4 : v6);
  }
  entries->builder.Reserve(v4, v6);
  for (size_t i = 0; i < results.size(); ++i) {
    const FetchResult& fr = results[i];
    size_t kept = 0, expired = 0, not_yet = 0;
    for (size_t j = 0; j < fr.prefixes.size(); ++j) {
      if (j < fr.valid_until.size() && Expired(fr.valid_until[j], now)) {
        ++expired;
        continue;
      }
      if (j < fr.valid_from.size() && NotYetValid(fr.valid_from[j], now)) {
        ++not_yet;
        NoteValidFrom(fr.valid_from[j]);
        continue;
      }
      int64_t until = j < fr.valid_until.size() ? fr.valid_until[j] : kNeverExpires;
      entries->builder.Add(fr.prefixes[j], static_cast<uint32_t>(i), until);
      ++kept;
    }
    r->sources[i].expired = expired;
    r->sources[i].not_yet_valid = not_yet;
    GuardSource g;
    g.name = r->sources[i].name;
    g.entries = kept;
    // The baseline is the last good list as it stands now (what expired since is no shrink);
    // without a snapshot, what the state remembers of the source's last fetch.
    if (std::optional<size_t> in_force = LastGoodInForce(i, now)) {
      g.previous_entries = *in_force;
    } else if (i < last_.sources.size() && last_.sources[i].last_success > 0) {
      g.previous_entries = last_.sources[i].entries;
    }
    guard_sources->push_back(g);
  }
}

size_t Agent::PreviousElements(size_t new_elements) {
  const size_t remembered = last_.enforced_elements;
  auto shrinks_too_much = [&](size_t prev) {
    return prev > new_elements &&
           (prev - new_elements) * 100 > uint64_t{config_.sync.max_shrink_percent} * prev;
  };
  if (remembered > 0 && !shrinks_too_much(remembered)) return remembered;
  // Either the state does not say (state.json lost or damaged: the guard must not switch off
  // with it), or the guard is about to refuse: take the baseline from the snapshots as they
  // stand now, so that indicators that expired since are not counted as a shrink.
  size_t with_snapshot = 0;
  Entries entries(BuildPolicy());
  LastGoodEntries(&entries, &with_snapshot);
  if (with_snapshot > 0) return Build(&entries).desired.size();
  if (remembered > 0) return remembered;
  // No state and no snapshot, but the kernel may still hold a list iocwall enforced (the
  // state directory was wiped): that is the baseline. A dump, but only on this rare path.
  SeedBackend();
  KernelStatus ks;
  if (backend_->ReadStatus(&ks).ok() && ks.table_present && ks.table_owned) {
    IntervalSet current;
    if (backend_->ReadElements(&current).ok()) return current.size();
  }
  return 0;
}

void Agent::RecordCommit(const IntervalSet& desired, const ApplyResult& ar, CycleReport* r) {
  // Enough to catch a flushed or replaced set with certainty and a partial change with good
  // odds, while --status stays a few hundred non-dump lookups at any size.
  constexpr size_t kSamplesPerFamily = 32;
  CommitRecord c;
  c.table = config_.nft.table;
  c.generation = ar.generation;
  c.at = clock_->NowUnix();
  c.v4 = desired.v4.size();
  c.v6 = desired.v6.size();
  c.samples = PickSamples(desired, kSamplesPerFamily);
  KernelStatus ks;
  if (backend_->ReadStatus(&ks).ok()) {
    c.table_handle = ks.table_handle;
    c.boot_id = ks.boot_id;
    c.netns = ks.netns;
  }
  // A table enforced under a previous name is now stale: remove it (RemoveStaleTables).
  if (r->committed && r->committed->table != c.table &&
      std::find(r->stale_tables.begin(), r->stale_tables.end(), r->committed->table) ==
          r->stale_tables.end()) {
    r->stale_tables.push_back(r->committed->table);
  }
  r->committed = std::move(c);
  RemoveStaleTables(r);
  if (const AppliedCopy* a = backend_->Applied(); a && a->generation != saved_applied_generation_) {
    Status s = state_->SaveApplied(*a);
    if (s.ok()) {
      saved_applied_generation_ = a->generation;
    } else {
      r->warnings.push_back("state: cannot save the copy of the last commit: " + s.message() +
                            " (the next start reads the kernel instead)");
    }
  }
}

void Agent::RemoveStaleTables(CycleReport* r) {
  std::vector<std::string> left;
  for (const std::string& t : r->stale_tables) {
    if (t == config_.nft.table) continue;
    bool removed = false;
    Status s = backend_->RemoveTable(t, &removed);
    if (!s.ok()) {
      r->warnings.push_back("table inet " + t + ", enforced under a previous [nftables] table " +
                            "name, is still there: " + s.message());
      left.push_back(t);
    } else if (removed) {
      r->summary += "; removed table inet " + t + " of the previous configuration";
    }
  }
  r->stale_tables = std::move(left);
}

CycleReport Agent::RunCycle(bool force) {
  const auto t0 = clock_->Now();
  Decision d = Decide();
  CycleReport r = std::move(d.report);
  const int64_t now = r.started_at;

  if (!d.failures.empty()) {
    std::string why = d.failures.front();
    if (d.failures.size() > 1) why += " (and " + std::to_string(d.failures.size() - 1) + " more)";
    r.outcome = Outcome::kKeptLastGood;
    r = EnforceLastGood(std::move(r), why);
    r.seconds = SecondsSince(clock_, t0);
    Finish(&r);
    return r;
  }
  if (!d.guard_ok) {
    if (!force) {
      r.outcome = Outcome::kGuardRefused;
      // Built before the call: the parameter may be moved from r before this argument is
      // evaluated (clang initializes parameters left to right; UBSan caught it).
      std::string why = "guard refused the fresh list: " + r.guard_reasons.front();
      r = EnforceLastGood(std::move(r), why);
      r.seconds = SecondsSince(clock_, t0);
      Finish(&r);
      return r;
    }
    LogWarning("guard overridden by --force: " + r.guard_reasons.front());
  }

  // Where a cycle's time goes, at debug level (-v): what an operator measuring a large list
  // needs first.
  std::string timing = "timing: fetch and build " + Seconds(SecondsSince(clock_, t0));
  auto lap = [&, last = clock_->Now()](const char* what) mutable {
    timing += std::string(", ") + what + " " +
              Seconds(std::chrono::duration<double>(clock_->Now() - last).count());
    last = clock_->Now();
  };
  const std::vector<FetchDigest> digests = DigestFetches(&d.results);
  lap("digests");
  const IntervalSet& desired = d.built.desired;
  ApplyResult ar;
  SeedBackend();
  // The changed lists are written aside on another thread while the kernel commits (their sort
  // and file are off the kernel's path), and put in place only if the kernel took the list.
  // The thread reads the results, the snapshots' headers and the store; nothing here touches
  // them until it is joined.
  std::future<std::vector<SnapshotWrite>> writing =
      std::async(std::launch::async, [&] { return PrepareSnapshots(d.results, digests, now); });
  Status s = backend_->Reconcile(desired, &ar);
  lap("kernel");
  std::vector<SnapshotWrite> writes = writing.get();
  lap("then snapshots");
  r.apply = ar;
  if (!s.ok()) {
    r.outcome = Outcome::kFailed;
    r.apply_error = s.message();
    r.summary = "the kernel refused the update, it keeps what it had: " + s.message();
  } else {
    r.outcome = Outcome::kEnforcedFresh;
    r.applied = true;
    r.last_apply_at = now;
    r.enforced_fetched_at = now;
    r.enforced_elements = desired.size();
    r.host_protected = d.built.host;
    r.summary =
        "enforcing the fresh list: " + std::to_string(r.desired_v4) + " IPv4 + " +
        std::to_string(r.desired_v6) + " IPv6 elements (+" + std::to_string(ar.added) + " -" +
        std::to_string(ar.removed) +
        (ar.refreshed ? ", " + Count(ar.refreshed, "validity", "validities") + " extended" : "") +
        (ar.messages == 0 ? ", kernel already up to date" : ", one transaction") +
        (ar.bootstrapped ? ", table created" : "") +
        (ar.repaired ? ", drift repaired: " + ar.repair_reason : "") + ")";
    if (!d.guard_ok) r.summary += "; accepted with --force over: " + r.guard_reasons.front();
    d.results.clear();  // the thread is done with the fetched lists
    RecordCommit(desired, ar, &r);
    CommitSnapshots(std::move(writes), digests, now, &r);
    lap("commit records");
  }
  LogDebug(timing);
  r.seconds = SecondsSince(clock_, t0);
  Finish(&r);
  return r;
}

CycleReport Agent::EnforceLastGood(CycleReport r, const std::string& why) {
  size_t with_snapshot = 0;
  Entries entries(BuildPolicy());
  LastGoodEntries(&entries, &with_snapshot);
  if (with_snapshot == 0) {
    // Never fetched anything: there is no list to stand on. Leave the kernel exactly as it
    // is rather than enforce an empty list (which would remove what someone else put there).
    r.summary = why + "; no last good list yet: the kernel was left as it is";
    if (r.outcome == Outcome::kKeptLastGood) r.outcome = Outcome::kNothing;
    return r;
  }
  Built b = Build(&entries, restoring_ ? last_.host_protected : std::vector<ProtectedAddress>{});
  ApplyResult ar;
  SeedBackend();
  Status s = backend_->Reconcile(b.desired, &ar);
  r.apply = ar;
  if (!s.ok()) {
    r.apply_error = s.message();
    r.summary = why + "; and the last good list could not be enforced: " + s.message();
    return r;
  }
  r.enforced_elements = b.desired.size();
  if (!restoring_) r.host_protected = b.host;
  RecordCommit(b.desired, ar, &r);
  r.applied = ar.messages > 0;
  if (r.applied) r.last_apply_at = r.started_at;
  std::string kernel =
      ar.messages == 0  ? ""
      : ar.bootstrapped ? " (restored into the kernel)"
      : ar.repaired     ? " (drift repaired: " + ar.repair_reason + ")"
                    : " (+" + std::to_string(ar.added) + " -" + std::to_string(ar.removed) + ")";
  r.summary = why + "; the last good list stays enforced: " +
              Count(b.desired.size(), "element", "elements") + kernel;
  return r;
}

CycleReport Agent::Restore() {
  const auto t0 = clock_->Now();
  next_valid_from_ = 0;
  CycleReport r = last_;
  r.started_at = clock_->NowUnix();
  r.guard_reasons.clear();
  r.warnings.clear();
  r.outcome = Outcome::kKeptLastGood;
  if (!last_.host_protected.empty()) {
    // Early in boot the interfaces are not configured yet: the host's own addresses and
    // gateways are not known from the host, so the ones of the last good cycle are kept out.
    std::string list;
    for (const auto& h : last_.host_protected)
      list += (list.empty() ? "" : ", ") + h.prefix.ToString();
    LogInfo(
        "restore: also leaving out the host's addresses and gateways of the last good "
        "cycle: " +
        list);
  }
  restoring_ = true;
  r = EnforceLastGood(std::move(r), "restore");
  restoring_ = false;
  if (r.outcome == Outcome::kNothing) {
    r.summary = "restore: no last good list in " + config_.sync.state_dir + ": nothing enforced";
  } else if (!r.apply_error.empty()) {
    r.outcome = Outcome::kFailed;
  }
  r.seconds = SecondsSince(clock_, t0);
  Finish(&r);
  return r;
}

namespace {

// A fetch's entries in snapshot order: sorted by prefix, a prefix listed twice merged into one
// entry (in force from its earliest start until its latest end), ids kept for provenance.
class SnapshotOrder {
 public:
  SnapshotOrder(const FetchResult& fr, int64_t now) : fr_(fr), now_(now) {
    size_t n4 = 0;
    for (const Prefix& p : fr.prefixes) n4 += p.family == Family::kV4;
    v4_.reserve(n4);
    v6_.reserve(fr.prefixes.size() - n4);
    for (uint32_t j = 0; j < fr.prefixes.size(); ++j) {
      const Prefix& p = fr.prefixes[j];
      if (p.family == Family::kV4) {
        v4_.push_back({(static_cast<uint64_t>(p.addr) << 8) | p.len, j});
      } else {
        v6_.push_back(
            {static_cast<uint64_t>(p.addr >> 64), static_cast<uint64_t>(p.addr), j, p.len});
      }
    }
    std::sort(v4_.begin(), v4_.end());
    std::sort(v6_.begin(), v6_.end());
  }

  // Back to the first entry (the list is sorted once and walked as often as needed).
  void Restart() { k4_ = k6_ = 0; }

  // The next entry (first_seen = now), IPv4 before IPv6 as PrefixLess orders them; false
  // after the last.
  bool Next(SnapshotEntry* e) { return NextOf(v4_, &k4_, e) || NextOf(v6_, &k6_, e); }

 private:
  // Sorted as small contiguous keys (16 bytes for IPv4, 24 for IPv6): sorting a million entries
  // that each hold a string (or an index into them) was most of an unchanged cycle's time.
  // Equal prefixes keep feed order (the index breaks the tie).
  struct Key4 {
    uint64_t addr_len;  // address << 8 | prefix length
    uint32_t index;
    Prefix prefix() const {
      return Prefix(Family::kV4, u128{addr_len >> 8}, static_cast<uint8_t>(addr_len & 0xff));
    }
    bool SamePrefix(const Key4& o) const { return addr_len == o.addr_len; }
    bool operator<(const Key4& o) const {
      return std::tie(addr_len, index) < std::tie(o.addr_len, o.index);
    }
  };
  struct Key6 {
    uint64_t hi;
    uint64_t lo;
    uint32_t index;
    uint8_t len;
    Prefix prefix() const { return Prefix(Family::kV6, (u128{hi} << 64) | lo, len); }
    bool SamePrefix(const Key6& o) const { return hi == o.hi && lo == o.lo && len == o.len; }
    bool operator<(const Key6& o) const {
      return std::tie(hi, lo, len, index) < std::tie(o.hi, o.lo, o.len, o.index);
    }
  };

  template <typename Key>
  bool NextOf(const std::vector<Key>& order, size_t* k, SnapshotEntry* e) {
    if (*k >= order.size()) return false;
    // The prefix comes from the key: the fetched list is not touched at random (a cache miss
    // per entry) unless it has validities or ids.
    const Key& key = order[(*k)++];
    const uint32_t j = key.index;
    e->prefix = key.prefix();
    e->first_seen = now_;
    e->valid_until = Until(j);
    e->valid_from = From(j);
    e->id.clear();
    // An id is one token in the snapshot format; STIX ids never hold white space.
    if (j < fr_.ids.size()) {
      std::string id = fr_.ids[j];
      if (id.find_first_of(" \t\r\n") == std::string::npos) e->id = id.substr(0, 200);
    }
    while (*k < order.size() && order[*k].SamePrefix(key)) {
      const uint32_t d = order[(*k)++].index;
      e->valid_from = std::min(e->valid_from, From(d));
      e->valid_until = LaterExpiry(e->valid_until, Until(d));
    }
    return true;
  }
  int64_t Until(uint32_t j) const { return j < fr_.valid_until.size() ? fr_.valid_until[j] : 0; }
  int64_t From(uint32_t j) const { return j < fr_.valid_from.size() ? fr_.valid_from[j] : 0; }

  const FetchResult& fr_;
  int64_t now_;
  std::vector<Key4> v4_;
  std::vector<Key6> v6_;
  size_t k4_ = 0;
  size_t k6_ = 0;
};

FetchDigest NewDigestKey() {
  FetchDigest key;
  uint64_t k[2] = {0, 0};
  // A weak key only makes an unchanged fetch cheaper to fake, never a list wrong: without
  // getrandom the clock and the address of a local still differ per run.
  if (getrandom(k, sizeof k, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof k)) {
    k[0] = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    k[1] = reinterpret_cast<uintptr_t>(&key) ^ 0x9e3779b97f4a7c15ull;
  }
  key.k0 = k[0];
  key.k1 = k[1] | 1;  // never both zero: zero means unknown
  return key;
}

}  // namespace

FetchDigest FetchDigestOf(const FetchResult& fr, const FetchDigest& key) {
  SipHash h(key.k0, key.k1);
  const size_t n = fr.prefixes.size();
  for (size_t j = 0; j < n; ++j) {
    const Prefix& p = fr.prefixes[j];
    h.AddWord((static_cast<uint64_t>(p.family) << 8) | p.len);
    h.AddWord(static_cast<uint64_t>(p.addr >> 64));
    h.AddWord(static_cast<uint64_t>(p.addr));
    h.AddWord(static_cast<uint64_t>(j < fr.valid_until.size() ? fr.valid_until[j] : 0));
    h.AddWord(static_cast<uint64_t>(j < fr.valid_from.size() ? fr.valid_from[j] : 0));
    if (j < fr.ids.size()) {
      const std::string id = fr.ids[j];
      h.AddWord(id.size());
      h.AddBytes(id);
    } else {
      h.AddWord(~uint64_t{0});  // no id at all, unlike an empty one
    }
  }
  h.AddWord(n);
  FetchDigest d = key;
  d.value = h.Finish();
  return d;
}

std::vector<FetchDigest> Agent::DigestFetches(std::vector<FetchResult>* results) {
  std::vector<FetchDigest> digests;
  for (size_t i = 0; i < results->size(); ++i) {
    const std::optional<SnapshotInfo>& old = snapshots_[i];
    const bool keyed = old && old->digest.known();
    digests.push_back(FetchDigestOf((*results)[i], keyed ? old->digest : NewDigestKey()));
    if (keyed && old->digest == digests.back()) {
      // Nothing of this list will be written: let it go before the kernel's copy is read.
      FetchResult& fr = (*results)[i];
      std::vector<Prefix>().swap(fr.prefixes);
      std::vector<int64_t>().swap(fr.valid_until);
      std::vector<int64_t>().swap(fr.valid_from);
      fr.ids = IdList();
    }
  }
  return digests;
}

bool Agent::Unchanged(size_t i, const std::vector<FetchDigest>& digests) const {
  return snapshots_[i] && snapshots_[i]->digest.known() && snapshots_[i]->digest == digests[i];
}

std::vector<Agent::SnapshotWrite> Agent::PrepareSnapshots(const std::vector<FetchResult>& results,
                                                          const std::vector<FetchDigest>& digests,
                                                          int64_t now) const {
  std::vector<SnapshotWrite> writes;
  for (size_t i = 0; i < results.size(); ++i) {
    if (Unchanged(i, digests)) continue;
    const std::optional<SnapshotInfo>& old = snapshots_[i];
    // Two passes over the sorted fetch: the header's counts, then the entries, streamed to the
    // file with the first_seen of the old list carried over (a merge of two sorted lists: the
    // old one is read from its file, never held).
    SnapshotWrite w;
    w.source = i;
    SnapshotInfo& info = w.info;
    info.source = sources_[i]->Name();
    info.fetched_at = now;
    info.digest = digests[i];
    const auto t0 = std::chrono::steady_clock::now();
    SnapshotOrder fresh(results[i], now);
    SnapshotEntry e;
    while (fresh.Next(&e)) {
      ++info.entries;
      if (e.valid_until != 0 && (info.earliest_until == 0 || e.valid_until < info.earliest_until)) {
        info.earliest_until = e.valid_until;
      }
      info.latest_from = std::max(info.latest_from, e.valid_from);
    }
    auto pending = state_->PrepareSnapshot(info, [&](const SnapshotEntryFn& each) {
      fresh.Restart();
      SnapshotEntry next;
      bool more = fresh.Next(&next);
      if (old) {
        auto read = state_->ReadSnapshot(info.source, [&](const SnapshotEntry& o) {
          while (more && PrefixLess(next.prefix, o.prefix)) {
            each(next);
            more = fresh.Next(&next);
          }
          if (more && next.prefix == o.prefix) next.first_seen = o.first_seen;
        });
        if (!read.ok()) LogWarning("state: " + read.message());
      }
      while (more) {
        each(next);
        more = fresh.Next(&next);
      }
    });
    LogDebug("state: the last good list of " + info.source + " written aside (" +
             Count(info.entries, "entry", "entries") + ") in " +
             Seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    if (pending.ok()) {
      w.pending = std::move(pending.value());
    } else {
      w.status = pending.status();
    }
    writes.push_back(std::move(w));
  }
  return writes;
}

void Agent::CommitSnapshots(std::vector<SnapshotWrite> writes,
                            const std::vector<FetchDigest>& digests, int64_t now, CycleReport* r) {
  for (size_t i = 0; i < snapshots_.size(); ++i) {
    if (i < full_fetch_.size() && full_fetch_[i]) r->sources[i].last_full = now;
    // The same list as the one on disk: nothing was written (the file's fetched_at is only the
    // base of the next changes fetch after a restart, and an older base is merely wider).
    if (Unchanged(i, digests)) snapshots_[i]->fetched_at = now;
  }
  for (SnapshotWrite& w : writes) {
    Status s = w.pending ? w.pending->Commit() : w.status;
    if (!s.ok()) {
      r->warnings.push_back("state: cannot save the last good list of " + w.info.source + ": " +
                            s.message() + " (enforcement continues; a restore would use an " +
                            "older list)");
      // What is on disk is still the old list (or nothing): its header stays the truth.
      continue;
    }
    snapshots_[w.source] = std::move(w.info);
  }
}

void Agent::Finish(CycleReport* r) {
  r->next_valid_from = next_valid_from_;
  last_ = *r;
  Status s = state_->SaveReport(ReportToJson(*r));
  if (!s.ok()) {
    r->warnings.push_back("state: cannot save the cycle report: " + s.message());
    last_.warnings = r->warnings;
  }
  LogLevel level = r->outcome == Outcome::kEnforcedFresh ? LogLevel::kInfo
                   : r->outcome == Outcome::kFailed      ? LogLevel::kError
                                                         : LogLevel::kWarning;
  Log(level, "cycle " + std::string(OutcomeName(r->outcome)) + ": " + r->summary);
  for (const auto& w : r->warnings) LogWarning(w);
  std::vector<std::string> notes = r->carved_out;
  for (const auto& s : r->sources) {
    if (s.rejected > 0) {
      std::string ex = s.rejected_samples.empty()
                           ? ""
                           : " (e.g. line " + std::to_string(s.rejected_samples[0].line_no) + " '" +
                                 s.rejected_samples[0].text + "': " + s.rejected_samples[0].reason +
                                 ")";
      notes.push_back(s.name + ": skipped " + Count(s.rejected, "line that is", "lines that are") +
                      " not an IP address" + ex);
    }
  }
  // A daemon repeating the same notes every cycle fills the journal (about 2,000 identical
  // lines a day at a 5 minute interval): a note is logged when it is new, and the ones that
  // merely continue are counted in one line (all of them at debug level, -v).
  size_t repeated = 0;
  for (const auto& n : notes) {
    if (std::find(logged_notes_.begin(), logged_notes_.end(), n) != logged_notes_.end()) {
      ++repeated;
      LogDebug(n);
    } else {
      LogNotice(n);
    }
  }
  if (repeated > 0) {
    LogDebug(Count(repeated, "note", "notes") + " unchanged since the last cycle");
  }
  logged_notes_ = std::move(notes);
}

Result<Plan> Agent::DryRun(bool force) {
  Plan plan;
  // The state the real cycle would start from; nothing of it is written back.
  const CycleReport saved = last_;
  Decision d = Decide();
  last_ = saved;
  plan.sources = d.report.sources;
  plan.carved_out = d.report.carved_out;
  plan.guard_reasons = d.report.guard_reasons;
  KernelStatus ks;
  SeedBackend();
  Status s = backend_->ReadStatus(&ks);
  if (!s.ok()) return s.Wrap("dry run: reading the kernel");
  if (ks.table_present && !ks.table_owned) {
    plan.table_error = "table inet " + config_.nft.table +
                       " exists but was not created by iocwall: the cycle would change nothing "
                       "and fail (see iocwall(8), OWNERSHIP)";
  }
  std::string why;
  if (!d.failures.empty()) {
    why = d.failures.front();
    plan.outcome = Outcome::kKeptLastGood;
  } else if (!d.guard_ok && !force) {
    why = "guard refused the fresh list: " + d.report.guard_reasons.front();
    plan.outcome = Outcome::kGuardRefused;
  }
  if (plan.outcome == Outcome::kKeptLastGood || plan.outcome == Outcome::kGuardRefused) {
    size_t with_snapshot = 0;
    Entries entries(BuildPolicy());
    LastGoodEntries(&entries, &with_snapshot);
    if (with_snapshot == 0) {
      plan.outcome = Outcome::kNothing;
      plan.summary = why + "; no last good list yet: the kernel would be left as it is";
      plan.table_present = ks.table_present;
      return plan;
    }
    plan.desired = Build(&entries).desired;
    plan.summary = why + "; the last good list would stay enforced";
  } else {
    plan.outcome = Outcome::kEnforcedFresh;
    plan.forced = !d.guard_ok;
    plan.desired = std::move(d.built.desired);
    plan.summary = "the fresh list would be enforced";
  }
  if (!plan.table_error.empty()) plan.outcome = Outcome::kFailed;
  plan.table_present = ks.table_present && ks.sets_present && ks.table_owned;
  IntervalSet current;
  if (plan.table_present) {
    s = backend_->ReadElements(&current);
    if (!s.ok()) return s.Wrap("dry run: reading the kernel sets");
  }
  plan.diff = Diff(current, plan.desired);
  return plan;
}

}  // namespace iocwall
