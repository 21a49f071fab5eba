// The ruleset iocwall wants: table inet <spec.table>, marked as iocwall's; two interval sets;
// one base chain per configured hook, whose rules drop (or reject) traffic from/to the sets'
// members; a named counter per chain, direction and family. Builds the libnftnl objects and
// the fingerprints of the rules (what the kernel must report back for a rule to be intact).
// No I/O: everything here is tested without root (tests/unit/ruleset_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/prefix.h"
#include "netlink/nftnl_ptr.h"
#include "netlink/set_backend.h"

namespace iocwall {

// The comment iocwall gives every table it creates, its ownership mark: a table of the
// configured name without it is never changed or deleted (see ruleset.cc).
inline constexpr char kTableOwnerMark[] =
    "managed by iocwall: changes are undone at its next cycle";

}  // namespace iocwall

namespace iocwall::nl {

// nft's datatype ids: with them `nft list` prints the keys as addresses.
inline constexpr uint32_t kTypeIpv4Addr = 7;
inline constexpr uint32_t kTypeIpv6Addr = 8;

const char* HookName(Hook h);
uint32_t HookNum(Hook h);          // NF_INET_*
const char* FamilyName(Family f);  // "v4", "v6"
int FamilyIndex(Family f);         // 0, 1: the index of per-family arrays
const std::string& SetName(const TableSpec& spec, Family f);
// The temporary name a set has while it is being recreated (nft_backend.h, StageRecreatedSets).
std::string SwapName(const std::string& set);

// The ownership mark: see kTableOwnerMark.
void PutOwnerMark(nftnl_table* t);
bool HasOwnerMark(const nftnl_table* t);
// The error for a table of iocwall's name that iocwall did not create.
std::string NotOursMessage(const std::string& table);

struct RuleWant {
  Family family = Family::kV4;
  bool saddr = true;
  bool log = false;  // the rate-limited log rule that precedes the drop rule
  std::string counter;
  std::string set;  // the set looked up: the family's main set when empty (see hold_bridge.h)
  // With action reject, in the output chain: accepts the ICMP errors our rejects send.
  bool own_reject = false;
};

struct ChainWant {
  std::string name;
  uint32_t hooknum = 0;
  std::vector<RuleWant> rules;
  std::vector<std::string> fingerprints;  // of `rules`, in order (Fingerprint of BuildRule)
  std::vector<std::string> counters;
};

// Every configured chain, in the order of spec.hooks (each hook once), with its rules.
std::vector<ChainWant> WantedChains(const TableSpec& spec);

// The table as iocwall creates it: awake, marked. Also sent to wake a dormant table (the
// kernel then only updates the flags).
TablePtr BuildTable(const std::string& name);
SetPtr BuildSet(const TableSpec& spec, Family f);
ChainPtr BuildChain(const TableSpec& spec, const ChainWant& c);
RulePtr BuildRule(const TableSpec& spec, const std::string& chain, const RuleWant& w);

// A rule's expressions as text, to compare what the kernel holds with what we want. Built
// rules set every attribute the kernel reports back (lookup flags included), so that the same
// printer gives the same text on both sides. (A round trip through libnftnl's parser is not
// usable: it reads the objref name past its unterminated end.)
std::string Fingerprint(const nftnl_rule* r);

// What a copy of a commit depends on: another layout means the copy says nothing about it.
std::string SpecKey(const TableSpec& s);

}  // namespace iocwall::nl
