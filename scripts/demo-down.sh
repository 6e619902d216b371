#!/usr/bin/env bash
# demo-down.sh stops what scripts/demo.sh started and removes it: the
# agents and the MariaDB (by the PIDs the demo recorded), the demo's
# containers and network (by their fsgit-demo-* names), and the demo
# directory.
set -uo pipefail
cd "$(dirname "$0")/.."
DEMO="${FSGIT_DEMO_DIR:-/tmp/fsgit-demo}"

# stop PIDFILE NAME: SIGTERM, then SIGKILL after a while.
stop() {
	[ -f "$1" ] || return 0
	local pid
	pid=$(cat "$1")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			echo "demo-down: $2 (pid $pid) did not stop; killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
		echo "demo-down: stopped $2 (pid $pid)"
	fi
}

if [ -d "$DEMO/nodes" ]; then
	for d in "$DEMO"/nodes/*/; do
		stop "$d/agent.pid" "agent $(basename "$d")"
	done
fi
stop "$DEMO/mariadb/mariadbd.pid" mariadbd

if command -v docker >/dev/null 2>&1; then
	for c in fsgit-demo-weaviate fsgit-demo-t2v; do
		docker rm -f "$c" >/dev/null 2>&1 && echo "demo-down: removed container $c"
	done
	docker network rm fsgit-demo >/dev/null 2>&1 && echo "demo-down: removed network fsgit-demo"
fi

if [ -d "$DEMO" ]; then
	rm -rf "$DEMO"
	echo "demo-down: removed $DEMO"
fi
exit 0
