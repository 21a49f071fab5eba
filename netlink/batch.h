// Batch: one nftables transaction (BEGIN ... END) built in memory and sent with one sendmsg.
// Element lists of any length are split across as many NEWSETELEM/DELSETELEM messages as the
// 64 KB attribute limit needs, all inside the same batch, so the kernel commits all of it or
// none. Every message asks for an ack; Commit reads all of them and maps the first kernel error
// back to the operation and, for elements, the element that caused it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/interval_set.h"
#include "core/prefix.h"
#include "core/status.h"
#include "netlink/socket.h"

struct nlmsghdr;

namespace iocwall::nl {

// One element as the kernel stores it in an interval set: a start, or the end (last + 1) of
// the interval that precedes it.
struct RawElement {
  u128 key = 0;
  bool interval_end = false;
  bool operator==(const RawElement&) const = default;
};

// One element of an element-list message, with where it sits in the message and, when the set
// keeps per-element counters, its counter; in a set with timeouts, its timeout and the time
// left before it expires (a dump leaves out elements that have already expired).
struct DecodedElement {
  uint32_t offset = 0;  // from the start of the message
  RawElement element;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t timeout_ms = 0;  // 0: no timeout (permanent)
  uint64_t expiration_ms = 0;
  bool has_expiration = false;
};

// Walks the elements of a NEWSETELEM/DELSETELEM message or of a GETSETELEM dump reply.
void ForEachElement(const nlmsghdr* nlh, Family family,
                    const std::function<void(const DecodedElement&)>& f);

// Wire size of a set element nest holding one key (for message splitting and tests), with a
// timeout attribute when `timeout`.
size_t ElementNestSize(Family family, bool interval_end, bool timeout = false);

// Puts one element nest holding `key` into `nlh` (inside an NFTA_SET_ELEM_LIST_ELEMENTS nest
// the caller opened): the payload of a non-dump GETSETELEM.
void PutKeyElement(nlmsghdr* nlh, Family family, u128 key);

enum class ElementVerb : uint8_t { kAdd, kDelete };

struct CommitResult {
  size_t acks = 0;  // positive acks read
};

class Batch {
 public:
  // `genid` != 0 guards the batch: the kernel refuses it with ERESTART if the ruleset's
  // generation is no longer `genid` when the batch arrives. `socket` may be null for a batch
  // that is only built and read back (tests of the encoding, without root): it cannot commit.
  Batch(Socket* socket, uint32_t genid);
  // Moves the guard of a batch built with a non-zero genid to `genid` (after a transaction of
  // our own committed before it). Returns false when the batch has no guard.
  bool RebaseGenid(uint32_t genid);
  Batch(Batch&&) = default;
  Batch& operator=(Batch&&) = default;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Adds one message of nf_tables type `type` (NFT_MSG_*); `build` fills its payload (with
  // libnftnl's *_nlmsg_build_payload), which must stay under kMaxObjectPayload. `what` names the
  // operation in an error ("create chain input in table inet x").
  void AddMessage(uint16_t type, uint16_t family, uint16_t flags, std::string what,
                  const std::function<void(nlmsghdr*)>& build);
  static constexpr size_t kMaxObjectPayload = 16 * 1024;

  // Adds or deletes interval ranges: a start element, and an end element (last + 1, flagged
  // INTERVAL_END) unless `last` is the family's top address. A range's two elements always
  // share a message. Returns the number of messages used.
  // `timeout_ms`, when not empty, is parallel to `ranges` (additions to a set with timeouts):
  // the start element of range i gets NFTA_SET_ELEM_TIMEOUT timeout_ms[i] (0 sends none:
  // permanent). Interval ends never carry one: the kernel refuses it (EINVAL).
  size_t AddRanges(ElementVerb verb, uint16_t nfproto, const std::string& table,
                   const std::string& set, Family family, std::span<const Range> ranges,
                   std::span<const uint64_t> timeout_ms = {});
  // Adds or deletes single kernel elements (to remove malformed leftovers, such as an orphan
  // interval end).
  size_t AddRawElements(ElementVerb verb, uint16_t nfproto, const std::string& table,
                        const std::string& set, Family family,
                        std::span<const RawElement> elements);

  size_t messages() const { return ops_.size(); }  // between BEGIN and END
  size_t bytes() const;
  size_t element_ops() const { return element_ops_; }  // kernel elements sent
  bool empty() const { return ops_.empty(); }
  // Every message built so far, BEGIN (and END once committed) included, in order.
  void ForEachMessage(const std::function<void(const nlmsghdr*)>& each) const;

  // Closes the batch, sizes the socket buffers for it, sends it in one sendmsg and reads every
  // ack. Any kernel error fails the whole batch (the kernel then rolls all of it back); the
  // Status's code() is the errno of the first one (ERESTART: the generation moved).
  Status Commit(CommitResult* result = nullptr);

 private:
  struct Op {
    uint32_t seq = 0;
    std::string what;
    bool elements = false;
    ElementVerb verb = ElementVerb::kAdd;
    Family family = Family::kV4;
    std::string set;
    size_t chunk = 0;
    size_t offset = 0;
  };
  struct Chunk {
    std::unique_ptr<char[]> data;
    size_t used = 0;
  };

  char* Reserve(size_t bytes);  // room for one whole message in the current chunk
  uint32_t NextSeq();
  // Puts BEGIN (guarded by `genid` when not 0) or END; returns its sequence number.
  uint32_t PutBatchMarker(uint16_t type, uint32_t genid);
  // Reads every ack of a sent batch; the first kernel error fails it.
  Status ReadAcks(CommitResult* result);
  nlmsghdr* StartElementMessage(ElementVerb verb, uint16_t nfproto, const std::string& table,
                                const std::string& set, Family family, size_t* nest_offset);
  template <typename Unit>
  size_t AddElementUnits(ElementVerb verb, uint16_t nfproto, const std::string& table,
                         const std::string& set, Family family, size_t count, const Unit& unit_at);
  std::string DescribeError(const Op& op, int err, uint32_t attr_offset) const;

  Socket* socket_;
  std::vector<Chunk> chunks_;
  std::vector<Op> ops_;
  // Sequence number -> index in ops_. Sequence numbers come from the socket and may interleave
  // with another batch built at the same time, so they are not assumed contiguous.
  std::unordered_map<uint32_t, size_t> by_seq_;
  uint32_t begin_seq_ = 0;
  uint32_t own_seq_ = 0;  // sequence numbers of a batch without a socket
  size_t element_ops_ = 0;
  bool closed_ = false;
};

}  // namespace iocwall::nl
