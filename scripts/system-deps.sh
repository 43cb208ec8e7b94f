#!/usr/bin/env bash
# Install the system packages the tests and the demo need (Debian/Ubuntu, as root or with sudo).
# Idempotent: installs only what is missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# restic: the tests check drkit's retention against restic's own `forget --dry-run`, and the
# benchmarks compare against it
command -v restic >/dev/null 2>&1 || need+=(restic)
# chromium: the status page's browser tests (Playwright with executable_path=/usr/bin/chromium)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# git: harness components are git repositories (bundles, clones) and their tests make real ones
command -v git >/dev/null 2>&1 || need+=(git)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
