#include "netlink/batch.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cstring>

namespace iocwall::nl {
namespace {

// Messages are packed into chunks so that a 40 MB batch never needs one 40 MB reallocation
// (which would double the peak); sendmsg gathers the chunks with an iovec.
constexpr size_t kChunkBytes = 4 << 20;
// An attribute's length is 16 bits: an element-list nest can hold at most this many bytes.
constexpr size_t kMaxNestBytes = 65535;
// Room for the headers and names that precede the element nest in one message.
constexpr size_t kElementMessageHeadroom = 1024;
// Per-ack kernel memory (skb truesize of a small ack, rounded up).
constexpr size_t kAckBytes = 1024;
// How long to wait for acks that are not yet queued (the kernel normally answers inside
// sendmsg, so this only bounds a misbehaving kernel).
constexpr int kAckTimeoutMs = 10'000;

size_t KeyBytes(Family family) { return family == Family::kV4 ? 4 : 16; }

void EncodeKey(Family family, u128 key, uint8_t* out) {
  size_t n = KeyBytes(family);
  for (size_t i = 0; i < n; ++i) out[n - 1 - i] = static_cast<uint8_t>(key >> (8 * i));
}

u128 DecodeKey(const uint8_t* in, size_t n) {
  u128 key = 0;
  for (size_t i = 0; i < n; ++i) key = (key << 8) | in[i];
  return key;
}

void PutElement(nlmsghdr* nlh, Family family, const RawElement& e, uint64_t timeout_ms) {
  nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
  nlattr* key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
  uint8_t bytes[16];
  EncodeKey(family, e.key, bytes);
  mnl_attr_put(nlh, NFTA_DATA_VALUE, KeyBytes(family), bytes);
  mnl_attr_nest_end(nlh, key);
  if (e.interval_end) mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(NFT_SET_ELEM_INTERVAL_END));
  if (timeout_ms != 0) mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64(timeout_ms));
  mnl_attr_nest_end(nlh, elem);
}

// Iterates the attributes of a nest (libmnl's mnl_attr_for_each_nested is not valid C++).
template <typename F>
void ForEachNested(const nlattr* nest, F&& f) {
  const auto* attr = static_cast<const nlattr*>(mnl_attr_get_payload(nest));
  int len = static_cast<int>(mnl_attr_get_payload_len(nest));
  while (mnl_attr_ok(attr, len)) {
    f(attr);
    len -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(attr) +
                                           MNL_ALIGN(attr->nla_len));
  }
}

void ReadCounter(const nlattr* expr, DecodedElement* d) {
  bool counter = false;
  const nlattr* data = nullptr;
  ForEachNested(expr, [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == NFTA_EXPR_NAME) {
      counter = std::strncmp(static_cast<const char*>(mnl_attr_get_payload(a)), "counter",
                             mnl_attr_get_payload_len(a)) == 0;
    } else if (mnl_attr_get_type(a) == NFTA_EXPR_DATA) {
      data = a;
    }
  });
  if (!counter || !data) return;
  ForEachNested(data, [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == NFTA_COUNTER_PACKETS) d->packets = be64toh(mnl_attr_get_u64(a));
    if (mnl_attr_get_type(a) == NFTA_COUNTER_BYTES) d->bytes = be64toh(mnl_attr_get_u64(a));
  });
}

}  // namespace

void ForEachElement(const nlmsghdr* nlh, Family family,
                    const std::function<void(const DecodedElement&)>& f) {
  const char* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  const auto* attr =
      static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
  while (mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)))) {
    if (mnl_attr_get_type(attr) == NFTA_SET_ELEM_LIST_ELEMENTS) {
      ForEachNested(attr, [&](const nlattr* elem) {
        DecodedElement d;
        d.offset = static_cast<uint32_t>(reinterpret_cast<const char*>(elem) -
                                         reinterpret_cast<const char*>(nlh));
        ForEachNested(elem, [&](const nlattr* a) {
          switch (mnl_attr_get_type(a)) {
            case NFTA_SET_ELEM_FLAGS:
              d.element.interval_end = ntohl(mnl_attr_get_u32(a)) & NFT_SET_ELEM_INTERVAL_END;
              break;
            case NFTA_SET_ELEM_KEY:
              ForEachNested(a, [&](const nlattr* v) {
                if (mnl_attr_get_type(v) == NFTA_DATA_VALUE &&
                    mnl_attr_get_payload_len(v) == KeyBytes(family)) {
                  d.element.key = DecodeKey(static_cast<const uint8_t*>(mnl_attr_get_payload(v)),
                                            KeyBytes(family));
                }
              });
              break;
            case NFTA_SET_ELEM_EXPR:
              ReadCounter(a, &d);
              break;
            case NFTA_SET_ELEM_TIMEOUT:
              d.timeout_ms = be64toh(mnl_attr_get_u64(a));
              break;
            case NFTA_SET_ELEM_EXPIRATION:
              d.expiration_ms = be64toh(mnl_attr_get_u64(a));
              d.has_expiration = true;
              break;
            case NFTA_SET_ELEM_EXPRESSIONS:
              ForEachNested(a, [&](const nlattr* e) { ReadCounter(e, &d); });
              break;
          }
        });
        f(d);
      });
    }
    attr = mnl_attr_next(attr);
  }
}

void PutKeyElement(nlmsghdr* nlh, Family family, u128 key) {
  PutElement(nlh, family, RawElement{key, false}, 0);
}

size_t ElementNestSize(Family family, bool interval_end, bool timeout) {
  // LIST_ELEM nest + KEY nest + DATA_VALUE attribute (+ FLAGS u32 on an interval end, + TIMEOUT
  // u64).
  return 4 + 4 + 4 + MNL_ALIGN(KeyBytes(family)) + (interval_end ? 8 : 0) + (timeout ? 12 : 0);
}

Batch::Batch(Socket* socket, uint32_t genid) : socket_(socket) {
  begin_seq_ = PutBatchMarker(NFNL_MSG_BATCH_BEGIN, genid);
}

uint32_t Batch::PutBatchMarker(uint16_t type, uint32_t genid) {
  char* buf = Reserve(MNL_ALIGN(sizeof(nlmsghdr)) + 64);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = NextSeq();
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
  if (genid != 0) mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(genid));
  chunks_.back().used += nlh->nlmsg_len;
  return nlh->nlmsg_seq;
}

namespace {

// Where in the refused message the kernel's extended ack points (0: it does not say).
uint32_t ErrorOffset(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return 0;
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  // The attributes follow the error header, and the whole refused message when the kernel did
  // not cap the ack (NETLINK_CAP_ACK is best effort).
  size_t skip = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) skip += err->msg.nlmsg_len - sizeof(nlmsghdr);
  const auto* attr = reinterpret_cast<const nlattr*>(
      static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + MNL_ALIGN(skip));
  int alen = static_cast<int>(reinterpret_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                              reinterpret_cast<const char*>(attr));
  uint32_t offset = 0;
  for (; mnl_attr_ok(attr, alen);) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_OFFS) offset = mnl_attr_get_u32(attr);
    alen -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = mnl_attr_next(attr);
  }
  return offset;
}

}  // namespace

uint32_t Batch::NextSeq() { return socket_ ? socket_->NextSeq() : ++own_seq_; }

void Batch::ForEachMessage(const std::function<void(const nlmsghdr*)>& each) const {
  for (const Chunk& c : chunks_) {
    int len = static_cast<int>(c.used);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(c.data.get()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      each(nlh);
    }
  }
}

bool Batch::RebaseGenid(uint32_t genid) {
  if (chunks_.empty() || genid == 0) return false;
  auto* nlh = reinterpret_cast<nlmsghdr*>(chunks_.front().data.get());
  auto* attr = static_cast<nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
  const int room = static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                    reinterpret_cast<const char*>(attr));
  if (!mnl_attr_ok(attr, room) || mnl_attr_get_type(attr) != NFNL_BATCH_GENID) {
    return false;
  }
  const uint32_t be = htonl(genid);
  std::memcpy(mnl_attr_get_payload(attr), &be, sizeof(be));
  return true;
}

char* Batch::Reserve(size_t bytes) {
  if (chunks_.empty() || kChunkBytes - chunks_.back().used < bytes) {
    Chunk c;
    c.data.reset(new char[std::max(kChunkBytes, bytes)]);
    chunks_.push_back(std::move(c));
  }
  Chunk& c = chunks_.back();
  // Zeroed so that padding bytes sent to the kernel are deterministic.
  std::memset(c.data.get() + c.used, 0, bytes);
  return c.data.get() + c.used;
}

size_t Batch::bytes() const {
  size_t n = 0;
  for (const Chunk& c : chunks_) n += c.used;
  return n;
}

void Batch::AddMessage(uint16_t type, uint16_t family, uint16_t flags, std::string what,
                       const std::function<void(nlmsghdr*)>& build) {
  char* buf = Reserve(kMaxObjectPayload);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, type, family, flags | NLM_F_ACK, NextSeq());
  build(nlh);
  Op op;
  op.seq = nlh->nlmsg_seq;
  op.what = std::move(what);
  op.chunk = chunks_.size() - 1;
  op.offset = chunks_.back().used;
  by_seq_[op.seq] = ops_.size();
  ops_.push_back(std::move(op));
  chunks_.back().used += MNL_ALIGN(nlh->nlmsg_len);
}

nlmsghdr* Batch::StartElementMessage(ElementVerb verb, uint16_t nfproto, const std::string& table,
                                     const std::string& set, Family family, size_t* nest_offset) {
  char* buf = Reserve(kMaxNestBytes + kElementMessageHeadroom);
  uint16_t type = verb == ElementVerb::kAdd ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
  uint16_t flags = NLM_F_ACK | (verb == ElementVerb::kAdd ? NLM_F_CREATE : 0);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, type, nfproto, flags, NextSeq());
  mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table.c_str());
  mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
  *nest_offset = nlh->nlmsg_len;
  Op op;
  op.seq = nlh->nlmsg_seq;
  op.what = set;
  op.elements = true;
  op.verb = verb;
  op.family = family;
  op.set = set;
  op.chunk = chunks_.size() - 1;
  op.offset = chunks_.back().used;
  by_seq_[op.seq] = ops_.size();
  ops_.push_back(std::move(op));
  return nlh;
}

template <typename Unit>
size_t Batch::AddElementUnits(ElementVerb verb, uint16_t nfproto, const std::string& table,
                              const std::string& set, Family family, size_t count,
                              const Unit& unit_at) {
  size_t messages = 0;
  size_t i = 0;
  while (i < count) {
    size_t nest_offset = 0;
    nlmsghdr* nlh = StartElementMessage(verb, nfproto, table, set, family, &nest_offset);
    ++messages;
    nlattr* nest = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
    size_t nest_bytes = 4;
    for (; i < count; ++i) {
      RawElement unit[2];
      uint64_t timeout_ms = 0;
      size_t n = unit_at(i, unit, &timeout_ms);
      size_t need = 0;
      // Only a start element may carry a timeout (the kernel refuses one on an interval end
      // with EINVAL); the end goes with its start when the kernel collects it.
      for (size_t k = 0; k < n; ++k) {
        need +=
            ElementNestSize(family, unit[k].interval_end, timeout_ms != 0 && !unit[k].interval_end);
      }
      if (nest_bytes + need > kMaxNestBytes) break;  // the unit starts the next message
      for (size_t k = 0; k < n; ++k) {
        PutElement(nlh, family, unit[k], unit[k].interval_end ? 0 : timeout_ms);
      }
      nest_bytes += need;
      element_ops_ += n;
    }
    mnl_attr_nest_end(nlh, nest);
    chunks_.back().used += MNL_ALIGN(nlh->nlmsg_len);
  }
  return messages;
}

size_t Batch::AddRanges(ElementVerb verb, uint16_t nfproto, const std::string& table,
                        const std::string& set, Family family, std::span<const Range> ranges,
                        std::span<const uint64_t> timeout_ms) {
  const u128 top = MaxAddress(family);
  return AddElementUnits(verb, nfproto, table, set, family, ranges.size(),
                         [&](size_t i, RawElement* out, uint64_t* timeout) -> size_t {
                           if (i < timeout_ms.size()) *timeout = timeout_ms[i];
                           out[0] = {ranges[i].first, false};
                           if (ranges[i].last == top) return 1;  // open-ended interval
                           out[1] = {ranges[i].last + 1, true};
                           return 2;
                         });
}

size_t Batch::AddRawElements(ElementVerb verb, uint16_t nfproto, const std::string& table,
                             const std::string& set, Family family,
                             std::span<const RawElement> elements) {
  return AddElementUnits(verb, nfproto, table, set, family, elements.size(),
                         [&](size_t i, RawElement* out, uint64_t*) -> size_t {
                           out[0] = elements[i];
                           return 1;
                         });
}

std::string Batch::DescribeError(const Op& op, int err, uint32_t attr_offset) const {
  std::string reason = KernelErrorText(err);
  if (!op.elements) return op.what + ": " + reason;
  const char* verb = op.verb == ElementVerb::kAdd ? "add" : "delete";
  const char* prep = op.verb == ElementVerb::kAdd ? " to" : " from";
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(chunks_[op.chunk].data.get() + op.offset);
  std::vector<DecodedElement> elems;
  ForEachElement(nlh, op.family, [&](const DecodedElement& d) { elems.push_back(d); });
  std::string element = "elements";
  if (attr_offset != 0 && !elems.empty()) {
    // The kernel points at the element nest it stopped at (NETLINK_EXT_ACK).
    size_t at = 0;
    while (at + 1 < elems.size() && elems[at + 1].offset <= attr_offset) ++at;
    Range r;
    const RawElement& e = elems[at].element;
    if (e.interval_end && at > 0 && !elems[at - 1].element.interval_end) {
      r = {elems[at - 1].element.key, e.key - 1};
    } else if (!e.interval_end) {
      bool has_end = at + 1 < elems.size() && elems[at + 1].element.interval_end;
      r = {e.key, has_end ? elems[at + 1].element.key - 1 : MaxAddress(op.family)};
    }
    element = "element ";
    if (e.interval_end && !(at > 0 && !elems[at - 1].element.interval_end)) {
      element += "interval end " + FormatAddress(op.family, e.key);
    } else {
      element += FormatRange(op.family, r);
    }
  } else if (elems.size() == 1) {
    element = "element " + FormatAddress(op.family, elems.front().element.key);
  } else if (!elems.empty()) {
    element = "one of " + std::to_string(elems.size()) + " elements (" +
              FormatAddress(op.family, elems.front().element.key) + " .. " +
              FormatAddress(op.family, elems.back().element.key) + ")";
  }
  return std::string(verb) + " " + element + prep + " set " + op.set + ": " + reason;
}

Status Batch::Commit(CommitResult* result) {
  if (!socket_) return Status::Error("netlink: a batch built without a socket cannot commit");
  CommitResult ignored;
  if (!result) result = &ignored;
  *result = {};
  if (!closed_) {
    PutBatchMarker(NFNL_MSG_BATCH_END, 0);
    closed_ = true;
  }
  const size_t total = bytes();
  Status st = socket_->ReserveBuffers(total + 64 * 1024, ops_.size() * kAckBytes + 256 * 1024);
  if (!st.ok()) return st;
  std::vector<iovec> iov;
  for (const Chunk& c : chunks_) iov.push_back({c.data.get(), c.used});
  st = socket_->SendIov(iov);
  if (!st.ok()) return st;

  return ReadAcks(result);
}

Status Batch::ReadAcks(CommitResult* result) {
  // Sticky first error; every ack is still read so that none is left for the next request.
  std::string first_error;
  int first_errno = 0;
  size_t errors = 0;
  size_t answered = 0;
  bool batch_failed = false;  // an error against BEGIN: no per-message acks will follow
  std::vector<char> buf(64 * 1024);
  while (true) {
    bool complete = batch_failed || answered >= ops_.size();
    Result<size_t> got = socket_->Receive(buf, complete ? 0 : kAckTimeoutMs);
    if (!got.ok()) {
      // Most likely ENOBUFS (acks dropped): the outcome is unknown.
      return Status::Errno(got.status().code(), "reading the kernel's acks: " + got.message() +
                                                    " (the outcome of the transaction is unknown)");
    }
    if (*got == 0) break;
    int len = static_cast<int>(*got);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != socket_->portid()) continue;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      const uint32_t seq = nlh->nlmsg_seq;
      auto op = by_seq_.find(seq);
      if (seq == begin_seq_) {
        batch_failed = true;
      } else if (op != by_seq_.end()) {
        ++answered;
      } else {
        continue;  // a stale reply to an earlier exchange
      }
      if (err->error == 0) {
        ++result->acks;
        continue;
      }
      ++errors;
      if (!first_error.empty()) continue;
      first_errno = -err->error;
      const uint32_t offset = ErrorOffset(nlh);
      if (seq == begin_seq_) {
        first_error = first_errno == ERESTART
                          ? "the ruleset changed since it was read (generation id moved); "
                            "nothing was applied: " +
                                KernelErrorText(first_errno)
                          : "the kernel refused the transaction: " + KernelErrorText(first_errno);
      } else {
        first_error = DescribeError(ops_[op->second], first_errno, offset);
      }
    }
  }
  if (!first_error.empty()) {
    if (errors > 1) first_error += " (and " + std::to_string(errors - 1) + " more errors)";
    return Status::Errno(first_errno, first_error + "; the whole transaction was rolled back");
  }
  if (!batch_failed && answered < ops_.size()) {
    return Status::Error("the kernel acknowledged " + std::to_string(answered) + " of " +
                         std::to_string(ops_.size()) +
                         " messages (the outcome of the transaction is unknown)");
  }
  return Status::Ok();
}

}  // namespace iocwall::nl
