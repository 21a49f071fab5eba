#!/usr/bin/env bash
# Runs a test binary as an unprivileged user (nobody) when started as root, else as is: the
# safe-file checks compare owners with the effective uid, and must hold for both.
# Usage: as_nobody.sh BINARY [ARGS...]
set -euo pipefail
if [[ $(id -u) -eq 0 ]]; then
  exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
fi
exec "$@"
