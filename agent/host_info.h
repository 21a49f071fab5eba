// HostInfo: the addresses iocwall must never block, because blocking them would cut the
// gateway off from its own management or from the feed: the host's own addresses, its
// default gateways, and the API endpoint (and proxy) it fetches from. Behind an interface so
// that the agent is tested with a fake.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/core/prefix.h"

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

// Reads the interfaces (getifaddrs), /proc/net/route and /proc/net/ipv6_route, and resolves
// the host names of the given URLs (API endpoint, proxy).
std::unique_ptr<HostInfo> MakeSystemHostInfo(std::vector<std::string> urls);

// "https://user@app.sekoia.io:443/api" -> "app.sekoia.io"; "http://[::1]:8080/" -> "::1".
std::string HostOfUrl(const std::string& url);

}  // namespace iocwall
