#include "agent/host_info.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace iocwall {
namespace {

Prefix FromSockaddr(const sockaddr* sa) {
  Prefix p;
  if (sa->sa_family == AF_INET) {
    p.family = Family::kV4;
    p.addr = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    p.len = 32;
  } else {
    p.family = Family::kV6;
    const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr;
    u128 v = 0;
    for (int i = 0; i < 16; ++i) v = (v << 8) | b[i];
    p.addr = v;
    p.len = 128;
  }
  return p;
}

constexpr unsigned kRtfUp = 0x0001;
constexpr unsigned kRtfGateway = 0x0002;
constexpr unsigned kRtfReject = 0x0200;

std::string Slurp(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Hex(const std::string& t, unsigned long* v) {
  if (t.empty() || t.size() > 16 ||
      t.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return false;
  }
  *v = std::stoul(t, nullptr, 16);
  return true;
}

// One line of /proc/net/ipv6_route: dest destlen src srclen nexthop metric refcnt use flags
// iface, all hex but the interface's name.
struct Route6 {
  std::string dest, dlen, hop, flags, iface;
};

bool ParseRoute6(const std::string& line, Route6* r) {
  std::istringstream f(line);
  std::string src, slen, metric, ref, use;
  return static_cast<bool>(f >> r->dest >> r->dlen >> src >> slen >> r->hop >> metric >> ref >>
                           use >> r->flags >> r->iface);
}

// 32 hex digits (an address in /proc/net/ipv6_route) to the address.
bool Hex128(const std::string& t, u128* v) {
  if (t.size() != 32) return false;
  *v = 0;
  for (char c : t) {
    unsigned long nib = 0;
    if (!Hex(std::string(1, c), &nib)) return false;
    *v = (*v << 4) | static_cast<u128>(nib);
  }
  return true;
}

class SystemHostInfo : public HostInfo {
 public:
  SystemHostInfo(std::vector<std::string> urls, HostInfoOptions options)
      : urls_(std::move(urls)), options_(options) {}

  std::vector<ProtectedAddress> ProtectedAddresses() override {
    std::vector<ProtectedAddress> out;
    Interfaces(&out);
    Gateways4(&out);
    Gateways6(&out);
    if (options_.connected_networks) {
      for (auto& p : ConnectedNetworks4(Slurp("/proc/net/route"), options_.min_len_v4)) {
        out.push_back(std::move(p));
      }
      for (auto& p : ConnectedNetworks6(Slurp("/proc/net/ipv6_route"), options_.min_len_v6)) {
        out.push_back(std::move(p));
      }
    }
    for (const auto& url : urls_) Resolve(url, &out);
    return out;
  }

 private:
  static void Interfaces(std::vector<ProtectedAddress>* out) {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6) continue;
      out->push_back({FromSockaddr(i->ifa_addr), std::string("address of ") + i->ifa_name});
    }
    freeifaddrs(list);
  }

  // /proc/net/route: "Iface Destination Gateway Flags ..." in little-endian hex.
  static void Gateways4(std::vector<ProtectedAddress>* out) {
    std::ifstream in("/proc/net/route");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string iface, dest, gw;
      if (!(f >> iface >> dest >> gw) || dest != "00000000") continue;
      uint32_t g = static_cast<uint32_t>(std::stoul(gw, nullptr, 16));
      if (g == 0) continue;
      Prefix p;
      p.family = Family::kV4;
      p.addr = ntohl(g);
      p.len = 32;
      out->push_back({p, "default gateway via " + iface});
    }
  }

  static void Gateways6(std::vector<ProtectedAddress>* out) {
    std::ifstream in("/proc/net/ipv6_route");
    std::string line;
    Route6 r;
    while (std::getline(in, line)) {
      u128 v = 0;
      if (!ParseRoute6(line, &r) || r.dlen != "00" || !Hex128(r.hop, &v) || v == 0) continue;
      Prefix p;
      p.family = Family::kV6;
      p.addr = v;
      p.len = 128;
      out->push_back({p, "default gateway via " + r.iface});
    }
  }

  static void Resolve(const std::string& url, std::vector<ProtectedAddress>* out) {
    std::string host = HostOfUrl(url);
    if (host.empty()) return;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return;
    for (addrinfo* a = res; a; a = a->ai_next) {
      if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
      out->push_back({FromSockaddr(a->ai_addr), "API endpoint " + host});
    }
    freeaddrinfo(res);
  }

  std::vector<std::string> urls_;
  HostInfoOptions options_;
};

}  // namespace

std::vector<ProtectedAddress> ConnectedNetworks4(const std::string& text, uint8_t min_len) {
  // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses in host-order hex
  // of the network-order bytes (what ntohl undoes).
  std::vector<ProtectedAddress> out;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string iface, dest, gw, flags, ref, use, metric, mask;
    if (!(f >> iface >> dest >> gw >> flags >> ref >> use >> metric >> mask)) continue;
    unsigned long d = 0, g = 0, fl = 0, m = 0;
    if (!Hex(dest, &d) || !Hex(gw, &g) || !Hex(flags, &fl) || !Hex(mask, &m)) continue;
    if (iface == "lo" || !(fl & kRtfUp) || (fl & (kRtfGateway | kRtfReject)) || g != 0) continue;
    const uint32_t mask_host = ntohl(static_cast<uint32_t>(m));
    const int len = __builtin_popcount(mask_host);
    if (len < min_len || mask_host != (len == 0 ? 0u : ~uint32_t{0} << (32 - len))) continue;
    Prefix p;
    p.family = Family::kV4;
    p.addr = ntohl(static_cast<uint32_t>(d)) & mask_host;
    p.len = static_cast<uint8_t>(len);
    out.push_back({p, "directly connected network on " + iface});
  }
  return out;
}

std::vector<ProtectedAddress> ConnectedNetworks6(const std::string& text, uint8_t min_len) {
  std::vector<ProtectedAddress> out;
  std::istringstream in(text);
  std::string line;
  Route6 r;
  while (std::getline(in, line)) {
    unsigned long len = 0, fl = 0;
    u128 v = 0;
    if (!ParseRoute6(line, &r) || !Hex(r.dlen, &len) || !Hex(r.flags, &fl) || len > 128) continue;
    const std::string& iface = r.iface;
    if (iface == "lo" || !(fl & kRtfUp) || (fl & (kRtfGateway | kRtfReject))) continue;
    if (r.hop != std::string(32, '0') || len < min_len || !Hex128(r.dest, &v)) continue;
    Prefix p;
    p.family = Family::kV6;
    p.len = static_cast<uint8_t>(len);
    p.addr = len == 0 ? 0 : len == 128 ? v : v & ~((u128{1} << (128 - len)) - 1);
    // Multicast and link-local are always protected anyway; a LAN's /64 is what matters.
    if ((v >> 120) == 0xff) continue;
    out.push_back({p, "directly connected network on " + iface});
  }
  return out;
}

std::string HostOfUrl(const std::string& url) {
  size_t s = url.find("://");
  std::string rest = s == std::string::npos ? url : url.substr(s + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = rest.rfind('@');
  if (at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    return close == std::string::npos ? "" : rest.substr(1, close - 1);
  }
  return rest.substr(0, rest.find(':'));
}

std::unique_ptr<HostInfo> MakeSystemHostInfo(std::vector<std::string> urls,
                                             HostInfoOptions options) {
  return std::make_unique<SystemHostInfo>(std::move(urls), options);
}

}  // namespace iocwall
