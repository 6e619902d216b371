#!/usr/bin/env bash
# fleet-demo.sh (`make demo`): the example site on four real nodes.
#
# It starts the fleet of scripts/fleet.sh (a git server and four Debian
# containers booting systemd, each with fsgit installed as an operator
# would), pushes sites/example with a signed commit, and waits while every
# node converges ITSELF from bare Debian: apt-get, MariaDB, chrony, sshd,
# Java, Spark's config and unit, the Iceberg table, Weaviate and its
# vectorizer, and on monitoring-1 Prometheus (its scrape configuration
# generated from the site) and Alertmanager. Then it shows `fsgit status`,
# runs `fsgit verify` against the fleet, shows Prometheus's targets all up,
# and shows changes arrive: a MariaDB config commit (one restart, systemd's
# evidence), a managed file edited by hand, a table dropped by hand, and
# MariaDB stopped by hand: the MariaDBDown alert fires, and resolves once
# fsgit has restarted MariaDB. `make demo-down` removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLEET_PREFIX="${FLEET_PREFIX:-fsgit-fleet}"
export FLEET_DIR="${FLEET_DIR:-/tmp/$FLEET_PREFIX}"
export FLEET_INTERVAL="${FLEET_INTERVAL:-3s}"
export FLEET_NODES="${FLEET_NODES:-online-1 offline-1 vector-1 monitoring-1}"
export FLEET_PROMETHEUS_PORT="${FLEET_PROMETHEUS_PORT:-19090}"
P=$FLEET_PREFIX
WORK="$FLEET_DIR/work"
ONLINE="$P-online-1"
MON="$P-monitoring-1"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}
sql() { docker exec "$ONLINE" mariadb -N -B -e "$1"; }
ms() { date +%s%3N; }
secs() { # seconds since the ms time $1, one decimal
	local d=$(($(ms) - $1))
	echo "$((d / 1000)).$((d % 1000 / 100))"
}
# prom PATH: Prometheus's HTTP API, asked inside monitoring-1.
prom() { docker exec "$MON" curl -fsS "http://127.0.0.1:9090$1"; }
# targets: one line per scrape target: job, node, health, URL, last error.
targets() { prom /api/v1/targets | jq -r '.data.activeTargets[] | [.labels.job, .labels.node, .health, .scrapeUrl, .lastError] | @tsv'; }
# mariadb_down_state: pending, firing, or nothing (no such alert).
mariadb_down_state() { prom /api/v1/alerts | jq -r '[.data.alerts[] | select(.labels.alertname == "MariaDBDown") | .state] | first // empty'; }

say "starting the fleet (builds what is missing first; progress below)"
t0=$SECONDS
scripts/fleet.sh up
push_ms=$(ms)
C1=$(git -C "$WORK" rev-parse HEAD)

say "every node converges itself from bare Debian on ${C1:0:12}"
scripts/fleet.sh wait "$C1"
echo "push -> last node converged: $((($(ms) - push_ms) / 1000)) s (fleet up to converged: $((SECONDS - t0)) s)"

say "fsgit status --fleet (the status branch fsgit/status, read on online-1)"
docker exec "$ONLINE" fsgit status --fleet || true
say "fsgit status, run inside online-1"
docker exec "$ONLINE" fsgit status

say "fsgit verify: a feature written through all three stores and read back (run on online-1)"
tar -C "$WORK" --exclude=.git -cf - . |
	docker exec -i "$ONLINE" sh -c 'rm -rf /root/site && mkdir -p /root/site && tar -C /root/site -xf -'
docker exec "$ONLINE" fsgit verify --site /root/site/sites/example || die "fsgit verify failed"

say "Prometheus on monitoring-1: every target of the scrape configuration generated from the site"
t1=$(ms)
until out=$(targets 2>/dev/null) && [ -n "$out" ] && ! awk -F'\t' '$3 != "up"' <<<"$out" | grep -q .; do
	if [ $((($(ms) - t1) / 1000)) -ge 120 ]; then
		printf '%s\n' "$out" | column -t -s $'\t'
		die "Prometheus's targets are not all up 2 minutes after the fleet converged"
	fi
	sleep 1
done
echo "GET /api/v1/targets (inside $MON), all up $(secs "$t1") s after the fleet converged:"
cut -f1-4 <<<"$out" | sort | column -t -s $'\t'

say "(1) a commit: online-1's innodbBufferPoolSize 2G -> 1G"
pid0=$(docker exec "$ONLINE" systemctl show -p MainPID --value mariadb)
since=$(date +%s)
echo "before: mariadb MainPID $pid0, innodb_buffer_pool_size $(sql 'SELECT @@innodb_buffer_pool_size')"
sed -i 's/innodbBufferPoolSize: "2G"/innodbBufferPoolSize: "1G"/' "$WORK/sites/example/roles.cue"
git -C "$WORK" diff --stat
t1=$(ms)
C2=$(scripts/fleet.sh commit "online-1: innodb_buffer_pool_size 2G -> 1G")
until [ "$(sql 'SELECT @@innodb_buffer_pool_size' 2>/dev/null)" = 1073741824 ]; do
	[ $((($(ms) - t1) / 1000)) -lt 180 ] || die "MariaDB does not serve the new value 3 minutes after the push"
	sleep 0.2
done
echo "push -> MariaDB serving innodb_buffer_pool_size=1G: $((($(ms) - t1) / 1000)).$((($(ms) - t1) % 1000 / 100)) s"
scripts/fleet.sh wait "$C2"
sleep 4 # one poll more: no second restart follows
echo "after:  mariadb MainPID $(docker exec "$ONLINE" systemctl show -p MainPID --value mariadb)"
echo "systemd's journal of mariadb.service since the push:"
docker exec "$ONLINE" journalctl -u mariadb --since "@$since" --no-pager -o short-precise | grep -E 'Stopp|Started' || true
echo "fsgit's journal on online-1 for that commit:"
docker exec "$ONLINE" journalctl -u fsgit --since "@$since" --no-pager -o cat |
	grep -E 'msg="commit accepted"|outcome=(changed|created)|refreshed=true' | cut -c1-200 || true

say "(2) a managed file edited by hand on online-1"
pid1=$(docker exec "$ONLINE" systemctl show -p MainPID --value mariadb)
CNF=/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf
want=$(docker exec "$ONLINE" sha256sum "$CNF")
docker exec "$ONLINE" sh -c "echo 'max_connections = 1' >>$CNF"
echo "appended 'max_connections = 1' to $CNF"
t1=$(ms)
until [ "$(docker exec "$ONLINE" sha256sum "$CNF")" = "$want" ]; do
	[ $((($(ms) - t1) / 1000)) -lt 30 ] || die "the hand edit was not corrected"
	sleep 0.05
done
echo "corrected $(($(ms) - t1)) ms later:"
docker exec "$ONLINE" journalctl -u fsgit --no-pager -o cat -n 50 | grep -E 'corrective=true' | tail -n 1 | cut -c1-200
# The file notifies mariadb, as any change of it does: fsgit cannot know
# whether the server was restarted while the file was wrong.
until [ "$(sql 'SELECT 1' 2>/dev/null)" = 1 ]; do sleep 0.2; done
echo "the corrected file notified mariadb: MainPID $pid1 -> $(docker exec "$ONLINE" systemctl show -p MainPID --value mariadb), serving again"

say "(3) a table dropped by hand on online-1"
sql "DROP TABLE feature_store_online.latest_features"
echo "DROP TABLE feature_store_online.latest_features"
t1=$(ms)
until [ "$(sql "SHOW TABLES FROM feature_store_online LIKE 'latest_features'")" = latest_features ]; do
	[ $((($(ms) - t1) / 1000)) -lt 60 ] || die "the table was not restored"
	sleep 0.2
done
echo "restored $((($(ms) - t1) / 1000)) s later by the next run (migration re-applied):"
sql "SHOW CREATE TABLE feature_store_online.latest_features\G" 2>/dev/null | sed -n 2,4p || true

say "(4) MariaDB stopped by hand on online-1: Prometheus's MariaDBDown alert fires, and resolves after fsgit restarts it"
# fsgit would restart MariaDB on its next run, 3 s from now with the demo's
# poll, long before the rule's \`for: 1m\`: online-1's agent is held
# (systemctl stop fsgit) until the alert fires, as a slower poll would.
docker exec "$ONLINE" systemctl stop fsgit
echo "online-1: systemctl stop fsgit (held until the alert fires)"
docker exec "$ONLINE" systemctl stop mariadb
t1=$(ms)
echo "online-1: systemctl stop mariadb ($(docker exec "$ONLINE" systemctl is-active mariadb || true))"
last=""
while :; do
	state=$(mariadb_down_state 2>/dev/null || true)
	if [ "$state" != "$last" ] && [ -n "$state" ]; then
		echo "  $(secs "$t1") s: MariaDBDown $state (GET /api/v1/alerts)"
		last=$state
	fi
	[ "$state" = firing ] && break
	[ $((($(ms) - t1) / 1000)) -lt 240 ] || die "MariaDBDown did not fire within 4 minutes"
	sleep 1
done
fire_s=$(secs "$t1")
prom /api/v1/alerts | jq -r '.data.alerts[] | select(.labels.alertname == "MariaDBDown") | "  \(.labels.alertname) \(.state) node=\(.labels.node) role=\(.labels.role) severity=\(.labels.severity) activeAt=\(.activeAt): \(.annotations.summary)"'
sleep 2 # Prometheus sends it on at once; Alertmanager takes it
echo "Alertmanager (monitoring-1:9093, GET /api/v2/alerts):"
docker exec "$MON" curl -fsS http://127.0.0.1:9093/api/v2/alerts | jq -r '.[] | select(.labels.alertname == "MariaDBDown") | "  \(.labels.alertname) \(.status.state) node=\(.labels.node), for receiver \([.receivers[].name] | join(","))"'
docker exec "$ONLINE" systemctl start fsgit
t2=$(ms)
echo "online-1: systemctl start fsgit; its first run:"
until [ "$(docker exec "$ONLINE" systemctl is-active mariadb 2>/dev/null)" = active ]; do
	[ $((($(ms) - t2) / 1000)) -lt 120 ] || die "fsgit did not restart MariaDB within 2 minutes"
	sleep 0.2
done
start_s=$(secs "$t2")
docker exec "$ONLINE" journalctl -u fsgit --since "@$((t2 / 1000))" --no-pager -o cat | grep -E 'msg=resource id=service:mariadb ' | head -n 1 | cut -c1-200 || true
echo "  mariadb active again $start_s s after the agent started ($(secs "$t1") s after the stop)"
until [ -z "$(mariadb_down_state 2>/dev/null || echo x)" ]; do
	[ $((($(ms) - t2) / 1000)) -lt 180 ] || die "MariaDBDown did not resolve within 3 minutes of fsgit's restart"
	sleep 1
done
echo "  MariaDBDown resolved (gone from /api/v1/alerts) $(secs "$t2") s after the agent started"
echo "figures: systemctl stop mariadb -> MariaDBDown firing: $fire_s s; -> resolved: $(secs "$t1") s (scrape and evaluation every 15 s, the rule's for: 1m, as shipped)"
scripts/fleet.sh wait >/dev/null

say "the agents now (systemd's accounting; RSS from ps)"
for n in $FLEET_NODES; do
	printf '%-12s %s\n' "$n" "$(docker exec "$P-$n" sh -c 'echo "RSS $(($(ps -o rss= -p $(systemctl show -p MainPID --value fsgit)) / 1024)) MiB, $(systemctl show -p NRestarts -p MemoryCurrent fsgit | xargs)"')"
done
echo "(their CPU over an idle window: scripts/fleet.sh idle 600)"

say "the fleet in a browser"
scripts/fleet.sh serve || true

say "the demo is running; look around"
cat <<TXT
  the fleet view (fsgit serve, read from the status branch): http://${FLEET_SERVE_LISTEN:-127.0.0.1:8080}/
  docker exec -it $ONLINE fsgit status
  docker exec -it $P-vector-1 fsgit status --fleet
  docker exec -it $ONLINE journalctl -u fsgit -f
  docker exec -it $ONLINE mariadb -e 'SHOW DATABASES'
  Prometheus on monitoring-1: http://127.0.0.1:$FLEET_PROMETHEUS_PORT/targets and /alerts
  docker exec -it $MON cat /etc/prometheus/prometheus.yml   (generated from the site)
  push a change (signed with the demo's key, which every node trusts):
    cd $WORK && sed -i 's/maxConnections:       500/maxConnections:       600/' sites/example/roles.cue && git commit -qam "online-1: max_connections 600" && git push
  stop and remove everything: make demo-down
TXT
