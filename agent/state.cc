#include "agent/state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <sstream>
#include <string_view>

#include "agent/applied_state.h"
#include "feeds/safe_file.h"

namespace iocwall {
namespace {

constexpr const char* kMagic = "# iocwall snapshot v1";

// File name for a source: readable, and unique even when two names differ only by characters
// that are not safe in a file name.
std::string FileNameFor(const std::string& source) {
  std::string safe;
  for (char c : source) {
    safe +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  }
  if (safe.size() > 80) safe.resize(80);
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across runs and builds
  for (unsigned char c : source) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return safe + "." + std::string(hex, 8) + ".list";
}

DirRules StateDirRules(bool create) {
  DirRules r;
  r.create = create;
  r.private_mode = create;  // writers tighten an existing directory; readers leave it be
  r.mode = 0700;
  r.what = "state_dir";
  return r;
}

class FileStateStore : public StateStore {
 public:
  FileStateStore(std::string dir, FileStateLimits limits) : dir_(std::move(dir)), limits_(limits) {}

  Status SaveSnapshot(const Snapshot& s) override {
    auto d = OpenDirs(true, true);
    if (!d.ok()) return d.status();
    return WriteFileAtomicAt(d->get(), FileNameFor(s.source), SerializeSnapshot(s), 0600,
                             Sources() + "/" + FileNameFor(s.source));
  }

  Result<std::optional<Snapshot>> LoadSnapshot(const std::string& source) override {
    auto d = OpenDirs(false, true);
    if (!d.ok()) return d.status();
    if (!d->valid()) return std::optional<Snapshot>();
    const std::string name = FileNameFor(source);
    const std::string path = Sources() + "/" + name;
    auto text = Read(d->get(), name, path, limits_.snapshot_max_bytes);
    if (!text.ok()) return text.status();
    if (!text.value()) return std::optional<Snapshot>();
    auto snap = ParseSnapshot(**text);
    if (!snap.ok()) {
      return Status::Error("state file " + path + " is corrupt (" + snap.message() + "); " +
                           SetAsideAt(d->get(), name, Sources(), "corrupt"));
    }
    if (snap->source != source) {
      return Status::Error("state file " + path + " belongs to '" + snap->source + "', not '" +
                           source + "'; " + SetAsideAt(d->get(), name, Sources(), "corrupt"));
    }
    return std::optional<Snapshot>(std::move(snap.value()));
  }

  Status SaveReport(const std::string& json) override {
    auto d = OpenDirs(true, false);
    if (!d.ok()) return d.status();
    return WriteFileAtomicAt(d->get(), "state.json", json, 0600, dir_ + "/state.json");
  }

  Result<std::optional<std::string>> LoadReport() override {
    auto d = OpenDirs(false, false);
    if (!d.ok()) return d.status();
    if (!d->valid()) return std::optional<std::string>();
    return Read(d->get(), "state.json", dir_ + "/state.json", limits_.report_max_bytes);
  }

  Status SaveApplied(const AppliedCopy& copy) override {
    auto d = OpenDirs(true, false);
    if (!d.ok()) return d.status();
    return WriteFileAtomicAt(d->get(), "applied.state", SerializeApplied(copy), 0600,
                             dir_ + "/applied.state");
  }

  Result<std::optional<AppliedCopy>> LoadApplied() override {
    auto d = OpenDirs(false, false);
    if (!d.ok()) return d.status();
    if (!d->valid()) return std::optional<AppliedCopy>();
    const std::string path = dir_ + "/applied.state";
    // It holds the committed ranges: as large as a snapshot at most.
    auto data = Read(d->get(), "applied.state", path, limits_.snapshot_max_bytes);
    if (!data.ok()) return data.status();
    if (!data.value()) return std::optional<AppliedCopy>();
    auto copy = ParseApplied(**data);
    if (!copy.ok()) {
      // Only an optimisation: without it the kernel is read as before.
      return Status::Error("state file " + path + " is corrupt (" + copy.message() + "); " +
                           SetAsideAt(d->get(), "applied.state", dir_, "corrupt"));
    }
    return std::optional<AppliedCopy>(std::move(copy.value()));
  }

 private:
  std::string Sources() const { return dir_ + "/sources"; }

  // The state directory (or its sources/ subdirectory), checked; an invalid fd when it does
  // not exist and create is false (nothing saved yet).
  Result<UniqueFd> OpenDirs(bool create, bool sources) {
    auto top = OpenTrustedDir(dir_, StateDirRules(create));
    if (!top.ok()) {
      if (!create && !Exists(dir_)) return UniqueFd();
      return top.status();
    }
    if (!sources) return top;
    auto sub = OpenTrustedSubdir(top->get(), dir_, "sources", StateDirRules(create));
    if (!sub.ok() && !create && !Exists(Sources())) return UniqueFd();
    return sub;
  }

  static bool Exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;
  }

  // A regular file of bounded size; anything else (a FIFO, a device, a link, a huge file) is
  // moved aside so that the next write starts clean, and kept for the operator to inspect.
  static Result<std::optional<std::string>> Read(int dir_fd, const std::string& name,
                                                 const std::string& path, size_t cap) {
    ReadOutcome r = ReadRegularFile(dir_fd, name, cap, /*follow_symlinks=*/false);
    switch (r.kind) {
      case ReadOutcome::kOk:
        return std::optional<std::string>(std::move(r.data));
      case ReadOutcome::kAbsent:
        return std::optional<std::string>();
      case ReadOutcome::kUnusable: {
        const size_t slash = path.find_last_of('/');
        return Status::Error("state file " + path + " " + r.message + "; not used, " +
                             SetAsideAt(dir_fd, name, path.substr(0, slash), "bad"));
      }
      case ReadOutcome::kError:
        break;
    }
    return Status::Error("state file " + path + ": " + r.message);
  }

  std::string dir_;
  FileStateLimits limits_;
};

}  // namespace

std::unique_ptr<StateStore> MakeFileStateStore(const std::string& dir, FileStateLimits limits) {
  return std::make_unique<FileStateStore>(dir, limits);
}

Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode,
                       const std::string& what) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") {
    return Status::Error(path + " does not name a file");
  }
  DirRules rules;
  rules.what = what;
  auto d = OpenTrustedDir(dir, rules);
  if (!d.ok()) return d.status();
  return WriteFileAtomicAt(d->get(), name, data, mode, path);
}

std::string SerializeSnapshot(const Snapshot& s) {
  std::string out;
  out.reserve(64 + s.entries.size() * 36);
  out += kMagic;
  out += "\n# source: " + s.source + "\n# fetched_at: " + std::to_string(s.fetched_at) +
         "\n# entries: " + std::to_string(s.entries.size()) + "\n";
  for (const auto& e : s.entries) {
    out += e.prefix.ToString();
    out += ' ';
    out += std::to_string(e.first_seen);
    out += ' ';
    out += std::to_string(e.valid_until);
    if (!e.id.empty() || e.valid_from != 0) {
      out += ' ';
      out += e.id.empty() ? "-" : e.id;  // "-": no id, a valid_from follows
    }
    if (e.valid_from != 0) {
      out += ' ';
      out += std::to_string(e.valid_from);
    }
    out += '\n';
  }
  out += "# end\n";  // a file without it was cut short
  return out;
}

Result<Snapshot> ParseSnapshot(const std::string& text) {
  Snapshot s;
  std::istringstream in(text);
  std::string line;
  auto header = [&](const char* key, std::string* value) {
    if (!std::getline(in, line) || line.rfind(key, 0) != 0) return false;
    *value = line.substr(std::strlen(key));
    return true;
  };
  std::string magic, fetched, count;
  if (!std::getline(in, magic) || magic != kMagic) return Status::Error("not an iocwall snapshot");
  if (!header("# source: ", &s.source)) return Status::Error("missing source line");
  if (!header("# fetched_at: ", &fetched)) return Status::Error("missing fetched_at line");
  if (!header("# entries: ", &count)) return Status::Error("missing entries line");
  auto to_i64 = [](const std::string& t, int64_t* v) {
    auto r = std::from_chars(t.data(), t.data() + t.size(), *v);
    return r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty();
  };
  int64_t n = 0;
  if (!to_i64(fetched, &s.fetched_at)) return Status::Error("bad fetched_at");
  if (!to_i64(count, &n) || n < 0) return Status::Error("bad entries count");
  // The count is only a claim: reserve no more entries than the text can hold (an entry line is
  // at least 7 bytes, ":: 0 0\n"), so a corrupt header cannot force a huge allocation.
  const int64_t fits = static_cast<int64_t>(text.size() / 7);
  s.entries.reserve(static_cast<size_t>(std::min(n, fits)));
  size_t line_no = 4;
  bool ended = false;
  // The entries are scanned in place (no stream per line: with a million entries that was
  // most of the time an unchanged cycle spent loading its snapshot).
  std::string_view rest(text);
  const std::streamoff header_end = in.tellg();
  rest.remove_prefix(header_end < 0 ? rest.size()
                                    : std::min(rest.size(), static_cast<size_t>(header_end)));
  auto next_field = [](std::string_view* l) {
    size_t b = l->find_first_not_of(" \t\r\v\f");
    if (b == std::string_view::npos) {
      *l = {};
      return std::string_view();
    }
    l->remove_prefix(b);
    size_t e = l->find_first_of(" \t\r\v\f");
    std::string_view f = l->substr(0, e);
    l->remove_prefix(e == std::string_view::npos ? l->size() : e);
    return f;
  };
  auto to_i64v = [](std::string_view t, int64_t* v) {
    auto r = std::from_chars(t.data(), t.data() + t.size(), *v);
    return r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty();
  };
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view l = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (l == "# end") {
      ended = true;
      break;
    }
    std::string_view p = next_field(&l), first = next_field(&l), until = next_field(&l);
    if (until.empty()) {
      return Status::Error("line " + std::to_string(line_no) + ": expected 3 or 4 fields");
    }
    SnapshotEntry e;
    e.id = std::string(next_field(&l));  // optional
    if (e.id == "-") e.id.clear();
    std::string_view from = next_field(&l);  // optional
    auto prefix = ParsePrefix(p);
    if (!prefix || !to_i64v(first, &e.first_seen) || !to_i64v(until, &e.valid_until) ||
        (!from.empty() && !to_i64v(from, &e.valid_from))) {
      return Status::Error("line " + std::to_string(line_no) + ": malformed entry");
    }
    e.prefix = *prefix;
    s.entries.push_back(std::move(e));
  }
  if (!ended) return Status::Error("truncated (no end marker)");
  if (static_cast<int64_t>(s.entries.size()) != n) return Status::Error("entry count mismatch");
  return s;
}

}  // namespace iocwall
