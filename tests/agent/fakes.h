// Recording fakes for the agent's edges: sources, the kernel, the state directory, the host
// and the clock. Each records what was asked of it so that tests can assert on it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/host_info.h"
#include "agent/state.h"
#include "core/clock.h"
#include "feeds/source.h"
#include "netlink/set_backend.h"

namespace iocwall::testing {

class FakeClock : public Clock {
 public:
  int64_t NowUnix() override { return unix_; }
  std::chrono::steady_clock::time_point Now() override { return mono_; }
  void SleepFor(std::chrono::milliseconds d) override {
    mono_ += d;
    unix_ += d.count() / 1000;
  }
  void Advance(int64_t seconds) {
    unix_ += seconds;
    mono_ += std::chrono::seconds(seconds);
  }
  int64_t unix_ = 1800000000;
  std::chrono::steady_clock::time_point mono_{};
};

class FakeSource : public Source {
 public:
  explicit FakeSource(std::string name) : name_(std::move(name)) {}
  std::string Name() const override { return name_; }
  FetchResult Fetch() override {
    ++fetches;
    FetchResult r;
    r.source = name_;
    if (fail) {
      r.status = Status::Error(name_ + ": HTTP 503: server trouble");
      r.error = FetchError::kServer;
      r.http_status = 503;
      return r;
    }
    for (const auto& t : entries) {
      auto p = ParsePrefix(t);
      if (p) r.prefixes.push_back(*p);
    }
    r.valid_until = valid_until;
    r.valid_from = valid_from;
    r.ids = ids;
    r.pages = 1;
    return r;
  }
  bool SupportsChanges() const override { return supports_changes; }
  FetchResult FetchChanges(int64_t since) override {
    ++change_fetches;
    last_since = since;
    if (!supports_changes) return Fetch();
    FetchResult r = Fetch();
    if (!r.status.ok()) return r;
    r.prefixes.clear();
    for (const auto& t : changed) r.prefixes.push_back(*ParsePrefix(t));
    r.valid_until = changed_until;
    r.ids = changed_ids;
    r.revoked = changed_revoked;
    r.incremental = true;
    return r;
  }
  std::string name_;
  bool supports_changes = false;
  std::vector<std::string> changed, changed_ids;
  std::vector<int64_t> changed_until;
  std::vector<uint8_t> changed_revoked;
  int change_fetches = 0;
  int64_t last_since = 0;
  std::vector<std::string> ids;
  std::vector<std::string> entries;
  std::vector<int64_t> valid_until;
  std::vector<int64_t> valid_from;
  bool fail = false;
  int fetches = 0;
};

class FakeBackend : public SetBackend {
 public:
  Status Reconcile(const IntervalSet& desired, ApplyResult* result) override {
    ++reconciles;
    if (fail) return Status::Error("kernel said no");
    if (table_present && !owned)
      return Status::Error("table inet iocwall was not created by iocwall");
    if (!table_present) owned = true;
    const bool was_dormant = table_present && dormant;
    dormant = false;
    SetDiff d = Diff(kernel, desired);
    *result = ApplyResult{};
    result->bootstrapped = !table_present;
    result->added = d.v4.add.size() + d.v6.add.size();
    result->removed = d.v4.remove.size() + d.v6.remove.size();
    result->messages = (d.empty() && table_present && !was_dormant) ? 0 : 1;
    result->repaired = was_dormant;
    if (was_dormant) result->repair_reason = "table inet iocwall was dormant";
    if (result->messages) {
      ++transactions;
      ++generation;
    }
    result->generation = generation;
    if (copy) copy->generation = generation;
    table_present = true;
    kernel.v4.ranges = desired.v4.ranges;
    kernel.v6.ranges = desired.v6.ranges;
    kernel.v4.expires = desired.v4.expires;
    kernel.v6.expires = desired.v6.expires;
    return Status::Ok();
  }
  Status ReadStatus(KernelStatus* s) override {
    *s = KernelStatus{};
    s->table_present = s->sets_present = s->chains_present = table_present;
    s->table_owned = table_present && owned;
    s->table_dormant = table_present && dormant;
    s->table_handle = table_present ? handle : 0;
    s->v4_elements = kernel.v4.size();
    s->v6_elements = kernel.v6.size();
    s->generation = generation;
    s->boot_id = "fake-boot";
    s->netns = 1;
    return Status::Ok();
  }
  Status Lookup(Family f, std::span<const u128> addrs,
                std::vector<std::optional<u128>>* starts) override {
    ++lookups;
    starts->assign(addrs.size(), std::nullopt);
    if (!table_present) return Status::Error("table absent");
    for (size_t i = 0; i < addrs.size(); ++i) {
      long k = Find(kernel.of(f), addrs[i]);
      if (k >= 0) (*starts)[i] = kernel.of(f).ranges[k].first;
    }
    return Status::Ok();
  }
  Status RemoveTable(const std::string& table, bool* removed) override {
    removed_tables.push_back(table);
    *removed = false;
    if (table != TableName()) {
      auto it = other_tables.find(table);
      if (it == other_tables.end()) return Status::Ok();
      if (!it->second) return Status::Error("table inet " + table + " was not created by iocwall");
      other_tables.erase(it);
      *removed = true;
      return Status::Ok();
    }
    if (table_present && !owned) return Status::Error("not created by iocwall");
    *removed = table_present;
    table_present = false;
    kernel = IntervalSet{};
    return Status::Ok();
  }
  std::string TableName() const override { return "iocwall"; }
  const AppliedCopy* Applied() const override { return copy ? &*copy : nullptr; }
  void Seed(AppliedCopy c) override { seeded = std::move(c); }
  std::optional<AppliedCopy> copy;    // set by a test: what a real backend would hand over
  std::optional<AppliedCopy> seeded;  // what the agent handed to the backend at start
  Status ReadElements(IntervalSet* out) override {
    *out = kernel;
    return Status::Ok();
  }
  Status ReadTopHits(size_t, std::vector<ElementHits>*) override { return Status::Ok(); }
  bool Blocks(const std::string& ip) const {
    auto p = ParsePrefix(ip);
    return p && table_present && !dormant && Find(kernel.of(p->family), p->addr) >= 0;
  }
  IntervalSet kernel;
  bool table_present = false;
  bool owned = true;     // the table carries iocwall's mark
  bool dormant = false;  // set by a test to play an admin's `nft add table ... { flags dormant }`
  uint64_t handle = 7;
  uint32_t generation = 100;
  std::map<std::string, bool> other_tables;  // name -> carries the mark
  std::vector<std::string> removed_tables;
  int lookups = 0;
  bool fail = false;
  int reconciles = 0;
  int transactions = 0;
};

class MemoryStateStore : public StateStore {
 public:
  Status SaveSnapshot(const Snapshot& s) override {
    if (disk_full) return Status::Error("cannot write: No space left on device");
    ++snapshot_saves;
    files["snap:" + s.source] = SerializeSnapshot(s);
    return Status::Ok();
  }
  // Every read of a snapshot's entries comes through here (ReadSnapshot's default too).
  Result<std::optional<Snapshot>> LoadSnapshot(const std::string& source) override {
    auto it = files.find("snap:" + source);
    if (it == files.end()) return std::optional<Snapshot>();
    ++snapshot_loads;
    auto s = ParseSnapshot(it->second);
    if (!s.ok()) return s.status();
    return std::optional<Snapshot>(s.value());
  }
  // Streamed as the file store does: entries before a damaged line have been handed out.
  Result<bool> ReadSnapshot(const std::string& source, const SnapshotEntryFn& each) override {
    auto it = files.find("snap:" + source);
    if (it == files.end()) return false;
    ++snapshot_loads;
    SnapshotInfo info;
    IOCWALL_TRY(ParseSnapshotText(it->second, &info, &each));
    return true;
  }
  // The header alone, as the file store reads it: not an entries read.
  Result<std::optional<SnapshotInfo>> LoadSnapshotInfo(const std::string& source) override {
    auto it = files.find("snap:" + source);
    if (it == files.end()) return std::optional<SnapshotInfo>();
    SnapshotInfo info;
    IOCWALL_TRY(ParseSnapshotText(it->second, &info, nullptr));
    return std::optional<SnapshotInfo>(info);
  }
  Status SaveReport(const std::string& json) override {
    if (disk_full) return Status::Error("cannot write: No space left on device");
    files["report"] = json;
    return Status::Ok();
  }
  Result<std::optional<std::string>> LoadReport() override {
    auto it = files.find("report");
    if (it == files.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status SaveApplied(const AppliedCopy& copy) override {
    ++applied_saves;
    applied = copy;
    return Status::Ok();
  }
  Result<std::optional<AppliedCopy>> LoadApplied() override { return applied; }
  std::optional<AppliedCopy> applied;
  int applied_saves = 0;
  std::map<std::string, std::string> files;
  bool disk_full = false;
  int snapshot_saves = 0;
  int snapshot_loads = 0;
};

class FakeHost : public HostInfo {
 public:
  std::vector<ProtectedAddress> ProtectedAddresses() override { return addresses; }
  std::vector<ProtectedAddress> addresses;
};

}  // namespace iocwall::testing

namespace iocwall {
// What --status sees of a healthy gateway: iocwall's table whole (and, with counts, its
// elements counted and the chains' counters).
inline KernelStatus EnforcingKernel(std::optional<std::pair<size_t, size_t>> counts = std::nullopt,
                                    std::vector<ChainCounter> counters = {}) {
  KernelStatus k;
  k.table_present = k.sets_present = k.chains_present = k.table_owned = true;
  if (counts) {
    k.elements_counted = true;
    k.v4_elements = counts->first;
    k.v6_elements = counts->second;
  }
  k.counters = std::move(counters);
  return k;
}

// The fakes by their short names, in every test file that includes them.
using testing::FakeBackend;
using testing::FakeClock;
using testing::FakeHost;
using testing::FakeSource;
using testing::MemoryStateStore;
}  // namespace iocwall
