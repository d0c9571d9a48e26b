#!/usr/bin/env bash
# Installs the Debian packages the build, tests and `make run` need, once:
# packages already present are left alone, so this is cheap to run every time.
set -euo pipefail
pkgs=(build-essential pkg-config clang libclang-rt-14-dev
      libevent-dev librdkafka-dev libpq-dev libinih-dev libjansson-dev libcmocka-dev
      postgresql postgresql-common curl python3 chromium kcat)
pkgs+=(${ARB_EXTRA_PKGS:-})
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
