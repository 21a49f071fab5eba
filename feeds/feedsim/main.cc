// iocwall-feedsim: a local double of Sekoia.io's IOC collection feed, for iocwall's tests,
// demo and benchmarks. No internet, no Sekoia account. See --help.
#include <dirent.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "feeds/feedsim/certs.h"
#include "feeds/feedsim/server.h"
#include "feeds/feedsim/store.h"

namespace po = boost::program_options;
using nlohmann::json;
using namespace iocwall::feedsim;

namespace {

constexpr char kUsage[] = R"(iocwall-feedsim: a local double of the Sekoia.io IOC collection feed.

Usage:
  iocwall-feedsim [serve] [options]     serve collections over HTTP and/or HTTPS
  iocwall-feedsim gen-ca --out DIR       write a test CA: ca.pem, ca.key, server.pem, server.key
                                         (server certificate for localhost, 127.0.0.1, ::1)
  iocwall-feedsim add    --url URL --collection ID --api-key-file F [options] VALUE...
  iocwall-feedsim revoke --url URL --collection ID --api-key-file F [options] VALUE...

Endpoints served (any path prefix before /v2, e.g. /api):
  GET  /v2/inthreat/collections/{id}/objects?format=text|json&limit=N&cursor=C
       &skip_expired=true|false&include_revoked=true|false&modified_after=T
       text: one value a line, next cursor in the "Cursor" header (sent with every non-empty
       page), limit 1..10000 (default 100); json: {"items": [...], "next_cursor": C|null},
       limit 1..2000. Defaults: format=json, skip_expired=false, include_revoked=true.
       modified_after (RFC 3339 UTC): only indicators created, re-added, or revoked (simulator
       clock) strictly after T, on top of the other filters; not with cursor (400): the
       cursors of such a walk carry T on.
  POST /v2/inthreat/ioc-collections/{id}/indicators/text  -> 202
       {"format": "ipv4-addr.value"|"ipv6-addr.value", "indicators": "a\nb",
        "valid_for": DAYS | "valid_until": "RFC 3339"}   (default validity: --valid-days)
  POST /v2/inthreat/ioc-collections/{id}/indicators/revoke {"indicators": "a\nb"} (simulator's own)
  Auth: HTTP Basic with the key as password (any user name), or Authorization: Bearer KEY.
  Control (no auth, for tests): POST /_sim/fault FAULT, DELETE /_sim/fault,
  GET /_sim/clock, POST /_sim/clock {"offset_seconds": N} | {"advance_seconds": N}, GET /_sim/stats.

FAULT (a JSON object, for --fault and POST /_sim/fault), applied to the objects endpoint:
  status N           answer N with a JSON error body      retry_after "S"|S  Retry-After header
  slow_ms N          wait N ms before answering           cut_after_bytes N  send N bytes, hang up
  garbage true       200 with random bytes                empty true         200 with empty body
  html true          200 text/html proxy error page       crlf true          CRLF line ends
  bom true           UTF-8 BOM before the page            repeat_cursor true echo the request's cursor
  drop_cursor true   no cursor (no Cursor header; no next_cursor field)
  cap_limit N        serve at most N entries (a silent cap)  blank_lines true  blank lines in a page
  loop_cursor true   next cursor points back to the first page
  dribble_ms N       send the page in 20 slices spread over N ms
  last_page_cursor true|false   a cursor on the collection's last non-empty page, or none
  skip N             let N requests through first         times N            apply to N requests (-1: all)

Request log (--request-log): one JSON object a line per API request: seq, time, method, path,
params, tls, remote_port, auth_scheme (basic|bearer|none|other), auth_ok, user_agent, accept,
accept_encoding, status, entries, bytes (before compression), cursor_in, cursor_out (either
format), modified_after (the filter in force, from the query or the cursor), content_encoding,
fault. The Authorization value is never logged.
)";

bool ReadKeyFile(const std::string& path, std::string* key, std::string* err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *err = "cannot read the API key file " + path;
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  *key = ss.str();
  while (!key->empty() && (key->back() == '\n' || key->back() == '\r' || key->back() == ' ')) {
    key->pop_back();
  }
  if (key->empty()) {
    *err = "the API key file " + path + " is empty";
    return false;
  }
  return true;
}

// Writes {"http": P, "https": Q, "pid": N} atomically, for the tests that wait for it.
bool WritePortFile(const std::string& path, int http, int https) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << json{{"http", http}, {"https", https}, {"pid", getpid()}}.dump() << "\n";
    if (!out) return false;
  }
  return rename(tmp.c_str(), path.c_str()) == 0;
}

bool LoadCollection(Store* store, const std::string& spec, int64_t now, int valid_days,
                    std::string* err) {
  const size_t eq = spec.find('=');
  const std::string id = spec.substr(0, eq);
  if (id.empty()) {
    *err = "--collection needs an ID";
    return false;
  }
  if (eq == std::string::npos) {
    store->Declare(id);
    return true;
  }
  const std::string what = spec.substr(eq + 1);
  if (what.rfind("gen:", 0) == 0) {
    const std::string rest = what.substr(4);
    const bool mixed = rest.size() > 6 && rest.compare(rest.size() - 6, 6, ":mixed") == 0;
    char* end = nullptr;
    const unsigned long long n = strtoull(rest.c_str(), &end, 10);
    if (end == rest.c_str() || (*end != '\0' && !mixed)) {
      *err = "--collection " + spec + ": expected ID=gen:N or ID=gen:N:mixed";
      return false;
    }
    store->Generate(id, n, mixed, now, valid_days);
    return true;
  }
  return store->LoadFile(id, what, now, valid_days, err);
}

bool LoadDirectory(Store* store, const std::string& dir, int64_t now, int valid_days,
                   std::string* err) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    *err = "cannot open --collections-dir " + dir;
    return false;
  }
  bool ok = true;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    std::string id = name;
    for (const char* ext : {".txt", ".list", ".json"}) {
      const std::string x = ext;
      if (id.size() > x.size() && id.compare(id.size() - x.size(), x.size(), x) == 0) {
        id.resize(id.size() - x.size());
      }
    }
    if (!store->LoadFile(id, dir + "/" + name, now, valid_days, err)) {
      ok = false;
      break;
    }
  }
  closedir(d);
  return ok;
}

// Long on purpose: the serve mode's options, one per line, as --help lists them.
int Serve(int argc, char** argv) {
  SimOptions o;
  std::vector<std::string> collections, faults;
  std::string collections_dir, key_file, tls_dir, port_file;
  bool sekoia = false;
  po::options_description desc("serve options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("host", po::value(&o.host)->default_value("127.0.0.1"), "address to listen on")
      ("port", po::value(&o.http_port)->default_value(-1),
       "plain HTTP port; 0 picks a free one; -1 (default) disables HTTP")
      ("tls-port", po::value(&o.https_port)->default_value(-1),
       "HTTPS port; 0 picks a free one; -1 (default) disables HTTPS")
      ("tls-dir", po::value(&tls_dir), "directory with server.pem and server.key (see gen-ca)")
      ("cert", po::value(&o.cert_file), "server certificate (PEM), instead of --tls-dir")
      ("key", po::value(&o.key_file), "server private key (PEM), instead of --tls-dir")
      ("api-key-file", po::value(&key_file),
       "file holding the one API key accepted (never pass a key on the command line)")
      ("auth", po::value(&o.auth)->default_value("any"), "accepted scheme: basic, bearer or any")
      ("collection", po::value(&collections),
       "ID (empty), ID=FILE (list: one value a line, valid --valid-days; or .json array of "
       "{value, valid_from, valid_until, revoked, id, modified}), ID=gen:N (N IPv4 addresses), "
       "ID=gen:N:mixed (every tenth IPv6); repeatable")
      ("collections-dir", po::value(&collections_dir),
       "load every file NAME[.txt|.list|.json] of DIR as collection NAME")
      ("valid-days", po::value(&o.valid_days)->default_value(30),
       "validity of list entries and added indicators without one (Sekoia: 30 days for IPs)")
      ("clock-offset", po::value(&o.clock_offset)->default_value(0),
       "seconds added to the real clock (expiry tests); also POST /_sim/clock")
      ("fault", po::value(&faults), "FAULT JSON queued at start (see below); repeatable")
      ("strict-query", po::bool_switch(&o.strict_query),
       "answer 400 unless the query is the seed article's (text, 10000, skip_expired=true, "
       "include_revoked=false)")
      ("compression", po::value(&o.compression)->default_value("gzip"),
       "page encoding: gzip (when the client accepts it) or none")
      ("gzip-level", po::value(&o.gzip_level)->default_value(1),
       "zlib level of gzip pages, 1-9 (1: nginx's default gzip_comp_level)")
      ("keep-alive-max", po::value(&o.keep_alive_max)->default_value(1000),
       "requests served on one connection before it is closed")
      ("request-log", po::value(&o.request_log), "append a JSON line per API request to FILE")
      ("sekoia", po::bool_switch(&sekoia),
       "serve as Sekoia's real API does: --stix-items --base64-cursors --last-page-cursor "
       "always --cap-over-max --order-by-modified --serve-not-yet-valid --waf")
      ("page-cap", po::value(&o.page_cap)->default_value(0),
       "serve at most N entries a page whatever limit asks, without a word (0: no cap)")
      ("cap-over-max", po::bool_switch(&o.cap_over_max),
       "a limit over the maximum (10000 text, 2000 json) is capped silently instead of a 400")
      ("last-page-cursor", po::value(&o.last_page_cursor)->default_value("default"),
       "default (text: a cursor with every non-empty page; json: null on the last), always "
       "(never null: an empty page with a cursor ends the walk), never (none on the last page)")
      ("base64-cursors", po::bool_switch(&o.base64_cursors),
       "opaque base64 cursors holding '+', '/' and '=' (must be URL-encoded)")
      ("stix-items", po::bool_switch(&o.stix_items),
       "json: full STIX indicators of about 3 KB (description, kill chain, markings, sources); "
       "valid_until left out when there is none")
      ("order-by-modified", po::bool_switch(&o.order_by_modified),
       "pages sorted oldest modified first")
      ("serve-not-yet-valid", po::bool_switch(&o.serve_not_yet_valid),
       "also serve indicators whose valid_from is still ahead")
      ("waf", po::bool_switch(&o.waf),
       "Sekoia's WAF: more than --waf-rate requests in a second or --waf-errors error answers "
       "within --waf-window-ms block the client for a random time in [--waf-block-min-ms, "
       "--waf-block-max-ms], answering --waf-status")
      ("waf-rate", po::value(&o.waf_rate)->default_value(5), "WAF: requests a second")
      ("waf-errors", po::value(&o.waf_errors)->default_value(2), "WAF: error answers ...")
      ("waf-window-ms", po::value(&o.waf_window_ms)->default_value(10000), "WAF: ... within")
      ("waf-block-min-ms", po::value(&o.waf_block_min_ms)->default_value(30000),
       "WAF: shortest block")
      ("waf-block-max-ms", po::value(&o.waf_block_max_ms)->default_value(600000),
       "WAF: longest block")
      ("waf-status", po::value(&o.waf_status)->default_value(429),
       "WAF: the status of a blocked request (Sekoia does not document it: 429 or 403)")
      ("port-file", po::value(&port_file),
       "once listening, write {\"http\": P, \"https\": Q, \"pid\": N} to FILE (atomically)");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "iocwall-feedsim: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << desc << "\n";
    return 0;
  }
  std::string err;
  if (o.http_port < 0 && o.https_port < 0) {
    std::cerr << "iocwall-feedsim: give --port and/or --tls-port (0 picks a free port)\n";
    return 2;
  }
  if (sekoia) {
    o.stix_items = o.base64_cursors = o.cap_over_max = o.order_by_modified = true;
    o.serve_not_yet_valid = o.waf = true;
    if (vm["last-page-cursor"].defaulted()) o.last_page_cursor = "always";
  }
  if (o.last_page_cursor != "default" && o.last_page_cursor != "always" &&
      o.last_page_cursor != "never") {
    std::cerr << "iocwall-feedsim: --last-page-cursor takes default, always or never\n";
    return 2;
  }
  if (o.compression != "gzip" && o.compression != "none") {
    std::cerr << "iocwall-feedsim: --compression takes gzip or none\n";
    return 2;
  }
  if (o.gzip_level < 1 || o.gzip_level > 9) {
    std::cerr << "iocwall-feedsim: --gzip-level takes 1 to 9\n";
    return 2;
  }
  if (o.auth != "any" && o.auth != "basic" && o.auth != "bearer") {
    std::cerr << "iocwall-feedsim: --auth takes basic, bearer or any\n";
    return 2;
  }
  if (key_file.empty() || !ReadKeyFile(key_file, &o.api_key, &err)) {
    std::cerr << "iocwall-feedsim: " << (err.empty() ? "--api-key-file is required" : err) << "\n";
    return 2;
  }
  if (!tls_dir.empty()) {
    if (o.cert_file.empty()) o.cert_file = tls_dir + "/server.pem";
    if (o.key_file.empty()) o.key_file = tls_dir + "/server.key";
  }
  if (o.https_port >= 0 && (o.cert_file.empty() || o.key_file.empty())) {
    std::cerr << "iocwall-feedsim: HTTPS needs --tls-dir or --cert and --key\n";
    return 2;
  }
  for (const std::string& f : faults) {
    Fault fault;
    const json j = json::parse(f, nullptr, false);
    if (!ParseFault(j, &fault, &err)) {
      std::cerr << "iocwall-feedsim: --fault " << f << ": " << err << "\n";
      return 2;
    }
    o.faults.push_back(fault);
  }
  Store store;
  const int64_t now = static_cast<int64_t>(time(nullptr)) + o.clock_offset;
  for (const std::string& c : collections) {
    if (!LoadCollection(&store, c, now, o.valid_days, &err)) {
      std::cerr << "iocwall-feedsim: " << err << "\n";
      return 2;
    }
  }
  if (!collections_dir.empty() &&
      !LoadDirectory(&store, collections_dir, now, o.valid_days, &err)) {
    std::cerr << "iocwall-feedsim: " << err << "\n";
    return 2;
  }
  // Blocked before the server threads start so that only the main thread receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  SimServer server(o, &store);
  if (!server.Start(&err)) {
    std::cerr << "iocwall-feedsim: " << err << "\n";
    return 1;
  }
  std::cout << "iocwall-feedsim: listening";
  if (server.http_port() > 0) std::cout << " http://" << o.host << ":" << server.http_port();
  if (server.https_port() > 0) std::cout << " https://" << o.host << ":" << server.https_port();
  std::cout << std::endl;
  if (!port_file.empty() && !WritePortFile(port_file, server.http_port(), server.https_port())) {
    std::cerr << "iocwall-feedsim: cannot write " << port_file << "\n";
    server.Stop();
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  server.Stop();
  return 0;
}

int GenCa(int argc, char** argv) {
  std::string out;
  po::options_description desc("gen-ca options");
  desc.add_options()("help,h", "show this help")("out", po::value(&out), "directory to write to");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "iocwall-feedsim gen-ca: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help") || out.empty()) {
    std::cout << "iocwall-feedsim gen-ca --out DIR\n" << desc << "\n";
    return out.empty() && !vm.count("help") ? 2 : 0;
  }
  std::string err;
  if (!GenerateTestCa(out, &err)) {
    std::cerr << "iocwall-feedsim gen-ca: " << err << "\n";
    return 1;
  }
  std::cout << "wrote " << out << "/{ca.pem,ca.key,server.pem,server.key}\n";
  return 0;
}

// add / revoke: calls a running simulator (or anything speaking the same API). Long on
// purpose: its options and the one request they make, read top to bottom.
int Write(bool revoke, int argc, char** argv) {
  std::string url, collection, key_file, auth = "basic", ca_file, valid_until;
  int valid_for = 0;
  std::vector<std::string> values;
  po::options_description desc(revoke ? "revoke options" : "add options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("url", po::value(&url), "API base, e.g. https://127.0.0.1:8443/api")
      ("collection", po::value(&collection), "collection (Feed) ID")
      ("api-key-file", po::value(&key_file), "file holding the API key")
      ("auth", po::value(&auth)->default_value("basic"), "basic or bearer")
      ("ca-file", po::value(&ca_file), "CA to trust for https (e.g. gen-ca's ca.pem)")
      ("valid-for", po::value(&valid_for), "add: validity in days")
      ("valid-until", po::value(&valid_until), "add: end of validity, RFC 3339 UTC")
      ("value", po::value(&values), "IP addresses or prefixes (positional)");
  // clang-format on
  po::positional_options_description pos;
  pos.add("value", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "iocwall-feedsim: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << "iocwall-feedsim " << (revoke ? "revoke" : "add")
              << " --url URL --collection ID --api-key-file F VALUE...\n"
              << desc << "\n";
    return 0;
  }
  std::string key, err;
  if (url.empty() || collection.empty() || values.empty()) {
    std::cerr << "iocwall-feedsim: --url, --collection and at least one value are required\n";
    return 2;
  }
  if (key_file.empty() || !ReadKeyFile(key_file, &key, &err)) {
    std::cerr << "iocwall-feedsim: " << (err.empty() ? "--api-key-file is required" : err) << "\n";
    return 2;
  }
  // httplib wants scheme://host:port apart from the path prefix.
  const size_t scheme_end = url.find("://");
  const size_t path_start =
      scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  std::string prefix = path_start == std::string::npos ? "" : url.substr(path_start);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  httplib::Client client(origin);
  if (!client.is_valid()) {
    std::cerr << "iocwall-feedsim: bad --url " << url << "\n";
    return 2;
  }
  if (!ca_file.empty()) client.set_ca_cert_path(ca_file.c_str());
  if (auth == "bearer") {
    client.set_bearer_token_auth(key);
  } else {
    client.set_basic_auth("iocwall-feedsim", key);
  }
  // One request per observable type, as the API's "format" field demands.
  std::vector<std::string> v4, v6;
  for (const std::string& v : values) {
    const std::string type = ObservableType(v);
    if (type == "ipv4-addr") {
      v4.push_back(v);
    } else if (type == "ipv6-addr") {
      v6.push_back(v);
    } else if (!revoke) {
      std::cerr << "iocwall-feedsim: not an IP address or prefix: " << v << "\n";
      return 2;
    } else {
      v4.push_back(v);
    }
  }
  int rc = 0;
  for (const auto& [format, list] :
       {std::pair{"ipv4-addr.value", &v4}, std::pair{"ipv6-addr.value", &v6}}) {
    if (list->empty()) continue;
    std::string joined;
    for (const std::string& v : *list) joined += v + "\n";
    json body{{"indicators", joined}};
    if (!revoke) {
      body["format"] = format;
      if (valid_for > 0) body["valid_for"] = valid_for;
      if (!valid_until.empty()) body["valid_until"] = valid_until;
    }
    const std::string path = prefix + "/v2/inthreat/ioc-collections/" + collection +
                             (revoke ? "/indicators/revoke" : "/indicators/text");
    const auto res = client.Post(path, body.dump(), "application/json");
    if (!res) {
      std::cerr << "iocwall-feedsim: request failed: " << httplib::to_string(res.error()) << "\n";
      return 1;
    }
    std::cout << res->status << " " << res->body << "\n";
    if (res->status >= 300) rc = 1;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && argv[1][0] != '-') {
    const std::string cmd = argv[1];
    if (cmd == "serve") return Serve(argc - 1, argv + 1);
    if (cmd == "gen-ca") return GenCa(argc - 1, argv + 1);
    if (cmd == "add") return Write(false, argc - 1, argv + 1);
    if (cmd == "revoke") return Write(true, argc - 1, argv + 1);
    std::cerr << "iocwall-feedsim: unknown command " << cmd << " (serve, gen-ca, add, revoke)\n";
    return 2;
  }
  return Serve(argc, argv);
}
