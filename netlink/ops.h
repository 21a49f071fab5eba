// The writers: one per nf_tables verb, each adding its message to a batch (the model of
// nftables' src/mnl.c). Everything that changes the kernel goes through here; `Stage` turns a
// planned operation (plan.h) into its message.
#pragma once

#include <cstdint>
#include <string>

#include "netlink/batch.h"
#include "netlink/plan.h"
#include "netlink/ruleset.h"
#include "netlink/set_backend.h"

namespace iocwall::nl {

// NLM_F_EXCL: if a table of that name appeared since the read, it is not ours.
void AddCreateTable(Batch* b, const std::string& table);
void AddWakeTable(Batch* b, const std::string& table);
// By handle: the table deleted is the one that was checked, even if another was created
// under its name in between (the batch's generation guard covers the read).
void AddDeleteTable(Batch* b, const std::string& table, uint64_t handle);
void AddFlushChain(Batch* b, const std::string& table, const std::string& chain);
void AddDeleteChain(Batch* b, const std::string& table, const std::string& chain);
// Creates the chain, or sets the policy of one that exists (`what` says which).
void AddCreateChain(Batch* b, const TableSpec& spec, const ChainWant& c, const std::string& what);
void AddRule(Batch* b, const TableSpec& spec, const std::string& chain, const RuleWant& w);
void AddDeleteSet(Batch* b, const std::string& table, const std::string& set);
// `exclusive`: fail (EEXIST) rather than accept a set of that name that exists.
void AddCreateSet(Batch* b, const TableSpec& spec, Family f, bool exclusive);
void AddCreateCounter(Batch* b, const std::string& table, const std::string& counter);

// Adds `op` of `plan` to `b`.
void Stage(Batch* b, const TableSpec& spec, const ReconcilePlan& plan, const PlannedOp& op);

}  // namespace iocwall::nl
