#include "agent/wiring.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "feeds/file_source.h"
#include "feeds/safe_file.h"
#include "feeds/secret_file.h"
#include "feeds/sekoia_source.h"

namespace iocwall {
namespace {

SekoiaOptions OptionsFor(const Config& c, const std::string& id) {
  SekoiaOptions o;
  o.url = c.api.url;
  o.collection_id = id;
  o.api_key_file = c.api.api_key_file;
  o.auth = c.api.auth == "basic" ? SekoiaAuth::kBasic : SekoiaAuth::kBearer;
  o.format = c.api.format == "json" ? SekoiaFormat::kJson : SekoiaFormat::kText;
  o.ca_file = c.api.ca_file;
  o.proxy = c.api.proxy.value_or("");
  o.allow_http = c.api.allow_http;
  o.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.api.connect_timeout);
  o.request_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.api.timeout);
  o.fetch_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.api.fetch_timeout);
  o.max_body_bytes = c.api.max_body;
  o.backoff.max_requests_per_second = c.api.rate_limit;
  return o;
}

// A file iocwall reads: it must exist, be a regular file (through a symbolic link is fine, as
// the list reader follows one) and be readable by this process.
std::optional<std::string> FileProblem(const std::string& key, const std::string& path) {
  const std::string at = key + " " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return at + (errno == ENOENT ? std::string(" does not exist")
                                 : ": cannot stat: " + std::string(std::strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) return at + " is a directory, not a file";
  if (!S_ISREG(st.st_mode)) return at + " is not a regular file";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return at + " cannot be read: " + std::strerror(errno);
  return std::nullopt;
}

// Who makes a directory that is absent: nobody (its absence is a problem), the agent (the last
// component only, so its parent must exist), or iocwall.service when it starts.
enum class Absent { kProblem, kAgentCreates, kUnitCreates };

// A directory iocwall writes in, checked by the very rules the agent applies when it writes
// (safe_file.h), never created nor changed here.
std::optional<std::string> DirProblem(const std::string& key, const std::string& dir,
                                      const std::string& what, Absent absent) {
  DirRules rules;
  rules.what = what;
  auto d = OpenTrustedDir(dir, rules);
  if (d.ok()) return std::nullopt;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0 || errno != ENOENT) return key + ": " + d.message();
  switch (absent) {
    case Absent::kProblem:
      return key + ": " + what + " " + dir + " does not exist";
    case Absent::kAgentCreates: {
      const std::string parent =
          dir.substr(0, dir.find_last_of('/', dir.find_last_not_of('/')) + 1);
      if (::stat(parent.empty() ? "." : parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return key + ": " + what + " " + dir + " does not exist, nor does its parent " + parent +
               " (iocwall creates the last directory only)";
      }
      return std::nullopt;
    }
    case Absent::kUnitCreates:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::unique_ptr<Source>> MakeSources(const Config& c, Clock* clock) {
  std::vector<std::unique_ptr<Source>> out;
  for (const auto& id : c.collections) {
    out.push_back(std::make_unique<SekoiaSource>(OptionsFor(c, id), clock));
  }
  for (const auto& path : c.files) {
    FileSourceOptions o;
    o.path = path;
    out.push_back(std::make_unique<FileSource>(o));
  }
  return out;
}

HostInfoOptions HostOptionsFor(const Config& c) {
  HostInfoOptions o;
  o.connected_networks = c.allow_connected_networks;
  o.min_len_v4 = c.sync.min_prefix_v4;
  o.min_len_v6 = c.sync.min_prefix_v6;
  return o;
}

Status CheckConfig(const Config& c) {
  Status s = Validate(c);
  if (!s.ok()) return s;
  for (const auto& id : c.collections) {
    s = OptionsFor(c, id).Validate();
    if (!s.ok()) return s.Wrap("configuration " + c.path + ": collection " + id);
  }
  if (!c.collections.empty()) {
    Secret key;
    s = ReadSecretFile(c.api.api_key_file, &key);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::vector<std::string> CheckPaths(const Config& c) {
  std::vector<std::string> problems;
  auto add = [&](std::optional<std::string> p) {
    if (p) problems.push_back("configuration " + c.path + ": " + *p);
  };
  for (const auto& path : c.files) add(FileProblem("[files] path", path));
  if (!c.api.ca_file.empty()) add(FileProblem("[api] ca_file", c.api.ca_file));
  add(DirProblem("[sync] state_dir", c.sync.state_dir, "state_dir", Absent::kAgentCreates));
  if (!c.metrics_textfile.empty()) {
    const std::string& file = c.metrics_textfile;
    const size_t slash = file.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : file.substr(0, slash);
    // iocwall.service creates /run/iocwall (RuntimeDirectory=) when it starts and removes it
    // when it stops: absent while the daemon is stopped is its normal state.
    add(DirProblem("[metrics] textfile", dir, "metrics directory",
                   dir == "/run/iocwall" ? Absent::kUnitCreates : Absent::kProblem));
    struct stat st {};
    if (::lstat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      add("[metrics] textfile " + file + " is a directory: name a file in it");
    }
  }
  return problems;
}

}  // namespace iocwall
