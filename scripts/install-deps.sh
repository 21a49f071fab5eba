#!/usr/bin/env bash
# Installs every build, test and demo dependency of iocwall from Debian 12 packages.
# Idempotent: safe to run again; apt-get skips what is already installed.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: run as root (apt-get needs it)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  # build
  build-essential cmake pkg-config g++ clang clang-format
  libnftnl-dev libmnl-dev libcurl4-openssl-dev nlohmann-json3-dev
  libboost-program-options-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  libsystemd-dev libcap-ng-dev
  # feed simulator (test-only): cpp-httplib with OpenSSL for HTTPS
  libcpp-httplib-dev libssl-dev openssl
  # kernel tests, packet probes, oracle
  nftables iproute2 iputils-ping procps util-linux curl python3 jq
  # docs, packaging, deployment checks
  mandoc dpkg-dev file ansible ansible-lint systemd
  # tests/deploy/lintian.sh: the package against Debian policy
  lintian
  # tests/deploy/systemd_boot.sh: the package under systemd as PID 1 of a container
  systemd-container
  # tests/deploy/unit_sandbox.sh: traces the agent's system calls against the units' filters
  strace
  # tests/e2e/bench_agent.py: peak RSS of the agent alone (GNU time's %M, from a small parent)
  time
  # the fleet test: a standard caching reverse proxy in front of the feed
  nginx
  # tests/kernel61: Debian 12's own kernel under QEMU (TCG); the kernel package itself is only
  # downloaded (apt-get download) into the build folder, never installed
  qemu-system-x86 busybox-static kmod cpio
  # tests/deploy/metrics_textfile.sh: promtool (check metrics) and the prometheus user that
  # Debian's node_exporter shares; the server itself is not used
  prometheus
  # tests/deploy/monitoring_sudo.sh: the shipped sudo rule for an unprivileged monitoring user
  sudo
  # libFuzzer + sanitizer runtimes
  libclang-rt-14-dev
)
# A fresh machine's package lists are empty or stale.
apt-get update -q
apt-get install -y -q --no-install-recommends "${pkgs[@]}"
