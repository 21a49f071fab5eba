// Source: one origin of blocklist entries (a Sekoia.io IOC collection, a local list file).
// Abstract so that the agent can be tested with a fake that serves canned results.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
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

// The ids of a fetch's entries (FetchResult::ids), read like the std::vector<std::string> it
// replaces, but compact: a std::string per entry costs 32 bytes plus a heap block (64 bytes for
// a 47-byte STIX id), 48 MB for 500,000 json indicators. Here an id costs its bytes and an
// offset, and the bytes sit in small blocks that are never moved, so a growing list never
// holds two copies of itself at once (a doubling vector does, for a moment). operator[] returns
// a copy: ids are read one at a time, when an entry is stored or logged.
class IdList {
 public:
  IdList() = default;
  IdList(std::initializer_list<std::string_view> ids);
  // Implicit, as assigning a vector of ids was before.
  IdList(const std::vector<std::string>& ids);  // NOLINT(google-explicit-constructor)

  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  std::string operator[](size_t i) const;
  void push_back(std::string_view id);
  void resize(size_t n);  // new ids are empty
  void clear();
  bool operator==(const IdList&) const = default;

 private:
  std::deque<char> chars_;    // every id's bytes, one after the other
  std::vector<size_t> ends_;  // where each id ends in chars_
};

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
  IdList ids;
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
