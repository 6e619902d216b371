#!/usr/bin/env bash
# fleet.sh: the example site on real nodes. Each node is a Docker container
# that boots systemd as PID 1 from a bare Debian image (fsgit.local/node,
# scripts/build-images.sh): fsgit is installed in it the way the README
# tells an operator to (/usr/local/bin, systemd/fsgit.service enabled,
# /etc/fsgit/agent.cue, secrets under /etc/fsgit/secrets mode 0600), and
# from there the node converges itself: apt-get, systemd, MariaDB, Docker.
#
#   fleet.sh up        build what is missing, start the git server and the
#                      nodes ($FLEET_NODES: online-1 offline-1 vector-1 by
#                      default; the demo adds monitoring-1), push
#                      sites/example (signed)
#   fleet.sh wait      wait until every node is converged on the pushed commit
#   fleet.sh commit M  commit what changed in the work clone (signed), push
#   fleet.sh status    fsgit status --fleet, asked on online-1
#   fleet.sh idle [S]  each node's agent: CPU time used over S seconds
#                      (default 600) and RSS, as figures
#   fleet.sh down      remove everything up made (containers, the Weaviate
#                      and vectorizer containers vector-1 made, the network,
#                      the volume, the directory)
#
# What it makes, all named $FLEET_PREFIX (default fsgit-fleet) so that it
# never meets a test's or the sandbox demo's:
#   a network $P (the fleet's private network), a volume $P-warehouse,
#   containers $P-git (git http-backend and the jar mirror), $P-online-1,
#   $P-offline-1, $P-vector-1 (and $P-monitoring-1 when $FLEET_NODES has
#   it, Prometheus published on 127.0.0.1:$FLEET_PROMETHEUS_PORT), and the
#   ones vector-1 starts on the host's
#   Docker Engine through its socket ($P-weaviate, $P-t2v), and the
#   directory $FLEET_DIR (default /tmp/$P): the repository, the signing
#   key, the work clone, the Weaviate data.
#
# Stand-ins, said so: the Spark jars are placeholder files on the local
# mirror (their digests pinned in the site's fleet.cue), the Spark
# distribution is a placeholder start-thriftserver.sh (the profile assumes
# Spark installed in /opt/spark), the vectorizer is cmd/t2v-standin, and the
# Iceberg warehouse is a volume shared by online-1 and offline-1 in place of
# the seed's S3 bucket.
#
# Monitoring (issue 18): every agent serves /metrics on :9469 (agent.cue's
# metrics: listen, the site's monitoring.agent.metricsPort), and every node
# container has its site fqdn (*.internal) as a network alias, the names
# monitoring-1's generated scrape configuration uses. Weaviate runs on the
# host's Engine, not inside vector-1, so vector-1 forwards the Weaviate
# metrics port of its fqdn to the Weaviate container (systemd-socket-proxyd,
# a fleet unit, not the site's), as a Weaviate of vector-1's own Engine
# would publish it there.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD

P="${FLEET_PREFIX:-fsgit-fleet}"
DIR="${FLEET_DIR:-/tmp/$P}"
INTERVAL="${FLEET_INTERVAL:-5s}"
WEAVIATE_PORT="${FLEET_WEAVIATE_PORT:-18090}"
# Weaviate's metrics port, published on 127.0.0.1 and forwarded by vector-1
# (derived from the Weaviate port, so that two fleets never share it).
WEAVIATE_METRICS_PORT="${FLEET_WEAVIATE_METRICS_PORT:-$((WEAVIATE_PORT + 22))}"
PROMETHEUS_PORT="${FLEET_PROMETHEUS_PORT:-19090}"
WAIT_TIMEOUT="${FLEET_WAIT_TIMEOUT:-900}"
# The agents' metrics port: the site's monitoring.agent.metricsPort.
AGENT_METRICS_PORT=9469
# The nodes: $FLEET_NODES, else the ones `up` started (kept in $DIR/nodes,
# so that wait, idle and the rest see the same fleet), else the three stores.
if [ -z "${FLEET_NODES:-}" ] && [ "${1:-}" != up ] && [ -f "$DIR/nodes" ]; then
	FLEET_NODES=$(cat "$DIR/nodes")
fi
read -r -a NODES <<<"${FLEET_NODES:-online-1 offline-1 vector-1}"
NODE_IMAGE=fsgit.local/node:bookworm
GIT_IMAGE=fsgit.local/fleet-git:bookworm
WEAVIATE_IMAGE="fsgit.local/weaviate:${WEAVIATE_VERSION:-1.35.2}"
T2V_IMAGE="fsgit.local/t2v-transformers:standin-1"
LABEL="fsgit.fleet=$P"
WORK="$DIR/work"
SITE="$WORK/sites/example"

log() { printf 'fleet: %s\n' "$*" >&2; }
die() {
	printf 'fleet: %s\n' "$*" >&2
	exit 1
}

fqdn() {
	case "$1" in
	online-1) echo feature-store-online-node.internal ;;
	offline-1) echo feature-store-offline-node.internal ;;
	vector-1) echo feature-store-vector-node.internal ;;
	monitoring-1) echo feature-store-monitoring-node.internal ;;
	*) die "no such node in the fleet: $1 (online-1, offline-1, vector-1, monitoring-1)" ;;
	esac
}

# What a node must not have: the host's clock (SYS_TIME), kernel modules
# (SYS_MODULE), reboot (SYS_BOOT); SYS_RESOURCE this engine lacks itself.
# The rest is what systemd needs to boot in a container (see
# reconciler/service/live_container_test.go): not --privileged.
NODE_FLAGS=(
	--cap-add ALL --cap-drop SYS_RESOURCE --cap-drop SYS_TIME --cap-drop SYS_MODULE --cap-drop SYS_BOOT
	--security-opt seccomp=unconfined --security-opt apparmor=unconfined
	--cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:ro
	--tmpfs /run --tmpfs /run/lock --tmpfs /tmp
)

node_ctr() { echo "$P-$1"; }

in_node() { # NODE CMD...: run CMD in the node
	local n="$1"
	shift
	docker exec "$(node_ctr "$n")" "$@"
}

git_port() { docker port "$P-git" 8080/tcp | head -n1 | sed 's/.*://'; }

build() {
	log "building fsgit (static, for the nodes)"
	mkdir -p "$DIR/dist"
	# fsgit (the front for cached runs), fsgit-core and fsgit-iceberg, as
	# they are installed.
	CGO_ENABLED=0 GOFLAGS=-trimpath scripts/build.sh "$DIR/dist"
	CGO_ENABLED=0 go build -trimpath -o "$DIR/dist/gitserver" ./test/e2e/gitserver
	cp systemd/fsgit.service "$DIR/dist/"
	log "building the images that are missing (cached by content)"
	scripts/build-images.sh fleet
	local img
	for img in "$WEAVIATE_IMAGE" "$T2V_IMAGE"; do
		docker image inspect "$img" >/dev/null 2>&1 || scripts/build-images.sh "$(case $img in *weaviate*) echo weaviate ;; *) echo standin ;; esac)"
	done
}

# jar GROUPPATH ARTIFACT VERSION: a placeholder jar on the mirror; prints
# its SHA-256.
jar() {
	local d="$DIR/mirror/$1/$2/$3" f="$2-$3.jar"
	mkdir -p "$d"
	printf 'fsgit fleet stand-in for %s/%s/%s (no network to fetch the real jar)\n' "$1" "$2" "$3" >"$d/$f"
	sha256sum "$d/$f" | cut -d' ' -f1
}

# fleet_cue: the one file the fleet adds to sites/example.
fleet_cue() {
	local iceberg aws jdbc
	iceberg=$(jar org/apache/iceberg iceberg-spark-runtime-3.4_2.12 1.4.2)
	aws=$(jar software/amazon/awssdk bundle 2.17.230)
	jdbc=$(jar org/mariadb/jdbc mariadb-java-client 3.1.4)
	cat <<CUE
package example

// fleet.cue is what scripts/fleet.sh adds to the example site for its
// container nodes; everything else is the site as it is.

// The nodes are containers: the host keeps their clock and kernel.
data: base: container: true

// The Iceberg warehouse: a volume shared by online-1 and offline-1, in
// place of the seed's S3 bucket.
data: iceberg: warehouse: "file:///srv/iceberg-warehouse/"

nodes: "offline-1": data: spark: {
	// Placeholder jars on the fleet's mirror, pinned by their digests.
	mirror: "http://git:8080/mirror"
	master: "local[2]"
	jars: {
		iceberg: sha256:     "$iceberg"
		awsSdk: sha256:      "$aws"
		mariadbJdbc: sha256: "$jdbc"
	}
}

nodes: "vector-1": data: weaviate: {
	// The host's Docker Engine, through the socket mounted into vector-1.
	engine: manage: false
	image:     "$WEAVIATE_IMAGE"
	pull:      "never"
	container: "$P-weaviate"
	network:   "$P"
	port:      $WEAVIATE_PORT
	hostIP:    "127.0.0.1"
	url:       "http://$P-weaviate:8080"
	// The same path on the host and in vector-1: the Engine mounts the
	// host's.
	dataDir: "$DIR/weaviate"
	env: CLUSTER_ADVERTISE_ADDR: "127.0.0.1"
	// Weaviate's own metrics: published on the host's loopback, and
	// reached by Prometheus at vector-1's fqdn on the same port (vector-1
	// forwards it to the container).
	metrics: port: $WEAVIATE_METRICS_PORT
	vectorizer: {
		image:     "$T2V_IMAGE"
		container: "$P-t2v"
	}
}
CUE
}

# agent_cue NODE: the node's /etc/fsgit/agent.cue.
agent_cue() {
	cat <<CUE
// fsgit agent configuration of $1 (scripts/fleet.sh).
node: "$1"
source: {
	url:          "http://git:8080/git/site.git"
	site:         "sites/example"
	pollInterval: "$INTERVAL"
	jitter:       "1s"
	// Only commits signed by the fleet's key are applied.
	trustedKeys: ["/etc/fsgit/trusted-keys.pub"]
}
// /metrics for Prometheus, on the site's monitoring.agent.metricsPort.
metrics: listen: ":$AGENT_METRICS_PORT"
CUE
}

# secrets_of NODE: the secrets the node's role uses.
secrets_of() {
	case "$1" in
	online-1) echo mariadb/fs_user iceberg/catalog_user monitoring/mysqld_exporter ;;
	offline-1) echo iceberg/catalog_user ;;
	esac
}

start_git() {
	log "making the site repository and the signing key in $DIR"
	mkdir -p "$DIR/git" "$DIR/keys" "$DIR/secrets"
	git init --quiet --bare --initial-branch=main "$DIR/git/site.git"
	git -C "$DIR/git/site.git" config http.receivepack true
	ssh-keygen -q -t ed25519 -N "" -C "fsgit fleet signing key" -f "$DIR/keys/signing"
	local s
	for s in mariadb/fs_user iceberg/catalog_user monitoring/mysqld_exporter; do
		mkdir -p "$DIR/secrets/$(dirname "$s")"
		(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DIR/secrets/$s")
	done
	chmod -R go-rwx "$DIR/secrets" "$DIR/keys/signing"
	log "starting $P-git (git http-backend and the jar mirror) on network $P"
	docker network create "$P" >/dev/null
	docker volume create --label "$LABEL" "$P-warehouse" >/dev/null
	mkdir -p "$DIR/mirror"
	docker run -d --name "$P-git" --label "$LABEL" --hostname git --network "$P" --network-alias git \
		-p 127.0.0.1::8080 \
		-v "$DIR/git:/srv/git" -v "$DIR/mirror:/srv/mirror:ro" -v "$DIR/dist/gitserver:/usr/local/bin/gitserver:ro" \
		"$GIT_IMAGE" /usr/local/bin/gitserver >/dev/null
	local i
	for i in $(seq 1 50); do
		curl -fsS "http://127.0.0.1:$(git_port)/healthz" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	docker logs "$P-git" >&2
	die "$P-git does not answer"
}

push_site() {
	log "pushing sites/example (+ fleet.cue), signed"
	git clone --quiet "http://127.0.0.1:$(git_port)/git/site.git" "$WORK" 2>/dev/null
	git -C "$WORK" config user.name "fsgit fleet"
	git -C "$WORK" config user.email "fleet@fsgit.invalid"
	git -C "$WORK" config gpg.format ssh
	git -C "$WORK" config user.signingkey "$DIR/keys/signing"
	git -C "$WORK" config commit.gpgsign true
	git -C "$WORK" checkout --quiet -b main
	mkdir -p "$WORK/sites" "$WORK/cue.mod"
	cp -r sites/example "$WORK/sites/"
	cp cue.mod/module.cue "$WORK/cue.mod/"
	fleet_cue >"$SITE/fleet.cue"
	"$DIR/dist/fsgit" vet --site "$SITE" >/dev/null || die "the fleet's site does not validate"
	git -C "$WORK" add -A
	git -C "$WORK" commit --quiet -m "example site on the fleet's container nodes"
	# -u: the work clone tracks origin/main, so `git push` alone works.
	git -C "$WORK" push --quiet -u origin main
	log "main at $(git -C "$WORK" rev-parse HEAD)"
}

# install_fsgit NODE: what an operator does on a fresh node.
install_fsgit() {
	local n="$1" c
	c=$(node_ctr "$n")
	docker exec -i "$c" sh -eu -c '
		install -m 0755 /opt/fsgit-dist/fsgit /opt/fsgit-dist/fsgit-core /opt/fsgit-dist/fsgit-iceberg /usr/local/bin/
		install -m 0644 /opt/fsgit-dist/fsgit.service /etc/systemd/system/fsgit.service
		install -d -m 0755 /etc/fsgit
		install -d -m 0700 /etc/fsgit/secrets
		cat >/etc/fsgit/agent.cue'  < <(agent_cue "$n")
	docker exec -i "$c" sh -c 'cat >/etc/fsgit/trusted-keys.pub' <"$DIR/keys/signing.pub"
	local s
	for s in $(secrets_of "$n"); do
		docker exec -i "$c" sh -eu -c "umask 077; mkdir -p /etc/fsgit/secrets/$(dirname "$s"); cat >/etc/fsgit/secrets/$s" <"$DIR/secrets/$s"
	done
	if [ "$n" = offline-1 ]; then
		# The Spark distribution the profile assumes in /opt/spark: a
		# placeholder that says what it would run and waits.
		docker exec -i "$c" sh -eu -c 'mkdir -p /opt/spark/sbin
cat >/opt/spark/sbin/start-thriftserver.sh <<"SH"
#!/bin/sh
# Stand-in for Spark'"'"'s start-thriftserver.sh (scripts/fleet.sh): no Spark distribution here.
echo "stand-in Spark Thrift Server $*: conf $SPARK_CONF_DIR, jars: $(ls "$SPARK_HOME/jars" | tr "\n" " ")"
java -version 2>&1 | head -n 1
exec sleep infinity
SH
printf "#!/bin/sh\nexit 0\n" >/opt/spark/sbin/stop-thriftserver.sh
chmod 0755 /opt/spark/sbin/*.sh'
	fi
	if [ "$n" = vector-1 ]; then
		# Weaviate's metrics at vector-1's fqdn: a forward to the Weaviate
		# container on the host's Engine (fleet plumbing, not the site's).
		docker exec -i "$c" sh -eu -c "cat >/etc/systemd/system/fleet-weaviate-metrics.socket <<UNIT
[Unit]
Description=fsgit fleet: Weaviate's metrics port at vector-1 (scripts/fleet.sh)
[Socket]
ListenStream=$WEAVIATE_METRICS_PORT
[Install]
WantedBy=sockets.target
UNIT
cat >/etc/systemd/system/fleet-weaviate-metrics.service <<UNIT
[Unit]
Description=fsgit fleet: forward to $P-weaviate:2112 (scripts/fleet.sh)
[Service]
ExecStart=/lib/systemd/systemd-socket-proxyd $P-weaviate:2112
UNIT
systemctl daemon-reload
systemctl enable --now fleet-weaviate-metrics.socket" >/dev/null 2>&1 || die "vector-1: the Weaviate metrics forward failed"
	fi
	docker exec "$c" sh -eu -c 'systemctl daemon-reload && systemctl enable --now fsgit.service' >/dev/null 2>&1 ||
		die "$n: systemctl enable --now fsgit failed"
}

wait_booted() {
	local n="$1" state i
	for i in $(seq 1 180); do
		state=$(in_node "$n" systemctl is-system-running 2>/dev/null || true)
		case "$state" in running | degraded) return 0 ;; esac
		sleep 0.5
	done
	docker logs --tail 40 "$(node_ctr "$n")" >&2
	die "$n: systemd not up within 90 s (is-system-running: $state)"
}

start_nodes() {
	local n extra
	for n in "${NODES[@]}"; do fqdn "$n" >/dev/null; done
	echo "${NODES[*]}" >"$DIR/nodes"
	for n in "${NODES[@]}"; do
		extra=()
		case "$n" in
		online-1 | offline-1) extra=(-v "$P-warehouse:/srv/iceberg-warehouse") ;;
		vector-1)
			mkdir -p "$DIR/weaviate"
			extra=(-v /var/run/docker.sock:/var/run/docker.sock -v "$DIR/weaviate:$DIR/weaviate")
			;;
		monitoring-1) extra=(-p "127.0.0.1:$PROMETHEUS_PORT:9090") ;;
		esac
		log "starting $P-$n (Debian bookworm, systemd as PID 1)"
		docker run -d --name "$(node_ctr "$n")" --label "$LABEL" --hostname "$n" \
			--network "$P" --network-alias "$n" --network-alias "$(fqdn "$n")" \
			"${NODE_FLAGS[@]}" -v "$DIR/dist:/opt/fsgit-dist:ro" "${extra[@]}" "$NODE_IMAGE" >/dev/null
	done
	for n in "${NODES[@]}"; do
		wait_booted "$n"
		install_fsgit "$n"
		log "$n: fsgit installed and enabled (systemctl enable --now fsgit)"
	done
}

# node_status NODE: `fsgit status -o json` on the node.
node_status() { in_node "$1" fsgit status -o json 2>/dev/null; }

# converged NODE REV
converged() {
	local out
	out=$(node_status "$1") || return 1
	grep -q '"converged": true' <<<"$out" && grep -q "\"appliedRevision\": \"$2\"" <<<"$out"
}

cmd_wait() {
	local rev="${1:-$(git -C "$WORK" rev-parse HEAD)}" start=$SECONDS pending n last=""
	log "waiting until every node is converged on ${rev:0:12}"
	while :; do
		pending=()
		for n in "${NODES[@]}"; do converged "$n" "$rev" || pending+=("$n"); done
		[ ${#pending[@]} = 0 ] && break
		if [ "${pending[*]}" != "$last" ]; then
			log "$((SECONDS - start)) s: waiting for ${pending[*]}"
			last="${pending[*]}"
		fi
		if [ $((SECONDS - start)) -ge "$WAIT_TIMEOUT" ]; then
			for n in "${pending[@]}"; do
				echo "--- $n is not converged:" >&2
				in_node "$n" fsgit status >&2 || true
				in_node "$n" journalctl -u fsgit -n 30 --no-pager >&2 || true
			done
			die "not every node converged within $WAIT_TIMEOUT s"
		fi
		sleep 1
	done
	log "every node converged on ${rev:0:12} in $((SECONDS - start)) s"
}

cmd_up() {
	if docker container inspect "$P-git" >/dev/null 2>&1 || [ -e "$DIR" ]; then
		log "a previous fleet $P is there: taking it down first"
		cmd_down
	fi
	build
	start_git
	push_site
	start_nodes
}

cmd_commit() {
	git -C "$WORK" add -A
	git -C "$WORK" commit --quiet -m "$1"
	git -C "$WORK" push --quiet
	git -C "$WORK" rev-parse HEAD
}

# agent_cost NODE: "<pid> <cpu ticks> <rss KiB> <CPUUsageNSec>" of the
# node's agent (ticks from /proc/PID/stat: utime + stime of the agent and
# of the children it waited for, such as the fsgit-iceberg helper; this
# host's cgroup v1 layout leaves systemd's CPUUsageNSec unset).
agent_cost() {
	in_node "$1" sh -c 'p=$(systemctl show -p MainPID --value fsgit)
set -- $(cut -d" " -f14-17 "/proc/$p/stat")
echo "$p $(($1 + $2 + $3 + $4)) $(ps -o rss= -p "$p" | tr -d " ") $(systemctl show -p CPUUsageNSec --value fsgit)"'
}

cmd_idle() {
	local secs="${1:-600}" n hz
	hz=$(getconf CLK_TCK)
	declare -A t0
	for n in "${NODES[@]}"; do t0[$n]=$(agent_cost "$n"); done
	log "measuring the agents for $secs s ($(in_node online-1 grep -o 'pollInterval: *"[^"]*"' /etc/fsgit/agent.cue)); leave the fleet alone meanwhile"
	sleep "$secs"
	printf '%-12s %10s %14s %10s\n' node "cpu (s)" "cpu per hour" "rss (MiB)"
	for n in "${NODES[@]}"; do
		local a b
		read -r -a a <<<"${t0[$n]}"
		read -r -a b <<<"$(agent_cost "$n")"
		[ "${a[0]}" = "${b[0]}" ] || log "$n: the agent restarted meanwhile (pid ${a[0]} -> ${b[0]}): figure void"
		awk -v n="$n" -v d="$((b[1] - a[1]))" -v hz="$hz" -v s="$secs" -v rss="${b[2]}" \
			'BEGIN { printf "%-12s %10.2f %12.1f s %10.1f\n", n, d / hz, d / hz * 3600 / s, rss / 1024 }'
	done
}

# cmd_serve starts `fsgit serve` on this machine for the fleet's status
# branch (the git server's published port), in the background; its pid and
# log are in $DIR, and cmd_down stops it.
cmd_serve() {
	local listen="${FLEET_SERVE_LISTEN:-127.0.0.1:8080}"
	[ -x "$TOP/bin/fsgit" ] || (cd "$TOP" && make -s build)
	if [ -f "$DIR/serve.pid" ] && kill -0 "$(cat "$DIR/serve.pid")" 2>/dev/null; then
		kill "$(cat "$DIR/serve.pid")" 2>/dev/null || true
	fi
	setsid "$TOP/bin/fsgit" serve --repo "http://127.0.0.1:$(git_port)/git/site.git" --interval 5s \
		--listen "$listen" </dev/null >"$DIR/serve.log" 2>&1 &
	echo $! >"$DIR/serve.pid"
	local i
	for i in $(seq 1 50); do
		curl -fsS "http://$listen/healthz" >/dev/null 2>&1 && {
			log "fleet view: http://$listen/ (fsgit serve, log $DIR/serve.log)"
			return 0
		}
		sleep 0.2
	done
	log "fsgit serve did not answer on $listen (is the port taken?); see $DIR/serve.log"
}

cmd_down() {
	local ids
	if [ -f "$DIR/serve.pid" ]; then
		kill "$(cat "$DIR/serve.pid")" 2>/dev/null || true
	fi
	ids=$(docker ps -aq --filter "label=$LABEL")
	# What vector-1 made on the host's Engine (fsgit labels them managed).
	ids="$ids $(docker ps -aq --filter "name=^/$P-weaviate\$") $(docker ps -aq --filter "name=^/$P-t2v\$")"
	ids=$(echo "$ids" | xargs -n1 | sort -u | xargs)
	if [ -n "$ids" ]; then
		log "removing containers: $(docker inspect -f '{{.Name}}' $ids | tr -d / | xargs)"
		docker rm -f -v $ids >/dev/null
	fi
	docker network rm "$P" >/dev/null 2>&1 && log "removed network $P" || true
	docker volume rm "$P-warehouse" >/dev/null 2>&1 && log "removed volume $P-warehouse" || true
	if [ -e "$DIR" ]; then
		rm -rf "$DIR"
		log "removed $DIR"
	fi
}

case "${1:-}" in
up) cmd_up ;;
wait) cmd_wait "${2:-}" ;;
commit) cmd_commit "${2:?commit message}" ;;
status) in_node online-1 fsgit status --fleet ;;
idle) cmd_idle "${2:-600}" ;;
serve) cmd_serve ;;
down) cmd_down ;;
build) build ;;
*)
	echo "usage: $0 up|wait [REV]|commit MESSAGE|status|idle [SECONDS]|serve|down" >&2
	exit 2
	;;
esac
