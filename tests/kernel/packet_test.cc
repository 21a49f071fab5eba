// Proof with real packets: two network namespaces joined by a veth pair. In namespace A three
// senders stream UDP to namespace B, which runs the iocwall table:
//   X 10.1.0.5  blocked throughout, while large updates re-shape the interval that covers it
//               (/24 <-> /25 + /26) amid a 20% churn elsewhere: not one packet may arrive;
//   Y 10.2.0.5  inside a blocked /16 but in an allowlisted /24: its traffic must arrive;
//   Z 10.3.0.5  blocked, then removed from the list: it must pass only after the commit.
// SplitTransactionLeaks is the test of the test: with removals and additions committed as two
// transactions (NftBackendOptions::split_transaction_for_test) the same probe sees X leak.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "netlink/nft_backend.h"
#include "tests/kernel/kernel_test_util.h"

namespace iocwall {
namespace {

using ktest::R;
using ktest::Run;

constexpr int kSenders = 3;  // X, Y, Z
const char* const kSenderAddr[kSenders] = {"10.1.0.5", "10.2.0.5", "10.3.0.5"};
constexpr const char* kReceiverAddr = "10.9.0.1";
constexpr uint16_t kPort = 9999;

struct Probe {
  uint32_t id;
  uint32_t seq;
};

class PacketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "kernel test skipped: needs root";
    std::string base = "iocwall-t-" + std::to_string(getpid());
    ns_a_ = base + "-a";
    ns_b_ = base + "-b";
    home_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(home_, 0);
    for (const std::string& cmd :
         {"ip netns add " + ns_a_, "ip netns add " + ns_b_,
          "ip -n " + ns_a_ + " link add va type veth peer name vb netns " + ns_b_,
          "ip -n " + ns_a_ + " addr add 10.1.0.5/8 dev va",
          "ip -n " + ns_a_ + " addr add 10.2.0.5/8 dev va",
          "ip -n " + ns_a_ + " addr add 10.3.0.5/8 dev va",
          "ip -n " + ns_b_ + " addr add 10.9.0.1/8 dev vb", "ip -n " + ns_a_ + " link set va up",
          "ip -n " + ns_b_ + " link set vb up", "ip -n " + ns_a_ + " link set lo up",
          "ip -n " + ns_b_ + " link set lo up"}) {
      ktest::CommandResult r = ktest::Run(cmd);
      ASSERT_EQ(r.status, 0) << cmd << ": " << r.out;
    }
    created_ = true;
    // Senders live in A, the receiver and the backend's netlink socket in B.
    ASSERT_TRUE(Enter(ns_a_));
    for (int i = 0; i < kSenders; ++i) {
      tx_[i] = Udp(kSenderAddr[i], 0);
      ASSERT_GE(tx_[i], 0);
      sockaddr_in to = Addr(kReceiverAddr, kPort);
      ASSERT_EQ(connect(tx_[i], reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    }
    ASSERT_TRUE(Enter(ns_b_));
    rx_ = Udp(kReceiverAddr, kPort);
    ASSERT_GE(rx_, 0);
    int big = 16 << 20;
    setsockopt(rx_, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    timeval tv = {0, 100'000};
    setsockopt(rx_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  void TearDown() override {
    Stop();
    for (int& fd : tx_) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
    if (rx_ >= 0) close(rx_);
    rx_ = -1;
    if (home_ >= 0) {
      setns(home_, CLONE_NEWNET);
      close(home_);
      home_ = -1;
    }
    if (created_) {
      ktest::Run("ip netns del " + ns_a_);
      ktest::Run("ip netns del " + ns_b_);
    }
  }

  static bool Enter(const std::string& ns) {
    int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = setns(fd, CLONE_NEWNET) == 0;
    close(fd);
    return ok;
  }
  static sockaddr_in Addr(const char* ip, uint16_t port) {
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
  }
  static int Udp(const char* ip, uint16_t port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = Addr(ip, port);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
    return fd;
  }

  void Start() {
    running_ = true;
    receiver_ = std::thread([this] {
      Probe p;
      while (running_) {
        ssize_t n = recv(rx_, &p, sizeof(p), 0);
        if (n != sizeof(p) || p.id >= kSenders) continue;
        std::lock_guard<std::mutex> lock(mu_);
        ++received_[p.id];
        if (p.id == 2 && p.seq < z_first_received_) z_first_received_ = p.seq;
      }
    });
    sender_ = std::thread([this] {
      while (running_) {
        for (uint32_t i = 0; i < kSenders; ++i) {
          Probe p = {i, sent_[i].load()};
          if (send(tx_[i], &p, sizeof(p), 0) == sizeof(p)) ++sent_[i];
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    });
  }
  void Stop() {
    running_ = false;
    if (sender_.joinable()) sender_.join();
    if (receiver_.joinable()) receiver_.join();
  }
  uint64_t Received(int i) {
    std::lock_guard<std::mutex> lock(mu_);
    return received_[i];
  }

  // The scenario; returns the number of X packets that got through.
  uint64_t RunScenario(const NftBackendOptions& options, int rounds) {
    // 20,000 other ranges, none in 10/8; X's /24, Y's /16 with an allowlisted /24, Z's /24.
    IntervalSet others = Subtract(ktest::RandomBlocklist(20'000, 42), ktest::Set({"10.0.0.0/8"}));
    auto with = [&](const IntervalSet& rest, std::initializer_list<const char*> mine) {
      IntervalSet s = rest;
      for (const char* m : mine) s.v4.ranges.push_back(R(m));
      std::sort(s.v4.ranges.begin(), s.v4.ranges.end());
      s.v4.sources.clear();
      return Subtract(s, ktest::Set({"10.2.0.0/24"}));
    };
    const std::initializer_list<const char*> shape_a = {"10.1.0.0/24", "10.2.0.0/16",
                                                        "10.3.0.0/24"};
    const std::initializer_list<const char*> shape_b = {"10.1.0.0/25", "10.1.0.128/26",
                                                        "10.2.0.0/16", "10.3.0.0/24"};
    NftBackend backend(TableSpec{}, options);
    ApplyResult r;
    Status st = backend.Reconcile(with(others, shape_a), &r);
    EXPECT_TRUE(st.ok()) << st.message();
    Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(Received(2), 0u) << "Z is blocked at first";
    EXPECT_GT(Received(1), 0u) << "Y (allowlisted) passes";
    IntervalSet current = others;
    for (int i = 0; i < rounds; ++i) {
      current = ktest::Churn(current, current.size() / 5, 100 + i);
      st = backend.Reconcile(with(current, i % 2 == 0 ? shape_b : shape_a), &r);
      EXPECT_TRUE(st.ok()) << st.message();
      EXPECT_GE(r.added, current.size() / 5);
      if (!options.split_transaction_for_test && !options.skip_hold_bridge_for_test) {
        EXPECT_GT(r.held, 0u) << "X's reshaped range is held during the change";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Remove Z's range: nothing sent before the update started may arrive.
    const uint32_t z_before = sent_[2].load();
    st = backend.Reconcile(with(current, {"10.1.0.0/24", "10.2.0.0/16"}), &r);
    EXPECT_TRUE(st.ok()) << st.message();
    const uint32_t z_after = sent_[2].load();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Stop();
    {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_GE(z_first_received_, z_before) << "Z passed before its removal was committed";
      EXPECT_LE(z_first_received_, z_after + 200) << "Z must pass right after the commit";
    }
    EXPECT_GT(sent_[0].load(), 2000u) << "the probe must actually have streamed";
    EXPECT_GE(Received(1) * 100, sent_[1].load() * 95)
        << "Y: " << Received(1) << " of " << sent_[1].load();
    std::printf(
        "probe: X sent %u received %llu; Y sent %u received %llu; Z first received seq %u "
        "(update began at %u, committed by %u)\n",
        sent_[0].load(), static_cast<unsigned long long>(Received(0)), sent_[1].load(),
        static_cast<unsigned long long>(Received(1)), z_first_received_, z_before, z_after);
    return Received(0);
  }

  std::string ns_a_, ns_b_;
  bool created_ = false;
  int home_ = -1;
  int tx_[kSenders] = {-1, -1, -1};
  int rx_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<uint32_t> sent_[kSenders] = {};
  std::mutex mu_;
  uint64_t received_[kSenders] = {};
  uint32_t z_first_received_ = UINT32_MAX;
  std::thread sender_, receiver_;
};

TEST_F(PacketTest, NotOnePacketLeaksWhileTheCoveringIntervalIsReshaped) {
  // IOCWALL_TEST_SKIP_HOLD_BRIDGE=1: without the hold bridge (netlink/hold_bridge.h), to
  // measure the leak it prevents (RELIABILITY.md); on Linux 6.1 the test then fails.
  NftBackendOptions options;
  options.skip_hold_bridge_for_test = getenv("IOCWALL_TEST_SKIP_HOLD_BRIDGE") != nullptr;
  uint64_t leaked = RunScenario(options, 8);
  EXPECT_EQ(leaked, 0u) << "packets from a blocked address got through";
}

// The test of the test: the same probe must catch the window that two transactions open.
TEST_F(PacketTest, SplitTransactionLeaks) {
  NftBackendOptions split;
  split.split_transaction_for_test = true;
  uint64_t leaked = RunScenario(split, 8);
  EXPECT_GT(leaked, 0u) << "the probe failed to see the window between two transactions";
}

}  // namespace
}  // namespace iocwall

namespace iocwall {
namespace {

// With action = reject, the ICMP error the input chain sends back goes to the blocked address
// through iocwall's own output chain, which must let it out: the blocked sender learns at
// once (EHOSTUNREACH on its connected socket) instead of timing out on a silent drop.
TEST_F(PacketTest, OwnRejectReachesTheBlockedSender) {
  TableSpec spec;
  spec.action = Action::kReject;
  spec.hooks = {Hook::kInput, Hook::kOutput};
  NftBackend backend(spec);
  ApplyResult r;
  Status st = backend.Reconcile(ktest::Set({"10.1.0.0/16"}), &r);
  ASSERT_TRUE(st.ok()) << st.message();
  auto outcome = [&](int i) {
    timeval tv = {0, 300'000};
    setsockopt(tx_[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    Probe p = {static_cast<uint32_t>(i), 0};
    // A few datagrams: the first may race the neighbour discovery.
    for (int k = 0; k < 3; ++k) {
      if (send(tx_[i], &p, sizeof(p), 0) < 0) return errno;
      char buf[64];
      if (recv(tx_[i], buf, sizeof(buf), 0) < 0 && errno != EAGAIN) return errno;
    }
    return 0;
  };
  EXPECT_EQ(outcome(0), EHOSTUNREACH) << "X (blocked) must get the reject's ICMP error";
  EXPECT_EQ(outcome(2), 0) << "Z (not blocked) gets no error";
  KernelStatus ks;
  ASSERT_TRUE(backend.ReadStatus(&ks).ok());
  EXPECT_TRUE(ks.Enforcing());
}

}  // namespace
}  // namespace iocwall
