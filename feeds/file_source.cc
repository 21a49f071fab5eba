#include "feeds/file_source.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "feeds/list_body.h"

namespace iocwall {

namespace {

// Reads the whole file; on failure sets r's error and returns false.
bool ReadWhole(const std::string& path, size_t max_bytes, std::string* out, FetchResult* r) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    r->error = FetchError::kConfig;
    r->status = Status::Error("cannot open: " + std::string(strerror(errno)));
    return false;
  }
  struct stat st {};
  bool ok = true;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    r->error = FetchError::kConfig;
    r->status = Status::Error("not a regular file");
    ok = false;
  } else if (static_cast<size_t>(st.st_size) > max_bytes) {
    r->error = FetchError::kTooLarge;
    r->status = Status::Error("larger than max_bytes (" + std::to_string(st.st_size) + " > " +
                              std::to_string(max_bytes) + " bytes)");
    ok = false;
  } else {
    out->resize(static_cast<size_t>(st.st_size));
    size_t used = 0;
    while (used < out->size()) {
      const ssize_t n = read(fd, out->data() + used, out->size() - used);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        r->error = FetchError::kConfig;
        r->status = Status::Error("cannot read: " + std::string(strerror(errno)));
        ok = false;
        break;
      }
      if (n == 0) break;  // the file shrank while being read: take what is there
      used += static_cast<size_t>(n);
    }
    out->resize(used);
  }
  close(fd);
  return ok;
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
