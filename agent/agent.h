// The agent: one sync cycle from the sources through the core to the kernel, with fail-static
// behaviour (a failed fetch or a refused result keeps the last good list enforced, restoring
// it if the kernel lost it), the guards, and the state that --status and --restore read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/host_info.h"
#include "agent/state.h"
#include "core/clock.h"
#include "core/interval_set.h"
#include "core/timed.h"
#include "feeds/source.h"
#include "netlink/set_backend.h"

namespace iocwall {

struct GuardSource;

// What one source did in the last cycle, plus what is remembered across cycles.
struct SourceReport {
  std::string name;
  bool ok = false;
  std::string error;        // operator-readable, no secret
  std::string error_class;  // FetchErrorName()
  int http_status = 0;
  size_t entries = 0;        // accepted entries in the last successful fetch
  size_t rejected = 0;       // rejected lines in the last fetch
  size_t warnings = 0;       // host bits cleared
  size_t expired = 0;        // entries past their valid_until, not enforced
  size_t not_yet_valid = 0;  // entries whose valid_from is still ahead, not enforced yet
  size_t pages = 0;
  size_t bytes = 0;
  double seconds = 0;
  int64_t last_attempt = 0;
  int64_t last_success = 0;
  int64_t last_full = 0;  // when the enforced snapshot last came from a full fetch
  std::string mode;       // "full" or "changes" (incremental, format=json)
  size_t changes = 0;     // indicators in the last changes fetch
  std::vector<RejectedLine> rejected_samples;
  // Entries the feed wrote with host bits set, in its own words: --explain echoes them.
  std::vector<WidenedLine> widened_samples;
};

// One range of the enforced list that --status looks up in the kernel to verify it.
struct SampleRange {
  Family family = Family::kV4;
  Range range;
  int64_t expires = 0;  // 0: permanent
};

// What iocwall last committed to the kernel (or found already there), kept with the report so
// that --status, in another process, can tell whether the kernel still holds it without a dump:
// the generation says whether anything changed since; the samples are looked up one by one.
struct CommitRecord {
  std::string table;
  uint32_t generation = 0;  // the ruleset generation right after the commit
  uint64_t table_handle = 0;
  std::string boot_id;  // generations start again at each boot and in each namespace
  uint64_t netns = 0;
  int64_t at = 0;
  size_t v4 = 0;  // kernel elements of the list enforced
  size_t v6 = 0;
  std::vector<SampleRange> samples;
};

// Up to `per_family` ranges of each family, spread evenly, the first and last included. Pure.
std::vector<SampleRange> PickSamples(const IntervalSet& set, size_t per_family);

enum class Outcome {
  kEnforcedFresh,  // every source fetched, the fresh list is in the kernel
  kKeptLastGood,   // a source failed: the last good list stays enforced
  kGuardRefused,   // a guard refused the fresh result: the last good list stays enforced
  kFailed,         // the kernel could not be updated (it kept what it had)
  kNothing,        // nothing was ever fetched: the kernel was left alone
};
const char* OutcomeName(Outcome o);

struct CycleReport {
  Outcome outcome = Outcome::kNothing;
  std::string summary;  // one line for the log
  int64_t started_at = 0;
  double seconds = 0;
  std::vector<SourceReport> sources;
  std::vector<std::string> guard_reasons;
  std::vector<std::string> carved_out;  // feed entries not blocked because they are protected
  std::vector<std::string> warnings;    // e.g. state could not be saved
  size_t desired_v4 = 0;
  size_t desired_v6 = 0;
  bool applied = false;
  ApplyResult apply;
  std::string apply_error;
  int64_t enforced_fetched_at = 0;  // when the enforced list was fetched (its age)
  size_t enforced_elements = 0;     // kernel elements of the enforced list
  int64_t last_apply_at = 0;
  std::optional<CommitRecord> committed;
  // The host's own addresses and gateways that the last enforced list left out: --restore,
  // early in boot before they are configured, leaves them out too.
  std::vector<ProtectedAddress> host_protected;
  // Tables iocwall created under a previous [nftables] table name and could not remove yet.
  std::vector<std::string> stale_tables;
  // The earliest valid_from still ahead among the entries (0: none): the daemon syncs then.
  int64_t next_valid_from = 0;
};

// Applies a changes fetch (created, modified, revoked or expired indicators) to the last full
// snapshot of the source, giving the whole list as a full fetch would. Indicators are matched
// by id where the feed gives one, else by prefix. Pure.
FetchResult MergeChanges(const Snapshot& base, FetchResult changes);
// The same with the snapshot's entries streamed (`base_hint`: about how many), so that a large
// last good list is never held whole beside the merge.
FetchResult MergeChanges(const SnapshotEntries& base, size_t base_hint, FetchResult changes);

// A keyed digest (SipHash-2-4 under `key`'s k0, k1) of everything of `fr` that a snapshot
// keeps (prefixes, validities, ids), in feed order: the same fetch again gives the same value.
FetchDigest FetchDigestOf(const FetchResult& fr, const FetchDigest& key);

// The plan printed by --dry-run: what RunCycle would do, short of committing it.
struct Plan {
  Outcome outcome = Outcome::kNothing;  // what the cycle would report
  std::string summary;                  // why
  IntervalSet desired;                  // what the kernel would hold
  SetDiff diff;                         // against what it holds now
  bool table_present = false;
  std::string table_error;  // the table exists but iocwall did not create it
  std::vector<SourceReport> sources;
  std::vector<std::string> guard_reasons;
  std::vector<std::string> carved_out;
  bool forced = false;  // a guard refused and --force overrides it
};

class Agent {
 public:
  Agent(Config config, std::vector<std::unique_ptr<Source>> sources, SetBackend* backend,
        StateStore* state, HostInfo* host, Clock* clock);

  // Loads the remembered state (last report, snapshots). Problems are reported, not fatal.
  void LoadState();

  // One cycle. `force` accepts a result that a guard refused.
  CycleReport RunCycle(bool force);

  // Enforces the last good lists from the state directory, without any network.
  CycleReport Restore();

  // The cycle minus the commit: the same fetch, guards and decisions, changing nothing (no
  // kernel change, no state written). An error only when the kernel cannot be read.
  Result<Plan> DryRun(bool force);

  const CycleReport& last_report() const { return last_; }

 private:
  struct Built {
    IntervalSet desired;
    std::vector<std::string> carved_out;
    size_t too_short = 0;
    std::vector<ProtectedAddress> host;  // the host's addresses left out
  };
  // The entries a list is built from, collected straight into the core's compact form (no
  // copy of the list: a million entries tagged one by one were 48 MB more at peak).
  struct Entries {
    // The set's source masks are not kept: nothing downstream reads them (provenance is in the
    // snapshots), and they are 8 MB at a million.
    explicit Entries(const Policy& policy) : builder(policy, &stats) { builder.DropSources(); }
    Entries(const Entries&) = delete;
    Entries& operator=(const Entries&) = delete;
    NormaliseStats stats;  // before builder: it counts into it
    TimedBuilder builder;
  };
  Policy BuildPolicy() const;
  // Sources' entries (tagged with their index) -> what the kernel must hold. `remembered`:
  // host addresses to leave out besides the ones the host has now (restore, early in boot).
  Built Build(Entries* entries, const std::vector<ProtectedAddress>& remembered = {});
  // Everything a cycle decides before it touches the kernel; RunCycle and DryRun share it.
  struct Decision {
    CycleReport report;  // sources, carve-outs, guard reasons filled
    std::vector<FetchResult> results;
    std::vector<std::string> failures;  // a source failed: the last good list stays
    Built built;
    bool guard_ok = true;
  };
  Decision Decide();
  FetchResult FetchSource(size_t index, int64_t now, SourceReport* report);
  // The fetched entries valid now, tagged with their source's index; counts the others in the
  // sources' reports and gives the guards their figures.
  void InForce(const std::vector<FetchResult>& results, int64_t now, CycleReport* report,
               std::vector<GuardSource>* guard_sources, Entries* entries);
  // The guards' baseline: elements the last good list holds now.
  size_t PreviousElements(size_t new_elements);
  void RecordCommit(const IntervalSet& desired, const ApplyResult& ar, CycleReport* r);
  void RemoveStaleTables(CycleReport* r);
  // Entries of the last good snapshots that are still valid now.
  void LastGoodEntries(Entries* entries, size_t* sources_with_snapshot);
  // Reads each source's snapshot header once per process. The entries are read from the file
  // only when a cycle needs them (a changed fetch, a failure, a restore): an unchanged cycle
  // recognises its fetch by the digest and needs no more.
  void LoadSnapshots();
  // The number of entries of source i's last good list in force at `now`; nullopt when it has
  // no usable one (the guard then takes what the state remembers of the source).
  std::optional<size_t> LastGoodInForce(size_t i, int64_t now);
  CycleReport EnforceLastGood(CycleReport report, const std::string& why);
  // Hands the backend the copy of the last commit (applied.state), once per process, just
  // before its first use.
  void SeedBackend();
  void Finish(CycleReport* report);
  // Each fetch's digest under its snapshot's key (a new key where there is none); a fetch
  // identical to its snapshot has its entries released, as nothing of it is written.
  std::vector<FetchDigest> DigestFetches(std::vector<FetchResult>* results);
  // Whether source i's fetch is the list its snapshot holds.
  bool Unchanged(size_t i, const std::vector<FetchDigest>& digests) const;
  // A changed list written aside, to be put in place once the kernel holds it.
  struct SnapshotWrite {
    size_t source = 0;
    SnapshotInfo info;
    std::unique_ptr<PendingSnapshot> pending;  // null: the write failed (status says why)
    Status status = Status::Ok();
  };
  // Reads only the results, the snapshots' headers and the store: run on its own thread while
  // the kernel commits.
  std::vector<SnapshotWrite> PrepareSnapshots(const std::vector<FetchResult>& results,
                                              const std::vector<FetchDigest>& digests,
                                              int64_t now) const;
  // Puts the written lists in place (the kernel took them) and notes the unchanged ones.
  void CommitSnapshots(std::vector<SnapshotWrite> writes, const std::vector<FetchDigest>& digests,
                       int64_t now, CycleReport* report);
  SourceReport& SourceState(const std::string& name);

  Config config_;
  std::vector<std::unique_ptr<Source>> sources_;
  SetBackend* backend_;
  StateStore* state_;
  HostInfo* host_;
  Clock* clock_;
  CycleReport last_;
  // Headers of the last good snapshots by source index; loaded lazily from the state store.
  std::vector<std::optional<SnapshotInfo>> snapshots_;
  bool snapshots_loaded_ = false;
  bool seeded_ = false;
  bool restoring_ = false;
  uint32_t saved_applied_generation_ = 0;  // of the copy in the state directory
  int64_t next_valid_from_ = 0;            // earliest valid_from still ahead, this cycle
  std::vector<std::string> logged_notes_;  // notes of the last cycle, logged once
  void NoteValidFrom(int64_t t);           // Restore()
                                           // is under way: remembered host addresses apply
  std::vector<bool> full_fetch_;           // per source, in the cycle under way
};

}  // namespace iocwall
