// State under state_dir: the last good list of each source (what was enforced, so that it can
// be restored with no network after a reboot) and the last cycle's report. Behind an
// interface so that the agent is tested with an in-memory fake.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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

// The last good list of one source.
struct Snapshot {
  std::string source;  // "collection abc", "file /x"
  int64_t fetched_at = 0;
  std::vector<SnapshotEntry> entries;
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // Both writes are atomic: a crash leaves the old file or the new one, never a mix.
  virtual Status SaveSnapshot(const Snapshot& snapshot) = 0;
  // nullopt when the source has no snapshot yet; an error when it exists but cannot be used
  // (the real store then sets the file aside as *.corrupt and says so).
  virtual Result<std::optional<Snapshot>> LoadSnapshot(const std::string& source) = 0;
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

// Writes `data` to `path` atomically (an O_EXCL|O_NOFOLLOW temporary, fsync, rename, fsync
// dir) with `mode`. The directory holding `path` must pass the state directory's checks
// (not a symlink, owned by the effective user, not writable by group or others; readable by
// others is fine); `what` names it in messages ("metrics directory").
Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode = 0600,
                       const std::string& what = "directory");

}  // namespace iocwall
