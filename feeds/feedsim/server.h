// SimServer: the HTTP(S) face of the simulator. Serves
//   GET  {any prefix}/v2/inthreat/collections/{id}/objects        (text or JSON, Cursor paging)
//   POST {any prefix}/v2/inthreat/ioc-collections/{id}/indicators/text    (add, 202)
//   POST {any prefix}/v2/inthreat/ioc-collections/{id}/indicators/revoke  (simulator's own)
// behind Basic (key as password) or Bearer auth, and the unauthenticated control endpoints
//   POST /_sim/fault, DELETE /_sim/fault, GET|POST /_sim/clock, GET /_sim/stats
// that tests use to inject faults and move time. Every API request is written to a JSON-lines
// log; the Authorization header's value never is.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "feeds/feedsim/store.h"

namespace httplib {
class Server;
}

namespace iocwall::feedsim {

// A fault applies to the objects endpoint: after `skip` requests pass untouched, the next
// `times` requests (-1: all) get it.
struct Fault {
  int status = 0;                // answer with this status (and a JSON error body) instead
  std::string retry_after;       // Retry-After header to send with it
  int slow_ms = 0;               // wait this long before answering
  int dribble_ms = 0;            // send the page in slices spread over this long
  int64_t cut_after_bytes = -1;  // announce the whole length, send this many bytes, hang up
  bool garbage = false;          // 200 with random bytes
  bool empty = false;            // 200 with an empty body (and no cursor)
  bool html = false;             // 200 text/html, as a captive portal or proxy error page
  bool crlf = false;             // the real page with CRLF line ends
  bool bom = false;              // the real page behind a UTF-8 byte order mark
  bool repeat_cursor = false;    // send back the cursor the client sent (a server-side loop)
  bool drop_cursor = false;      // no Cursor header
  // Paging faults of real servers (issue 11): a page that ends early without being the last.
  int cap_limit = 0;         // serve at most this many entries (a silent cap of `limit`)
  bool blank_lines = false;  // text: blank and whitespace-only lines inside the page
  bool loop_cursor = false;  // next cursor points back to the first page (a server loop)
  // The cursor of the collection's last non-empty page: -1 as the server is set up
  // (--last-page-cursor), 0 none (text: no Cursor header; json: null), 1 one (an empty page
  // follows).
  int last_page_cursor = -1;
  int skip = 0;
  int times = 1;
};

// Parses {"status": 503, "retry_after": "2", "times": 2, ...}; false with *err on bad input.
bool ParseFault(const nlohmann::json& j, Fault* out, std::string* err);

struct SimOptions {
  std::string host = "127.0.0.1";
  int http_port = -1;   // -1: no plain HTTP listener; 0: any free port
  int https_port = -1;  // likewise for HTTPS
  std::string cert_file;
  std::string key_file;
  std::string api_key;        // the one key the simulator accepts
  std::string auth = "any";   // "basic", "bearer" or "any"
  std::string request_log;    // JSON lines; empty: none
  int64_t clock_offset = 0;   // seconds added to the real time
  bool strict_query = false;  // only the seed article's exact query is accepted
  int valid_days = 30;        // default validity of added indicators
  size_t keep_alive_max = 1000;
  std::string compression = "gzip";  // "gzip" (when the client accepts it) or "none"
  // zlib level of gzip pages. 1 is nginx's default gzip_comp_level; zlib's own default (6)
  // costs the simulator several times the CPU for a few percent of bytes, and on a shared
  // machine that time is charged to the client's fetch in the benchmarks.
  int gzip_level = 1;
  std::vector<Fault> faults;

  // What Sekoia's real API does (docs/sekoia-api.md), each on its own; --sekoia sets them all.
  size_t page_cap = 0;        // every page holds at most this many, whatever `limit` says
  bool cap_over_max = false;  // a limit over the maximum is capped silently, not a 400
  // "default": text sends a cursor with every non-empty page, json null on the last page;
  // "always": a cursor on every page, the last and the empty one after it included (never
  // null); "never": no cursor on the last non-empty page.
  std::string last_page_cursor = "default";
  bool base64_cursors = false;       // opaque base64 cursors holding '+', '/' and '='
  bool stix_items = false;           // full STIX indicators of about 3 KB (json)
  bool order_by_modified = false;    // pages sorted oldest modified first
  bool serve_not_yet_valid = false;  // indicators whose valid_from is ahead are served too
  // The WAF: more than waf_rate requests in a second, or waf_errors error answers within
  // waf_window_ms, block the client for a random time in [waf_block_min_ms, waf_block_max_ms]
  // during which every API request gets waf_status.
  bool waf = false;
  int waf_rate = 5;
  int waf_errors = 2;
  int waf_window_ms = 10000;
  int waf_block_min_ms = 30000;
  int waf_block_max_ms = 600000;
  int waf_status = 429;
};

class SimServer {
 public:
  SimServer(SimOptions options, Store* store);
  ~SimServer();

  bool Start(std::string* err);  // binds the listeners and serves in background threads
  void Stop();
  int http_port() const { return http_port_; }
  int https_port() const { return https_port_; }
  int64_t Now() const;

 private:
  void Register(httplib::Server& server, bool tls);
  void Log(nlohmann::json line);
  // Consumes the fault that applies to this request, if any.
  std::optional<Fault> TakeFault();
  // Counts one API request for the WAF; true when the client is (now) blocked.
  bool WafBlocked();
  // Counts the answer's status for the WAF's error rule.
  void WafAnswer(int status);
  void BlockLocked(std::chrono::steady_clock::time_point now);
  std::string EncodeOpaque(const std::string& raw) const;
  std::optional<std::string> DecodeOpaque(const std::string& cursor) const;

  SimOptions options_;
  Store* store_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<httplib::Server> https_;
  std::vector<std::thread> threads_;
  int http_port_ = -1;
  int https_port_ = -1;

  std::mutex mu_;  // faults_, clock_offset_, log_, request counter
  std::deque<Fault> faults_;
  std::atomic<int64_t> clock_offset_{0};
  FILE* log_ = nullptr;
  uint64_t requests_ = 0;

  std::mutex waf_mu_;
  std::deque<std::chrono::steady_clock::time_point> waf_requests_;
  std::deque<std::chrono::steady_clock::time_point> waf_errors_;
  std::chrono::steady_clock::time_point waf_blocked_until_{};
  uint64_t waf_blocks_ = 0;
  std::mt19937_64 waf_rng_{42};
};

}  // namespace iocwall::feedsim
