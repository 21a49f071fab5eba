// The bytes iocwall sends, without a kernel: every rule of a few layouts as libnftnl prints
// its expressions (the format of nftables' tests/py .payload files), and a whole first-start
// batch message by message, compared with golden text.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <map>
#include <string>

#include "core/prefix.h"
#include "netlink/batch.h"
#include "netlink/nftnl_ptr.h"
#include "netlink/ops.h"
#include "netlink/plan.h"
#include "netlink/ruleset.h"
#include "tests/netlink/golden.h"

namespace iocwall::nl {
namespace {

std::string RulesText(const TableSpec& spec) {
  std::string out;
  char buf[4096];
  for (const ChainWant& c : WantedChains(spec)) {
    out += "chain " + c.name + " (hook " + std::to_string(c.hooknum) + ")\n";
    for (const RuleWant& w : c.rules) {
      RulePtr r = BuildRule(spec, c.name, w);
      nftnl_rule_snprintf(buf, sizeof(buf), r.get(), NFTNL_OUTPUT_DEFAULT, 0);
      out += buf;
      out += "\n";
    }
  }
  return out;
}

TEST(EncodingTest, RulesOfEachLayout) {
  TableSpec drop;
  golden::ExpectGolden("rules_drop.payload", RulesText(drop));
  TableSpec reject;
  reject.action = Action::kReject;
  reject.hooks = {Hook::kInput, Hook::kOutput};
  golden::ExpectGolden("rules_reject.payload", RulesText(reject));
  TableSpec log;
  log.log = true;
  log.hooks = {Hook::kForward};
  golden::ExpectGolden("rules_log.payload", RulesText(log));
}

TEST(EncodingTest, FingerprintIsStableAndDistinguishesRules) {
  TableSpec spec;
  std::vector<ChainWant> chains = WantedChains(spec);
  ASSERT_FALSE(chains.empty());
  const ChainWant& c = chains[0];
  ASSERT_GE(c.rules.size(), 2u);
  EXPECT_EQ(Fingerprint(BuildRule(spec, c.name, c.rules[0]).get()), c.fingerprints[0]);
  EXPECT_NE(c.fingerprints[0], c.fingerprints[1]);
  TableSpec other = spec;
  other.action = Action::kReject;
  EXPECT_NE(Fingerprint(BuildRule(other, c.name, c.rules[0]).get()), c.fingerprints[0]);
}

const char* TypeName(uint16_t type) {
  static const std::map<uint16_t, const char*> names = {
      {NFT_MSG_NEWTABLE, "NEWTABLE"},     {NFT_MSG_DELTABLE, "DELTABLE"},
      {NFT_MSG_NEWCHAIN, "NEWCHAIN"},     {NFT_MSG_DELCHAIN, "DELCHAIN"},
      {NFT_MSG_NEWRULE, "NEWRULE"},       {NFT_MSG_DELRULE, "DELRULE"},
      {NFT_MSG_NEWSET, "NEWSET"},         {NFT_MSG_DELSET, "DELSET"},
      {NFT_MSG_NEWSETELEM, "NEWSETELEM"}, {NFT_MSG_DELSETELEM, "DELSETELEM"},
      {NFT_MSG_NEWOBJ, "NEWOBJ"}};
  auto it = names.find(type);
  return it == names.end() ? "?" : it->second;
}

// One line per message: its type and flags, then libnftnl's print of the object it carries.
std::string BatchText(const Batch& b, Family element_family) {
  std::string out;
  char buf[4096];
  b.ForEachMessage([&](const nlmsghdr* nlh) {
    if (nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN || nlh->nlmsg_type == NFNL_MSG_BATCH_END) {
      out += nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN ? "BEGIN\n" : "END\n";
      return;
    }
    const uint16_t type = nlh->nlmsg_type & 0xff;
    out += TypeName(type);
    for (auto [flag, name] : {std::pair{NLM_F_CREATE, "create"},
                              {NLM_F_EXCL, "excl"},
                              {NLM_F_APPEND, "append"},
                              {NLM_F_ACK, "ack"}}) {
      if (nlh->nlmsg_flags & flag) out += std::string(" ") + name;
    }
    out += ": ";
    buf[0] = 0;
    if (type == NFT_MSG_NEWTABLE || type == NFT_MSG_DELTABLE) {
      TablePtr t(nftnl_table_alloc());
      nftnl_table_nlmsg_parse(nlh, t.get());
      nftnl_table_snprintf(buf, sizeof(buf), t.get(), NFTNL_OUTPUT_DEFAULT, 0);
      out += buf;
      out += HasOwnerMark(t.get()) ? " [marked]" : "";
    } else if (type == NFT_MSG_NEWCHAIN || type == NFT_MSG_DELCHAIN) {
      ChainPtr c(nftnl_chain_alloc());
      nftnl_chain_nlmsg_parse(nlh, c.get());
      nftnl_chain_snprintf(buf, sizeof(buf), c.get(), NFTNL_OUTPUT_DEFAULT, 0);
      out += buf;
    } else if (type == NFT_MSG_NEWRULE || type == NFT_MSG_DELRULE) {
      RulePtr r(nftnl_rule_alloc());
      nftnl_rule_nlmsg_parse(nlh, r.get());
      nftnl_rule_snprintf(buf, sizeof(buf), r.get(), NFTNL_OUTPUT_DEFAULT, 0);
      out += buf;
    } else if (type == NFT_MSG_NEWSET || type == NFT_MSG_DELSET) {
      SetPtr s(nftnl_set_alloc());
      nftnl_set_nlmsg_parse(nlh, s.get());
      nftnl_set_snprintf(buf, sizeof(buf), s.get(), NFTNL_OUTPUT_DEFAULT, 0);
      out += buf;
    } else if (type == NFT_MSG_NEWOBJ) {
      ObjPtr o(nftnl_obj_alloc());
      nftnl_obj_nlmsg_parse(nlh, o.get());
      nftnl_obj_snprintf(buf, sizeof(buf), o.get(), NFTNL_OUTPUT_DEFAULT, 0);
      out += buf;
    } else if (type == NFT_MSG_NEWSETELEM || type == NFT_MSG_DELSETELEM) {
      ForEachElement(nlh, element_family, [&](const DecodedElement& d) {
        out += (d.element.interval_end ? " end " : " start ") +
               FormatAddress(element_family, d.element.key) +
               (d.timeout_ms ? " timeout " + std::to_string(d.timeout_ms) : "");
      });
    }
    out += "\n";
  });
  return out;
}

TEST(EncodingTest, FirstStartBatch) {
  TableSpec spec;
  spec.hooks = {Hook::kInput};
  std::vector<Prefix> prefixes = {*ParsePrefix("192.0.2.0/24"), *ParsePrefix("198.51.100.7")};
  IntervalSet want = FromPrefixes(prefixes);
  PlanInput in;
  in.want[0] = &want.v4;
  in.want[1] = &want.v6;
  ReconcilePlan plan = PlanReconcile(spec, KernelView{}, in);
  Batch b(nullptr, 42);
  for (const PlannedOp& op : plan.ops) Stage(&b, spec, plan, op);
  golden::ExpectGolden("batch_first_start.txt", BatchText(b, Family::kV4));
  EXPECT_FALSE(b.Commit().ok()) << "a batch without a socket cannot commit";
}

TEST(EncodingTest, DeleteTableIsByHandle) {
  Batch b(nullptr, 7);
  AddDeleteTable(&b, "iocwall", 1234);
  golden::ExpectGolden("batch_delete_table.txt", BatchText(b, Family::kV4));
}

}  // namespace
}  // namespace iocwall::nl
