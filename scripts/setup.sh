#!/usr/bin/env bash
# setup.sh installs what fsgit's tests and demo need on a fresh Debian
# machine: Debian packages (MariaDB, git, gpg, ssh-keygen, jq for the demo, Chromium for the
# browser tests of fsgit serve), the Go modules,
# and the locally built container images (no registry is reachable here).
# It is idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# prometheus, its exporters and alertmanager: the monitoring tests run them on
# loopback (Debian starts them through systemd on install; the tests do not
# need that).
for p in mariadb-server mariadb-client git gpg openssh-client ca-certificates procps debootstrap curl jq chromium \
  prometheus prometheus-node-exporter prometheus-mysqld-exporter prometheus-alertmanager; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

echo "setup: downloading Go modules"
go mod download

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  echo "setup: building local images"
  scripts/build-images.sh
else
  echo "setup: Docker Engine not reachable; the Docker and Weaviate tests will say so" >&2
fi
