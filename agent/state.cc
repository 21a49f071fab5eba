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

constexpr std::string_view kMagicV2 = "# iocwall snapshot v2";

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool ToI64(std::string_view t, int64_t* v) {
  auto r = std::from_chars(t.data(), t.data() + t.size(), *v);
  return r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty();
}

bool FromHex(std::string_view t, uint64_t* v) {
  auto r = std::from_chars(t.data(), t.data() + t.size(), *v, 16);
  return r.ec == std::errc() && r.ptr == t.data() + t.size() && t.size() == 16;
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// The next field of a line, white space around it skipped. Plain loops: find_first_of with a
// set of characters costs a memchr per character, most of the time a million-line file took.
std::string_view NextField(std::string_view* l) {
  size_t b = 0;
  while (b < l->size() && IsBlank((*l)[b])) ++b;
  size_t e = b;
  while (e < l->size() && !IsBlank((*l)[e])) ++e;
  std::string_view f = l->substr(b, e - b);
  l->remove_prefix(e);
  return f;
}

std::string_view NextLine(std::string_view* rest) {
  const size_t nl = rest->find('\n');
  std::string_view l = rest->substr(0, nl);
  rest->remove_prefix(nl == std::string_view::npos ? rest->size() : nl + 1);
  return l;
}

std::string SnapshotHeader(const SnapshotInfo& info) {
  return std::string(kMagicV2) + "\n# source: " + info.source +
         "\n# fetched_at: " + std::to_string(info.fetched_at) +
         "\n# entries: " + std::to_string(info.entries) + "\n# digest: " + Hex(info.digest.k0) +
         " " + Hex(info.digest.k1) + " " + Hex(info.digest.value) +
         "\n# validity: " + std::to_string(info.earliest_until) + " " +
         std::to_string(info.latest_from) + "\n";
}

void AppendNumber(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

void AppendEntry(const SnapshotEntry& e, std::string* out) {
  if (e.prefix.family == Family::kV4 && e.prefix.len == 32) {
    // Most entries: a single IPv4 address, written without a temporary string.
    const uint32_t a = static_cast<uint32_t>(e.prefix.addr);
    for (int shift = 24; shift >= 0; shift -= 8) {
      AppendNumber((a >> shift) & 0xff, out);
      if (shift) *out += '.';
    }
  } else {
    *out += e.prefix.ToString();
  }
  *out += ' ';
  AppendNumber(e.first_seen, out);
  *out += ' ';
  AppendNumber(e.valid_until, out);
  if (!e.id.empty() || e.valid_from != 0) {
    *out += ' ';
    *out += e.id.empty() ? "-" : e.id;  // "-": no id, a valid_from follows
  }
  if (e.valid_from != 0) {
    *out += ' ';
    AppendNumber(e.valid_from, out);
  }
  *out += '\n';
}

constexpr std::string_view kEndLine = "# end\n";  // a file without it was cut short

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

  // Written in pieces of about a megabyte as the entries come: a million entries never sit in
  // memory a second time as text.
  Status WriteSnapshot(const SnapshotInfo& info, const SnapshotEntries& entries) override {
    auto d = OpenDirs(true, true);
    if (!d.ok()) return d.status();
    constexpr size_t kPiece = size_t{1} << 20;
    auto produce = [&](const ByteSink& write) {
      std::string piece = SnapshotHeader(info);
      piece.reserve(kPiece + 512);
      entries([&](const SnapshotEntry& e) {
        AppendEntry(e, &piece);
        if (piece.size() >= kPiece) {
          write(piece);
          piece.clear();
        }
      });
      piece += kEndLine;
      write(piece);
    };
    return WriteFileAtomicAt(d->get(), FileNameFor(info.source), produce, 0600,
                             Sources() + "/" + FileNameFor(info.source));
  }

  Result<std::optional<Snapshot>> LoadSnapshot(const std::string& source) override {
    std::optional<Snapshot> out;
    auto parse = [&](const std::string& text, SnapshotInfo* info) -> Status {
      auto snap = ParseSnapshot(text);
      if (!snap.ok()) return snap.status();
      *info = InfoOf(*snap);
      out = std::move(snap.value());
      return Status::Ok();
    };
    IOCWALL_TRY(Load(source, parse));
    return out;
  }

  Result<std::optional<SnapshotInfo>> LoadSnapshotInfo(const std::string& source) override {
    std::optional<SnapshotInfo> out;
    auto parse = [&](const std::string& text, SnapshotInfo* info) -> Status {
      IOCWALL_TRY(ParseSnapshotText(text, info, nullptr));
      out = *info;
      return Status::Ok();
    };
    IOCWALL_TRY(Load(source, parse));
    return out;
  }

  Result<bool> ReadSnapshot(const std::string& source, const SnapshotEntryFn& each) override {
    bool found = false;
    auto parse = [&](const std::string& text, SnapshotInfo* info) -> Status {
      found = true;
      return ParseSnapshotText(text, info, &each);
    };
    IOCWALL_TRY(Load(source, parse));
    return found;
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

  // Reads a source's snapshot file and hands its text to `parse` (not called when there is no
  // file). A file that does not parse, or names another source, is set aside as corrupt.
  Status Load(const std::string& source,
              const std::function<Status(const std::string& text, SnapshotInfo* info)>& parse) {
    auto d = OpenDirs(false, true);
    if (!d.ok()) return d.status();
    if (!d->valid()) return Status::Ok();
    const std::string name = FileNameFor(source);
    const std::string path = Sources() + "/" + name;
    auto text = Read(d->get(), name, path, limits_.snapshot_max_bytes);
    if (!text.ok()) return text.status();
    if (!text.value()) return Status::Ok();
    SnapshotInfo info;
    Status st = parse(**text, &info);
    if (!st.ok()) {
      return Status::Error("state file " + path + " is corrupt (" + st.message() + "); " +
                           SetAsideAt(d->get(), name, Sources(), "corrupt"));
    }
    if (info.source != source) {
      return Status::Error("state file " + path + " belongs to '" + info.source + "', not '" +
                           source + "'; " + SetAsideAt(d->get(), name, Sources(), "corrupt"));
    }
    return Status::Ok();
  }

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

std::optional<size_t> SnapshotInfo::AllInForce(int64_t now) const {
  const bool none_ended = earliest_until == 0 || earliest_until > now;
  const bool all_begun = latest_from <= now;
  if (none_ended && all_begun) return entries;
  return std::nullopt;
}

SnapshotInfo InfoOf(const Snapshot& s) {
  SnapshotInfo info;
  info.source = s.source;
  info.fetched_at = s.fetched_at;
  info.entries = s.entries.size();
  info.digest = s.digest;
  for (const auto& e : s.entries) {
    if (e.valid_until != 0 && (info.earliest_until == 0 || e.valid_until < info.earliest_until)) {
      info.earliest_until = e.valid_until;
    }
    info.latest_from = std::max(info.latest_from, e.valid_from);
  }
  return info;
}

Status StateStore::WriteSnapshot(const SnapshotInfo& info, const SnapshotEntries& entries) {
  Snapshot s;
  s.source = info.source;
  s.fetched_at = info.fetched_at;
  s.digest = info.digest;
  s.entries.reserve(info.entries);
  entries([&](const SnapshotEntry& e) { s.entries.push_back(e); });
  return SaveSnapshot(s);
}

Result<std::optional<SnapshotInfo>> StateStore::LoadSnapshotInfo(const std::string& source) {
  auto snap = LoadSnapshot(source);
  if (!snap.ok()) return snap.status();
  if (!snap.value()) return std::optional<SnapshotInfo>();
  return std::optional<SnapshotInfo>(InfoOf(**snap));
}

Result<bool> StateStore::ReadSnapshot(const std::string& source, const SnapshotEntryFn& each) {
  auto snap = LoadSnapshot(source);
  if (!snap.ok()) return snap.status();
  if (!snap.value()) return false;
  for (const auto& e : (*snap)->entries) each(e);
  return true;
}

std::string SerializeSnapshot(const Snapshot& s) {
  std::string out = SnapshotHeader(InfoOf(s));
  out.reserve(out.size() + s.entries.size() * 36 + kEndLine.size());
  for (const auto& e : s.entries) AppendEntry(e, &out);
  out += kEndLine;
  return out;
}

Status ParseSnapshotText(std::string_view text, SnapshotInfo* info, const SnapshotEntryFn* each) {
  *info = SnapshotInfo{};
  std::string_view rest = text;
  auto header = [&](std::string_view key, std::string_view* value) {
    std::string_view l = NextLine(&rest);
    if (l.substr(0, key.size()) != key) return false;
    *value = l.substr(key.size());
    return true;
  };
  // v1 files (before digests) are read too: their digest is unknown, so the next cycle
  // rewrites them as v2.
  const std::string_view magic = NextLine(&rest);
  const bool v2 = magic == kMagicV2;
  if (!v2 && magic != "# iocwall snapshot v1") return Status::Error("not an iocwall snapshot");
  std::string_view source, fetched, count, digest, validity;
  if (!header("# source: ", &source)) return Status::Error("missing source line");
  if (!header("# fetched_at: ", &fetched)) return Status::Error("missing fetched_at line");
  if (!header("# entries: ", &count)) return Status::Error("missing entries line");
  if (v2 && !header("# digest: ", &digest)) return Status::Error("missing digest line");
  if (v2 && !header("# validity: ", &validity)) return Status::Error("missing validity line");
  info->source = std::string(source);
  int64_t n = 0;
  if (!ToI64(fetched, &info->fetched_at)) return Status::Error("bad fetched_at");
  if (!ToI64(count, &n) || n < 0) return Status::Error("bad entries count");
  info->entries = static_cast<size_t>(n);
  if (v2) {
    std::string_view k0 = NextField(&digest), k1 = NextField(&digest), v = NextField(&digest);
    if (!FromHex(k0, &info->digest.k0) || !FromHex(k1, &info->digest.k1) ||
        !FromHex(v, &info->digest.value) || !NextField(&digest).empty()) {
      return Status::Error("bad digest line");
    }
    std::string_view until = NextField(&validity), from = NextField(&validity);
    if (!ToI64(until, &info->earliest_until) || !ToI64(from, &info->latest_from) ||
        !NextField(&validity).empty()) {
      return Status::Error("bad validity line");
    }
  }
  const size_t header_lines = v2 ? 6 : 4;
  if (each == nullptr) {
    // The header alone; the end marker still tells a whole file from a cut one.
    if (text.size() < kEndLine.size() || text.substr(text.size() - kEndLine.size()) != kEndLine) {
      return Status::Error("truncated (no end marker)");
    }
    return Status::Ok();
  }
  size_t line_no = header_lines;
  size_t seen = 0;
  bool ended = false;
  SnapshotEntry e;
  // The entries are scanned in place (no stream per line: with a million entries that was
  // most of the time an unchanged cycle spent loading its snapshot).
  while (!rest.empty()) {
    std::string_view l = NextLine(&rest);
    ++line_no;
    if (l == "# end") {
      ended = true;
      break;
    }
    std::string_view p = NextField(&l), first = NextField(&l), until = NextField(&l);
    if (until.empty()) {
      return Status::Error("line " + std::to_string(line_no) + ": expected 3 or 4 fields");
    }
    std::string_view id = NextField(&l);  // optional
    e.id.assign(id == "-" ? std::string_view() : id);
    std::string_view from = NextField(&l);  // optional
    e.valid_from = 0;
    auto prefix = ParsePrefix(p);
    if (!prefix || !ToI64(first, &e.first_seen) || !ToI64(until, &e.valid_until) ||
        (!from.empty() && !ToI64(from, &e.valid_from))) {
      return Status::Error("line " + std::to_string(line_no) + ": malformed entry");
    }
    e.prefix = *prefix;
    ++seen;
    (*each)(e);
  }
  if (!ended) return Status::Error("truncated (no end marker)");
  if (seen != info->entries) return Status::Error("entry count mismatch");
  return Status::Ok();
}

Result<Snapshot> ParseSnapshot(const std::string& text) {
  Snapshot s;
  SnapshotInfo info;
  // The count is only a claim until the entries are read: reserve no more than the text can
  // hold (an entry line is at least 7 bytes, ":: 0 0\n"), so a corrupt header cannot force a
  // huge allocation.
  const SnapshotEntryFn keep = [&](const SnapshotEntry& e) {
    if (s.entries.empty()) s.entries.reserve(std::min(info.entries, text.size() / 7));
    s.entries.push_back(e);
  };
  IOCWALL_TRY(ParseSnapshotText(text, &info, &keep));
  s.source = std::move(info.source);
  s.fetched_at = info.fetched_at;
  s.digest = info.digest;
  return s;
}

}  // namespace iocwall
