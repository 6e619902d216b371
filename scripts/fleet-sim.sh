#!/bin/sh
# fleet-sim.sh: the fleet simulation of docs/scale.md. Real agents against
# git http-backend on loopback, for each fleet size and status layout, then
# lightweight idle pollers against read-only mirrors. Prints Markdown.
#
#   scripts/fleet-sim.sh                      # 100 and 300 nodes, 10,000 pollers on 4 mirrors
#   NODES=100,300,1000 scripts/fleet-sim.sh   # 1,000 agents: ~2 GB and a lot of CPU
set -eu
cd "$(dirname "$0")/.."
NODES=${NODES:-100,300}
LAYOUTS=${LAYOUTS:-branch,refs}
INTERVAL=${INTERVAL:-10s}
JITTER=${JITTER:-5s}
POLLERS=${POLLERS:-10000}
MIRRORS=${MIRRORS:-4}
WINDOW=${WINDOW:-60s}
bin=$(mktemp -d)/fsgit-fleetsim
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/fsgit-fleetsim
"$bin" -nodes "$NODES" -layouts "$LAYOUTS" -interval "$INTERVAL" -jitter "$JITTER" \
	-pollers "$POLLERS" -mirrors "$MIRRORS" -window "$WINDOW"
