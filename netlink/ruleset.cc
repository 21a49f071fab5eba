#include "netlink/ruleset.h"

#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <string.h>

#include <set>

#include "netlink/hold_bridge.h"

namespace iocwall::nl {

namespace {

// Log rules are rate-limited so that a flood of blocked packets cannot flood the log.
constexpr uint64_t kLogPerMinute = 10;
constexpr uint32_t kLogBurst = 5;

void AddExpr(nftnl_rule* r, nftnl_expr* e) { nftnl_rule_add_expr(r, e); }

}  // namespace

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

int FamilyIndex(Family f) { return f == Family::kV4 ? 0 : 1; }

const std::string& SetName(const TableSpec& spec, Family f) {
  return f == Family::kV4 ? spec.set_v4 : spec.set_v6;
}

std::string SwapName(const std::string& set) { return set + "_swap"; }

// iocwall changes or deletes a table only when it carries exactly kTableOwnerMark as its
// comment, so that a table of the same name made by an administrator (`table inet filter` with
// its policy drop) is never taken over. The kernel does not let an existing table's comment
// change: a table is marked at its creation or never.
void PutOwnerMark(nftnl_table* t) {
  std::unique_ptr<nftnl_udata_buf, decltype(&nftnl_udata_buf_free)> buf(
      nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN), nftnl_udata_buf_free);
  nftnl_udata_put_strz(buf.get(), NFTNL_UDATA_TABLE_COMMENT, kTableOwnerMark);
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
  return comment == kTableOwnerMark;
}

std::string NotOursMessage(const std::string& table) {
  return "table inet " + table +
         " exists but was not created by iocwall (it lacks iocwall's mark, the comment \"" +
         kTableOwnerMark +
         "\"): iocwall never changes or deletes a table it did not create. Set [nftables] table "
         "to a name of its own, or, if this is a table left by an iocwall older than 0.2, "
         "delete it once with `nft delete table inet " +
         table + "` and iocwall recreates it marked";
}

TablePtr BuildTable(const std::string& name) {
  TablePtr t(nftnl_table_alloc());
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name.c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FLAGS, 0);
  PutOwnerMark(t.get());
  return t;
}

namespace {

// Accepts the ICMP error a reject rule sends ("administratively prohibited": ICMP type 3 code
// 13, ICMPv6 type 1 code 1), whatever its destination.
RulePtr BuildOwnRejectRule(const TableSpec& spec, const std::string& chain, Family f) {
  RulePtr r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, spec.table.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
  const bool v4 = f == Family::kV4;
  auto match = [&](nftnl_expr* load, const void* value, uint32_t len) {
    AddExpr(r.get(), load);
    nftnl_expr* e = nftnl_expr_alloc("cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, value, len);
    AddExpr(r.get(), e);
  };
  auto meta = [](uint32_t key) {
    nftnl_expr* e = nftnl_expr_alloc("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
    return e;
  };
  const uint8_t proto = v4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
  match(meta(NFT_META_NFPROTO), &proto, 1);
  const uint8_t l4 = v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  match(meta(NFT_META_L4PROTO), &l4, 1);
  nftnl_expr* th = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(th, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
  nftnl_expr_set_u32(th, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
  nftnl_expr_set_u32(th, NFTNL_EXPR_PAYLOAD_OFFSET, 0);
  nftnl_expr_set_u32(th, NFTNL_EXPR_PAYLOAD_LEN, 2);
  const uint8_t type_code[2] = {static_cast<uint8_t>(v4 ? 3 : 1),
                                static_cast<uint8_t>(v4 ? 13 : 1)};
  match(th, type_code, 2);
  nftnl_expr* e = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
  AddExpr(r.get(), e);
  return r;
}

}  // namespace

RulePtr BuildRule(const TableSpec& spec, const std::string& chain, const RuleWant& w) {
  if (w.own_reject) return BuildOwnRejectRule(spec, chain, w.family);
  RulePtr r(nftnl_rule_alloc());
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

std::string Fingerprint(const nftnl_rule* r) {
  std::string out;
  ExprIterPtr it(nftnl_expr_iter_create(r));
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
      if (h == Hook::kOutput && spec.action == Action::kReject) {
        // The ICMP error our own reject sends back goes to the blocked address: without this
        // rule the output chain would drop it, and the sender would see a silent drop.
        RuleWant own;
        own.family = f;
        own.own_reject = true;
        c.rules.push_back(own);
      }
      for (bool saddr : dirs) {
        std::string counter = c.name + "_" + FamilyName(f) + (saddr ? "_saddr" : "_daddr");
        if (spec.log) c.rules.push_back({f, saddr, true, counter, ""});
        c.rules.push_back({f, saddr, false, counter, ""});
        c.rules.push_back(
            {f, saddr, false, counter, HoldSetName(f == Family::kV4 ? spec.set_v4 : spec.set_v6)});
        c.counters.push_back(counter);
      }
    }
    for (const RuleWant& w : c.rules)
      c.fingerprints.push_back(Fingerprint(BuildRule(spec, c.name, w).get()));
    chains.push_back(std::move(c));
  }
  return chains;
}

SetPtr BuildSet(const TableSpec& spec, Family f) {
  SetPtr s(nftnl_set_alloc());
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

ChainPtr BuildChain(const TableSpec& spec, const ChainWant& c) {
  ChainPtr ch(nftnl_chain_alloc());
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, spec.table.c_str());
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, c.name.c_str());
  nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_HOOKNUM, c.hooknum);
  nftnl_chain_set_s32(ch.get(), NFTNL_CHAIN_PRIO, spec.priority);
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  return ch;
}

std::string SpecKey(const TableSpec& s) {
  std::string k = s.table + "|" + s.set_v4 + "|" + s.set_v6 + "|" + std::to_string(s.priority) +
                  "|" + std::to_string(static_cast<int>(s.action)) + "|" + std::to_string(s.log) +
                  std::to_string(s.element_counters) + std::to_string(s.timeouts) + "|";
  for (Hook h : s.hooks) k += HookName(h);
  return k;
}

}  // namespace iocwall::nl
