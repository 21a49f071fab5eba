#include "netlink/ops.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include "netlink/hold_bridge.h"
#include "netlink/nftnl_ptr.h"

namespace iocwall::nl {

namespace {

constexpr uint16_t kInet = NFPROTO_INET;

}  // namespace

void AddCreateTable(Batch* b, const std::string& table) {
  b->AddMessage(
      NFT_MSG_NEWTABLE, kInet, NLM_F_CREATE | NLM_F_EXCL, "create table inet " + table,
      [&](nlmsghdr* nlh) { nftnl_table_nlmsg_build_payload(nlh, BuildTable(table).get()); });
}

void AddWakeTable(Batch* b, const std::string& table) {
  b->AddMessage(NFT_MSG_NEWTABLE, kInet, 0, "wake table inet " + table, [&](nlmsghdr* nlh) {
    nftnl_table_nlmsg_build_payload(nlh, BuildTable(table).get());
  });
}

void AddDeleteTable(Batch* b, const std::string& table, uint64_t handle) {
  b->AddMessage(NFT_MSG_DELTABLE, kInet, 0, "delete table inet " + table, [&](nlmsghdr* nlh) {
    TablePtr t(nftnl_table_alloc());
    nftnl_table_set_u64(t.get(), NFTNL_TABLE_HANDLE, handle);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
  });
}

void AddFlushChain(Batch* b, const std::string& table, const std::string& chain) {
  b->AddMessage(NFT_MSG_DELRULE, kInet, 0, "flush chain " + chain, [&](nlmsghdr* nlh) {
    RulePtr r(nftnl_rule_alloc());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
    nftnl_rule_nlmsg_build_payload(nlh, r.get());
  });
}

void AddDeleteChain(Batch* b, const std::string& table, const std::string& chain) {
  b->AddMessage(NFT_MSG_DELCHAIN, kInet, 0, "delete chain " + chain, [&](nlmsghdr* nlh) {
    ChainPtr c(nftnl_chain_alloc());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, chain.c_str());
    nftnl_chain_nlmsg_build_payload(nlh, c.get());
  });
}

void AddCreateChain(Batch* b, const TableSpec& spec, const ChainWant& c, const std::string& what) {
  b->AddMessage(NFT_MSG_NEWCHAIN, kInet, NLM_F_CREATE, what, [&](nlmsghdr* nlh) {
    nftnl_chain_nlmsg_build_payload(nlh, BuildChain(spec, c).get());
  });
}

void AddRule(Batch* b, const TableSpec& spec, const std::string& chain, const RuleWant& w) {
  b->AddMessage(
      NFT_MSG_NEWRULE, kInet, NLM_F_CREATE | NLM_F_APPEND,
      "add rule to chain " + chain + " (" + (w.own_reject ? "own rejects" : w.counter) + ")",
      [&](nlmsghdr* nlh) { nftnl_rule_nlmsg_build_payload(nlh, BuildRule(spec, chain, w).get()); });
}

void AddDeleteSet(Batch* b, const std::string& table, const std::string& set) {
  b->AddMessage(NFT_MSG_DELSET, kInet, 0, "delete set " + set, [&](nlmsghdr* nlh) {
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
    nftnl_set_nlmsg_build_payload(nlh, s.get());
  });
}

void AddCreateSet(Batch* b, const TableSpec& spec, Family f, bool exclusive) {
  b->AddMessage(
      NFT_MSG_NEWSET, kInet, NLM_F_CREATE | (exclusive ? NLM_F_EXCL : 0),
      "create set " + SetName(spec, f) + " in table inet " + spec.table,
      [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, BuildSet(spec, f).get()); });
}

void AddCreateCounter(Batch* b, const std::string& table, const std::string& counter) {
  b->AddMessage(NFT_MSG_NEWOBJ, kInet, NLM_F_CREATE, "create counter " + counter,
                [&](nlmsghdr* nlh) {
                  ObjPtr o(nftnl_obj_alloc());
                  nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, table.c_str());
                  nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, counter.c_str());
                  nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
                  nftnl_obj_nlmsg_build_payload(nlh, o.get());
                });
}

void Stage(Batch* b, const TableSpec& spec, const ReconcilePlan& plan, const PlannedOp& op) {
  const std::string& table = spec.table;
  switch (op.kind) {
    case OpKind::kCreateTable:
      return AddCreateTable(b, table);
    case OpKind::kWakeTable:
      return AddWakeTable(b, table);
    case OpKind::kFlushChain:
      return AddFlushChain(b, table, op.name);
    case OpKind::kDeleteChain:
      return AddDeleteChain(b, table, op.name);
    case OpKind::kDeleteHoldSet:
    case OpKind::kDeleteSet:
      return AddDeleteSet(b, table, op.name);
    case OpKind::kCreateHoldSet:
      return AddCreateHoldSet(b, spec, op.family);
    case OpKind::kCreateSet:
      return AddCreateSet(b, spec, op.family, /*exclusive=*/false);
    case OpKind::kDeleteElements:
      b->AddRawElements(ElementVerb::kDelete, kInet, table, op.name, op.family, op.raw);
      return;
    case OpKind::kDeleteRanges:
      b->AddRanges(ElementVerb::kDelete, kInet, table, op.name, op.family, op.ranges);
      return;
    case OpKind::kAddRanges:
      b->AddRanges(ElementVerb::kAdd, kInet, table, op.name, op.family, op.ranges, op.timeouts);
      return;
    case OpKind::kCreateCounter:
      return AddCreateCounter(b, table, op.name);
    case OpKind::kCreateChain:
      return AddCreateChain(b, spec, plan.chains[op.chain], "create chain " + op.name);
    case OpKind::kSetChainPolicy:
      return AddCreateChain(b, spec, plan.chains[op.chain], "set the policy of chain " + op.name);
    case OpKind::kAddRule:
      return AddRule(b, spec, op.name, plan.chains[op.chain].rules[op.rule]);
  }
}

}  // namespace iocwall::nl
