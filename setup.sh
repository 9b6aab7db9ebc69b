#!/usr/bin/env bash
# setup.sh — install what building and testing ember needs, from Debian 12's
# own package archive (apt), and nothing else.
#
# Idempotent: when every package is already installed it changes nothing
# and needs no root.  Otherwise it must run as root; it runs
# `apt-get update` once and installs only the missing packages.
set -euo pipefail

packages=(
  cmake
  g++
  ninja-build
  libboost1.81-dev
  libboost-context1.81-dev
  libfmt-dev
  libspdlog-dev
  catch2
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: dpkg-query not found; this script expects Debian 12 (bookworm)." >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup.sh: all build dependencies are installed."
  exit 0
fi

echo "setup.sh: missing packages: ${missing[*]}"
if [[ "$(id -u)" -ne 0 ]]; then
  echo "setup.sh: error: installing packages needs root; run 'sudo ./setup.sh'" \
       "or install them yourself: apt-get install ${missing[*]}" >&2
  exit 1
fi

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
echo "setup.sh: installed: ${missing[*]}"
