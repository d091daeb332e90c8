#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages. Idempotent.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      libasio-dev libsqlite3-dev sqlite3 librdkafka-dev libcereal-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      libcli11-dev nlohmann-json3-dev graphviz kcat curl
      libcpp-httplib-dev libboost-dev libtomlplusplus-dev libspdlog-dev prometheus-cpp-dev libjemalloc-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
