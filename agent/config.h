// Configuration: one INI file plus command-line flags, read with Boost.Program_options.
// Every key of the file can also be given as a long flag "--section.key VALUE"; flags win.
// A missing file, an unknown key or a bad value is an error naming the file, the line and
// the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/prefix.h"
#include "core/status.h"
#include "netlink/set_backend.h"

namespace iocwall {

inline constexpr const char* kDefaultConfigPath = "/etc/iocwall/iocwall.conf";

struct ApiConfig {
  std::string url = "https://app.sekoia.io/api";
  std::string api_key_file;     // resolved: $CREDENTIALS_DIRECTORY/api_key or /etc/iocwall/api_key
  std::string auth = "bearer";  // bearer (Sekoia's documented way) | basic (key as password)
  std::string ca_file;
  std::optional<std::string> proxy;  // unset: libcurl's default (environment); "": no proxy
  std::chrono::seconds timeout{60};
  std::chrono::seconds connect_timeout{10};
  // The whole fetch of one collection, every page and back-off wait together; well under the
  // unit's WatchdogSec (10 min).
  std::chrono::seconds fetch_timeout{300};
  bool allow_http = false;
  std::string format = "text";  // text | json
  uint64_t max_body = 64ull << 20;
  int rate_limit = 5;  // requests per second to the API (Sekoia's WAF); 0: none (local mirror)
};

struct SyncConfig {
  std::chrono::seconds interval{300};
  std::chrono::seconds jitter{30};
  std::string state_dir = "/var/lib/iocwall";
  unsigned max_shrink_percent = 50;
  uint64_t max_entries = 1000000;
  uint8_t min_prefix_v4 = 8;
  uint8_t min_prefix_v6 = 32;
  std::chrono::seconds max_age{86400};
  std::chrono::seconds full_resync{86400};  // format=json: a full fetch at least this often
};

struct Config {
  std::string path;  // the file read ("" when none)
  ApiConfig api;
  std::vector<std::string> collections;
  std::vector<std::string> files;
  std::vector<Prefix> allowlist;
  bool allow_connected_networks = true;  // [allowlist] connected_networks: never block them
  SyncConfig sync;
  TableSpec nft;
  std::string metrics_textfile;
  // The metrics file holds no secret: readable by others by default, so that node_exporter
  // (user prometheus on Debian) reads it.
  uint32_t metrics_mode = 0644;
};

enum class Mode {
  kDaemon,
  kOnce,
  kDryRun,
  kStatus,
  kExplain,
  kList,
  kRestore,
  kFlush,
  kCheckConfig,
  kVersion,
  kHelp,
};

struct Invocation {
  Mode mode = Mode::kDaemon;
  bool json = false;
  size_t top = 0;
  std::string explain;
  std::string source;  // --list --source S
  bool force = false;
  bool verbose = false;
  bool check_paths = true;  // --check-config without --no-path-check
  Config config;
};

// Parses argv and (except for --help/--version) the configuration file it names. On an error,
// *config_error (when given) says whether it is in the configuration (the file, or a
// --section.key value) rather than in the command line: the two exit differently.
Result<Invocation> ParseInvocation(const std::vector<std::string>& args,
                                   bool* config_error = nullptr);
// The error for an unknown command-line token: the option's name only, never the text after
// '=' (or after a short option's letter), which may be a value such as the API key.
std::string UnknownOptionMessage(const std::string& token);

// The --help text: every flag and every configuration key.
std::string HelpText();

// "30", "30s", "5m", "1h", "1d" -> seconds.
std::optional<std::chrono::seconds> ParseDuration(const std::string& text);

// Validates the configuration as a whole (at least one source, sane ranges).
Status Validate(const Config& config);

}  // namespace iocwall
