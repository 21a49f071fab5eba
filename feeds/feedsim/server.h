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
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
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
  int64_t cut_after_bytes = -1;  // announce the whole length, send this many bytes, hang up
  bool garbage = false;          // 200 with random bytes
  bool empty = false;            // 200 with an empty body (and no cursor)
  bool html = false;             // 200 text/html, as a captive portal or proxy error page
  bool crlf = false;             // the real page with CRLF line ends
  bool bom = false;              // the real page behind a UTF-8 byte order mark
  bool repeat_cursor = false;    // send back the cursor the client sent (a server-side loop)
  bool drop_cursor = false;      // no Cursor header
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
  std::vector<Fault> faults;
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
};

}  // namespace iocwall::feedsim
