// The hold bridge: keeps still-blocked addresses matched while a transaction re-adds the keys
// that cover them (see core/hold.h for the Linux 6.1 lookup bug it works around).
//
// Each family has a permanent, normally empty "hold" set (<set>_hold, flags interval only),
// matched by a drop rule right after each drop rule of the main set (same counter). Around a
// main transaction that adds ranges the old set already covers:
//   1. one transaction puts those still-covered ranges in the hold set (and removes anything
//      an interrupted run left there);
//   2. the main transaction changes the list, in one piece as before; the hold set is not
//      touched by it, so its lookup cannot hit the bug and keeps matching;
//   3. one transaction empties the hold set again.
// Only ranges blocked before AND after go in the hold set, so an unblock takes effect at the
// main commit. The bridge is applied on every kernel: it costs two small transactions only
// when a change re-adds covered ranges (a reshape, a timeout refresh), and detecting the bug
// at run time would mean racing packets against commits. Each step carries the generation id.
#pragma once

#include <cstdint>
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

namespace iocwall {

// The hold set of a main set.
std::string HoldSetName(const std::string& set);

// Whether a set read from the kernel is a usable hold set for family `f` (if not, it is
// recreated, with the rules that use it).
bool HoldSetUsable(const nftnl_set* s, Family f);

// Adds to `b` the creation of the hold set of family `f` (NLM_F_CREATE: a no-op if present).
void AddCreateHoldSet(nl::Batch* b, const TableSpec& spec, Family f);

class HoldBridge {
 public:
  // `enabled` false: never bridges (a test's negative control); the hold set is still kept.
  HoldBridge(const TableSpec& spec, bool enabled) : spec_(spec), enabled_(enabled) {}

  // What the hold set of `f` holds before this reconcile (what a dump found, or nothing after
  // our own last commit, which ends with the hold set empty); `usable` false: the set is
  // missing or wrong (the main transaction recreates it) and this reconcile cannot bridge.
  // `stray`: elements that pair with nothing (an interval end `nft` adds at the bottom of the
  // space); they are deleted with the leftovers.
  void SetBefore(Family f, bool usable, std::vector<Range> leftovers,
                 std::vector<nl::RawElement> stray = {});
  // The main transaction adds `add` to a set holding `current`.
  void Plan(Family f, std::span<const Range> current, std::span<const Range> add);

  // Builds step 1 against generation `genid`; returns its message count (0: nothing to do,
  // the main transaction goes alone).
  size_t Build(nl::Socket* socket, uint32_t genid);
  // Commits step 1 (when built); *genid moves by one.
  Status Hold(uint32_t* genid);
  // Step 3, after the main transaction committed at *generation; it moves by one. Returns the
  // messages sent in *messages.
  Status Release(nl::Socket* socket, uint32_t* generation, size_t* messages);

  size_t held() const { return want_[0].size() + want_[1].size(); }

 private:
  const TableSpec& spec_;
  bool enabled_;
  bool usable_[2] = {false, false};
  std::vector<Range> before_[2];  // what the hold sets hold now
  std::vector<nl::RawElement> stray_[2];
  std::vector<Range> want_[2];  // what they hold during the main transaction
  std::optional<nl::Batch> hold_;
};

}  // namespace iocwall
