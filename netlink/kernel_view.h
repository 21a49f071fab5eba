// What the kernel holds of iocwall's table, and the reads that find out: a get of the table,
// dumps of its sets, counters, chains and rules (filtered to the table), dumps of the sets'
// elements (quadratic in the kernel: only when the planner cannot trust a copy of our last
// commit), and lookups of single addresses (a tree walk each, usable at any set size).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/interval_set.h"
#include "core/status.h"
#include "netlink/batch.h"
#include "netlink/set_backend.h"
#include "netlink/socket.h"

struct nftnl_set;
struct nlmsghdr;

namespace iocwall::nl {

struct SetView {
  bool present = false;
  bool usable = false;  // right key type, length, flags and per-element counters
  std::string mismatch;
  FamilyRanges dumped;  // ranges, and expires in a set with timeouts
  std::vector<RawElement> malformed;
  const FamilyRanges* ranges = &dumped;  // the dump, or the copy of our last commit
};

struct ChainView {
  bool base = false;
  uint32_t hooknum = 0;
  int32_t prio = 0;
  std::string type;
  uint32_t policy = 1;             // NF_ACCEPT
  std::vector<std::string> rules;  // fingerprints, in order
};

struct CounterView {
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct KernelView {
  bool table = false;
  bool table_owned = false;
  uint64_t table_handle = 0;
  uint32_t table_flags = 0;
  SetView sets[2];                        // v4, v6
  SetView holds[2];                       // the hold sets (hold_bridge.h), v4, v6
  bool swap_present[2] = {false, false};  // a set of a staged swap was left over (v4, v6)
  std::map<std::string, CounterView> counters;
  std::map<std::string, ChainView> chains;
  SetView& set(Family f) { return sets[f == Family::kV4 ? 0 : 1]; }
  const SetView& set(Family f) const { return sets[f == Family::kV4 ? 0 : 1]; }
  SetView& hold(Family f) { return holds[f == Family::kV4 ? 0 : 1]; }
  const SetView& hold(Family f) const { return holds[f == Family::kV4 ? 0 : 1]; }
  bool dormant() const;
};

// Table inet <name> alone: absent, or present with its flags, handle and whether it carries
// iocwall's ownership mark.
struct TableInfo {
  bool present = false;
  bool owned = false;
  uint32_t flags = 0;
  uint64_t handle = 0;
};

// One element of a dump, with the absolute expiry of a start element (Unix seconds, 0: none).
struct DumpedElement {
  RawElement e;
  int64_t expires = 0;
};

// Pairs the elements of an interval set (as dumped, in any order) into ranges (and, when
// `timed`, their expiries). Anything that does not pair up (an end without a start, a start
// followed by another start) is returned in `malformed`, to be deleted element by element;
// except, in a set with timeouts, an end without a start: that is what a dump shows of a range
// that expired and is not collected yet (its start is hidden, the end has no timeout), and
// deleting it could race the kernel's collector.
void PairElements(std::vector<DumpedElement>* elems, Family family, bool timed, FamilyRanges* out,
                  std::vector<RawElement>* malformed);

// Where generation ids count: they start again at every boot and in every namespace.
std::string BootId();
uint64_t NetnsInode();
// Wall-clock milliseconds: expiries are Unix times, and kernel timeouts are relative to now.
int64_t NowMs();

class KernelReader {
 public:
  KernelReader(Socket* socket, const TableSpec& spec) : socket_(socket), spec_(spec) {}

  // The current ruleset generation id (NFT_MSG_GETGEN).
  Result<uint32_t> Generation();
  Status ReadTable(const std::string& table, TableInfo* info);
  // The table's structure, and with `dump_elements` the elements of its usable sets. Nothing
  // past the table itself is read of a table that is not ours.
  Status Read(KernelView* view, bool dump_elements);
  // Dumps the family's set, or `other_set` of that family.
  Status DumpElements(Family family, const std::function<void(const DecodedElement&)>& each,
                      const std::string& other_set = "");
  // See SetBackend::Lookup.
  Status Lookup(Family family, std::span<const u128> addresses,
                std::vector<std::optional<u128>>* starts);

 private:
  // Sends a get or a dump (family inet) and hands each reply to `each`; `filter` adds the
  // request's attributes. A kernel error's errno is the Status's code().
  Status Query(uint16_t type, uint16_t flags, const std::function<void(nlmsghdr*)>& filter,
               const std::function<Status(const nlmsghdr*)>& each, const std::string& what);
  void ReadSet(const nftnl_set* s, KernelView* view) const;
  // The dumps of the table's structure, each filtered to the table where the kernel can.
  Status ReadSets(KernelView* view);
  Status ReadCounters(KernelView* view);
  Status ReadChains(KernelView* view);
  Status ReadRules(KernelView* view);
  std::string Where() const;  // " of table inet <name>", for errors
  Status DumpPairs(Family f, const std::string& set, bool timed, SetView* into);

  Socket* socket_;
  const TableSpec& spec_;
};

}  // namespace iocwall::nl
