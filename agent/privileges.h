// Capability drop: once the configuration is loaded, the agent keeps CAP_NET_ADMIN (netlink to
// nf_tables, SO_SNDBUFFORCE for large batches) and nothing else, so that a bug reached through
// a feed or the network cannot be turned into file, process or module access. The process
// stays uid 0: the root-owned 0600 key file, configuration and state stay readable by their
// owner without CAP_DAC_OVERRIDE.
#pragma once

#include <string>

namespace iocwall {

// What DropPrivileges() did, for the log line and for tests.
struct PrivilegeDrop {
  bool attempted = false;  // false when not running as root (nothing to drop)
  bool dropped = false;    // effective/permitted = {CAP_NET_ADMIN}, ambient/inheritable empty
  bool bounding_cleared = false;  // bounding set = {CAP_NET_ADMIN} (already, or now)
  std::string message;            // operator-readable; set whenever something was not done
};

// Keeps only CAP_NET_ADMIN (effective + permitted; bounding set reduced to it as well, which
// needs CAP_SETPCAP: when the bounding set is already limited by systemd the step is skipped).
// Never fails the agent: whatever could not be done is logged as a warning and reported.
PrivilegeDrop DropPrivileges();

// PR_SET_DUMPABLE 0, first thing in main: no core dump of a process that holds the API key
// (and libcurl's copies of it, which iocwall cannot protect), and no ptrace or /proc/PID/mem
// access by other processes of the same uid. False when the kernel refused (logged).
bool MakeNonDumpable();

}  // namespace iocwall
