#include "feeds/file_source.h"

#include <fcntl.h>
#include <string.h>

#include <cerrno>
#include <chrono>

#include "feeds/list_body.h"
#include "feeds/safe_file.h"

namespace iocwall {

namespace {

// Reads the whole file; on failure sets r's error and returns false. A list file may be a
// symbolic link (tools swap lists that way); it must still be a regular file under the cap,
// and a FIFO or a device does not hang or exhaust the agent.
bool ReadWhole(const std::string& path, size_t max_bytes, std::string* out, FetchResult* r) {
  ReadOutcome o = ReadRegularFile(AT_FDCWD, path, max_bytes, /*follow_symlinks=*/true);
  switch (o.kind) {
    case ReadOutcome::kOk:
      *out = std::move(o.data);
      return true;
    case ReadOutcome::kAbsent:
      r->error = FetchError::kConfig;
      r->status = Status::Error("cannot open: " + std::string(strerror(ENOENT)));
      return false;
    case ReadOutcome::kUnusable:
      r->error = o.too_large ? FetchError::kTooLarge : FetchError::kConfig;
      r->status = Status::Error(o.message + " (max_bytes " + std::to_string(max_bytes) + ")");
      return false;
    case ReadOutcome::kError:
      break;
  }
  r->error = FetchError::kConfig;
  r->status = Status::Error(o.message);
  return false;
}

}  // namespace

FetchResult FileSource::Fetch() {
  const auto start = std::chrono::steady_clock::now();
  FetchResult r;
  r.source = Name();
  std::string body;
  if (ReadWhole(options_.path, options_.max_bytes, &body, &r)) {
    r.pages = 1;
    r.bytes = body.size();
    Status shape = CheckListShape(body, "");
    if (shape.ok()) {
      ParseBody(body, &r.prefixes, &r.stats);
      shape = CheckRejectedRatio(r.stats, options_.max_rejected_ratio);
    }
    if (!shape.ok()) {
      r.error = FetchError::kBadBody;
      r.status = shape;
    }
  }
  if (!r.status.ok()) {
    r.status = r.status.Wrap(Name());
    r.prefixes.clear();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace iocwall
