// Source: one origin of blocklist entries (a Sekoia.io IOC collection, a local list file).
// Abstract so that the agent can be tested with a fake that serves canned results.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/prefix.h"
#include "core/status.h"

namespace iocwall {

// Why a fetch failed, so that the agent and the operator know what to do about it.
enum class FetchError : uint8_t {
  kNone = 0,
  kConfig,       // 400/404, bad URL, unknown collection, unreadable file: fix the configuration
  kAuth,         // 401/403: API key missing, rejected, or lacking the permission
  kRateLimited,  // 429 (back off; Retry-After honoured)
  kServer,       // 5xx
  kNetwork,      // DNS, connect, reset, proxy
  kTls,          // certificate or handshake failure
  kTimeout,
  kBadBody,   // not a list (an HTML page), truncated, too many pages, invalid JSON
  kTooLarge,  // over the body-size cap
  kSecret,    // the API key file is missing, empty, or readable by others
};
const char* FetchErrorName(FetchError e);  // "auth", "rate-limited", ...

struct FetchResult {
  std::string source;            // "collection abc" or "file /etc/iocwall/extra.txt"
  Status status = Status::Ok();  // message names the source and is safe to log (no secret)
  FetchError error = FetchError::kNone;
  int http_status = 0;                     // last HTTP status seen (0 for files / no answer)
  std::optional<int> retry_after_seconds;  // from a 429/503 Retry-After header

  std::vector<Prefix> prefixes;  // accepted entries, in feed order (all pages, or nothing)
  // Parallel to prefixes when the source knows each indicator's validity (format=json):
  // Unix time the indicator stops being valid, 0 for "no end". Empty for text sources.
  std::vector<int64_t> valid_until;
  // Parallel to prefixes like valid_until: Unix time the indicator starts to be valid (its
  // STIX valid_from), 0 when absent or unreadable. An indicator is not to be blocked before
  // it. Empty for text sources.
  std::vector<int64_t> valid_from;
  // Parallel to prefixes when the source names each indicator (format=json: the STIX id,
  // "indicator--..."), for provenance; empty otherwise.
  std::vector<std::string> ids;
  // Parallel to prefixes in a changes fetch (incremental): 1 where the indicator was revoked
  // (remove it), 0 where it was created or modified (add it or update its valid_until, which
  // may already be past: remove it then). Empty in a full fetch.
  std::vector<uint8_t> revoked;
  // True when this is a changes fetch (FetchChanges answered with changes only, to be applied
  // on top of the last full snapshot); false for a whole list that replaces the last one.
  bool incremental = false;
  ParseStats stats;

  size_t pages = 0;
  size_t bytes = 0;
  double seconds = 0;
};

// How far a fetch has come, for a caller that must show it is alive while a long fetch runs
// (the daemon feeds systemd's watchdog from it).
struct FetchProgress {
  size_t pages = 0;    // pages fully received so far
  size_t bytes = 0;    // their bytes, after decompression
  double seconds = 0;  // since the fetch began
};
// Called on the fetching thread: between pages, at least once a second during a transfer
// (also a stalled or dribbling one) and during back-off waits. It must return quickly and
// must not call into the source.
using ProgressCallback = std::function<void(const FetchProgress&)>;

class Source {
 public:
  virtual ~Source() = default;
  // Sources that may take long (a Sekoia collection) call it; the others need not.
  void SetProgressCallback(ProgressCallback cb) { progress_ = std::move(cb); }
  virtual std::string Name() const = 0;  // "collection abc", "file /path"
  // Fetches the whole source. Any failure fails the whole fetch: a partial page sequence is
  // never returned as success (prefixes is empty when status is not ok).
  virtual FetchResult Fetch() = 0;

  // Whether FetchChanges can answer with changes only (a Sekoia collection in format=json).
  virtual bool SupportsChanges() const { return false; }
  // The indicators created, modified or revoked since since_unix (the time the last successful
  // fetch started, by this host's clock; the source allows for clock skew), with incremental
  // set. An indicator that merely reaches its valid_until is no change: the caller expires
  // what it holds by the valid_until it was given. Sources that cannot (and any source for
  // since_unix <= 0) do a full Fetch() instead and leave incremental false: callers check the
  // flag, not the source type. The same all-or-nothing rule as Fetch.
  virtual FetchResult FetchChanges(int64_t /*since_unix*/) { return Fetch(); }

 protected:
  const ProgressCallback& progress() const { return progress_; }

 private:
  ProgressCallback progress_;
};

}  // namespace iocwall
