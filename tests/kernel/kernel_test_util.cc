#include "tests/kernel/kernel_test_util.h"

#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "core/prefix.h"

namespace iocwall::ktest {

Status EnterFreshNetns() {
  if (geteuid() != 0) return Status::Error("needs root (CAP_NET_ADMIN)");
  if (unshare(CLONE_NEWNET) != 0) {
    return Status::Error(std::string("unshare(CLONE_NEWNET) failed: ") + strerror(errno));
  }
  return Status::Ok();
}

CommandResult Run(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

nlohmann::json NftTable(const std::string& table) {
  CommandResult r = Run("nft -j list table inet " + table);
  if (r.status != 0) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

std::string NftRuleset() { return Run("nft list ruleset").out; }

namespace {

const nlohmann::json* FindObject(const nlohmann::json& table, const char* kind,
                                 const std::string& name) {
  if (!table.contains("nftables")) return nullptr;
  for (const auto& item : table["nftables"]) {
    if (item.contains(kind) && item[kind].value("name", "") == name) return &item[kind];
  }
  return nullptr;
}

Range ParseElement(const nlohmann::json& e) {
  if (e.is_object() && e.contains("elem")) return ParseElement(e["elem"]["val"]);
  if (e.is_string()) return R(e.get<std::string>().c_str());
  if (e.contains("prefix")) {
    std::string p = e["prefix"]["addr"].get<std::string>() + "/" +
                    std::to_string(e["prefix"]["len"].get<int>());
    return R(p.c_str());
  }
  if (e.contains("range")) {
    Range a = R(e["range"][0].get<std::string>().c_str());
    Range b = R(e["range"][1].get<std::string>().c_str());
    return {a.first, b.last};
  }
  return {1, 0};
}

}  // namespace

OracleSet ReadOracleSet(const nlohmann::json& table, const std::string& set, Family) {
  OracleSet out;
  const nlohmann::json* s = FindObject(table, "set", set);
  if (!s) return out;
  out.present = true;
  out.type = (*s).value("type", "");
  if (s->contains("flags")) {
    for (const auto& f : (*s)["flags"]) out.flags.push_back(f.get<std::string>());
  }
  if (s->contains("elem")) {
    for (const auto& e : (*s)["elem"]) out.elements.push_back(ParseElement(e));
  }
  return out;
}

std::vector<OracleElement> ReadOracleElements(const nlohmann::json& table, const std::string& set) {
  std::vector<OracleElement> out;
  const nlohmann::json* s = FindObject(table, "set", set);
  if (!s || !s->contains("elem")) return out;
  for (const auto& e : (*s)["elem"]) {
    OracleElement o;
    o.range = ParseElement(e);
    if (e.is_object() && e.contains("elem")) {
      o.timeout = e["elem"].value("timeout", int64_t{0});
      o.expires = e["elem"].value("expires", int64_t{0});
    }
    out.push_back(o);
  }
  return out;
}

OracleChain ReadOracleChain(const nlohmann::json& table, const std::string& chain) {
  OracleChain out;
  const nlohmann::json* c = FindObject(table, "chain", chain);
  if (!c) return out;
  out.present = true;
  out.type = c->value("type", "");
  out.hook = c->value("hook", "");
  out.policy = c->value("policy", "");
  out.prio = c->value("prio", 0);
  for (const auto& item : table["nftables"]) {
    if (item.contains("rule") && item["rule"].value("chain", "") == chain) {
      out.rules.push_back(item["rule"]["expr"].dump());
    }
  }
  return out;
}

std::vector<std::string> OracleCounters(const nlohmann::json& table) {
  std::vector<std::string> out;
  if (!table.contains("nftables")) return out;
  for (const auto& item : table["nftables"]) {
    if (item.contains("counter")) out.push_back(item["counter"].value("name", ""));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Range> Coverage(std::vector<Range> ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<Range> out;
  for (const Range& r : ranges) {
    if (!out.empty() && (out.back().last >= r.first || out.back().last + 1 == r.first)) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

IntervalSet RandomBlocklist(size_t n, uint32_t seed, size_t v6) {
  std::mt19937_64 rng(seed);
  std::vector<TaggedPrefix> in;
  in.reserve(n + v6);
  for (size_t i = 0; i < n; ++i) {
    Prefix p;
    p.family = Family::kV4;
    // Keep clear of 0/8, 127/8 and 224/3: realistic, and never a protected range.
    uint32_t a = static_cast<uint32_t>(rng() % (0xdf000000u - 0x01000000u)) + 0x01000000u;
    uint8_t len = (i % 10 == 0) ? static_cast<uint8_t>(24 + rng() % 8) : 32;
    p.len = len;
    p.addr = a & (len == 0 ? 0 : ~((uint32_t{1} << (32 - len)) - 1)) & 0xffffffffu;
    in.push_back({p, 0});
  }
  for (size_t i = 0; i < v6; ++i) {
    Prefix p;
    p.family = Family::kV6;
    u128 a = (u128{0x2001'0db8} << 96) | (u128{rng()} << 32) | rng();
    p.len = (i % 4 == 0) ? 64 : 128;
    p.addr = p.len == 128 ? a : (a & ~((u128{1} << 64) - 1));
    in.push_back({p, 0});
  }
  Policy policy;
  return Normalise(in, policy, nullptr);
}

IntervalSet Churn(const IntervalSet& base, size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  IntervalSet out;
  const auto& src = base.v4.ranges;
  std::set<size_t> drop;
  while (drop.size() < std::min(n, src.size())) drop.insert(rng() % src.size());
  std::vector<Range> kept;
  kept.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (!drop.count(i)) kept.push_back(src[i]);
  }
  // New single addresses in gaps: never overlapping or adjacent to a kept range.
  std::vector<Range> added;
  while (added.size() < n) {
    u128 a = static_cast<uint32_t>(rng() % (0xdf000000u - 0x01000000u)) + 0x01000000u;
    auto it = std::lower_bound(kept.begin(), kept.end(), Range{a, a});
    bool clash = false;
    if (it != kept.end() && it->first <= a + 1) clash = true;
    if (it != kept.begin() && std::prev(it)->last + 1 >= a) clash = true;
    for (const Range& r : added) clash |= (r.first + 1 >= a && r.first <= a + 1);
    if (!clash) added.push_back({a, a});
  }
  kept.insert(kept.end(), added.begin(), added.end());
  std::sort(kept.begin(), kept.end());
  out.v4.ranges = std::move(kept);
  out.v6 = base.v6;
  out.v6.sources.clear();
  return out;
}

Range R(const char* text) {
  std::string s(text);
  auto dash = s.find('-');
  if (dash != std::string::npos) {
    auto a = ParsePrefix(s.substr(0, dash));
    auto b = ParsePrefix(s.substr(dash + 1));
    if (!a || !b) return {1, 0};
    return {a->First(), b->Last()};
  }
  auto p = ParsePrefix(s);
  if (!p) return {1, 0};
  return {p->First(), p->Last()};
}

IntervalSet Set(std::initializer_list<const char*> v4, std::initializer_list<const char*> v6) {
  IntervalSet s;
  for (const char* t : v4) s.v4.ranges.push_back(R(t));
  for (const char* t : v6) s.v6.ranges.push_back(R(t));
  std::sort(s.v4.ranges.begin(), s.v4.ranges.end());
  std::sort(s.v6.ranges.begin(), s.v6.ranges.end());
  return s;
}

}  // namespace iocwall::ktest
