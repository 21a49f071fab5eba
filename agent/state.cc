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

class FileSnapshot : public PendingSnapshot {
 public:
  explicit FileSnapshot(PendingFile file) : file_(std::move(file)) {}
  Status Commit() override { return file_.Commit(); }

 private:
  PendingFile file_;
};

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
  Result<std::unique_ptr<PendingSnapshot>> PrepareSnapshot(
      const SnapshotInfo& info, const SnapshotEntries& entries) override {
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
    auto file = PendingFile::Write(d->get(), FileNameFor(info.source), produce, 0600,
                                   Sources() + "/" + FileNameFor(info.source));
    if (!file.ok()) return file.status();
    return std::unique_ptr<PendingSnapshot>(std::make_unique<FileSnapshot>(std::move(*file)));
  }

  Result<std::optional<Snapshot>> LoadSnapshot(const std::string& source) override {
    Snapshot snap;
    SnapshotInfo info;
    const SnapshotEntryFn keep = [&](const SnapshotEntry& e) {
      // The count is only a claim until the entries are read: reserved up to a million.
      if (snap.entries.empty()) snap.entries.reserve(std::min<size_t>(info.entries, 1 << 20));
      snap.entries.push_back(e);
    };
    bool found = false;
    IOCWALL_TRY(Load(source, &info, &keep, &found));
    if (!found) return std::optional<Snapshot>();
    snap.source = std::move(info.source);
    snap.fetched_at = info.fetched_at;
    snap.digest = info.digest;
    return std::optional<Snapshot>(std::move(snap));
  }

  Result<std::optional<SnapshotInfo>> LoadSnapshotInfo(const std::string& source) override {
    SnapshotInfo info;
    bool found = false;
    IOCWALL_TRY(Load(source, &info, nullptr, &found));
    if (!found) return std::optional<SnapshotInfo>();
    return std::optional<SnapshotInfo>(std::move(info));
  }

  Result<bool> ReadSnapshot(const std::string& source, const SnapshotEntryFn& each) override {
    SnapshotInfo info;
    bool found = false;
    IOCWALL_TRY(Load(source, &info, &each, &found));
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

  // Reads a source's snapshot file a piece at a time through a SnapshotParser (header into
  // *info, entries to `each` unless null); *found false when there is no file. A file that does
  // not parse, or names another source, is set aside as corrupt.
  Status Load(const std::string& source, SnapshotInfo* info, const SnapshotEntryFn* each,
              bool* found) {
    *found = false;
    auto d = OpenDirs(false, true);
    if (!d.ok()) return d.status();
    if (!d->valid()) return Status::Ok();
    const std::string name = FileNameFor(source);
    const std::string path = Sources() + "/" + name;
    SnapshotParser parser(info, each);
    ReadOutcome r = ReadRegularFileInPieces(d->get(), name, limits_.snapshot_max_bytes, false,
                                            [&](std::string_view piece) { parser.Feed(piece); });
    if (r.kind == ReadOutcome::kAbsent) return Status::Ok();
    if (r.kind != ReadOutcome::kOk) return Refused(d->get(), name, path, r);
    *found = true;
    Status st = parser.Finish();
    if (!st.ok()) {
      return Status::Error("state file " + path + " is corrupt (" + st.message() + "); " +
                           SetAsideAt(d->get(), name, Sources(), "corrupt"));
    }
    if (info->source != source) {
      return Status::Error("state file " + path + " belongs to '" + info->source + "', not '" +
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
    if (r.kind == ReadOutcome::kOk) return std::optional<std::string>(std::move(r.data));
    if (r.kind == ReadOutcome::kAbsent) return std::optional<std::string>();
    return Refused(dir_fd, name, path, r);
  }

  // The error for a file that could not be read (unusable ones are set aside).
  static Status Refused(int dir_fd, const std::string& name, const std::string& path,
                        const ReadOutcome& r) {
    if (r.kind == ReadOutcome::kUnusable) {
      const size_t slash = path.find_last_of('/');
      return Status::Error("state file " + path + " " + r.message + "; not used, " +
                           SetAsideAt(dir_fd, name, path.substr(0, slash), "bad"));
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

namespace {

// The default: the whole snapshot in memory, saved at commit (the tests' stores).
class HeldSnapshot : public PendingSnapshot {
 public:
  HeldSnapshot(StateStore* store, Snapshot s) : store_(store), snapshot_(std::move(s)) {}
  Status Commit() override { return store_->SaveSnapshot(snapshot_); }

 private:
  StateStore* store_;
  Snapshot snapshot_;
};

}  // namespace

Result<std::unique_ptr<PendingSnapshot>> StateStore::PrepareSnapshot(
    const SnapshotInfo& info, const SnapshotEntries& entries) {
  Snapshot s;
  s.source = info.source;
  s.fetched_at = info.fetched_at;
  s.digest = info.digest;
  s.entries.reserve(info.entries);
  entries([&](const SnapshotEntry& e) { s.entries.push_back(e); });
  return std::unique_ptr<PendingSnapshot>(std::make_unique<HeldSnapshot>(this, std::move(s)));
}

Status StateStore::WriteSnapshot(const SnapshotInfo& info, const SnapshotEntries& entries) {
  auto pending = PrepareSnapshot(info, entries);
  if (!pending.ok()) return pending.status();
  return (*pending)->Commit();
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

SnapshotParser::SnapshotParser(SnapshotInfo* info, const SnapshotEntryFn* each)
    : info_(info), each_(each) {
  *info_ = SnapshotInfo{};
}

Status SnapshotParser::Feed(std::string_view piece) {
  if (!status_.ok()) return status_;
  // The last bytes seen: the end marker of a file read for its header alone.
  if (piece.size() >= kEndLine.size()) {
    tail_.assign(piece.substr(piece.size() - kEndLine.size()));
  } else {
    tail_ += piece;
    if (tail_.size() > kEndLine.size()) tail_.erase(0, tail_.size() - kEndLine.size());
  }
  if (skipping_) return status_;
  while (!piece.empty() && status_.ok() && !skipping_) {
    const size_t nl = piece.find('\n');
    if (nl == std::string_view::npos) {
      // A line cut between two pieces. No line of a snapshot comes near the cap (an id is
      // at most 200 bytes): more is not a snapshot, and is not buffered without end.
      constexpr size_t kMaxLine = 4096;
      if (partial_.size() + piece.size() > kMaxLine) {
        status_ = Status::Error("line " + std::to_string(line_no_ + 1) + ": too long");
        break;
      }
      partial_ += piece;
      break;
    }
    if (partial_.empty()) {
      status_ = Line(piece.substr(0, nl));
    } else {
      partial_ += piece.substr(0, nl);
      status_ = Line(partial_);
      partial_.clear();
    }
    piece.remove_prefix(nl + 1);
  }
  return status_;
}

Status SnapshotParser::Finish() {
  if (!status_.ok()) return status_;
  if (!partial_.empty()) IOCWALL_TRY(status_ = Line(partial_));
  if (header_lines_ < HeaderLines()) return Status::Error(HeaderMissing());
  if (each_ == nullptr) {
    // The header alone; the end marker still tells a whole file from a cut one.
    if (tail_ != kEndLine) return Status::Error("truncated (no end marker)");
    return Status::Ok();
  }
  if (!ended_ || tail_ != kEndLine) return Status::Error("truncated (no end marker)");
  if (seen_ != info_->entries) return Status::Error("entry count mismatch");
  return Status::Ok();
}

size_t SnapshotParser::HeaderLines() const { return v2_ ? 6 : 4; }

std::string SnapshotParser::HeaderMissing() const {
  static const char* const kNames[] = {"magic",   "source", "fetched_at",
                                       "entries", "digest", "validity"};
  if (header_lines_ == 0) return "not an iocwall snapshot";
  return std::string("missing ") + kNames[header_lines_] + " line";
}

Status SnapshotParser::Header(std::string_view l) {
  auto value = [&](std::string_view key, std::string_view* v) {
    if (l.substr(0, key.size()) != key) return false;
    *v = l.substr(key.size());
    return true;
  };
  std::string_view v;
  switch (header_lines_) {
    case 0:
      // v1 files (before digests) are read too: their digest is unknown, so the next cycle
      // rewrites them as v2.
      v2_ = l == kMagicV2;
      if (!v2_ && l != "# iocwall snapshot v1") return Status::Error("not an iocwall snapshot");
      break;
    case 1:
      if (!value("# source: ", &v)) return Status::Error(HeaderMissing());
      info_->source = std::string(v);
      break;
    case 2:
      if (!value("# fetched_at: ", &v)) return Status::Error(HeaderMissing());
      if (!ToI64(v, &info_->fetched_at)) return Status::Error("bad fetched_at");
      break;
    case 3: {
      int64_t n = 0;
      if (!value("# entries: ", &v)) return Status::Error(HeaderMissing());
      if (!ToI64(v, &n) || n < 0) return Status::Error("bad entries count");
      info_->entries = static_cast<size_t>(n);
      break;
    }
    case 4: {
      if (!value("# digest: ", &v)) return Status::Error(HeaderMissing());
      std::string_view k0 = NextField(&v), k1 = NextField(&v), d = NextField(&v);
      if (!FromHex(k0, &info_->digest.k0) || !FromHex(k1, &info_->digest.k1) ||
          !FromHex(d, &info_->digest.value) || !NextField(&v).empty()) {
        return Status::Error("bad digest line");
      }
      break;
    }
    case 5: {
      if (!value("# validity: ", &v)) return Status::Error(HeaderMissing());
      std::string_view until = NextField(&v), from = NextField(&v);
      if (!ToI64(until, &info_->earliest_until) || !ToI64(from, &info_->latest_from) ||
          !NextField(&v).empty()) {
        return Status::Error("bad validity line");
      }
      break;
    }
  }
  ++header_lines_;
  return Status::Ok();
}

Status SnapshotParser::Line(std::string_view l) {
  ++line_no_;
  if (header_lines_ < HeaderLines()) {
    IOCWALL_TRY(Header(l));
    // A header read alone: the rest is only looked at for its end marker.
    skipping_ = header_lines_ == HeaderLines() && each_ == nullptr;
    return Status::Ok();
  }
  // The end marker is the last line, as written: a header read alone checks no more than
  // that, and a whole read must not accept what a header read refuses.
  if (ended_) return Status::Error("line " + std::to_string(line_no_) + ": after the end marker");
  if (l == "# end") {
    ended_ = true;
    return Status::Ok();
  }
  std::string_view p = NextField(&l), first = NextField(&l), until = NextField(&l);
  if (until.empty()) {
    return Status::Error("line " + std::to_string(line_no_) + ": expected 3 or 4 fields");
  }
  std::string_view id = NextField(&l);  // optional
  entry_.id.assign(id == "-" ? std::string_view() : id);
  std::string_view from = NextField(&l);  // optional
  entry_.valid_from = 0;
  auto prefix = ParsePrefix(p);
  if (!prefix || !ToI64(first, &entry_.first_seen) || !ToI64(until, &entry_.valid_until) ||
      (!from.empty() && !ToI64(from, &entry_.valid_from))) {
    return Status::Error("line " + std::to_string(line_no_) + ": malformed entry");
  }
  entry_.prefix = *prefix;
  ++seen_;
  (*each_)(entry_);
  return Status::Ok();
}

Status ParseSnapshotText(std::string_view text, SnapshotInfo* info, const SnapshotEntryFn* each) {
  SnapshotParser parser(info, each);
  IOCWALL_TRY(parser.Feed(text));
  return parser.Finish();
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
