#include "netlink/nft_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "core/diff.h"
#include "core/timed.h"
#include "netlink/batch.h"
#include "netlink/hold_bridge.h"
#include "netlink/nftnl_ptr.h"

namespace iocwall {

using nl::Batch;
using nl::ElementVerb;
using nl::NftnlPtr;
using nl::RawElement;

namespace {

// nft's datatype ids: with them `nft list` prints the keys as addresses.
constexpr uint32_t kTypeIpv4Addr = 7;
constexpr uint32_t kTypeIpv6Addr = 8;
constexpr size_t kRequestBuffer = 16 * 1024;
// Log rules are rate-limited so that a flood of blocked packets cannot flood the log.
constexpr uint64_t kLogPerMinute = 10;
constexpr uint32_t kLogBurst = 5;
// A kernel timeout read back from a dump is rounded to whole seconds: expiries this close are
// the same, so that an unchanged desired set sends nothing.
constexpr int64_t kExpiryToleranceSeconds = 1;
// How long after its expiry a range is surely gone from the kernel (rounding, timer ticks).
// Closer to its expiry, it is treated as possibly still there: never re-added without being
// deleted first (on Linux 6.1 an add over a live element is a no-op that keeps the old
// timeout); if the delete finds it gone, the transaction is retried against a fresh dump.
constexpr int64_t kSurelyGoneSeconds = 2;
// Expiries further ahead than this are added without a timeout (permanent): the kernel refuses
// a timeout past ~584 years (ERANGE), feeds use far-future dates for "never", and a ten-year
// indicator is permanent for any practical purpose.
constexpr int64_t kMaxTimeoutMs = int64_t{10} * 366 * 24 * 3600 * 1000;

// iocwall's ownership mark: the comment of every table it creates (nft shows it). iocwall
// changes or deletes a table only when it carries exactly this comment, so that a table of the
// same name made by an administrator (`table inet filter` with its policy drop) is never
// taken over. The kernel does not let an existing table's comment change: a table is marked
// at its creation or never.
constexpr const char* kOwnerMark = kTableOwnerMark;

void PutOwnerMark(nftnl_table* t) {
  std::unique_ptr<nftnl_udata_buf, decltype(&nftnl_udata_buf_free)> buf(
      nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN), nftnl_udata_buf_free);
  nftnl_udata_put_strz(buf.get(), NFTNL_UDATA_TABLE_COMMENT, kOwnerMark);
  nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(buf.get()),
                       nftnl_udata_buf_len(buf.get()));
}

bool HasOwnerMark(const nftnl_table* t) {
  if (!nftnl_table_is_set(t, NFTNL_TABLE_USERDATA)) return false;
  uint32_t len = 0;
  const void* data = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
  std::string comment;
  nftnl_udata_parse(
      data, len,
      [](const nftnl_udata* a, void* out) {
        if (nftnl_udata_type(a) == NFTNL_UDATA_TABLE_COMMENT && nftnl_udata_len(a) > 0) {
          const char* v = static_cast<const char*>(nftnl_udata_get(a));
          static_cast<std::string*>(out)->assign(v, strnlen(v, nftnl_udata_len(a)));
        }
        return 0;
      },
      &comment);
  return comment == kOwnerMark;
}

// The table as iocwall creates it: awake, marked. Also sent to wake a dormant table (the
// kernel then only updates the flags).
nl::TablePtr BuildTable(const std::string& name) {
  nl::TablePtr t(nftnl_table_alloc());
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name.c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FLAGS, 0);
  PutOwnerMark(t.get());
  return t;
}

std::string NotOursMessage(const std::string& table) {
  return "table inet " + table +
         " exists but was not created by iocwall (it lacks iocwall's mark, the comment \"" +
         kOwnerMark +
         "\"): iocwall never changes or deletes a table it did not create. Set [nftables] table "
         "to a name of its own, or, if this is a table left by an iocwall older than 0.2, "
         "delete it once with `nft delete table inet " +
         table + "` and iocwall recreates it marked";
}

// Where generation ids count: they start again at every boot and in every namespace.
std::string BootId() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

uint64_t NetnsInode() {
  struct stat st {};
  return ::stat("/proc/self/ns/net", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

// Wall-clock milliseconds: expiries are Unix times, and kernel timeouts are relative to now.
int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

// What the kernel is to hold of `desired` at `now_ms`, with an expiry for every range: ranges
// whose expiry has passed are left out (and counted), far-future ones become permanent.
FamilyRanges TimedWant(const FamilyRanges& desired, int64_t now_ms, size_t* already_expired) {
  FamilyRanges want;
  want.ranges.reserve(desired.ranges.size());
  want.expires.reserve(desired.ranges.size());
  for (size_t i = 0; i < desired.ranges.size(); ++i) {
    int64_t e = i < desired.expires.size() ? desired.expires[i] : kNeverExpires;
    if (e != kNeverExpires && e * 1000 <= now_ms) {
      ++*already_expired;
      continue;
    }
    if (e != kNeverExpires && e * 1000 - now_ms > kMaxTimeoutMs) e = kNeverExpires;
    want.ranges.push_back(desired.ranges[i]);
    want.expires.push_back(e);
  }
  return want;
}

// Kernel timeouts (ms; 0 = none) for ranges expiring at `expires`, seen from `now_ms`.
std::vector<uint64_t> TimeoutsMs(std::span<const int64_t> expires, int64_t now_ms) {
  std::vector<uint64_t> out(expires.size());
  for (size_t i = 0; i < expires.size(); ++i) {
    // At least 1 ms: a zero timeout would mean "permanent".
    if (expires[i] != kNeverExpires) out[i] = std::max<int64_t>(1, expires[i] * 1000 - now_ms);
  }
  return out;
}

const char* HookName(Hook h) {
  switch (h) {
    case Hook::kInput:
      return "input";
    case Hook::kForward:
      return "forward";
    case Hook::kOutput:
      return "output";
  }
  return "?";
}

uint32_t HookNum(Hook h) {
  switch (h) {
    case Hook::kInput:
      return NF_INET_LOCAL_IN;
    case Hook::kForward:
      return NF_INET_FORWARD;
    case Hook::kOutput:
      return NF_INET_LOCAL_OUT;
  }
  return NF_INET_LOCAL_IN;
}

const char* FamilyName(Family f) { return f == Family::kV4 ? "v4" : "v6"; }

struct RuleWant {
  Family family = Family::kV4;
  bool saddr = true;
  bool log = false;  // the rate-limited log rule that precedes the drop rule
  std::string counter;
  std::string set;  // the set looked up: the family's main set when empty (see hold_bridge.h)
};

struct ChainWant {
  std::string name;
  uint32_t hooknum = 0;
  std::vector<RuleWant> rules;
  std::vector<std::string> counters;
};

std::vector<ChainWant> WantedChains(const TableSpec& spec) {
  std::vector<ChainWant> chains;
  std::set<Hook> seen;
  for (Hook h : spec.hooks) {
    if (!seen.insert(h).second) continue;
    ChainWant c;
    c.name = HookName(h);
    c.hooknum = HookNum(h);
    // Input sees traffic from the address, output traffic to it, forward both ways.
    std::vector<bool> dirs;
    if (h != Hook::kOutput) dirs.push_back(true);
    if (h != Hook::kInput) dirs.push_back(false);
    for (Family f : {Family::kV4, Family::kV6}) {
      for (bool saddr : dirs) {
        std::string counter = c.name + "_" + FamilyName(f) + (saddr ? "_saddr" : "_daddr");
        if (spec.log) c.rules.push_back({f, saddr, true, counter, ""});
        c.rules.push_back({f, saddr, false, counter, ""});
        c.rules.push_back(
            {f, saddr, false, counter, HoldSetName(f == Family::kV4 ? spec.set_v4 : spec.set_v6)});
        c.counters.push_back(counter);
      }
    }
    chains.push_back(std::move(c));
  }
  return chains;
}

void AddExpr(nftnl_rule* r, nftnl_expr* e) { nftnl_rule_add_expr(r, e); }

nl::RulePtr BuildRule(const TableSpec& spec, const std::string& chain, const RuleWant& w) {
  nl::RulePtr r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, spec.table.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
  const bool v4 = w.family == Family::kV4;

  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_NFPROTO);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
  AddExpr(r.get(), e);

  e = nftnl_expr_alloc("cmp");
  uint8_t proto = v4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &proto, sizeof(proto));
  AddExpr(r.get(), e);

  e = nftnl_expr_alloc("payload");
  // IPv4 saddr/daddr at 12/16, IPv6 at 8/24.
  uint32_t offset = v4 ? (w.saddr ? 12 : 16) : (w.saddr ? 8 : 24);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, v4 ? 4 : 16);
  AddExpr(r.get(), e);

  e = nftnl_expr_alloc("lookup");
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
  const std::string& set = !w.set.empty() ? w.set : v4 ? spec.set_v4 : spec.set_v6;
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set.c_str());
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);
  AddExpr(r.get(), e);

  if (w.log) {
    e = nftnl_expr_alloc("limit");
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, kLogPerMinute);
    nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, 60);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, kLogBurst);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_FLAGS, 0);
    AddExpr(r.get(), e);
    e = nftnl_expr_alloc("log");
    std::string prefix = "iocwall " + w.counter + ": ";
    nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix.c_str());
    // The kernel reports the level it applies (warning) even when none is sent.
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_LEVEL, 4);
    AddExpr(r.get(), e);
    return r;
  }

  e = nftnl_expr_alloc("objref");
  nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
  nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, w.counter.c_str());
  AddExpr(r.get(), e);

  if (spec.action == Action::kReject) {
    e = nftnl_expr_alloc("reject");
    nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
    nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
  } else {
    e = nftnl_expr_alloc("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
  }
  AddExpr(r.get(), e);
  return r;
}

// A rule's expressions as text, to compare what the kernel holds with what we want.
std::string Fingerprint(const nftnl_rule* r) {
  std::string out;
  nl::ExprIterPtr it(nftnl_expr_iter_create(r));
  if (!it) return out;
  char buf[1024];
  for (nftnl_expr* e = nftnl_expr_iter_next(it.get()); e; e = nftnl_expr_iter_next(it.get())) {
    nftnl_expr_snprintf(buf, sizeof(buf), e, NFTNL_OUTPUT_DEFAULT, 0);
    out += nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    out += ":";
    out += buf;
    out += ";";
  }
  return out;
}

// The fingerprint we want: built rules set every attribute the kernel reports back (lookup
// flags included), so that the same printer gives the same text on both sides. (A round trip
// through libnftnl's parser is not usable: it reads the objref name past its unterminated end.)
std::string WantedFingerprint(const nftnl_rule* r) { return Fingerprint(r); }

nl::SetPtr BuildSet(const TableSpec& spec, Family f) {
  nl::SetPtr s(nftnl_set_alloc());
  const bool v4 = f == Family::kV4;
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec.table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, (v4 ? spec.set_v4 : spec.set_v6).c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, v4 ? kTypeIpv4Addr : kTypeIpv6Addr);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, v4 ? 4 : 16);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS,
                    NFT_SET_INTERVAL | (spec.timeouts ? NFT_SET_TIMEOUT : 0));
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, v4 ? 1 : 2);
  if (spec.element_counters) nftnl_set_add_expr(s.get(), nftnl_expr_alloc("counter"));
  return s;
}

nl::ChainPtr BuildChain(const TableSpec& spec, const ChainWant& c) {
  nl::ChainPtr ch(nftnl_chain_alloc());
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, spec.table.c_str());
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, c.name.c_str());
  nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_HOOKNUM, c.hooknum);
  nftnl_chain_set_s32(ch.get(), NFTNL_CHAIN_PRIO, spec.priority);
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  return ch;
}

// One element of a dump, with the absolute expiry of a start element (Unix seconds, 0: none).
struct DumpedElement {
  RawElement e;
  int64_t expires = kNeverExpires;
};

// Pairs the elements of an interval set (as dumped, in any order) into ranges (and, when
// `timed`, their expiries). Anything that does not pair up (an end without a start, a start
// followed by another start) is returned in `malformed`, to be deleted element by element;
// except, in a set with timeouts, an end without a start: that is what a dump shows of a range
// that expired and is not collected yet (its start is hidden, the end has no timeout), and
// deleting it could race the kernel's collector.
void PairElements(std::vector<DumpedElement>* elems, Family family, bool timed, FamilyRanges* out,
                  std::vector<RawElement>* malformed) {
  // At equal keys an end sorts first: it closes the previous, adjacent interval.
  std::sort(elems->begin(), elems->end(), [](const DumpedElement& a, const DumpedElement& b) {
    if (a.e.key != b.e.key) return a.e.key < b.e.key;
    return a.e.interval_end && !b.e.interval_end;
  });
  const auto& e = *elems;
  auto emit = [&](const Range& r, int64_t expires) {
    out->ranges.push_back(r);
    if (timed) out->expires.push_back(expires);
  };
  for (size_t i = 0; i < e.size();) {
    if (e[i].e.interval_end) {
      if (!timed) malformed->push_back(e[i].e);
      ++i;
    } else if (i + 1 < e.size() && e[i + 1].e.interval_end && e[i + 1].e.key > e[i].e.key) {
      emit({e[i].e.key, e[i + 1].e.key - 1}, e[i].expires);
      i += 2;
    } else if (i + 1 == e.size()) {
      emit({e[i].e.key, MaxAddress(family)}, e[i].expires);  // open to the top of the space
      ++i;
    } else {
      malformed->push_back(e[i++].e);
    }
  }
}

Status ValidateDesired(const FamilyRanges& fr, Family f) {
  if (!fr.expires.empty() && fr.expires.size() != fr.ranges.size()) {
    return Status::Error("desired set is invalid: " + std::to_string(fr.expires.size()) +
                         " expiries for " + std::to_string(fr.ranges.size()) + " ranges");
  }
  for (size_t i = 0; i < fr.ranges.size(); ++i) {
    const Range& r = fr.ranges[i];
    if (r.first > r.last || r.last > MaxAddress(f)) {
      return Status::Error("desired set is invalid: range " + std::to_string(i) + " is empty or " +
                           "outside the address family");
    }
    if (i > 0 && fr.ranges[i - 1].last >= r.first) {
      return Status::Error("desired set is not normalised: " + FormatRange(f, fr.ranges[i - 1]) +
                           " overlaps or precedes " + FormatRange(f, r));
    }
  }
  return Status::Ok();
}

// The temporary name a set has while it is being recreated (see StageRecreatedSets).
std::string SwapName(const std::string& set) { return set + "_swap"; }

std::string Plural(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// How the kernel's ranges differ from what we committed ("" when they do not). With timeouts,
// ranges at or past their expiry at `settled` on either side are not drift: the kernel is
// expiring them, and a dump and our clock may disagree about them by a second.
std::string Drift(const FamilyRanges& mine, const FamilyRanges& kernel, int64_t settled) {
  TimedRangeDiff d = DiffTimedRanges(mine, kernel, kExpiryToleranceSeconds);
  auto expiring = [&](const FamilyRanges& side, const Range& r) {
    const long i = side.expires.empty() ? -1 : Find(side, r.first);
    return i >= 0 && HasExpired(side.expires[i], settled);
  };
  size_t missing = 0, unexpected = 0, other_expiry = 0;
  for (const Range& r : d.remove) {
    const bool refresh = std::binary_search(d.add.begin(), d.add.end(), r);
    if (expiring(mine, r) || (refresh && expiring(kernel, r))) continue;
    ++(refresh ? other_expiry : missing);
  }
  for (const Range& r : d.add) {
    if (!std::binary_search(d.remove.begin(), d.remove.end(), r) && !expiring(kernel, r)) {
      ++unexpected;
    }
  }
  if (missing + unexpected + other_expiry == 0) return "";
  return Plural(missing, "range") + " missing, " + std::to_string(unexpected) + " unexpected" +
         (other_expiry ? ", " + std::to_string(other_expiry) + " with another expiry" : "");
}

}  // namespace

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
  uint32_t policy = NF_ACCEPT;
  std::vector<std::string> rules;  // fingerprints, in order
};

struct CounterView {
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

struct NftBackend::KernelView {
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
  SetView& hold(Family f) { return holds[f == Family::kV4 ? 0 : 1]; }
};

namespace {

enum class ChainState { kOk, kMissing, kRecreate, kPolicy, kRules };

ChainState Assess(const TableSpec& spec, const ChainWant& want,
                  const std::vector<std::string>& want_rules, const NftBackend::KernelView& view,
                  std::string* why) {
  auto it = view.chains.find(want.name);
  if (it == view.chains.end()) {
    *why = "chain " + want.name + " was missing";
    return ChainState::kMissing;
  }
  const ChainView& c = it->second;
  if (!c.base || c.hooknum != want.hooknum || c.prio != spec.priority || c.type != "filter") {
    *why = "chain " + want.name + " had the wrong hook, priority or type";
    return ChainState::kRecreate;
  }
  if (c.rules != want_rules) {
    *why = "chain " + want.name + " had " + Plural(c.rules.size(), "rule") +
           " that differ from the " + std::to_string(want_rules.size()) + " wanted";
    return ChainState::kRules;
  }
  if (c.policy != NF_ACCEPT) {
    *why = "chain " + want.name + " had a policy other than accept";
    return ChainState::kPolicy;
  }
  return ChainState::kOk;
}

// Every configured chain as wanted (hook, priority, type, policy, rules) and every counter its
// rules name.
bool ChainsIntact(const TableSpec& spec, const NftBackend::KernelView& view) {
  const std::vector<ChainWant> wanted = WantedChains(spec);
  if (view.chains.size() != wanted.size()) return false;  // one added (or one missing)
  for (const ChainWant& c : wanted) {
    std::vector<std::string> want;
    for (const RuleWant& w : c.rules)
      want.push_back(WantedFingerprint(BuildRule(spec, c.name, w).get()));
    std::string why;
    if (Assess(spec, c, want, view, &why) != ChainState::kOk) return false;
    for (const std::string& counter : c.counters) {
      if (!view.counters.count(counter)) return false;
    }
  }
  return true;
}

// What a copy of a commit depends on: another layout means the copy says nothing about it.
std::string SpecKey(const TableSpec& s) {
  std::string k = s.table + "|" + s.set_v4 + "|" + s.set_v6 + "|" + std::to_string(s.priority) +
                  "|" + std::to_string(static_cast<int>(s.action)) + "|" + std::to_string(s.log) +
                  std::to_string(s.element_counters) + std::to_string(s.timeouts) + "|";
  for (Hook h : s.hooks) k += HookName(h);
  return k;
}

}  // namespace

NftBackend::NftBackend(TableSpec spec, NftBackendOptions options)
    : spec_(std::move(spec)), options_(options) {}

NftBackend::~NftBackend() = default;

std::unique_ptr<SetBackend> MakeNftBackend(const TableSpec& spec) {
  return std::make_unique<NftBackend>(spec);
}

Status NftBackend::EnsureSocket() {
  if (socket_) return Status::Ok();
  Result<nl::Socket> s = nl::Socket::Open();
  if (!s.ok()) return s.status();
  socket_.emplace(std::move(*s));
  return Status::Ok();
}

Result<uint32_t> NftBackend::Generation() {
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  std::vector<char> buf(kRequestBuffer);
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETGEN, AF_UNSPEC, 0, socket_->NextSeq());
  uint32_t gen = 0;
  bool got = false;
  st = socket_->Request(nlh, [&](const nlmsghdr* reply) {
    nl::GenPtr g(nftnl_gen_alloc());
    if (nftnl_gen_nlmsg_parse(reply, g.get()) < 0) {
      return Status::Error("netlink: unparseable generation reply");
    }
    gen = nftnl_gen_get_u32(g.get(), NFTNL_GEN_ID);
    got = true;
    return Status::Ok();
  });
  if (!st.ok()) return st.Wrap("reading the ruleset generation");
  if (!got) return Status::Error("reading the ruleset generation: no reply");
  return gen;
}

Status NftBackend::Query(uint16_t type, uint16_t flags,
                         const std::function<void(nlmsghdr*)>& filter,
                         const std::function<Status(const nlmsghdr*)>& each,
                         const std::string& what, int* kernel_errno) {
  std::vector<char> buf(kRequestBuffer);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), type, NFPROTO_INET, flags, socket_->NextSeq());
  if (filter) filter(nlh);
  Status st = socket_->Request(nlh, each, kernel_errno);
  return st.Wrap(what);
}

Status NftBackend::DumpElements(Family family,
                                const std::function<void(const nl::DecodedElement&)>& each,
                                const std::string& other_set) {
  const std::string& set = !other_set.empty()      ? other_set
                           : family == Family::kV4 ? spec_.set_v4
                                                   : spec_.set_v6;
  return Query(
      NFT_MSG_GETSETELEM, NLM_F_DUMP,
      [&](nlmsghdr* nlh) {
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, spec_.table.c_str());
        mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
      },
      [&](const nlmsghdr* reply) {
        nl::ForEachElement(reply, family, each);
        return Status::Ok();
      },
      "dumping set " + set);
}

void NftBackend::ReadSet(const nftnl_set* s, KernelView* view) const {
  std::string name = nftnl_set_get_str(s, NFTNL_SET_NAME);
  for (Family f : {Family::kV4, Family::kV6}) {
    const std::string& mine = f == Family::kV4 ? spec_.set_v4 : spec_.set_v6;
    if (name == SwapName(mine)) view->swap_present[f == Family::kV4 ? 0 : 1] = true;
    if (name == HoldSetName(mine)) {
      view->hold(f).present = true;
      view->hold(f).usable = HoldSetUsable(s, f);
      if (!view->hold(f).usable) view->hold(f).mismatch = "is not a usable hold set";
    }
    if (name != mine) continue;
    SetView& sv = view->set(f);
    sv.present = true;
    const uint32_t type = f == Family::kV4 ? kTypeIpv4Addr : kTypeIpv6Addr;
    const uint32_t len = f == Family::kV4 ? 4 : 16;
    int counters = 0;
    nftnl_set_expr_foreach(
        s,
        [](nftnl_expr* e, void* data) {
          if (std::string(nftnl_expr_get_str(e, NFTNL_EXPR_NAME)) == "counter") {
            ++*static_cast<int*>(data);
          }
          return 0;
        },
        &counters);
    if (nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) != type ||
        nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) != len) {
      sv.mismatch = "has the wrong key type";
    } else if ((nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & ~uint32_t{NFT_SET_TIMEOUT}) !=
               NFT_SET_INTERVAL) {
      sv.mismatch = spec_.timeouts ? "has flags other than interval and timeout"
                                   : "has flags other than interval";
    } else if (((nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_TIMEOUT) != 0) != spec_.timeouts) {
      sv.mismatch = spec_.timeouts ? "lacks per-element timeouts" : "has per-element timeouts";
    } else if (nftnl_set_is_set(s, NFTNL_SET_TIMEOUT) &&
               nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT) != 0) {
      // A default timeout would make our permanent elements expire.
      sv.mismatch = "has a default timeout";
    } else if ((counters > 0) != spec_.element_counters) {
      sv.mismatch =
          spec_.element_counters ? "lacks per-element counters" : "has per-element counters";
    } else {
      sv.usable = true;
    }
  }
}

Status NftBackend::ReadTable(const std::string& table, TableInfo* info) {
  *info = {};
  int err = 0;
  Status st = Query(
      NFT_MSG_GETTABLE, 0,
      [&](nlmsghdr* nlh) {
        nl::TablePtr t(nftnl_table_alloc());
        nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
        nftnl_table_nlmsg_build_payload(nlh, t.get());
      },
      [&](const nlmsghdr* reply) {
        nl::TablePtr t(nftnl_table_alloc());
        if (nftnl_table_nlmsg_parse(reply, t.get()) < 0 ||
            table != nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME)) {
          return Status::Ok();
        }
        info->present = true;
        info->owned = HasOwnerMark(t.get());
        info->flags = nftnl_table_get_u32(t.get(), NFTNL_TABLE_FLAGS);
        info->handle = nftnl_table_get_u64(t.get(), NFTNL_TABLE_HANDLE);
        return Status::Ok();
      },
      "reading table inet " + table, &err);
  if (err == ENOENT) return Status::Ok();  // absent
  return st;
}

Status NftBackend::ReadKernel(KernelView* view, bool dump_elements) {
  const std::string& table = spec_.table;
  const std::string where = " of table inet " + table;
  // Each reply is parsed with libnftnl into a fresh object; replies of other tables (chain
  // dumps are filtered by family only) are skipped.
  auto parsed = [&](auto alloc, auto parse, auto table_of, auto use) {
    return [&, alloc, parse, table_of, use](const nlmsghdr* reply) {
      NftnlPtr<std::remove_pointer_t<decltype(alloc())>> o(alloc());
      if (parse(reply, o.get()) >= 0 && table == table_of(o.get())) use(o.get());
      return Status::Ok();
    };
  };

  TableInfo info;
  Status st = ReadTable(table, &info);
  if (!st.ok() || !info.present) return st;
  view->table = true;
  view->table_owned = info.owned;
  view->table_flags = info.flags;
  view->table_handle = info.handle;
  // Nothing more is read of a table that is not ours: it is never changed, whatever it holds.
  if (!info.owned) return Status::Ok();

  st = Query(
      NFT_MSG_GETSET, NLM_F_DUMP,
      [&](nlmsghdr* nlh) {
        nl::SetPtr filter(nftnl_set_alloc());
        nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, table.c_str());
        nftnl_set_nlmsg_build_payload(nlh, filter.get());
      },
      parsed(
          nftnl_set_alloc, nftnl_set_nlmsg_parse,
          [](nftnl_set* s) { return std::string(nftnl_set_get_str(s, NFTNL_SET_TABLE)); },
          [&](nftnl_set* s) { ReadSet(s, view); }),
      "reading the sets" + where);
  if (!st.ok()) return st;

  st = Query(
      NFT_MSG_GETOBJ, NLM_F_DUMP,
      [&](nlmsghdr* nlh) {
        nl::ObjPtr filter(nftnl_obj_alloc());
        nftnl_obj_set_str(filter.get(), NFTNL_OBJ_TABLE, table.c_str());
        nftnl_obj_set_u32(filter.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
        nftnl_obj_nlmsg_build_payload(nlh, filter.get());
      },
      parsed(
          nftnl_obj_alloc, nftnl_obj_nlmsg_parse,
          [](nftnl_obj* o) { return std::string(nftnl_obj_get_str(o, NFTNL_OBJ_TABLE)); },
          [&](nftnl_obj* o) {
            if (nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) != NFT_OBJECT_COUNTER) return;
            view->counters[nftnl_obj_get_str(o, NFTNL_OBJ_NAME)] = {
                nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS),
                nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES)};
          }),
      "reading the counters" + where);
  if (!st.ok()) return st;

  st = Query(
      NFT_MSG_GETCHAIN, NLM_F_DUMP, nullptr,
      parsed(
          nftnl_chain_alloc, nftnl_chain_nlmsg_parse,
          [](nftnl_chain* c) { return std::string(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE)); },
          [&](nftnl_chain* c) {
            ChainView& cv = view->chains[nftnl_chain_get_str(c, NFTNL_CHAIN_NAME)];
            cv.base = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM);
            if (!cv.base) return;
            cv.hooknum = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
            cv.prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
            const char* type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
            cv.type = type ? type : "";
            cv.policy = nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY);
          }),
      "reading the chains" + where);
  if (!st.ok()) return st;

  st = Query(
      NFT_MSG_GETRULE, NLM_F_DUMP,
      [&](nlmsghdr* nlh) {
        nl::RulePtr filter(nftnl_rule_alloc());
        nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, table.c_str());
        nftnl_rule_nlmsg_build_payload(nlh, filter.get());
      },
      parsed(
          nftnl_rule_alloc, nftnl_rule_nlmsg_parse,
          [](nftnl_rule* r) { return std::string(nftnl_rule_get_str(r, NFTNL_RULE_TABLE)); },
          [&](nftnl_rule* r) {
            view->chains[nftnl_rule_get_str(r, NFTNL_RULE_CHAIN)].rules.push_back(Fingerprint(r));
          }),
      "reading the rules" + where);
  if (!st.ok()) return st;

  if (!dump_elements) return Status::Ok();
  for (Family f : {Family::kV4, Family::kV6}) {
    SetView& sv = view->set(f);
    if (!sv.usable) continue;
    std::vector<DumpedElement> elems;
    st = DumpElements(f, [&](const nl::DecodedElement& d) {
      DumpedElement de{d.element, kNeverExpires};
      if (spec_.timeouts && d.timeout_ms != 0 && !d.element.interval_end) {
        // The time left, made absolute and rounded to the second it was asked for.
        de.expires = (NowMs() + static_cast<int64_t>(d.expiration_ms) + 500) / 1000;
      }
      elems.push_back(de);
    });
    if (!st.ok()) return st;
    PairElements(&elems, f, spec_.timeouts, &sv.dumped, &sv.malformed);
  }
  for (Family f : {Family::kV4, Family::kV6}) {
    // What an interrupted update left in a hold set (normally nothing).
    SetView& hv = view->hold(f);
    if (!hv.usable) continue;
    std::vector<DumpedElement> elems;
    st = DumpElements(
        f,
        [&](const nl::DecodedElement& d) {
          elems.push_back({d.element, kNeverExpires});
        },
        HoldSetName(f == Family::kV4 ? spec_.set_v4 : spec_.set_v6));
    if (!st.ok()) return st;
    PairElements(&elems, f, /*timed=*/false, &hv.dumped, &hv.malformed);
  }
  return Status::Ok();
}

Status NftBackend::Reconcile(const IntervalSet& desired, ApplyResult* result) {
  const auto start = std::chrono::steady_clock::now();
  *result = {};
  for (Family f : {Family::kV4, Family::kV6}) {
    Status st = ValidateDesired(desired.of(f), f);
    if (!st.ok()) return st;
  }
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  for (int attempt = 1;; ++attempt) {
    int retries = result->retries;
    *result = {};
    result->retries = retries;
    int kernel_errno = 0;
    st = ReconcileOnce(desired, result, &kernel_errno);
    // ENOENT with timeouts: an element expired between our read and our commit, so its delete
    // failed (and the whole batch with it); a fresh dump no longer shows it.
    const bool expired_under_us = spec_.timeouts && kernel_errno == ENOENT;
    if (st.ok() || attempt >= options_.max_attempts ||
        (kernel_errno != ERESTART && kernel_errno != EINTR && !expired_under_us)) {
      break;
    }
    // Someone (or the kernel's expiry) changed the ruleset between our read and our commit:
    // read again.
    applied_.reset();
    ++result->retries;
  }
  result->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!st.ok()) {
    // The kernel rolled the batch back, but it may have been changed by someone else: the next
    // cycle reads it again rather than trusting our copy.
    applied_.reset();
    return st.Wrap("reconciling table inet " + spec_.table);
  }
  return st;
}

AppliedCopy NftBackend::Fresh(uint32_t generation) const {
  AppliedCopy a;
  a.table = spec_.table;
  a.spec = SpecKey(spec_);
  a.generation = generation;
  a.boot_id = BootId();
  a.netns = NetnsInode();
  a.full_read_at = full_read_at_;
  a.timeouts = spec_.timeouts;
  return a;
}

void NftBackend::AdoptSeed() {
  if (!seed_) return;
  AppliedCopy s = std::move(*seed_);
  seed_.reset();
  if (applied_) return;  // this process's own copy is newer
  if (s.table != spec_.table || s.spec != SpecKey(spec_) || s.boot_id.empty() ||
      s.boot_id != BootId() || s.netns != NetnsInode() || s.timeouts != spec_.timeouts) {
    return;
  }
  full_read_at_ = s.full_read_at;
  applied_ = std::move(s);
}

void NftBackend::NoteHandle() {
  TableInfo info;
  if (applied_ && ReadTable(spec_.table, &info).ok() && info.present) {
    applied_->table_handle = info.handle;
  }
}

bool NftBackend::StillHoldsApplied(uint32_t gen) {
  // Per family: enough lookups to catch a flushed, replaced or reshaped set at once, and,
  // varied from one check to the next, a partial hand change within a few cycles.
  constexpr size_t kLookups = 64;
  const int64_t now = NowMs() / 1000;
  if (applied_->full_read_at <= 0 ||
      now - applied_->full_read_at > options_.full_read_every_seconds ||
      applied_->v4.size() + applied_->v6.size() < options_.always_read_below) {
    return false;
  }
  KernelView view;
  if (!ReadKernel(&view, /*dump_elements=*/false).ok()) return false;
  if (!view.table || !view.table_owned || view.table_handle != applied_->table_handle ||
      (view.table_flags & NFT_TABLE_F_DORMANT) || view.swap_present[0] || view.swap_present[1] ||
      !view.set(Family::kV4).usable || !view.set(Family::kV6).usable ||
      !ChainsIntact(spec_, view)) {
    return false;
  }
  ++lookup_round_;
  for (Family f : {Family::kV4, Family::kV6}) {
    const FamilyRanges& fr = applied_->of(f);
    const size_t n = fr.ranges.size();
    std::vector<size_t> picked;
    std::vector<u128> addrs;
    for (size_t j = 0; j < std::min(n, kLookups); ++j) {
      size_t i = (j * n / std::min(n, kLookups) + lookup_round_ * 7919) % n;
      // A range about to expire (or just expired) proves nothing either way.
      if (j < fr.expires.size() && i < fr.expires.size() && fr.expires[i] != kNeverExpires &&
          fr.expires[i] <= now + kSurelyGoneSeconds + 1) {
        continue;
      }
      picked.push_back(i);
      addrs.push_back(fr.ranges[i].first);
      addrs.push_back(fr.ranges[i].last);
    }
    std::vector<std::optional<u128>> starts;
    if (!Lookup(f, addrs, &starts).ok()) return false;
    for (size_t k = 0; k < picked.size(); ++k) {
      const u128 first = fr.ranges[picked[k]].first;
      if (starts[2 * k] != first || starts[2 * k + 1] != first) return false;
    }
  }
  applied_->generation = gen;
  return true;
}

Status NftBackend::ReconcileOnce(const IntervalSet& desired, ApplyResult* result,
                                 int* kernel_errno) {
  AdoptSeed();
  Result<uint32_t> gen = Generation();
  if (!gen.ok()) return gen.status();
  bool trusted = applied_ && applied_->generation == *gen;
  if (!trusted && applied_ && StillHoldsApplied(*gen)) {
    trusted = true;
    result->kernel_verified = true;
  }
  bool changed = false;
  // With timeouts: what the kernel is to hold, as seen from now_ms (taken once the kernel has
  // been read, so that the timeouts sent are as fresh as they can be).
  FamilyRanges timed_want[2];
  int64_t now_ms = 0;
  {
    KernelView view;
    if (trusted) {
      // Nobody committed anything since our last commit: the kernel holds our copy.
      view.table = true;
      view.table_owned = true;
      for (Family f : {Family::kV4, Family::kV6}) {
        view.set(f).present = view.set(f).usable = true;
        view.set(f).ranges = f == Family::kV4 ? &applied_->v4 : &applied_->v6;
        view.hold(f).present = view.hold(f).usable = true;  // and empty: see HoldBridge
      }
    } else {
      result->kernel_read = true;
      Status st = ReadKernel(&view, /*dump_elements=*/true);
      if (!st.ok()) {
        if (st.message().find("ruleset changed during a dump") != std::string::npos) {
          *kernel_errno = EINTR;
        }
        return st;
      }
      if (view.table && !view.table_owned) return Status::Error(NotOursMessage(spec_.table));
      full_read_at_ = NowMs() / 1000;
    }
    if (spec_.timeouts) {
      now_ms = NowMs();
      if (applied_) {
        // The kernel has removed (or hides) what expired since, without a new generation.
        DropExpired(&applied_->v4, now_ms / 1000 - kSurelyGoneSeconds);
        DropExpired(&applied_->v6, now_ms / 1000 - kSurelyGoneSeconds);
      }
      for (Family f : {Family::kV4, Family::kV6}) {
        timed_want[f == Family::kV4 ? 0 : 1] =
            TimedWant(desired.of(f), now_ms, &result->already_expired);
      }
    }
    auto want_of = [&](Family f) -> const FamilyRanges& {
      return spec_.timeouts ? timed_want[f == Family::kV4 ? 0 : 1] : desired.of(f);
    };

    // Sets to recreate (flags, type or counters changed) are first built and swapped in by
    // transactions of their own, so that blocking never pauses (see StageRecreatedSets).
    uint32_t genid = *gen;
    bool staged[2] = {false, false};
    if (!trusted) {
      Status st = StageRecreatedSets(&view, want_of, now_ms, &genid, staged, result, kernel_errno);
      if (!st.ok()) return st;
    }

    std::vector<std::string> reasons;
    const std::vector<ChainWant> chains = WantedChains(spec_);
    HoldBridge bridge(spec_,
                      !options_.split_transaction_for_test && !options_.skip_hold_bridge_for_test);
    Batch first(&*socket_, genid);
    std::optional<Batch> second;
    if (options_.split_transaction_for_test) second.emplace(&*socket_, 0);
    Batch& adds = second ? *second : first;
    const uint16_t inet = NFPROTO_INET;
    const std::string& table = spec_.table;

    if (!view.table) {
      result->bootstrapped = true;
      if (applied_) reasons.push_back("table inet " + table + " was deleted");
      // NLM_F_EXCL: if a table of that name appeared since the read, it is not ours.
      first.AddMessage(
          NFT_MSG_NEWTABLE, inet, NLM_F_CREATE | NLM_F_EXCL, "create table inet " + table,
          [&](nlmsghdr* nlh) { nftnl_table_nlmsg_build_payload(nlh, BuildTable(table).get()); });
    } else if (view.table_flags & NFT_TABLE_F_DORMANT) {
      reasons.push_back("table inet " + table + " was dormant (it blocked nothing)");
      first.AddMessage(NFT_MSG_NEWTABLE, inet, 0, "wake table inet " + table, [&](nlmsghdr* nlh) {
        nftnl_table_nlmsg_build_payload(nlh, BuildTable(table).get());
      });
    }

    bool recreate_any = false;
    for (Family f : {Family::kV4, Family::kV6}) {
      const SetView& sv = view.set(f);
      const std::string& name = f == Family::kV4 ? spec_.set_v4 : spec_.set_v6;
      if (sv.present && (!sv.usable || staged[f == Family::kV4 ? 0 : 1])) {
        recreate_any = true;
        reasons.push_back("set " + name + " " + sv.mismatch);
      } else if (!sv.present && view.table) {
        reasons.push_back("set " + name + " was missing");
      }
      const SetView& hv = view.hold(f);
      bridge.SetBefore(f, hv.usable, hv.dumped.ranges, hv.malformed);
      if (hv.present && !hv.usable) {
        recreate_any = true;  // with the rules that use it
        reasons.push_back("set " + HoldSetName(name) + " " + hv.mismatch);
      } else if (!hv.present && view.table) {
        reasons.push_back("set " + HoldSetName(name) + " was missing");
      } else if (!hv.dumped.ranges.empty() || !hv.malformed.empty()) {
        reasons.push_back("set " + HoldSetName(name) + " held " +
                          Plural(hv.dumped.ranges.size(), "range") + " and " +
                          Plural(hv.malformed.size(), "stray element") +
                          " (emptied before the update)");
      }
    }

    // Chains: what to fix. Rules referencing a set that must be recreated go with it.
    std::vector<ChainState> states;
    std::vector<std::vector<std::string>> want_rules(chains.size());
    std::set<std::string> wanted_names;
    for (size_t i = 0; i < chains.size(); ++i) {
      wanted_names.insert(chains[i].name);
      for (const RuleWant& w : chains[i].rules) {
        want_rules[i].push_back(WantedFingerprint(BuildRule(spec_, chains[i].name, w).get()));
      }
      ChainState s = ChainState::kOk;
      if (!trusted) {
        std::string why;
        s = Assess(spec_, chains[i], want_rules[i], view, &why);
        if (s != ChainState::kOk && view.table) reasons.push_back(why);
        if (recreate_any && (s == ChainState::kOk || s == ChainState::kPolicy)) {
          s = ChainState::kRules;
        }
      }
      if (s == ChainState::kMissing || s == ChainState::kRecreate) result->bootstrapped = true;
      states.push_back(s);
    }
    for (size_t i = 0; i < chains.size(); ++i) {
      if (states[i] != ChainState::kRules && states[i] != ChainState::kRecreate) continue;
      const std::string& name = chains[i].name;
      first.AddMessage(NFT_MSG_DELRULE, inet, 0, "flush chain " + name, [&](nlmsghdr* nlh) {
        nl::RulePtr r(nftnl_rule_alloc());
        nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
        nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, name.c_str());
        nftnl_rule_nlmsg_build_payload(nlh, r.get());
      });
    }
    std::vector<std::string> doomed;
    for (size_t i = 0; i < chains.size(); ++i) {
      if (states[i] == ChainState::kRecreate) doomed.push_back(chains[i].name);
    }
    for (const auto& [name, cv] : view.chains) {
      if (!wanted_names.count(name)) {
        reasons.push_back("chain " + name + " is not configured");
        doomed.push_back(name);
      }
    }
    for (const std::string& name : doomed) {
      first.AddMessage(NFT_MSG_DELCHAIN, inet, 0, "delete chain " + name, [&](nlmsghdr* nlh) {
        nl::ChainPtr c(nftnl_chain_alloc());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name.c_str());
        nftnl_chain_nlmsg_build_payload(nlh, c.get());
      });
    }

    // Sets and their elements: removals in the first batch, additions after them.
    for (Family f : {Family::kV4, Family::kV6}) {
      SetView& sv = view.set(f);
      const std::string& name = f == Family::kV4 ? spec_.set_v4 : spec_.set_v6;
      const FamilyRanges& want_set = want_of(f);
      const std::vector<Range>& want = want_set.ranges;
      const std::vector<uint64_t> no_timeouts;
      const int idx = f == Family::kV4 ? 0 : 1;
      if (view.hold(f).present && !view.hold(f).usable) AddDeleteHoldSet(&first, spec_, f);
      if (!view.hold(f).usable) AddCreateHoldSet(&first, spec_, f);
      if (staged[idx] || view.swap_present[idx]) {
        // The staged set (or one left over by an interrupted swap): the rules that used it
        // were flushed above, the new ones use the set under its own name.
        const std::string swap = SwapName(name);
        if (!staged[idx]) reasons.push_back("set " + swap + " was left over");
        first.AddMessage(NFT_MSG_DELSET, inet, 0, "delete set " + swap, [&](nlmsghdr* nlh) {
          nl::SetPtr s(nftnl_set_alloc());
          nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
          nftnl_set_set_str(s.get(), NFTNL_SET_NAME, swap.c_str());
          nftnl_set_nlmsg_build_payload(nlh, s.get());
        });
      }
      if (staged[idx]) {
        result->added += want.size();  // by the staging transactions
        continue;
      }
      if (sv.present && !sv.usable) {
        first.AddMessage(NFT_MSG_DELSET, inet, 0, "delete set " + name, [&](nlmsghdr* nlh) {
          nl::SetPtr s(nftnl_set_alloc());
          nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
          nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
          nftnl_set_nlmsg_build_payload(nlh, s.get());
        });
      }
      if (!sv.usable) {
        result->bootstrapped = true;
        first.AddMessage(
            NFT_MSG_NEWSET, inet, NLM_F_CREATE, "create set " + name + " in table inet " + table,
            [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, BuildSet(spec_, f).get()); });
        adds.AddRanges(ElementVerb::kAdd, inet, table, name, f, want,
                       spec_.timeouts ? TimeoutsMs(want_set.expires, now_ms) : no_timeouts);
        result->added += want.size();
        continue;
      }
      if (!sv.malformed.empty()) {
        reasons.push_back("set " + name + " held " +
                          Plural(sv.malformed.size(), "malformed element"));
        first.AddRawElements(ElementVerb::kDelete, inet, table, name, f, sv.malformed);
        result->removed += sv.malformed.size();
      }
      if (!trusted && applied_) {
        std::string drift = Drift(f == Family::kV4 ? applied_->v4 : applied_->v6, *sv.ranges,
                                  now_ms / 1000 + kExpiryToleranceSeconds);
        if (!drift.empty()) reasons.push_back("set " + name + " drifted: " + drift);
      }
      if (spec_.timeouts) {
        // A changed expiry is a delete plus an add of the same range in this transaction:
        // Linux 6.1 cannot change an element's timeout in place (a plain add is a no-op).
        TimedRangeDiff diff =
            DiffTimedRanges(*sv.ranges, want_set, kExpiryToleranceSeconds, now_ms / 1000);
        bridge.Plan(f, sv.ranges->ranges, diff.add);
        first.AddRanges(ElementVerb::kDelete, inet, table, name, f, diff.remove);
        adds.AddRanges(ElementVerb::kAdd, inet, table, name, f, diff.add,
                       TimeoutsMs(diff.add_expires, now_ms));
        result->removed += diff.remove.size() - diff.refreshed;
        result->added += diff.add.size() - diff.refreshed;
        result->refreshed += diff.refreshed;
        continue;
      }
      RangeDiff diff = DiffRanges(sv.ranges->ranges, want);
      bridge.Plan(f, sv.ranges->ranges, diff.add);
      first.AddRanges(ElementVerb::kDelete, inet, table, name, f, diff.remove);
      adds.AddRanges(ElementVerb::kAdd, inet, table, name, f, diff.add);
      result->removed += diff.remove.size();
      result->added += diff.add.size();
    }

    // Counters, chains, rules.
    for (size_t i = 0; i < chains.size(); ++i) {
      for (const std::string& counter : chains[i].counters) {
        if (trusted || view.counters.count(counter)) continue;
        first.AddMessage(NFT_MSG_NEWOBJ, inet, NLM_F_CREATE, "create counter " + counter,
                         [&](nlmsghdr* nlh) {
                           nl::ObjPtr o(nftnl_obj_alloc());
                           nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, table.c_str());
                           nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, counter.c_str());
                           nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
                           nftnl_obj_nlmsg_build_payload(nlh, o.get());
                         });
      }
    }
    for (size_t i = 0; i < chains.size(); ++i) {
      const ChainState s = states[i];
      if (s == ChainState::kOk || s == ChainState::kRules) {
        if (s == ChainState::kOk) continue;
      } else {
        first.AddMessage(NFT_MSG_NEWCHAIN, inet, NLM_F_CREATE,
                         (s == ChainState::kPolicy ? "set the policy of chain " : "create chain ") +
                             chains[i].name,
                         [&](nlmsghdr* nlh) {
                           nftnl_chain_nlmsg_build_payload(nlh, BuildChain(spec_, chains[i]).get());
                         });
        if (s == ChainState::kPolicy) continue;
      }
      for (const RuleWant& w : chains[i].rules) {
        first.AddMessage(
            NFT_MSG_NEWRULE, inet, NLM_F_CREATE | NLM_F_APPEND,
            "add rule to chain " + chains[i].name + " (" + w.counter + ")", [&](nlmsghdr* nlh) {
              nftnl_rule_nlmsg_build_payload(nlh, BuildRule(spec_, chains[i].name, w).get());
            });
      }
    }

    result->messages += first.messages() + (second ? second->messages() : 0);
    result->batch_bytes += first.bytes() + (second ? second->bytes() : 0);
    result->messages += bridge.Build(&*socket_, genid);
    result->held = bridge.held();
    if (!reasons.empty() && (view.table || applied_)) {
      result->repaired = true;
      for (const std::string& r : reasons) {
        result->repair_reason += (result->repair_reason.empty() ? "" : "; ") + r;
      }
    }
    if (result->messages == 0) {
      result->generation = genid;
      if (!trusted) {
        applied_ = Fresh(genid);
        applied_->table_handle = view.table_handle;
        SetApplied(desired, timed_want);
      }
      return Status::Ok();
    }
    if (options_.before_commit_for_test) options_.before_commit_for_test();
    uint32_t generation = genid;
    Status st = bridge.Hold(&generation, kernel_errno);
    if (!st.ok()) return st;
    if (generation != genid) first.RebaseGenid(generation);
    for (Batch* b : {&first, second ? &*second : nullptr}) {
      if (!b || b->empty()) continue;
      nl::CommitResult cr;
      st = b->Commit(&cr);
      *kernel_errno = cr.kernel_errno;
      if (!st.ok()) return st;
      // Each commit moves the generation by exactly one (zero is skipped).
      while (++generation == 0) {
      }
    }
    size_t released = 0;
    st = bridge.Release(&*socket_, &generation, kernel_errno, &released);
    result->messages += released;
    // The list is enforced, but the hold sets still hold part of it: the next attempt or cycle
    // reads the kernel and empties them.
    if (!st.ok()) return st;
    result->generation = generation;
    changed = true;
    // The batches and the diffs are freed here, before the copy below is made.
    applied_.reset();
    applied_ = Fresh(generation);
  }
  if (changed) {
    SetApplied(desired, timed_want);
    NoteHandle();
  }
  return Status::Ok();
}

Status NftBackend::StageRecreatedSets(KernelView* view,
                                      const std::function<const FamilyRanges&(Family)>& want_of,
                                      int64_t now_ms, uint32_t* genid, bool staged[2],
                                      ApplyResult* result, int* kernel_errno) {
  std::vector<Family> families;
  for (Family f : {Family::kV4, Family::kV6}) {
    if (view->set(f).present && !view->set(f).usable) families.push_back(f);
  }
  // Staging keeps working rules working. Without a table, an awake table, every chain hooked
  // as configured and every counter its rules name, there is no blocking to keep (or the
  // rules could not be re-pointed): the main transaction rebuilds everything at once.
  if (families.empty() || !view->table || (view->table_flags & NFT_TABLE_F_DORMANT) ||
      view->swap_present[0] || view->swap_present[1] || !view->hold(Family::kV4).usable ||
      !view->hold(Family::kV6).usable) {
    return Status::Ok();
  }
  const std::vector<ChainWant> chains = WantedChains(spec_);
  for (const ChainWant& c : chains) {
    std::vector<std::string> want_rules;
    for (const RuleWant& w : c.rules) {
      want_rules.push_back(WantedFingerprint(BuildRule(spec_, c.name, w).get()));
    }
    std::string why;
    ChainState state = Assess(spec_, c, want_rules, *view, &why);
    if (state == ChainState::kMissing || state == ChainState::kRecreate) return Status::Ok();
    for (const std::string& counter : c.counters) {
      if (!view->counters.count(counter)) return Status::Ok();
    }
  }
  TableSpec swap = spec_;
  for (Family f : families) {
    std::string& name = f == Family::kV4 ? swap.set_v4 : swap.set_v6;
    name = SwapName(name);
  }
  const uint16_t inet = NFPROTO_INET;
  const std::string& table = spec_.table;
  auto fill = [&](Batch* b, const TableSpec& s, Family f) {
    const std::string& name = f == Family::kV4 ? s.set_v4 : s.set_v6;
    const FamilyRanges& want = want_of(f);
    b->AddMessage(NFT_MSG_NEWSET, inet, NLM_F_CREATE | NLM_F_EXCL,
                  "create set " + name + " in table inet " + table,
                  [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, BuildSet(s, f).get()); });
    const std::vector<uint64_t> timeouts =
        spec_.timeouts ? TimeoutsMs(want.expires, now_ms) : std::vector<uint64_t>{};
    b->AddRanges(ElementVerb::kAdd, inet, table, name, f, want.ranges, timeouts);
  };
  auto commit = [&](Batch* b, const char* step) {
    nl::CommitResult cr;
    Status st = b->Commit(&cr);
    *kernel_errno = cr.kernel_errno;
    if (!st.ok()) return st.Wrap(std::string("recreating the sets, ") + step);
    result->messages += b->messages();
    result->batch_bytes += b->bytes();
    while (++*genid == 0) {  // each commit moves the generation by one (zero is skipped)
    }
    return Status::Ok();
  };
  // 1. The new sets, filled, under temporary names: nothing uses them yet.
  Batch build(&*socket_, *genid);
  for (Family f : families) fill(&build, swap, f);
  Status st = commit(&build, "building them under temporary names");
  if (!st.ok()) return st;
  // 2. The rules move to them, and the old sets go: one transaction, so one rule set or the
  // other applies to every packet, each with its set fully populated.
  Batch move(&*socket_, *genid);
  for (const ChainWant& c : chains) {
    move.AddMessage(NFT_MSG_DELRULE, inet, 0, "flush chain " + c.name, [&](nlmsghdr* nlh) {
      nl::RulePtr r(nftnl_rule_alloc());
      nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
      nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, c.name.c_str());
      nftnl_rule_nlmsg_build_payload(nlh, r.get());
    });
    for (const RuleWant& w : c.rules) {
      move.AddMessage(NFT_MSG_NEWRULE, inet, NLM_F_CREATE | NLM_F_APPEND,
                      "add rule to chain " + c.name + " (" + w.counter + ")", [&](nlmsghdr* nlh) {
                        nftnl_rule_nlmsg_build_payload(nlh, BuildRule(swap, c.name, w).get());
                      });
    }
  }
  for (Family f : families) {
    const std::string& name = f == Family::kV4 ? spec_.set_v4 : spec_.set_v6;
    move.AddMessage(NFT_MSG_DELSET, inet, 0, "delete set " + name, [&](nlmsghdr* nlh) {
      nl::SetPtr s(nftnl_set_alloc());
      nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
      nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
      nftnl_set_nlmsg_build_payload(nlh, s.get());
    });
  }
  st = commit(&move, "moving the rules to the new sets");
  if (!st.ok()) return st;
  // 3. The sets again under their own names, filled; the main transaction moves the rules
  // back to them and deletes the temporary ones.
  Batch rename(&*socket_, *genid);
  for (Family f : families) fill(&rename, spec_, f);
  st = commit(&rename, "building them under their own names");
  if (!st.ok()) return st;
  for (Family f : families) staged[f == Family::kV4 ? 0 : 1] = true;
  return Status::Ok();
}

void NftBackend::SetApplied(const IntervalSet& desired, FamilyRanges* timed_want) {
  if (spec_.timeouts) {
    applied_->v4 = std::move(timed_want[0]);
    applied_->v6 = std::move(timed_want[1]);
  } else {
    applied_->v4.ranges = desired.v4.ranges;
    applied_->v6.ranges = desired.v6.ranges;
  }
}

Status NftBackend::ReadStatus(KernelStatus* status) {
  *status = {};
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  Result<uint32_t> gen = Generation();
  if (!gen.ok()) return gen.status();
  status->generation = *gen;
  KernelView view;
  st = ReadKernel(&view, /*dump_elements=*/false);
  if (!st.ok()) return st;
  status->table_present = view.table;
  status->table_owned = view.table_owned;
  status->table_dormant = (view.table_flags & NFT_TABLE_F_DORMANT) != 0;
  status->table_handle = view.table_handle;
  status->boot_id = BootId();
  status->netns = NetnsInode();
  status->sets_present = view.set(Family::kV4).usable && view.set(Family::kV6).usable;
  const std::vector<ChainWant> chains = WantedChains(spec_);
  status->chains_present = view.table && ChainsIntact(spec_, view);
  for (const ChainWant& c : chains) {
    for (const std::string& counter : c.counters) {
      auto it = view.counters.find(counter);
      if (it != view.counters.end()) {
        status->counters.push_back({counter, it->second.packets, it->second.bytes});
      }
    }
  }
  if (applied_ && applied_->generation == *gen) {
    // Ranges the kernel has expired since are no longer counted.
    const int64_t now = NowMs() / 1000;
    auto live = [&](const FamilyRanges& fr) {
      size_t n = fr.ranges.size();
      for (int64_t e : fr.expires) n -= HasExpired(e, now);
      return n;
    };
    status->v4_elements = live(applied_->v4);
    status->v6_elements = live(applied_->v6);
    status->elements_counted = true;
  }
  return Status::Ok();
}

Status NftBackend::ReadElements(IntervalSet* current) {
  *current = {};
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  KernelView view;
  st = ReadKernel(&view, /*dump_elements=*/true);
  if (!st.ok()) return st;
  current->v4 = std::move(view.set(Family::kV4).dumped);
  current->v6 = std::move(view.set(Family::kV6).dumped);
  return Status::Ok();
}

Status NftBackend::ReadTopHits(size_t n, std::vector<ElementHits>* hits) {
  hits->clear();
  if (!spec_.element_counters) {
    return Status::Error("per-element counters are off (element_counters = false)");
  }
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  for (Family f : {Family::kV4, Family::kV6}) {
    std::vector<DumpedElement> elems;
    std::map<u128, std::pair<uint64_t, uint64_t>> counts;  // by start key
    st = DumpElements(f, [&](const nl::DecodedElement& d) {
      elems.push_back({d.element, kNeverExpires});
      if (!d.element.interval_end && d.packets > 0) counts[d.element.key] = {d.packets, d.bytes};
    });
    if (!st.ok()) return st;
    FamilyRanges ranges;
    std::vector<RawElement> malformed;
    PairElements(&elems, f, spec_.timeouts, &ranges, &malformed);
    for (const Range& r : ranges.ranges) {
      auto it = counts.find(r.first);
      if (it == counts.end()) continue;
      hits->push_back({f == Family::kV4 ? 4 : 6, r, it->second.first, it->second.second});
    }
  }
  std::sort(hits->begin(), hits->end(), [](const ElementHits& a, const ElementHits& b) {
    return a.packets != b.packets ? a.packets > b.packets : a.bytes > b.bytes;
  });
  if (hits->size() > n) hits->resize(n);
  return Status::Ok();
}

Status NftBackend::Lookup(Family family, std::span<const u128> addresses,
                          std::vector<std::optional<u128>>* starts) {
  starts->assign(addresses.size(), std::nullopt);
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  const std::string& set = family == Family::kV4 ? spec_.set_v4 : spec_.set_v6;
  for (size_t i = 0; i < addresses.size(); ++i) {
    // On an interval set the kernel answers a get of any address inside a range with the
    // range's start element, and ENOENT in a gap (checked against nft get element).
    int err = 0;
    st = Query(
        NFT_MSG_GETSETELEM, 0,
        [&](nlmsghdr* nlh) {
          mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, spec_.table.c_str());
          mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
          nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
          nl::PutKeyElement(nlh, family, addresses[i]);
          mnl_attr_nest_end(nlh, list);
        },
        [&](const nlmsghdr* reply) {
          nl::ForEachElement(reply, family, [&](const nl::DecodedElement& d) {
            if (!d.element.interval_end) (*starts)[i] = d.element.key;
          });
          return Status::Ok();
        },
        "looking up " + FormatAddress(family, addresses[i]) + " in set " + set, &err);
    if (err == ENOENT) continue;
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status NftBackend::RemoveTable(const std::string& table, bool* removed) {
  *removed = false;
  Status st = EnsureSocket();
  if (!st.ok()) return st;
  if (table == spec_.table) applied_.reset();
  for (int attempt = 1;; ++attempt) {
    Result<uint32_t> gen = Generation();
    if (!gen.ok()) return gen.status();
    TableInfo info;
    st = ReadTable(table, &info);
    if (!st.ok()) return st;
    if (!info.present) return Status::Ok();
    if (!info.owned) return Status::Error(NotOursMessage(table));
    // By handle, and guarded by the generation the mark was read in: the table deleted is the
    // one that was checked, even if another was created under its name in between.
    Batch batch(&*socket_, *gen);
    batch.AddMessage(NFT_MSG_DELTABLE, NFPROTO_INET, 0, "delete table inet " + table,
                     [&](nlmsghdr* nlh) {
                       nl::TablePtr t(nftnl_table_alloc());
                       nftnl_table_set_u64(t.get(), NFTNL_TABLE_HANDLE, info.handle);
                       nftnl_table_nlmsg_build_payload(nlh, t.get());
                     });
    nl::CommitResult cr;
    st = batch.Commit(&cr);
    if (st.ok()) {
      *removed = true;
      return st;
    }
    if (cr.kernel_errno == ENOENT) return Status::Ok();  // deleted by someone else meanwhile
    if (cr.kernel_errno != ERESTART || attempt >= options_.max_attempts) return st;
  }
}

}  // namespace iocwall
