// SekoiaSource: one Sekoia.io IOC collection, fetched whole through
//   GET {url}/v2/inthreat/collections/{id}/objects
//       ?format=text&limit=10000&skip_expired=true&include_revoked=false
// page after page along the Cursor response header (format=text), or the next_cursor field
// (format=json, which also gives each indicator's validity and id). In format=json it can also
// fetch changes only (FetchChanges):
//       ?format=json&limit=2000&skip_expired=false&include_revoked=true&modified_after=T
// then the same query with the returned cursor in place of modified_after.
//
// Any failure fails the whole fetch: the result then holds no prefixes, an error class and a
// message that names the collection and says what to check. The API key is read from its file
// at each fetch and never appears in a URL, an argument vector, a log line or a message.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "feeds/backoff.h"
#include "feeds/source.h"

namespace iocwall {

// How far before the caller's "since" a changes fetch starts looking (seconds).
inline constexpr int64_t kChangesOverlapSeconds = 300;

enum class SekoiaAuth : uint8_t {
  kBasic,   // HTTP Basic, the key as password (the seed article's way)
  kBearer,  // Authorization: Bearer <key>
};

enum class SekoiaFormat : uint8_t { kText, kJson };

struct SekoiaOptions {
  std::string url = "https://app.sekoia.io/api";  // base; the API path is appended
  std::string collection_id;                      // the "Feed ID"
  std::string api_key_file;                       // mode 0600 or stricter
  // Bearer is what Sekoia documents for its API; Basic (the seed article's way) stays an option.
  SekoiaAuth auth = SekoiaAuth::kBearer;
  std::string basic_user = "iocwall";  // any user name works; the key is the password
  SekoiaFormat format = SekoiaFormat::kText;
  int page_limit = 0;  // 0: the maximum the API allows (10000 text, 2000 json)

  std::string ca_file;      // PEM bundle for a private CA; empty: the system's trust store
  std::string proxy;        // "http://proxy:3128"; empty: direct (environment variables ignored)
  bool allow_http = false;  // plain http only for a local mirror, and only when set

  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{60000};  // one page, transfer included
  // The whole fetch: every page, retry and back-off wait together. A server that dribbles each
  // page just under request_timeout fails here instead of stalling the agent for hours. Well
  // under the unit's WatchdogSec (10 min); the progress callback (Source) lets the daemon feed
  // the watchdog meanwhile.
  std::chrono::milliseconds fetch_timeout{300000};
  size_t max_body_bytes = 256u << 20;  // all pages together, after decompression
  size_t max_pages = 500;              // 5,000,000 entries in text format
  double max_rejected_ratio = 0.5;     // more rejected entries than this: not an IP list

  BackoffOptions backoff;
  std::string user_agent;  // empty: "iocwall/<version>"

  // The configuration checks that need no network (the agent's --check-config).
  Status Validate() const;
};

class SekoiaSource : public Source {
 public:
  // clock: for back-off and expiry (SystemClock() in production, a fake in tests).
  SekoiaSource(SekoiaOptions options, Clock* clock);
  ~SekoiaSource() override;

  std::string Name() const override;
  FetchResult Fetch() override;
  // format=json only; a text source answers FetchChanges with a full Fetch.
  bool SupportsChanges() const override;
  // Asks for what changed after since_unix - kChangesOverlapSeconds: every indicator created,
  // modified (its validity extended, say) or revoked (revoked[i] = 1) in that window, whatever
  // its state now (an expired one with its past valid_until). The overlap repeats a few
  // changes, which is harmless (applying a change twice gives the same set), and covers a clock
  // skew between this host and the server of up to that much.
  FetchResult FetchChanges(int64_t since_unix) override;

  const SekoiaOptions& options() const { return options_; }

 private:
  // One whole fetch: modified_after set for a changes fetch.
  FetchResult Run(std::optional<int64_t> modified_after);

  SekoiaOptions options_;
  Clock* clock_;
  // Kept across fetches: the WAF counts requests and errors whatever fetch they belong to.
  Backoff backoff_;
};

// "iocwall/0.1.0"
std::string DefaultUserAgent();

}  // namespace iocwall
