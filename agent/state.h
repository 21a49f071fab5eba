// State under state_dir: the last good list of each source (what was enforced, so that it can
// be restored with no network after a reboot) and the last cycle's report. Behind an
// interface so that the agent is tested with an in-memory fake.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/prefix.h"
#include "core/status.h"
#include "netlink/set_backend.h"

namespace iocwall {

struct SnapshotEntry {
  Prefix prefix;
  int64_t first_seen = 0;   // Unix time iocwall first saw this entry in the source
  int64_t valid_until = 0;  // Unix time the indicator stops being valid; 0: no end
  std::string id;           // the indicator's id (format=json), empty when unknown
  int64_t valid_from = 0;   // Unix time the indicator starts to be valid; 0: already
  bool operator==(const SnapshotEntry&) const = default;
};

// A keyed digest of the fetch a snapshot was made from (FetchDigestOf in agent.h): the same
// fetch again has the same digest, so an unchanged cycle needs neither the snapshot's entries
// nor a new file. The key is random, made when the source's first snapshot is written, and
// never leaves the state directory: a feed cannot aim at a collision it cannot compute.
struct FetchDigest {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
  uint64_t value = 0;
  bool known() const { return (k0 | k1) != 0; }
  bool operator==(const FetchDigest&) const = default;
};

// A snapshot's header: what a cycle needs of the last good list when the fetch is unchanged.
struct SnapshotInfo {
  std::string source;  // "collection abc", "file /x"
  int64_t fetched_at = 0;
  size_t entries = 0;
  FetchDigest digest;          // unknown in files written before digests
  int64_t earliest_until = 0;  // the earliest valid_until among the entries; 0: none ends
  int64_t latest_from = 0;     // the latest valid_from; 0: every entry valid from the start
  // How many entries are in force at `now` when the bounds alone say (all of them); nullopt
  // when some may have ended or not begun yet (the entries must then be read).
  std::optional<size_t> AllInForce(int64_t now) const;
};

// The last good list of one source.
struct Snapshot {
  std::string source;  // "collection abc", "file /x"
  int64_t fetched_at = 0;
  std::vector<SnapshotEntry> entries;
  FetchDigest digest;
};
SnapshotInfo InfoOf(const Snapshot& snapshot);

using SnapshotEntryFn = std::function<void(const SnapshotEntry&)>;
// Hands out a snapshot's entries in order, one call of the function given per entry.
using SnapshotEntries = std::function<void(const SnapshotEntryFn&)>;

// A snapshot written aside by PrepareSnapshot; Commit puts it in place, destroying it
// uncommitted drops it (the source's snapshot stays as it was).
class PendingSnapshot {
 public:
  virtual ~PendingSnapshot() = default;
  virtual Status Commit() = 0;
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // Both writes are atomic: a crash leaves the old file or the new one, never a mix.
  virtual Status SaveSnapshot(const Snapshot& snapshot) = 0;
  // nullopt when the source has no snapshot yet; an error when it exists but cannot be used
  // (the real store then sets the file aside as *.corrupt and says so).
  virtual Result<std::optional<Snapshot>> LoadSnapshot(const std::string& source) = 0;

  // The same three without a whole Snapshot in memory (a million entries are 96 MB of it):
  // the agent's cycle uses these. The defaults go through SaveSnapshot and LoadSnapshot (the
  // tests' in-memory stores); the file store streams.
  // Writes a snapshot whose `info` (source, fetched_at, entries, digest, validity bounds) the
  // caller has counted, with `entries` handing them out sorted, aside: it replaces the source's
  // snapshot only when committed. May run on another thread than the rest of the store's calls
  // (the agent writes while the kernel commits); the file store allows it.
  virtual Result<std::unique_ptr<PendingSnapshot>> PrepareSnapshot(const SnapshotInfo& info,
                                                                   const SnapshotEntries& entries);
  // PrepareSnapshot, then Commit.
  Status WriteSnapshot(const SnapshotInfo& info, const SnapshotEntries& entries);
  // The header alone.
  virtual Result<std::optional<SnapshotInfo>> LoadSnapshotInfo(const std::string& source);
  // Each entry in turn; false when there is no snapshot. On an error `each` may have seen
  // some entries: callers use what they saw only on success.
  virtual Result<bool> ReadSnapshot(const std::string& source, const SnapshotEntryFn& each);
  virtual Status SaveReport(const std::string& json) = 0;
  virtual Result<std::optional<std::string>> LoadReport() = 0;
  // The copy of the last commit (applied.state), so that the next process needs no set dump.
  virtual Status SaveApplied(const AppliedCopy& copy) = 0;
  virtual Result<std::optional<AppliedCopy>> LoadApplied() = 0;
};

// Caps on what the store reads back: a state file larger than this is not iocwall's (or was
// planted) and is set aside rather than read into memory.
struct FileStateLimits {
  size_t report_max_bytes = size_t{16} << 20;   // state.json: a few KiB in practice
  size_t snapshot_max_bytes = size_t{1} << 30;  // 10M entries with ids fit
};

// Files under a directory: 0700 directory, 0600 files, written through a temporary file,
// fsync and rename. The directory must not be a symbolic link, must be owned by the effective
// user (root) and not writable by group or others: else every call fails saying how to fix it.
// A state file that is not a regular file under the cap is set aside (*.bad-TIME), not read.
std::unique_ptr<StateStore> MakeFileStateStore(const std::string& dir, FileStateLimits limits = {});

// Serialisation of a snapshot (exposed for tests and the fuzzer).
std::string SerializeSnapshot(const Snapshot& snapshot);
Result<Snapshot> ParseSnapshot(const std::string& text);
// The streamed form of ParseSnapshot: the header into *info, then each entry to `each`; with
// `each` null, the header alone (and the end marker, so that a cut file is still refused).
Status ParseSnapshotText(std::string_view text, SnapshotInfo* info, const SnapshotEntryFn* each);

// ParseSnapshotText over a file read in pieces (a million-entry file is never held whole):
// Feed each piece in order, then Finish. An error is final.
class SnapshotParser {
 public:
  SnapshotParser(SnapshotInfo* info, const SnapshotEntryFn* each);
  Status Feed(std::string_view piece);
  Status Finish();

 private:
  Status Line(std::string_view line);
  Status Header(std::string_view line);
  size_t HeaderLines() const;
  std::string HeaderMissing() const;

  SnapshotInfo* info_;
  const SnapshotEntryFn* each_;
  Status status_ = Status::Ok();
  std::string partial_;  // a line cut between two pieces
  std::string tail_;     // the last bytes fed
  SnapshotEntry entry_;
  size_t header_lines_ = 0;
  size_t line_no_ = 0;
  size_t seen_ = 0;
  bool v2_ = false;
  bool ended_ = false;
  bool skipping_ = false;
};

// Writes `data` to `path` atomically (an O_EXCL|O_NOFOLLOW temporary, fsync, rename, fsync
// dir) with `mode`. The directory holding `path` must pass the state directory's checks
// (not a symlink, owned by the effective user, not writable by group or others; readable by
// others is fine); `what` names it in messages ("metrics directory").
Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode = 0600,
                       const std::string& what = "directory");

}  // namespace iocwall
