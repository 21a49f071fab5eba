// Helpers for the kernel tests: a fresh network namespace per test, the nft CLI as the
// independent oracle, and random blocklists.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/interval_set.h"
#include "core/status.h"

namespace iocwall::ktest {

// Moves the calling thread (and the children it forks) into a new, empty network namespace.
// Returns an error when not root or when namespaces are unavailable: callers skip then, and
// never run anything against the host's ruleset.
Status EnterFreshNetns();

// Runs a command through /bin/sh in the current namespace; returns its exit status and output.
struct CommandResult {
  int status = -1;
  std::string out;
};
CommandResult Run(const std::string& command);

// `nft -j list table inet <table>` parsed; an empty object when the table is absent.
nlohmann::json NftTable(const std::string& table = "iocwall");
// The whole ruleset as text (`nft list ruleset`), to compare before and after.
std::string NftRuleset();

// What the oracle says about one set.
struct OracleSet {
  bool present = false;
  std::string type;  // "ipv4_addr"
  std::vector<std::string> flags;
  std::vector<Range> elements;  // as nft prints them (prefixes and ranges)
};
OracleSet ReadOracleSet(const nlohmann::json& table, const std::string& set, Family family);

// One element as nft prints it, with its timeout and the time it has left (whole seconds, as
// `nft -j` prints them; 0: none, a permanent element).
struct OracleElement {
  Range range;
  int64_t timeout = 0;
  int64_t expires = 0;
};
std::vector<OracleElement> ReadOracleElements(const nlohmann::json& table, const std::string& set);

struct OracleChain {
  bool present = false;
  std::string type, hook, policy;
  int prio = 0;
  std::vector<std::string> rules;  // each rule's expressions as compact JSON
};
OracleChain ReadOracleChain(const nlohmann::json& table, const std::string& chain);
std::vector<std::string> OracleCounters(const nlohmann::json& table);

// Merges ranges (overlapping or adjacent) into the minimal sorted list: coverage equality.
std::vector<Range> Coverage(std::vector<Range> ranges);

// `n` random IPv4 blocks (mostly /32, some /24../31), normalised, from a fixed seed.
IntervalSet RandomBlocklist(size_t n, uint32_t seed, size_t v6 = 0);
// Removes `n` ranges and adds `n` new ones not overlapping the rest (a churn), deterministic.
IntervalSet Churn(const IntervalSet& base, size_t n, uint32_t seed);

Range R(const char* prefix_or_range);  // "10.0.0.0/24", "10.0.0.1-10.0.0.9", "2001:db8::/32"
IntervalSet Set(std::initializer_list<const char*> v4, std::initializer_list<const char*> v6 = {});

}  // namespace iocwall::ktest
