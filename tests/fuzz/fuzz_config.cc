// libFuzzer target: the configuration parser (agent/config.h ParseInvocation) on an arbitrary
// file. The input is written to a private temporary file and read the way the agent reads
// /etc/iocwall/iocwall.conf. Never crashes or throws; an error names the file; an accepted
// configuration respects every documented range, and Validate() answers without crashing.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "agent/config.h"
#include "tests/fuzz/fuzz_invariants.h"

namespace {

std::string ConfigPath() {
  static const std::string path = [] {
    char dir[] = "/tmp/iocwall-fuzz-config.XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    return std::string(dir) + "/iocwall.conf";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iocwall;
  const std::string path = ConfigPath();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  size_t off = 0;
  while (off < size) {
    const ssize_t n = ::write(fd, data + off, size - off);
    if (n <= 0) std::abort();
    off += static_cast<size_t>(n);
  }
  ::close(fd);

  const auto inv = ParseInvocation({"iocwall", "-c", path, "--once"});
  if (!inv.ok()) {
    FuzzCheck(!inv.message().empty(), "error with a message");
    FuzzCheck(inv.message().find(path) != std::string::npos, "error names the file");
    return 0;
  }
  const Config& c = inv->config;
  FuzzCheck(inv->mode == Mode::kOnce && c.path == path, "mode and path");
  FuzzCheck(c.sync.interval.count() >= 10, "interval at least 10 s");
  FuzzCheck(c.sync.max_shrink_percent <= 100, "shrink percent");
  FuzzCheck(c.sync.min_prefix_v4 >= 1 && c.sync.min_prefix_v4 <= 32, "min_prefix_v4");
  FuzzCheck(c.sync.min_prefix_v6 >= 1 && c.sync.min_prefix_v6 <= 128, "min_prefix_v6");
  FuzzCheck(c.sync.max_entries >= 1, "max_entries");
  FuzzCheck(c.api.timeout.count() > 0, "timeout positive");
  FuzzCheck(c.api.max_body >= 1024, "max_body");
  FuzzCheck(c.api.auth == "basic" || c.api.auth == "bearer", "auth");
  FuzzCheck(c.api.format == "text" || c.api.format == "json", "format");
  FuzzCheck(!c.api.api_key_file.empty(), "key file resolved");
  FuzzCheck(!c.nft.table.empty() && c.nft.table.size() < 64, "table name");
  FuzzCheck(!c.nft.hooks.empty() && c.nft.hooks.size() <= 3, "hooks");
  FuzzCheck(c.nft.priority >= -1000 && c.nft.priority <= 1000, "priority");
  for (const auto& id : c.collections) FuzzCheck(!id.empty() && id.size() <= 128, "feed id");
  for (const Prefix& p : c.allowlist) CheckAcceptedPrefix(p);
  const Status v = Validate(c);
  if (!v.ok()) FuzzCheck(!v.message().empty(), "Validate message");
  return 0;
}
