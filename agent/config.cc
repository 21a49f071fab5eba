#include "agent/config.h"

#include <fcntl.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "feeds/safe_file.h"

namespace po = boost::program_options;

namespace iocwall {
namespace {

// The configuration keys: name, whether it may repeat, default shown in --help, help text.
struct KeySpec {
  const char* name;
  bool repeatable;
  const char* help;
};

constexpr KeySpec kKeys[] = {
    {"api.url", false, "API base URL (default https://app.sekoia.io/api)"},
    {"api.api_key_file", false,
     "file holding the API key (default $CREDENTIALS_DIRECTORY/api_key, else "
     "/etc/iocwall/api_key); must not be readable by group or others"},
    {"api.auth", false,
     "bearer (Authorization: Bearer KEY, default, as Sekoia documents) or basic (the API key as "
     "password)"},
    {"api.ca_file", false, "CA bundle for a private CA (default: the system's CAs)"},
    {"api.proxy", false, "HTTP(S) proxy URL; empty: no proxy (default: environment)"},
    {"api.timeout", false, "total time allowed per request (default 60s)"},
    {"api.connect_timeout", false, "time allowed to connect (default 10s)"},
    {"api.fetch_timeout", false,
     "total time allowed for the whole fetch of one collection, every page, retry and back-off "
     "wait included (default 5m)"},
    {"api.allow_http", false, "allow a plain http:// URL, for a local mirror (default false)"},
    {"api.format", false, "text (default) or json (per-indicator validity)"},
    {"api.max_body", false,
     "largest answer accepted for one fetch, all pages together, in bytes (default 67108864 "
     "with format = text, 4294967296 with json)"},
    {"api.rate_limit", false,
     "requests per second at most (default 5, Sekoia's limit; 0: none, for a local mirror)"},
    {"collections.id", true, "IOC collection (feed) id; repeat for several, they are merged"},
    {"files.path", true, "local list file, one entry per line; repeatable"},
    {"allowlist.prefix", true, "address or CIDR never blocked; repeatable"},
    {"allowlist.connected_networks", false,
     "never block the networks this host is directly connected to (default true)"},
    {"sync.interval", false, "time between cycles (default 5m)"},
    {"sync.jitter", false, "random delay added to each interval (default 30s)"},
    {"sync.state_dir", false, "where the last good lists live (default /var/lib/iocwall)"},
    {"sync.max_shrink_percent", false,
     "refuse a result that shrinks the enforced set by more than this (default 50)"},
    {"sync.max_entries", false, "refuse a result with more elements than this (default 1000000)"},
    {"sync.min_prefix_v4", false, "refuse IPv4 prefixes shorter than this (default 8)"},
    {"sync.min_prefix_v6", false, "refuse IPv6 prefixes shorter than this (default 32)"},
    {"sync.max_age", false, "--status is CRITICAL when the enforced list is older (default 1d)"},
    {"sync.full_resync", false,
     "format=json: fetch changes only, and the whole collection at least this often (default "
     "1d; 0: always whole)"},
    {"nftables.table", false, "name of iocwall's inet table (default iocwall)"},
    {"nftables.hooks", false, "base chains to create: input,forward,output (default all three)"},
    {"nftables.priority", false, "base chain priority (default -200)"},
    {"nftables.action", false, "drop (default) or reject"},
    {"nftables.log", false, "log dropped packets, rate-limited (default false)"},
    {"nftables.element_counters", false,
     "per-element packet counters, for --status --top (default false)"},
    {"metrics.textfile", false, "write Prometheus metrics to this file (default: off)"},
    {"metrics.mode", false,
     "permissions of the metrics file, octal, within 0644 (default 0644: node_exporter, "
     "running as another user, reads it)"},
};

const KeySpec* FindKey(const std::string& name) {
  for (const auto& k : kKeys)
    if (name == k.name) return &k;
  return nullptr;
}

std::string SectionOf(const KeySpec& k) {
  const std::string name = k.name;
  return name.substr(0, name.find('.'));
}

// The sections, in the order of kKeys (the order of the man page).
std::vector<std::string> Sections() {
  std::vector<std::string> out;
  for (const auto& k : kKeys) {
    std::string s = SectionOf(k);
    if (out.empty() || out.back() != s) out.push_back(s);
  }
  return out;
}

std::vector<std::string> KeysOf(const std::string& section) {
  std::vector<std::string> out;
  for (const auto& k : kKeys)
    if (SectionOf(k) == section) out.push_back(std::string(k.name).substr(section.size() + 1));
  return out;
}

// Optimal string alignment distance, case-insensitive: a swapped pair of letters counts as one
// typo, like a missing or an extra one.
size_t EditDistance(const std::string& a, const std::string& b) {
  auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The name the operator most likely meant, when one is close enough to be a typo: about one
// edit per four letters, so that short names are not matched to unrelated ones.
std::optional<std::string> Closest(const std::string& typed,
                                   const std::vector<std::string>& names) {
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const auto& n : names) {
    const size_t limit = std::clamp<size_t>(std::max(typed.size(), n.size()) / 4, 1, 3);
    const size_t distance = EditDistance(typed, n);
    if (distance <= limit && (!best || distance < best_distance)) {
      best = n;
      best_distance = distance;
    }
  }
  return best;
}

std::string Join(const std::vector<std::string>& names, const std::string& before,
                 const std::string& after) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + before + n + after;
  return out;
}

// An unknown section is reported at its header, even when no key follows it: an empty
// misspelt section would otherwise be ignored, and a key under it blamed instead.
std::string UnknownSection(const std::string& section) {
  const auto sections = Sections();
  if (auto near = Closest(section, sections)) {
    return "unknown section [" + section + "]; did you mean [" + *near + "]?";
  }
  return "unknown section [" + section + "]; the sections are " + Join(sections, "[", "]");
}

std::string UnknownKey(const std::string& section, const std::string& key) {
  const std::string head = "unknown key '" + key + "' in section [" + section + "]; ";
  const auto keys = KeysOf(section);
  if (auto near = Closest(key, keys)) return head + "did you mean '" + *near + "'?";
  for (const auto& other : Sections()) {
    if (FindKey(other + "." + key) != nullptr) {
      return head + "did you mean " + key + " in section [" + other + "]?";
    }
  }
  return head + "its keys are " + Join(keys, "", "");
}

po::options_description ModeOptions() {
  po::options_description d("Modes and flags");
  // clang-format off
  d.add_options()
      ("help,h", "show this help and exit")
      ("version", "print the version and exit")
      ("config,c", po::value<std::string>()->value_name("FILE"),
       "configuration file (default /etc/iocwall/iocwall.conf)")
      ("once", "run one cycle; exit 0 only if the fresh list is now enforced")
      ("dry-run", "fetch and print the plan per set; change nothing")
      ("status", "show what the kernel enforces and the state of each source")
      ("json", "with --status: machine-readable output")
      ("top", po::value<size_t>()->value_name("N"),
       "with --status: the N most-hit blocked entries (needs element_counters)")
      ("explain", po::value<std::string>()->value_name("IP"),
       "say whether IP is blocked, by which entry, from which source, since when")
      ("list", "list what is enforced, with provenance: entry, source, indicator, validity")
      ("source", po::value<std::string>()->value_name("S"),
       "with --list: only the sources whose name contains S")
      ("restore", "enforce the last good list from state_dir, without network (early boot)")
      ("flush", "delete iocwall's table (and nothing else): stops all enforcement")
      ("force", "accept once a result that a guard refused")
      ("check-config",
       "validate the configuration, the API key file and the paths it names, then exit")
      ("no-path-check",
       "with --check-config: leave the paths out (a file written for another host or an image)")
      ("verbose,v", "log debug lines");
  // clang-format on
  return d;
}

po::options_description KeyOptions() {
  po::options_description d("Configuration keys (file sections, or flags --section.key VALUE)");
  for (const auto& k : kKeys) {
    if (k.repeatable) {
      d.add_options()(k.name, po::value<std::vector<std::string>>()->composing(), k.help);
    } else {
      d.add_options()(k.name, po::value<std::string>(), k.help);
    }
  }
  return d;
}

// Where a key's value came from, for error messages.
struct Origin {
  std::map<std::string, std::string> where;  // key -> "file:line: [section] key" or "--key"
  std::string Of(const std::string& key) const {
    auto it = where.find(key);
    if (it != where.end()) return it->second;
    return "--" + key;
  }
};

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Reads the INI file into Boost's parsed_options, checking every key against the known ones
// and remembering each key's line, so that errors name the file, the line and the key.
Status ReadConfigFile(const std::string& path, const po::options_description& desc,
                      const std::set<std::string>& from_cli, po::variables_map* vm,
                      Origin* origin) {
  // A regular file of bounded size (a FIFO or a device there would block or never end), read
  // through a link as an operator may well keep the file elsewhere and link it.
  constexpr size_t kMaxConfigBytes = 1 << 20;
  ReadOutcome read = ReadRegularFile(AT_FDCWD, path, kMaxConfigBytes, /*follow_symlinks=*/true);
  if (read.kind != ReadOutcome::kOk) {
    const std::string why = read.kind == ReadOutcome::kAbsent ? "no such file" : read.message;
    return Status::Error("configuration file " + path + ": cannot be read (" + why + ")");
  }
  std::istringstream in(std::move(read.data));
  po::parsed_options parsed(&desc);
  std::string section, raw;
  std::map<std::string, int> seen_line;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = Trim(raw);
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line = Trim(line.substr(3));
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    // An inline comment starts at a ';' or '#' after a space or tab, as in the README and
    // the pages. A bare one stays in the value: a URL's '#fragment' or ';param' is data, and
    // no key takes a value with a space before such a character.
    for (size_t i = 1; i < line.size(); ++i) {
      if ((line[i] == ';' || line[i] == '#') && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = Trim(line.substr(0, i));
        break;
      }
    }
    const std::string at = path + ":" + std::to_string(line_no) + ": ";
    if (line.front() == '[') {
      if (line.back() != ']') return Status::Error(at + "malformed section header '" + line + "'");
      section = Trim(line.substr(1, line.size() - 2));
      if (KeysOf(section).empty()) return Status::Error(at + UnknownSection(section));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      // Not quoted: a line without '=' may be an API key pasted into the wrong file.
      return Status::Error(at +
                           "expected 'key = value' or a [section] header (the line is not "
                           "shown: it may hold a secret)");
    }
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (section.empty()) {
      return Status::Error(at + "key '" + key + "' is outside any [section]");
    }
    std::string full = section + "." + key;
    const KeySpec* spec = FindKey(full);
    if (spec == nullptr) {
      return Status::Error(at + UnknownKey(section, key));
    }
    if (!spec->repeatable && seen_line.count(full)) {
      return Status::Error(at + "[" + section + "] " + key + " is given twice (first on line " +
                           std::to_string(seen_line[full]) + ")");
    }
    seen_line[full] = line_no;
    if (from_cli.count(full) && !spec->repeatable) continue;  // the flag wins
    origin->where.emplace(full, at + "[" + section + "] " + key);
    parsed.options.emplace_back(full, std::vector<std::string>{value});
  }
  try {
    po::store(parsed, *vm);
  } catch (const po::error& e) {
    return Status::Error(path + ": " + e.what());
  }
  return Status::Ok();
}

bool ParseBool(const std::string& v, bool* out) {
  std::string s;
  for (char c : v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "yes" || s == "on" || s == "1") return *out = true, true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return *out = false, true;
  return false;
}

template <typename T>
bool ParseInt(const std::string& v, T* out) {
  auto r = std::from_chars(v.data(), v.data() + v.size(), *out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size() && !v.empty();
}

class Converter {
 public:
  Converter(const po::variables_map& vm, const Origin& origin) : vm_(vm), origin_(origin) {}

  bool Has(const char* key) const { return vm_.count(key) > 0; }
  std::string Str(const char* key) const { return vm_[key].as<std::string>(); }
  std::vector<std::string> List(const char* key) const {
    return Has(key) ? vm_[key].as<std::vector<std::string>>() : std::vector<std::string>{};
  }
  Status Bad(const char* key, const std::string& value, const std::string& why) const {
    return Status::Error(origin_.Of(key) + ": invalid value '" + value + "': " + why);
  }

  Status Duration(const char* key, std::chrono::seconds* out) const {
    if (!Has(key)) return Status::Ok();
    auto d = ParseDuration(Str(key));
    if (!d) return Bad(key, Str(key), "expected a duration such as 30, 30s, 5m, 1h or 1d");
    *out = *d;
    return Status::Ok();
  }
  Status Bool(const char* key, bool* out) const {
    if (!Has(key)) return Status::Ok();
    if (!ParseBool(Str(key), out)) return Bad(key, Str(key), "expected true or false");
    return Status::Ok();
  }
  template <typename T>
  Status Int(const char* key, T* out, int64_t lo, int64_t hi) const {
    if (!Has(key)) return Status::Ok();
    int64_t v = 0;
    if (!ParseInt(Str(key), &v) || v < lo || v > hi) {
      return Bad(
          key, Str(key),
          "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    *out = static_cast<T>(v);
    return Status::Ok();
  }
  Status OneOf(const char* key, std::string* out,
               std::initializer_list<const char*> allowed) const {
    if (!Has(key)) return Status::Ok();
    std::string v = Str(key);
    std::string names;
    for (const char* a : allowed) {
      if (v == a) return *out = v, Status::Ok();
      names += names.empty() ? a : std::string(" or ") + a;
    }
    return Bad(key, v, "expected " + names);
  }

 private:
  const po::variables_map& vm_;
  const Origin& origin_;
};

// Long on purpose: one line per configuration key, in the order of iocwall.conf(5), so that a key
// added to the reference is added here in one visible place.
Status Convert(const po::variables_map& vm, const Origin& origin, Config* c) {
  Converter cv(vm, origin);
  if (cv.Has("api.url")) c->api.url = cv.Str("api.url");
  if (cv.Has("api.api_key_file")) c->api.api_key_file = cv.Str("api.api_key_file");
  IOCWALL_TRY(cv.OneOf("api.auth", &c->api.auth, {"basic", "bearer"}));
  if (cv.Has("api.ca_file")) c->api.ca_file = cv.Str("api.ca_file");
  if (cv.Has("api.proxy")) c->api.proxy = cv.Str("api.proxy");
  IOCWALL_TRY(cv.Duration("api.timeout", &c->api.timeout));
  IOCWALL_TRY(cv.Duration("api.connect_timeout", &c->api.connect_timeout));
  IOCWALL_TRY(cv.Duration("api.fetch_timeout", &c->api.fetch_timeout));
  IOCWALL_TRY(cv.Bool("api.allow_http", &c->api.allow_http));
  IOCWALL_TRY(cv.OneOf("api.format", &c->api.format, {"text", "json"}));
  // A json indicator costs about 30 times the bytes of a text line: the default cap follows.
  // JSON pages are parsed as they arrive and dropped (only prefix, validity and id are kept), so
  // the cap bounds the transfer, not memory: 4 GiB admits a community of about 1.4M realistic
  // (~3 KB) indicators; fetch_timeout and max_entries bound the rest.
  if (c->api.format == "json") c->api.max_body = 4ull << 30;
  IOCWALL_TRY(cv.Int("api.max_body", &c->api.max_body, 1024, int64_t{1} << 40));
  if (c->api.timeout.count() <= 0) return cv.Bad("api.timeout", "0", "must be positive");
  if (c->api.fetch_timeout.count() <= 0) {
    return cv.Bad("api.fetch_timeout", "0", "must be positive");
  }

  c->collections = cv.List("collections.id");
  for (const auto& id : c->collections) {
    bool ok = !id.empty() && id.size() <= 128;
    for (char ch : id)
      ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_');
    if (!ok) return cv.Bad("collections.id", id, "a feed id is letters, digits, '-' and '_'");
  }
  c->files = cv.List("files.path");
  for (const auto& text : cv.List("allowlist.prefix")) {
    auto p = ParsePrefixWithReason(text);
    if (!p.ok()) return cv.Bad("allowlist.prefix", text, p.message());
    c->allowlist.push_back(p.value());
  }
  IOCWALL_TRY(cv.Bool("allowlist.connected_networks", &c->allow_connected_networks));

  IOCWALL_TRY(cv.Duration("sync.interval", &c->sync.interval));
  IOCWALL_TRY(cv.Duration("sync.jitter", &c->sync.jitter));
  if (cv.Has("sync.state_dir")) c->sync.state_dir = cv.Str("sync.state_dir");
  IOCWALL_TRY(cv.Int("sync.max_shrink_percent", &c->sync.max_shrink_percent, 0, 100));
  IOCWALL_TRY(cv.Int("sync.max_entries", &c->sync.max_entries, 1, 100000000));
  IOCWALL_TRY(cv.Int("sync.min_prefix_v4", &c->sync.min_prefix_v4, 1, 32));
  IOCWALL_TRY(cv.Int("sync.min_prefix_v6", &c->sync.min_prefix_v6, 1, 128));
  IOCWALL_TRY(cv.Duration("sync.max_age", &c->sync.max_age));
  IOCWALL_TRY(cv.Duration("sync.full_resync", &c->sync.full_resync));
  IOCWALL_TRY(cv.Int("api.rate_limit", &c->api.rate_limit, 0, 100));
  if (c->sync.interval.count() < 10) {
    return cv.Bad("sync.interval", cv.Str("sync.interval"),
                  "at least 10s (Sekoia's API allows 5 requests per second in all)");
  }

  if (cv.Has("nftables.table")) {
    c->nft.table = cv.Str("nftables.table");
    bool ok = !c->nft.table.empty() && c->nft.table.size() < 64;
    for (char ch : c->nft.table)
      ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
    if (!ok) return cv.Bad("nftables.table", c->nft.table, "letters, digits and '_', up to 63");
  }
  if (cv.Has("nftables.hooks")) {
    c->nft.hooks.clear();
    std::stringstream ss(cv.Str("nftables.hooks"));
    std::string item;
    while (std::getline(ss, item, ',')) {
      item = Trim(item);
      Hook h;
      if (item == "input")
        h = Hook::kInput;
      else if (item == "forward")
        h = Hook::kForward;
      else if (item == "output")
        h = Hook::kOutput;
      else
        return cv.Bad("nftables.hooks", cv.Str("nftables.hooks"),
                      "a comma-separated list of input, forward, output");
      for (Hook seen : c->nft.hooks)
        if (seen == h) return cv.Bad("nftables.hooks", cv.Str("nftables.hooks"), item + " twice");
      c->nft.hooks.push_back(h);
    }
    if (c->nft.hooks.empty()) {
      return cv.Bad("nftables.hooks", "", "at least one of input, forward, output");
    }
  }
  IOCWALL_TRY(cv.Int("nftables.priority", &c->nft.priority, -1000, 1000));
  std::string action = "drop";
  IOCWALL_TRY(cv.OneOf("nftables.action", &action, {"drop", "reject"}));
  c->nft.action = action == "drop" ? Action::kDrop : Action::kReject;
  IOCWALL_TRY(cv.Bool("nftables.log", &c->nft.log));
  IOCWALL_TRY(cv.Bool("nftables.element_counters", &c->nft.element_counters));
  if (cv.Has("metrics.textfile")) c->metrics_textfile = cv.Str("metrics.textfile");
  if (cv.Has("metrics.mode")) {
    const std::string m = Trim(cv.Str("metrics.mode"));
    uint32_t mode = 0;
    bool ok = !m.empty() && m.size() <= 4;
    for (char ch : m) ok = ok && ch >= '0' && ch <= '7';
    if (ok) mode = static_cast<uint32_t>(std::stoul(m, nullptr, 8));
    // Write, execute and special bits for others would let them forge or run the file.
    if (!ok || (mode & ~0644u) != 0) {
      return cv.Bad("metrics.mode", m, "octal permissions within 0644, e.g. 0644 or 0640");
    }
    c->metrics_mode = mode;
  }
  // With per-indicator validity (format = json) the kernel expires each element by itself at
  // its valid_until, so expiry stays exact while the agent is down.
  c->nft.timeouts = c->api.format == "json";

  if (c->api.api_key_file.empty()) {
    const char* creds = std::getenv("CREDENTIALS_DIRECTORY");
    c->api.api_key_file =
        creds && *creds ? std::string(creds) + "/api_key" : std::string("/etc/iocwall/api_key");
  }
  return Status::Ok();
}

// "; did you mean --sync.interval?" for a misspelt long flag; only a known name is ever quoted,
// never the token's text after '='.
std::string FlagSuggestion(const std::string& token, const po::options_description& all) {
  if (token.rfind("--", 0) != 0) return "";
  const std::string name = token.substr(2, token.find('=') - 2);
  std::vector<std::string> names;
  for (const auto& o : all.options()) names.push_back(o->long_name());
  auto near = Closest(name, names);
  return near ? "; did you mean --" + *near + "?" : "";
}

}  // namespace

std::optional<std::chrono::seconds> ParseDuration(const std::string& text) {
  std::string t = Trim(text);
  if (t.empty()) return std::nullopt;
  int64_t mult = 1;
  char last = t.back();
  if (std::isalpha(static_cast<unsigned char>(last))) {
    switch (last) {
      case 's':
        mult = 1;
        break;
      case 'm':
        mult = 60;
        break;
      case 'h':
        mult = 3600;
        break;
      case 'd':
        mult = 86400;
        break;
      default:
        return std::nullopt;
    }
    t.pop_back();
  }
  int64_t n = 0;
  if (!ParseInt(t, &n) || n < 0 || n > int64_t{10} * 365 * 86400 / mult) return std::nullopt;
  return std::chrono::seconds(n * mult);
}

std::string HelpText() {
  std::ostringstream out;
  out << "Usage: iocwall [-c FILE] [MODE] [--section.key VALUE ...]\n"
         "Enforces IP blocklists from Sekoia.io IOC collections and local files in nftables\n"
         "sets, updating the kernel by its diff in one atomic transaction.\n"
         "Without a mode, runs as a daemon. See iocwall(8) and iocwall.conf(5).\n\n"
      << ModeOptions() << "\n"
      << KeyOptions();
  return out.str();
}

std::string UnknownOptionMessage(const std::string& token) {
  // Boost quotes the whole token: "--api.api_key=KEY" or "-kKEY" would print the value, which
  // may be the very key someone tried to pass on the command line. Quote the name only.
  std::string name = token;
  bool cut = false;
  if (name.rfind("--", 0) == 0) {
    const size_t eq = name.find('=');
    cut = eq != std::string::npos;
    if (cut) name.resize(eq);
  } else if (name.size() > 2 && name[0] == '-') {
    name.resize(2);
    cut = true;
  }
  for (char& c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return "unrecognised option '" + name + "'" +
         (cut ? " (the text after it is not shown)" : std::string());
}

// Long on purpose: the command line's options, their exclusions and their precedence over the
// file read in one pass, in the order iocwall(8) documents them.
Result<Invocation> ParseInvocation(const std::vector<std::string>& args, bool* config_error) {
  if (config_error != nullptr) *config_error = false;
  po::options_description modes = ModeOptions();
  po::options_description keys = KeyOptions();
  po::options_description all;
  all.add(modes).add(keys);

  po::variables_map vm;
  std::set<std::string> from_cli;
  try {
    std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
    // No guessing: "--api.api_key SECRET" must not be taken for --api.api_key_file, which
    // would then quote SECRET as a file name.
    po::parsed_options parsed =
        po::command_line_parser(rest)
            .options(all)
            .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
            .run();
    for (const auto& o : parsed.options) from_cli.insert(o.string_key);
    po::store(parsed, vm);
  } catch (const po::unknown_option& e) {
    return Status::Error(UnknownOptionMessage(e.get_option_name()) +
                         FlagSuggestion(e.get_option_name(), all) + " (see iocwall --help)");
  } catch (const po::error& e) {
    return Status::Error(std::string(e.what()) + " (see iocwall --help)");
  }

  Invocation inv;
  int modes_given = 0;
  auto mode = [&](const char* flag, Mode m) {
    if (vm.count(flag)) {
      inv.mode = m;
      ++modes_given;
    }
  };
  mode("once", Mode::kOnce);
  mode("dry-run", Mode::kDryRun);
  mode("status", Mode::kStatus);
  mode("explain", Mode::kExplain);
  mode("list", Mode::kList);
  mode("restore", Mode::kRestore);
  mode("flush", Mode::kFlush);
  mode("check-config", Mode::kCheckConfig);
  mode("version", Mode::kVersion);
  mode("help", Mode::kHelp);
  if (modes_given > 1) {
    return Status::Error(
        "give at most one of --once, --dry-run, --status, --explain, --list, --restore, --flush, "
        "--check-config, --version, --help");
  }
  inv.json = vm.count("json") > 0;
  inv.force = vm.count("force") > 0;
  inv.verbose = vm.count("verbose") > 0;
  if (vm.count("top")) inv.top = vm["top"].as<size_t>();
  if (vm.count("explain")) inv.explain = vm["explain"].as<std::string>();
  if (vm.count("source")) inv.source = vm["source"].as<std::string>();
  if ((inv.json || inv.top) && inv.mode != Mode::kStatus && inv.mode != Mode::kExplain &&
      !(inv.mode == Mode::kList && !inv.top)) {
    return Status::Error("--json goes with --status or --list, --top with --status");
  }
  if (!inv.source.empty() && inv.mode != Mode::kList) {
    return Status::Error("--source goes with --list");
  }
  inv.check_paths = vm.count("no-path-check") == 0;
  if (!inv.check_paths && inv.mode != Mode::kCheckConfig) {
    return Status::Error("--no-path-check goes with --check-config");
  }
  if (inv.force && inv.mode != Mode::kDaemon && inv.mode != Mode::kOnce) {
    return Status::Error("--force goes with --once (or the daemon's first cycle)");
  }
  if (inv.mode == Mode::kHelp || inv.mode == Mode::kVersion) return inv;

  Origin origin;
  inv.config.path = vm.count("config") ? vm["config"].as<std::string>() : kDefaultConfigPath;
  Status s = ReadConfigFile(inv.config.path, keys, from_cli, &vm, &origin);
  if (s.ok()) {
    po::notify(vm);
    s = Convert(vm, origin, &inv.config);
  }
  if (!s.ok()) {
    if (config_error != nullptr) *config_error = true;
    return s;
  }
  return inv;
}

Status Validate(const Config& c) {
  const std::string at = "configuration " + c.path + ": ";
  if (c.collections.empty() && c.files.empty()) {
    return Status::Error(at + "nothing to enforce: add [collections] id or [files] path");
  }
  if (!c.collections.empty()) {
    const std::string& u = c.api.url;
    if (u.rfind("https://", 0) != 0) {
      if (u.rfind("http://", 0) == 0 && !c.api.allow_http) {
        return Status::Error(at + "[api] url " + u +
                             " is plain http: the feed would travel unauthenticated; use https "
                             "or set [api] allow_http = true for a local mirror");
      }
      if (u.rfind("http://", 0) != 0) {
        return Status::Error(at + "[api] url " + u + " must start with https://");
      }
    }
  }
  if (c.sync.jitter > c.sync.interval) {
    return Status::Error(at + "[sync] jitter must not exceed [sync] interval");
  }
  return Status::Ok();
}

}  // namespace iocwall
