#!/usr/bin/env bash
# Install the system packages the tests and the demo need (Debian/Ubuntu, as root or with sudo).
# Idempotent: installs only what is missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${DRKIT_BENCH:-0}" = 1 ]; then
  command -v restic >/dev/null 2>&1 || need+=(restic)
fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
