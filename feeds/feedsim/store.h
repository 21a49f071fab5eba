// The simulator's model of Sekoia.io IOC collections: indicators with a validity window and a
// revoked flag and a modification time, served page by page the way the real endpoint does
// (text or JSON, opaque cursors, skip_expired / include_revoked / modified_after filters).
// Independent of iocwall's own parser on purpose: the double must not share the code it tests.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace iocwall::feedsim {

struct Indicator {
  std::string value;  // "94.24.86.201", "2001:db8::1", "198.51.100.0/24", "evil.example"
  std::string type;   // "ipv4-addr", "ipv6-addr", "domain-name", "unknown"
  std::string id;     // "indicator--<uuid>"
  int64_t valid_from = 0;
  int64_t valid_until = 0;  // 0: no end
  bool revoked = false;
  // Simulator clock time of its creation or last change (re-added: validity updated; revoked),
  // what modified_after compares with.
  int64_t modified = 0;
  // A STIX pattern served as is in format=json instead of the one built from value (an OR of
  // several observables, say); loaded from a .json collection's "pattern".
  std::string pattern;
};

// The STIX observable type of a value, as Sekoia would classify it.
std::string ObservableType(const std::string& value);

struct PageRequest {
  size_t offset = 0;  // position in the collection (decoded cursor)
  size_t limit = 100;
  bool skip_expired = false;
  bool include_revoked = true;
  std::optional<int64_t> modified_after;  // only indicators modified strictly after it
  int64_t now = 0;
  bool order_by_modified = false;    // oldest modified first (offsets count in that order)
  bool serve_not_yet_valid = false;  // also indicators whose valid_from is after now
};

struct Page {
  std::vector<const Indicator*> items;  // valid while the store's lock is held
  size_t next_offset = 0;               // where the next page starts
  bool at_end = false;                  // the scan reached the end of the collection
};

struct AddOutcome {
  size_t created = 0;
  size_t updated = 0;  // already present: validity extended, revocation kept
  size_t ignored = 0;  // not of the announced type
};

class Store {
 public:
  // Every accessor takes this lock; Page pointers stay valid while the caller holds it.
  std::mutex& mutex() { return mu_; }

  bool Has(const std::string& id) const { return collections_.count(id) != 0; }
  void Declare(const std::string& id) { collections_[id]; }
  // A list file (one value per line, '#' comments, any line kept as it is so that garbage
  // reaches the client) or a JSON array of indicator objects (value, valid_from, valid_until,
  // revoked, id, modified, pattern; times in RFC 3339). List entries are valid valid_days from
  // `now`; whatever gives no modification time was modified at `now`.
  bool LoadFile(const std::string& id, const std::string& path, int64_t now, int valid_days,
                std::string* err);
  // n distinct public IPv4 addresses (11.0.0.0 upwards), every tenth an IPv6 one when mix_v6.
  void Generate(const std::string& id, size_t n, bool mix_v6, int64_t now, int valid_days);

  Page Scan(const std::string& id, const PageRequest& req) const;
  AddOutcome Add(const std::string& id, const std::vector<std::string>& values,
                 const std::string& type, int64_t now, int64_t valid_until);
  // Revokes (finally) the values found; those not revoked before count as modified at `now`.
  size_t Revoke(const std::string& id, const std::vector<std::string>& values, int64_t now);
  size_t Size(const std::string& id) const;

 private:
  struct Collection {
    std::vector<Indicator> items;
    std::unordered_map<std::string, size_t> by_value;
  };
  void Put(Collection* c, Indicator ind);

  std::mutex mu_;
  std::map<std::string, Collection> collections_;
};

// What a cursor carries: where the next page starts, and the modified_after filter of the
// request that began the walk (the API takes modified_after on a first page only).
struct CursorState {
  size_t offset = 0;
  std::optional<int64_t> modified_after;
  bool operator==(const CursorState&) const = default;
};

// Cursors are opaque to clients; a checksum makes a forged or mangled one a 400.
std::string EncodeCursor(size_t offset, std::optional<int64_t> modified_after = std::nullopt);
std::optional<CursorState> DecodeCursor(const std::string& cursor);

// "indicator--xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx", stable for a value.
std::string IndicatorId(const std::string& value);

}  // namespace iocwall::feedsim
