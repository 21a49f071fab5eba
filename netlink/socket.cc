#include "netlink/socket.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <utility>

namespace iocwall::nl {
namespace {

// Larger than any datagram the kernel sends us: dump skbs are capped at 32 KB.
constexpr size_t kReceiveBuffer = 64 * 1024;
// A get or dump that stays silent this long means the kernel is not answering.
constexpr int kReplyTimeoutMs = 30'000;

Status ErrnoStatus(const char* what) {
  int err = errno;  // the string operations below may clobber errno
  return Status::Errno(err, std::string(what) + ": " + KernelErrorText(err));
}

Status SetForced(int fd, int force_opt, int plain_opt, size_t bytes, const char* what) {
  // The kernel doubles the value for bookkeeping overhead; ask for what we need.
  int val = static_cast<int>(std::min<size_t>(bytes, 1u << 30));
  if (setsockopt(fd, SOL_SOCKET, force_opt, &val, sizeof(val)) == 0) return Status::Ok();
  int force_errno = errno;
  if (setsockopt(fd, SOL_SOCKET, plain_opt, &val, sizeof(val)) == 0) {
    // Without CAP_NET_ADMIN the plain option is capped by net.core.[wr]mem_max: check.
    int got = 0;
    socklen_t len = sizeof(got);
    if (getsockopt(fd, SOL_SOCKET, plain_opt, &got, &len) == 0 &&
        static_cast<size_t>(got) >= bytes) {
      return Status::Ok();
    }
  }
  return Status::Errno(force_errno, std::string("cannot size the netlink ") + what + " buffer to " +
                                        std::to_string(bytes) + " bytes: " +
                                        KernelErrorText(force_errno) + " (needs CAP_NET_ADMIN)");
}

}  // namespace

std::string KernelErrorText(int err) {
  if (err < 0) err = -err;
  const char* name = strerrorname_np(err);
  std::string text = strerror(err);
  text += " (kernel ";
  text += name ? name : ("errno " + std::to_string(err)).c_str();
  text += ")";
  return text;
}

Socket::Socket(mnl_socket* nl) : nl_(nl), rx_(kReceiveBuffer) {
  portid_ = mnl_socket_get_portid(nl_);
  // Distinct sequence numbers across restarts make stale replies easy to tell apart.
  seq_ = static_cast<uint32_t>(time(nullptr)) << 8;
}

Socket::Socket(Socket&& other) noexcept
    : nl_(std::exchange(other.nl_, nullptr)),
      portid_(other.portid_),
      seq_(other.seq_),
      sndbuf_(other.sndbuf_),
      rcvbuf_(other.rcvbuf_),
      rx_(std::move(other.rx_)) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    Close();
    nl_ = std::exchange(other.nl_, nullptr);
    portid_ = other.portid_;
    seq_ = other.seq_;
    sndbuf_ = other.sndbuf_;
    rcvbuf_ = other.rcvbuf_;
    rx_ = std::move(other.rx_);
  }
  return *this;
}

Socket::~Socket() { Close(); }

void Socket::Close() {
  if (nl_) mnl_socket_close(nl_);
  nl_ = nullptr;
}

Result<Socket> Socket::Open() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!nl) return ErrnoStatus("netlink: cannot open a netfilter socket");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    Status st = ErrnoStatus("netlink: cannot bind the netfilter socket");
    mnl_socket_close(nl);
    return st;
  }
  Socket sock(nl);
  int on = 1;
  // Both are best effort: without them errors still arrive, only less precisely located.
  mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &on, sizeof(on));
  mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &on, sizeof(on));
  return sock;
}

Status Socket::ReserveBuffers(size_t send_bytes, size_t recv_bytes) {
  int fd = mnl_socket_get_fd(nl_);
  if (send_bytes > sndbuf_) {
    Status st = SetForced(fd, SO_SNDBUFFORCE, SO_SNDBUF, send_bytes, "send");
    if (!st.ok()) return st;
    sndbuf_ = send_bytes;
  }
  if (recv_bytes > rcvbuf_) {
    Status st = SetForced(fd, SO_RCVBUFFORCE, SO_RCVBUF, recv_bytes, "receive");
    if (!st.ok()) return st;
    rcvbuf_ = recv_bytes;
  }
  return Status::Ok();
}

Status Socket::SendIov(std::span<const iovec> iov) {
  sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  msghdr msg = {};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof(kernel);
  msg.msg_iov = const_cast<iovec*>(iov.data());
  msg.msg_iovlen = iov.size();
  ssize_t n;
  do {
    n = sendmsg(mnl_socket_get_fd(nl_), &msg, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("netlink: sending the batch failed");
  return Status::Ok();
}

Result<size_t> Socket::Receive(std::span<char> buf, int timeout_ms) {
  pollfd pfd = {mnl_socket_get_fd(nl_), POLLIN, 0};
  for (;;) {
    int r = poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("netlink: poll");
    if (r == 0) return size_t{0};
    ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // ENOBUFS: the kernel dropped replies because the receive buffer was full.
      return ErrnoStatus("netlink: receive");
    }
    return static_cast<size_t>(n);
  }
}

Status Socket::Request(nlmsghdr* request,
                       const std::function<Status(const nlmsghdr*)>& on_message) {
  const bool dump = request->nlmsg_flags & NLM_F_DUMP;
  if (!dump) request->nlmsg_flags |= NLM_F_ACK;  // a get ends with its ack
  const uint32_t seq = request->nlmsg_seq;
  if (mnl_socket_sendto(nl_, request, request->nlmsg_len) < 0) {
    return ErrnoStatus("netlink: sending a request failed");
  }
  Status first = Status::Ok();
  auto fail = [&](Status st) {
    if (first.ok()) first = std::move(st);
  };
  for (;;) {
    Result<size_t> got = Receive(rx_, kReplyTimeoutMs);
    if (!got.ok()) return got.status();
    if (*got == 0) return Status::Error("netlink: the kernel did not answer within 30 s");
    int len = static_cast<int>(*got);
    bool done = false;
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(rx_.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != portid_) continue;  // stale reply
      if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) {
        fail(Status::Errno(EINTR, "netlink: the ruleset changed during a dump"));
      }
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error != 0) fail(Status::Errno(-err->error, KernelErrorText(err->error)));
        done = true;
      } else if (nlh->nlmsg_type == NLMSG_DONE) {
        const int* code = static_cast<const int*>(mnl_nlmsg_get_payload(nlh));
        if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(int)) && *code < 0) {
          fail(Status::Errno(-*code, KernelErrorText(*code)));
        }
        done = true;
      } else if (first.ok()) {
        Status st = on_message(nlh);
        if (!st.ok()) fail(st);
      }
    }
    if (done) break;
  }
  return first;
}

}  // namespace iocwall::nl
