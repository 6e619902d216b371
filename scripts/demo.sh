#!/usr/bin/env bash
# demo.sh: the example stack converging on this machine, driven by git.
#
# It builds fsgit, makes a git repository from sites/example (plus one file,
# demo.cue, that points the nodes' endpoints at what this script starts),
# starts a MariaDB from Debian's package on a local socket, and runs one
# `fsgit agent` per example node against the repository, each with its own
# sandbox root (nothing under / is touched; the Weaviate and vectorizer
# containers do run on the Docker Engine, under fsgit-demo-* names). It
# waits until every node reports converged, prints `fsgit status --fleet`,
# then commits a change and shows it arrive, and edits a managed file by
# hand and shows it corrected.
#
# What cannot be fetched here is stood in for, and said so: the Spark jars
# are placeholder files on a local mirror (their digests pinned in
# demo.cue), the vectorizer is cmd/t2v-standin (scripts/build-images.sh).
# Services, packages and accounts are reported as skipped under a sandbox
# root: they act on the host.
#
# Everything lives under $FSGIT_DEMO_DIR (default /tmp/fsgit-demo);
# scripts/demo-down.sh stops what this started and removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
DEMO="${FSGIT_DEMO_DIR:-/tmp/fsgit-demo}"
FSGIT="$TOP/bin/fsgit"
NODES=(online-1 offline-1 vector-1)
INTERVAL="${DEMO_INTERVAL:-2s}"
WEAVIATE_PORT="${DEMO_WEAVIATE_PORT:-18080}"
WEAVIATE_IMAGE="fsgit.local/weaviate:${WEAVIATE_VERSION:-1.35.2}"
T2V_IMAGE="fsgit.local/t2v-transformers:standin-1"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

need() {
	command -v "$1" >/dev/null 2>&1 || [ -x "$2" ] || die "$1 is missing: $3"
}
need go /usr/local/go/bin/go "install Go (see README)"
need git /usr/bin/git "apt-get install git"
need docker /usr/bin/docker "install the Docker Engine"
need mariadbd /usr/sbin/mariadbd "apt-get install mariadb-server"
need mariadb-install-db /usr/bin/mariadb-install-db "apt-get install mariadb-server"
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

# A demo left running is taken down first: the demo always starts clean.
if [ -e "$DEMO" ]; then
	say "removing the previous demo in $DEMO"
	scripts/demo-down.sh
fi

say "building fsgit"
make -s build
"$FSGIT" version

say "building the local images (cached after the first time)"
scripts/build-images.sh

mkdir -p "$DEMO"
DEMO=$(cd "$DEMO" && pwd)

say "starting MariaDB (Debian's mariadbd) on $DEMO/mariadb/mysqld.sock"
DB="$DEMO/mariadb"
mkdir -p "$DB"
user_arg=()
[ "$(id -u)" = 0 ] && user_arg=(--user=root)
mariadb-install-db --no-defaults --datadir="$DB/data" --auth-root-authentication-method=socket \
	--skip-test-db "${user_arg[@]}" >"$DB/install.log" 2>&1 || { cat "$DB/install.log"; die "mariadb-install-db failed"; }
setsid "$MARIADBD" --no-defaults --datadir="$DB/data" --socket="$DB/mysqld.sock" --pid-file="$DB/mariadbd.pid" \
	--log-error="$DB/error.log" --skip-networking --innodb-buffer-pool-size=64M --performance-schema=OFF \
	"${user_arg[@]}" </dev/null >"$DB/stdout.log" 2>&1 &
for _ in $(seq 1 120); do
	[ -S "$DB/mysqld.sock" ] && mariadb-admin --socket="$DB/mysqld.sock" ping >/dev/null 2>&1 && break
	sleep 0.5
done
mariadb-admin --socket="$DB/mysqld.sock" ping >/dev/null 2>&1 || { tail -n 30 "$DB/error.log"; die "MariaDB did not start"; }
echo "MariaDB $(mariadb --socket="$DB/mysqld.sock" -N -e 'SELECT VERSION()') is up"

say "writing the nodes' secrets (files only root can read)"
SECRETS="$DEMO/secrets"
mkdir -p "$SECRETS/mariadb" "$SECRETS/iceberg" "$SECRETS/monitoring"
chmod 0700 "$SECRETS" "$SECRETS/mariadb" "$SECRETS/iceberg" "$SECRETS/monitoring"
for s in mariadb/fs_user iceberg/catalog_user monitoring/mysqld_exporter; do
	(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$SECRETS/$s")
done
echo "mariadb/fs_user, iceberg/catalog_user, monitoring/mysqld_exporter (values never printed)"

say "making a local jar mirror (placeholder jars: nothing can be downloaded here)"
MIRROR="$DEMO/mirror"
jar() { # groupPath artifact version -> prints sha256
	local d="$MIRROR/$1/$2/$3" f="$2-$3.jar"
	mkdir -p "$d"
	printf 'fsgit demo stand-in for %s/%s/%s (no network to fetch the real jar)\n' "$1" "$2" "$3" >"$d/$f"
	sha256sum "$d/$f" | cut -d' ' -f1
}
ICEBERG_SHA=$(jar org/apache/iceberg iceberg-spark-runtime-3.4_2.12 1.4.2)
AWS_SHA=$(jar software/amazon/awssdk bundle 2.17.230)
JDBC_SHA=$(jar org/mariadb/jdbc mariadb-java-client 3.1.4)
mkdir -p "$DEMO/warehouse"

say "making the site repository $DEMO/repo.git"
git init --quiet --bare --initial-branch=main "$DEMO/repo.git"
WORK="$DEMO/work"
git init --quiet --initial-branch=main "$WORK"
git -C "$WORK" config user.name "fsgit demo"
git -C "$WORK" config user.email "demo@fsgit.invalid"
git -C "$WORK" remote add origin "$DEMO/repo.git"
mkdir -p "$WORK/sites" "$WORK/cue.mod"
cp -r sites/example "$WORK/sites/"
cp cue.mod/module.cue "$WORK/cue.mod/"
demo_cue() { # $1: extra online-1 databases
	cat <<CUE
package example

// demo.cue points the example nodes at what scripts/demo.sh started on
// this machine. Every value here is a node-level setting of a profile
// parameter that no other layer sets (see docs/site-authoring.md).
nodes: "online-1": data: mariadb: {
	socket: "$DB/mysqld.sock"
	databases: {$1}
}
nodes: "offline-1": data: {
	spark: {
		// Accounts cannot be made under a sandbox root: run as root.
		user:   "root"
		group:  "root"
		mirror: "file://$MIRROR"
		master: "local[2]"
		jars: {
			iceberg: sha256:     "$ICEBERG_SHA"
			awsSdk: sha256:      "$AWS_SHA"
			mariadbJdbc: sha256: "$JDBC_SHA"
		}
	}
	iceberg: {
		warehouse: "file://$DEMO/warehouse"
		db: socket: "$DB/mysqld.sock"
	}
}
nodes: "vector-1": data: weaviate: {
	engine: manage: false
	image:     "$WEAVIATE_IMAGE"
	pull:      "never"
	container: "fsgit-demo-weaviate"
	network:   "fsgit-demo"
	port:      $WEAVIATE_PORT
	hostIP:    "127.0.0.1"
	env: CLUSTER_ADVERTISE_ADDR: "127.0.0.1"
	vectorizer: {
		image:     "$T2V_IMAGE"
		container: "fsgit-demo-t2v"
	}
}
CUE
}
demo_cue "" >"$WORK/sites/example/demo.cue"
"$FSGIT" vet --site "$WORK/sites/example" || die "the demo site does not validate"
git -C "$WORK" add -A
git -C "$WORK" commit --quiet -m "example site, pointed at the demo's endpoints"
git -C "$WORK" push --quiet -u origin main
C1=$(git -C "$WORK" rev-parse HEAD)
echo "main at $C1"

say "starting one agent per node (poll interval $INTERVAL)"
for n in "${NODES[@]}"; do
	d="$DEMO/nodes/$n"
	mkdir -p "$d/root"
	cat >"$d/agent.cue" <<CUE
node: "$n"
source: {
	url:          "file://$DEMO/repo.git"
	site:         "sites/example"
	pollInterval: "$INTERVAL"
	jitter:       "500ms"
}
root:      "$d/root"
stateFile: "$d/state.db"
cacheDir:  "$d/cache"
socket:    "$d/fsgit.sock"
secrets: dir: "$SECRETS"
CUE
	setsid "$FSGIT" agent --config "$d/agent.cue" </dev/null >"$d/agent.log" 2>&1 &
	echo $! >"$d/agent.pid"
	echo "$n: pid $(cat "$d/agent.pid"), log $d/agent.log, root $d/root"
done

# converged NODE REV: the node reports itself converged on REV.
converged() {
	local out
	out=$("$FSGIT" status --config "$DEMO/nodes/$1/agent.cue" -o json 2>/dev/null) || return 1
	grep -q '"converged": true' <<<"$out" && grep -q "\"appliedRevision\": \"$2\"" <<<"$out"
}
wait_all() { # REV TIMEOUT_S
	local start=$SECONDS pending
	while :; do
		pending=()
		for n in "${NODES[@]}"; do converged "$n" "$1" || pending+=("$n"); done
		[ ${#pending[@]} = 0 ] && return 0
		if [ $((SECONDS - start)) -ge "$2" ]; then
			for n in "${pending[@]}"; do
				echo "--- $n is not converged:"
				"$FSGIT" status --config "$DEMO/nodes/$n/agent.cue" || true
				tail -n 20 "$DEMO/nodes/$n/agent.log"
			done
			die "not every node converged within $2 s"
		fi
		sleep 1
	done
}

say "waiting until every node reports converged on ${C1:0:12}"
t0=$SECONDS
wait_all "$C1" 600
echo "all converged in $((SECONDS - t0)) s"
sleep 3 # let the last status reach the branch
say "fsgit status --fleet (read from the status branch fsgit/status)"
"$FSGIT" status --fleet --config "$DEMO/nodes/online-1/agent.cue"
say "fsgit status on online-1 (asked over its socket)"
"$FSGIT" status --config "$DEMO/nodes/online-1/agent.cue"

say "fsgit verify: a feature written through all three stores and read back"
"$FSGIT" verify --site "$WORK/sites/example" --secrets-dir "$SECRETS" --root "$DEMO/nodes/offline-1/root" ||
	die "fsgit verify failed"

say "committing a change: a new database on online-1"
demo_cue "demo_features: {}" >"$WORK/sites/example/demo.cue"
git -C "$WORK" commit --quiet -am "online-1: add database demo_features"
git -C "$WORK" push --quiet origin main
C2=$(git -C "$WORK" rev-parse HEAD)
t0=$(date +%s%N)
until converged online-1 "$C2"; do sleep 0.1; done
t1=$(date +%s%N)
echo "online-1 converged on ${C2:0:12} $(((t1 - t0) / 1000000)) ms after the push"
mariadb --socket="$DB/mysqld.sock" -N -e "SHOW DATABASES LIKE 'demo\\_features'"
wait_all "$C2" 120

say "editing a managed file by hand on online-1"
CNF="$DEMO/nodes/online-1/root/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf"
before=$(sha256sum "$CNF" | cut -d' ' -f1)
echo "max_connections = 1" >>"$CNF"
echo "appended 'max_connections = 1' to $CNF"
for _ in $(seq 1 100); do
	[ "$(sha256sum "$CNF" | cut -d' ' -f1)" = "$before" ] && break
	sleep 0.05
done
[ "$(sha256sum "$CNF" | cut -d' ' -f1)" = "$before" ] || die "the hand edit was not corrected"
grep 'drift corrected' "$DEMO/nodes/online-1/agent.log" | tail -n 1

say "agents' memory (RSS) now"
for n in "${NODES[@]}"; do
	printf '%-10s %s\n' "$n" "$(grep VmRSS "/proc/$(cat "$DEMO/nodes/$n/agent.pid")/status" | tr -s ' ' | cut -d' ' -f2-3)"
done

say "the demo is running"
cat <<TXT
  fsgit status --fleet --config $DEMO/nodes/online-1/agent.cue
  fsgit status --config $DEMO/nodes/vector-1/agent.cue
  Weaviate: curl -s http://127.0.0.1:$WEAVIATE_PORT/v1/schema
  push a change: cd $WORK && sed -i 's/maxConnections:       500/maxConnections:       600/' sites/example/roles.cue && git commit -qam "online-1: max_connections 600" && git push
  logs: $DEMO/nodes/*/agent.log
  stop and remove everything: make demo-down
TXT
