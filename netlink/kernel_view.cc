#include "netlink/kernel_view.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <fstream>

#include "core/timed.h"
#include "netlink/hold_bridge.h"
#include "netlink/nftnl_ptr.h"
#include "netlink/ruleset.h"

namespace iocwall::nl {

namespace {

constexpr size_t kRequestBuffer = 16 * 1024;

}  // namespace

bool KernelView::dormant() const { return (table_flags & NFT_TABLE_F_DORMANT) != 0; }

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

Result<uint32_t> KernelReader::Generation() {
  std::vector<char> buf(kRequestBuffer);
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETGEN, AF_UNSPEC, 0, socket_->NextSeq());
  uint32_t gen = 0;
  bool got = false;
  Status st = socket_->Request(nlh, [&](const nlmsghdr* reply) {
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

Status KernelReader::Query(uint16_t type, uint16_t flags,
                           const std::function<void(nlmsghdr*)>& filter,
                           const std::function<Status(const nlmsghdr*)>& each,
                           const std::string& what) {
  std::vector<char> buf(kRequestBuffer);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), type, NFPROTO_INET, flags, socket_->NextSeq());
  if (filter) filter(nlh);
  Status st = socket_->Request(nlh, each);
  return st.Wrap(what);
}

Status KernelReader::DumpElements(Family family,
                                  const std::function<void(const DecodedElement&)>& each,
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
        ForEachElement(reply, family, each);
        return Status::Ok();
      },
      "dumping set " + set);
}

void KernelReader::ReadSet(const nftnl_set* s, KernelView* view) const {
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

Status KernelReader::ReadTable(const std::string& table, TableInfo* info) {
  *info = {};
  Status st = Query(
      NFT_MSG_GETTABLE, 0,
      [&](nlmsghdr* nlh) {
        TablePtr t(nftnl_table_alloc());
        nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
        nftnl_table_nlmsg_build_payload(nlh, t.get());
      },
      [&](const nlmsghdr* reply) {
        TablePtr t(nftnl_table_alloc());
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
      "reading table inet " + table);
  if (st.code() == ENOENT) return Status::Ok();  // absent
  return st;
}

namespace {

// Each reply is parsed with libnftnl into a fresh object; replies of other tables (chain dumps
// are filtered by family only) are skipped.
template <typename Alloc, typename Parse, typename TableOf, typename Use>
auto Parsed(const std::string& table, Alloc alloc, Parse parse, TableOf table_of, Use use) {
  return [&table, alloc, parse, table_of, use](const nlmsghdr* reply) {
    NftnlPtr<std::remove_pointer_t<decltype(alloc())>> o(alloc());
    if (parse(reply, o.get()) >= 0 && table == table_of(o.get())) use(o.get());
    return Status::Ok();
  };
}

}  // namespace

std::string KernelReader::Where() const { return " of table inet " + spec_.table; }

Status KernelReader::ReadSets(KernelView* view) {
  const std::string& table = spec_.table;
  return Query(
      NFT_MSG_GETSET, NLM_F_DUMP,
      [&](nlmsghdr* nlh) {
        SetPtr filter(nftnl_set_alloc());
        nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, table.c_str());
        nftnl_set_nlmsg_build_payload(nlh, filter.get());
      },
      Parsed(
          table, nftnl_set_alloc, nftnl_set_nlmsg_parse,
          [](nftnl_set* s) { return std::string(nftnl_set_get_str(s, NFTNL_SET_TABLE)); },
          [&](nftnl_set* s) { ReadSet(s, view); }),
      "reading the sets" + Where());
}

Status KernelReader::ReadCounters(KernelView* view) {
  const std::string& table = spec_.table;
  return Query(
      NFT_MSG_GETOBJ, NLM_F_DUMP,
      [&](nlmsghdr* nlh) {
        ObjPtr filter(nftnl_obj_alloc());
        nftnl_obj_set_str(filter.get(), NFTNL_OBJ_TABLE, table.c_str());
        nftnl_obj_set_u32(filter.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
        nftnl_obj_nlmsg_build_payload(nlh, filter.get());
      },
      Parsed(
          table, nftnl_obj_alloc, nftnl_obj_nlmsg_parse,
          [](nftnl_obj* o) { return std::string(nftnl_obj_get_str(o, NFTNL_OBJ_TABLE)); },
          [&](nftnl_obj* o) {
            if (nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) != NFT_OBJECT_COUNTER) return;
            view->counters[nftnl_obj_get_str(o, NFTNL_OBJ_NAME)] = {
                nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS),
                nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES)};
          }),
      "reading the counters" + Where());
}

Status KernelReader::ReadChains(KernelView* view) {
  const std::string& table = spec_.table;
  return Query(
      NFT_MSG_GETCHAIN, NLM_F_DUMP, nullptr,
      Parsed(
          table, nftnl_chain_alloc, nftnl_chain_nlmsg_parse,
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
      "reading the chains" + Where());
}

Status KernelReader::ReadRules(KernelView* view) {
  const std::string& table = spec_.table;
  return Query(
      NFT_MSG_GETRULE, NLM_F_DUMP,
      [&](nlmsghdr* nlh) {
        RulePtr filter(nftnl_rule_alloc());
        nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, table.c_str());
        nftnl_rule_nlmsg_build_payload(nlh, filter.get());
      },
      Parsed(
          table, nftnl_rule_alloc, nftnl_rule_nlmsg_parse,
          [](nftnl_rule* r) { return std::string(nftnl_rule_get_str(r, NFTNL_RULE_TABLE)); },
          [&](nftnl_rule* r) {
            view->chains[nftnl_rule_get_str(r, NFTNL_RULE_CHAIN)].rules.push_back(Fingerprint(r));
          }),
      "reading the rules" + Where());
}

Status KernelReader::Read(KernelView* view, bool dump_elements) {
  TableInfo info;
  Status st = ReadTable(spec_.table, &info);
  if (!st.ok() || !info.present) return st;
  view->table = true;
  view->table_owned = info.owned;
  view->table_flags = info.flags;
  view->table_handle = info.handle;
  // Nothing more is read of a table that is not ours: it is never changed, whatever it holds.
  if (!info.owned) return Status::Ok();
  IOCWALL_TRY(ReadSets(view));
  IOCWALL_TRY(ReadCounters(view));
  IOCWALL_TRY(ReadChains(view));
  IOCWALL_TRY(ReadRules(view));
  if (!dump_elements) return Status::Ok();
  for (Family f : {Family::kV4, Family::kV6}) {
    if (view->set(f).usable)
      IOCWALL_TRY(DumpPairs(f, SetName(spec_, f), spec_.timeouts, &view->set(f)));
    // What an interrupted update left in a hold set (normally nothing).
    if (view->hold(f).usable) {
      IOCWALL_TRY(DumpPairs(f, HoldSetName(SetName(spec_, f)), /*timed=*/false, &view->hold(f)));
    }
  }
  return Status::Ok();
}

Status KernelReader::DumpPairs(Family f, const std::string& set, bool timed, SetView* into) {
  std::vector<DumpedElement> elems;
  IOCWALL_TRY(DumpElements(
      f,
      [&](const DecodedElement& d) {
        DumpedElement de{d.element, kNeverExpires};
        if (timed && d.timeout_ms != 0 && !d.element.interval_end) {
          // The time left, made absolute and rounded to the second it was asked for.
          de.expires = (NowMs() + static_cast<int64_t>(d.expiration_ms) + 500) / 1000;
        }
        elems.push_back(de);
      },
      set));
  PairElements(&elems, f, timed, &into->dumped, &into->malformed);
  return Status::Ok();
}

Status KernelReader::Lookup(Family family, std::span<const u128> addresses,
                            std::vector<std::optional<u128>>* starts) {
  starts->assign(addresses.size(), std::nullopt);
  const std::string& set = family == Family::kV4 ? spec_.set_v4 : spec_.set_v6;
  for (size_t i = 0; i < addresses.size(); ++i) {
    // On an interval set the kernel answers a get of any address inside a range with the
    // range's start element, and ENOENT in a gap (checked against nft get element).
    Status st = Query(
        NFT_MSG_GETSETELEM, 0,
        [&](nlmsghdr* nlh) {
          mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, spec_.table.c_str());
          mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
          nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
          PutKeyElement(nlh, family, addresses[i]);
          mnl_attr_nest_end(nlh, list);
        },
        [&](const nlmsghdr* reply) {
          ForEachElement(reply, family, [&](const DecodedElement& d) {
            if (!d.element.interval_end) (*starts)[i] = d.element.key;
          });
          return Status::Ok();
        },
        "looking up " + FormatAddress(family, addresses[i]) + " in set " + set);
    if (st.code() == ENOENT) continue;
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace iocwall::nl
