// Socket: the one netfilter netlink socket a backend talks through. Owns the mnl_socket, sizes
// its buffers for the batch at hand, and runs request/reply exchanges (gets and dumps).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

struct mnl_socket;
struct nlmsghdr;

namespace iocwall::nl {

// "No such file or directory (kernel ENOENT)": what an operator reads for a kernel errno.
std::string KernelErrorText(int err);

class Socket {
 public:
  // Opens and binds a NETLINK_NETFILTER socket in the caller's network namespace, with extended
  // acks (the kernel points at the bad attribute) and capped acks (an error does not echo the
  // whole 64 KB message back).
  static Result<Socket> Open();

  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  uint32_t portid() const { return portid_; }
  uint32_t NextSeq() { return seq_++; }

  // Grows the kernel-side buffers so that one sendmsg of `send_bytes` is accepted (the kernel
  // refuses a batch larger than the send buffer with EMSGSIZE) and `recv_bytes` of acks can
  // queue. Uses SO_*BUFFORCE (CAP_NET_ADMIN), which is not capped by wmem_max/rmem_max.
  Status ReserveBuffers(size_t send_bytes, size_t recv_bytes);

  // One sendmsg of the whole batch: the kernel processes it before the call returns.
  Status SendIov(std::span<const iovec> iov);

  // Receives one datagram into `buf`, waiting up to timeout_ms (0: only what is queued).
  // Returns 0 bytes when nothing arrived in time.
  Result<size_t> Receive(std::span<char> buf, int timeout_ms);

  // Sends one request (a get or a dump) and hands each reply message to on_message until the
  // exchange is complete. A kernel error is returned as a Status whose code() is its errno
  // (ENOENT for a get of something absent, EINTR for an interrupted dump).
  Status Request(nlmsghdr* request, const std::function<Status(const nlmsghdr*)>& on_message);

 private:
  explicit Socket(mnl_socket* nl);
  void Close();

  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  size_t sndbuf_ = 0;
  size_t rcvbuf_ = 0;
  std::vector<char> rx_;  // reply buffer: one datagram (dumps use up to 32 KB)
};

}  // namespace iocwall::nl
