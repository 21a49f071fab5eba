#include "agent/privileges.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/log.h"

#ifdef IOCWALL_HAVE_CAPNG
#include <cap-ng.h>
#include <linux/capability.h>
#endif

namespace iocwall {

bool MakeNonDumpable() {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    LogWarning(std::string("privileges: cannot make the process non-dumpable: ") +
               std::strerror(errno) + "; a core dump could hold the API key");
    return false;
  }
  return true;
}

#ifdef IOCWALL_HAVE_CAPNG
namespace {

// True when the bounding set holds any capability other than CAP_NET_ADMIN. Reads the state
// libcap-ng loaded from the process.
bool BoundingHoldsMore() {
  for (unsigned cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (cap != CAP_NET_ADMIN && capng_have_capability(CAPNG_BOUNDING_SET, cap)) return true;
  }
  return false;
}

// True when effective, permitted and ambient hold nothing but CAP_NET_ADMIN.
bool SetsHoldOnlyNetAdmin() {
  for (unsigned cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (cap == CAP_NET_ADMIN) continue;
    if (capng_have_capability(CAPNG_EFFECTIVE, cap) ||
        capng_have_capability(CAPNG_PERMITTED, cap)) {
      return false;
    }
  }
  return true;
}

}  // namespace

PrivilegeDrop DropPrivileges() {
  PrivilegeDrop d;
  if (geteuid() != 0) {
    // An unprivileged agent (file capabilities, a user namespace) holds nothing to drop; its
    // netlink calls will say what is missing.
    d.message = "not running as root: capabilities left as they are";
    LogDebug("privileges: " + d.message);
    return d;
  }
  d.attempted = true;
  if (capng_get_caps_process() != 0) {
    d.message = "cannot read the process's capabilities: every capability is kept";
    LogWarning("privileges: " + d.message);
    return d;
  }
  const bool bounds = BoundingHoldsMore();
  // Under the systemd unit (CapabilityBoundingSet=CAP_NET_ADMIN) there is nothing left to
  // drop, and the unit's system call filter refuses capset: do not call it.
  if (!bounds && SetsHoldOnlyNetAdmin()) {
    d.dropped = true;
    d.bounding_cleared = true;
    d.message = "already holds only CAP_NET_ADMIN";
    LogDebug("privileges: " + d.message);
    return d;
  }
  // Clearing the bounding set needs CAP_SETPCAP: drop it in the same apply, bounding first.
  const bool can_bound = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP) != 0;
  capng_clear(CAPNG_SELECT_ALL);
  capng_update(CAPNG_ADD,
               static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
               CAP_NET_ADMIN);
  int select = CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT;
  if (bounds && can_bound) select |= CAPNG_SELECT_BOUNDS;
  const int rc = capng_apply(static_cast<capng_select_t>(select));
  if (rc != 0) {
    d.message = "cannot drop capabilities (capng_apply returned " + std::to_string(rc) +
                "): the agent keeps running with the capabilities it was given";
    LogWarning("privileges: " + d.message);
    return d;
  }
  d.dropped = true;
  d.bounding_cleared = !bounds || can_bound;
  if (!d.bounding_cleared) {
    d.message =
        "bounding set left as given (no CAP_SETPCAP); effective and permitted hold only "
        "CAP_NET_ADMIN";
    LogWarning("privileges: " + d.message);
  } else {
    LogDebug("privileges: every capability dropped except CAP_NET_ADMIN");
  }
  return d;
}

#else  // !IOCWALL_HAVE_CAPNG

PrivilegeDrop DropPrivileges() {
  PrivilegeDrop d;
  d.attempted = geteuid() == 0;
  d.message =
      "built without libcap-ng: every capability is kept (install libcap-ng-dev and rebuild)";
  if (d.attempted) LogWarning("privileges: " + d.message);
  return d;
}

#endif

}  // namespace iocwall
