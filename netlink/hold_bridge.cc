#include "netlink/hold_bridge.h"

#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include "core/diff.h"
#include "core/hold.h"
#include "netlink/nftnl_ptr.h"

namespace iocwall {

namespace {

constexpr uint32_t kTypeIpv4Addr = 7;  // nft's datatype ids
constexpr uint32_t kTypeIpv6Addr = 8;

int Index(Family f) { return f == Family::kV4 ? 0 : 1; }

const std::string& MainSet(const TableSpec& spec, Family f) {
  return f == Family::kV4 ? spec.set_v4 : spec.set_v6;
}

}  // namespace

std::string HoldSetName(const std::string& set) { return set + "_hold"; }

bool HoldSetUsable(const nftnl_set* s, Family f) {
  const bool v4 = f == Family::kV4;
  int exprs = 0;
  nftnl_set_expr_foreach(
      s,
      [](nftnl_expr*, void* data) {
        ++*static_cast<int*>(data);
        return 0;
      },
      &exprs);
  return nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == (v4 ? kTypeIpv4Addr : kTypeIpv6Addr) &&
         nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == (v4 ? 4u : 16u) &&
         nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == NFT_SET_INTERVAL &&
         (!nftnl_set_is_set(s, NFTNL_SET_TIMEOUT) ||
          nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT) == 0) &&
         exprs == 0;
}

void AddCreateHoldSet(nl::Batch* b, const TableSpec& spec, Family f) {
  const std::string name = HoldSetName(MainSet(spec, f));
  b->AddMessage(NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE,
                "create set " + name + " in table inet " + spec.table, [&](nlmsghdr* nlh) {
                  const bool v4 = f == Family::kV4;
                  nl::SetPtr s(nftnl_set_alloc());
                  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec.table.c_str());
                  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
                  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
                  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE,
                                    v4 ? kTypeIpv4Addr : kTypeIpv6Addr);
                  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, v4 ? 4 : 16);
                  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_INTERVAL);
                  // Set ids are per transaction; the main sets use 1 and 2.
                  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, v4 ? 3 : 4);
                  nftnl_set_nlmsg_build_payload(nlh, s.get());
                });
}

void HoldBridge::SetBefore(Family f, bool usable, std::vector<Range> leftovers,
                           std::vector<nl::RawElement> stray) {
  usable_[Index(f)] = usable;
  before_[Index(f)] = std::move(leftovers);
  stray_[Index(f)] = std::move(stray);
}

void HoldBridge::Plan(Family f, std::span<const Range> current, std::span<const Range> add) {
  if (!enabled_ || !usable_[Index(f)]) return;
  want_[Index(f)] = StillCoveredByAdds(current, add);
}

size_t HoldBridge::Build(nl::Socket* socket, uint32_t genid) {
  hold_.reset();
  nl::Batch b(socket, genid);
  for (Family f : {Family::kV4, Family::kV6}) {
    const int i = Index(f);
    if (!usable_[i]) continue;
    const std::string name = HoldSetName(MainSet(spec_, f));
    RangeDiff d = DiffRanges(before_[i], want_[i]);
    b.AddRawElements(nl::ElementVerb::kDelete, NFPROTO_INET, spec_.table, name, f, stray_[i]);
    b.AddRanges(nl::ElementVerb::kDelete, NFPROTO_INET, spec_.table, name, f, d.remove);
    b.AddRanges(nl::ElementVerb::kAdd, NFPROTO_INET, spec_.table, name, f, d.add);
  }
  if (b.empty()) return 0;
  const size_t n = b.messages();
  hold_.emplace(std::move(b));
  return n;
}

Status HoldBridge::Hold(uint32_t* genid) {
  if (!hold_) return Status::Ok();
  Status st = hold_->Commit();
  hold_.reset();
  if (!st.ok()) return st.Wrap("holding the ranges the update re-adds");
  while (++*genid == 0) {  // each commit moves the generation by one (zero is skipped)
  }
  return Status::Ok();
}

Status HoldBridge::Release(nl::Socket* socket, uint32_t* generation, size_t* messages) {
  *messages = 0;
  if (held() == 0) return Status::Ok();
  nl::Batch b(socket, *generation);
  for (Family f : {Family::kV4, Family::kV6}) {
    b.AddRanges(nl::ElementVerb::kDelete, NFPROTO_INET, spec_.table, HoldSetName(MainSet(spec_, f)),
                f, want_[Index(f)]);
  }
  *messages = b.messages();
  Status st = b.Commit();
  if (!st.ok()) return st.Wrap("releasing the held ranges after the update");
  while (++*generation == 0) {
  }
  return Status::Ok();
}

}  // namespace iocwall
