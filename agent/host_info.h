// HostInfo: the addresses iocwall must never block, because blocking them would cut the
// gateway off from its own management or from the feed: the host's own addresses, its
// default gateways, and the API endpoint (and proxy) it fetches from. Behind an interface so
// that the agent is tested with a fake.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/prefix.h"

namespace iocwall {

struct ProtectedAddress {
  Prefix prefix;
  std::string why;  // "address of eth0", "default gateway", "API endpoint app.sekoia.io"
};

class HostInfo {
 public:
  virtual ~HostInfo() = default;
  virtual std::vector<ProtectedAddress> ProtectedAddresses() = 0;
};

struct HostInfoOptions {
  // The networks the host is directly connected to (routes without a gateway), not only its
  // addresses: a feed entry covering the gateway's own LAN must not cut it off. Routes shorter
  // than the minimum lengths (a VPN's 0.0.0.0/1) are not protected: they would protect most
  // of the Internet.
  bool connected_networks = true;
  uint8_t min_len_v4 = 8;
  uint8_t min_len_v6 = 32;
};

// Reads the interfaces (getifaddrs), /proc/net/route and /proc/net/ipv6_route, and resolves
// the host names of the given URLs (API endpoint, proxy).
std::unique_ptr<HostInfo> MakeSystemHostInfo(std::vector<std::string> urls,
                                             HostInfoOptions options = {});

// The directly connected networks in the text of /proc/net/route and /proc/net/ipv6_route
// (exposed for tests): up, no gateway, not a reject route, not on lo, at least min_len long.
std::vector<ProtectedAddress> ConnectedNetworks4(const std::string& proc_net_route,
                                                 uint8_t min_len);
std::vector<ProtectedAddress> ConnectedNetworks6(const std::string& proc_net_ipv6_route,
                                                 uint8_t min_len);

// "https://user@app.sekoia.io:443/api" -> "app.sekoia.io"; "http://[::1]:8080/" -> "::1".
std::string HostOfUrl(const std::string& url);

}  // namespace iocwall
