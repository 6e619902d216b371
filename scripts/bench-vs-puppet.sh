#!/usr/bin/env bash
# bench-vs-puppet.sh: time fsgit and Puppet on the same catalog, whole
# process, median of several runs.
#
# The catalog: one directory and FILES (default 1,000) files in it, each with
# content, owner, group and mode. For each tool it times
#   first run  (nothing there yet: the tool's state and the files removed),
#   no-op run  (everything converged, nothing to change),
#   drift run  (one file's content changed behind the tool's back, corrected),
# prints one line per figure, fsgit's peak RSS, and ends with
#   noop ratio fsgit/puppet = R
# (after the first-run ratio, `first ratio fsgit/puppet = R`).
#
# Before each first run the file system is synced (untimed), so that a tool
# that syncs, as fsgit does once per run, pays only for its own writes.
#
# Each first run goes into a fresh directory: the previous run's tree is
# moved aside (a rename), not removed, because removing a thousand files just
# before the run makes ext4's inode allocation for the new ones slower. The
# trees moved aside are removed after all runs.
#
# fsgit caches the node's compiled catalog next to its state, keyed by the
# site's content: its first run evaluates the CUE site (the tool's state is
# removed before each first run), its no-op and drift runs read the cache, as
# a node's runs do until the site changes. For comparison fsgit also has a
# no-op run with --no-cache (the CUE site evaluated on every run), printed
# before the ratio with its own ratio.
#
# fsgit runs as `fsgit apply --once --site DIR --node N --root DIR` on a
# generated CUE site whose node declares the resources itself; Puppet runs as
# `puppet apply` on the equivalent manifest, with its own confdir and vardir
# so that the host's Puppet set-up is neither used nor touched.
#
# Usage: scripts/bench-vs-puppet.sh [-n RUNS] [-f FILES] [-k] [-p|-g]
#   -n RUNS   runs per figure (default 5); the median is printed
#   -f FILES  number of files (default 1000)
#   -k        keep the work directory
#   -p        Puppet only (no fsgit build)
#   -g        fsgit only
# Environment: FSGIT=path to a built fsgit (default: built from this tree
# by scripts/build.sh, as it is installed: the fsgit users run is the front
# for cached runs, which hands what it does not run itself to fsgit-core
# beside it),
# FSGIT_APPLY_ARGS=extra arguments for fsgit apply.
set -euo pipefail

RUNS=5
FILES=1000
KEEP=0
DO_PUPPET=1
DO_FSGIT=1
while getopts "n:f:kpg" opt; do
	case $opt in
	n) RUNS=$OPTARG ;;
	f) FILES=$OPTARG ;;
	k) KEEP=1 ;;
	p) DO_FSGIT=0 ;;
	g) DO_PUPPET=0 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 1 ;;
	esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/fsgit-bench.XXXXXX)
mkdir "$WORK/aside"
cleanup() { if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

die() { echo "bench-vs-puppet: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

# --- tools -------------------------------------------------------------

ensure_puppet() {
	command -v puppet >/dev/null 2>&1 && return
	[ "$(id -u)" = 0 ] || die "puppet is not installed and installing it needs root"
	note "installing Debian's puppet-agent"
	export DEBIAN_FRONTEND=noninteractive
	if apt-cache show puppet-agent >/dev/null 2>&1; then
		apt-get install -y puppet-agent >&2
	else
		apt-get install -y puppet >&2
	fi
	command -v puppet >/dev/null 2>&1 || die "puppet still not found after installing"
}

ensure_fsgit() {
	if [ -n "${FSGIT:-}" ]; then
		[ -x "$FSGIT" ] || die "FSGIT=$FSGIT is not executable"
		return
	fi
	note "building fsgit (scripts/build.sh: the front for cached runs and fsgit-core)"
	"$REPO/scripts/build.sh" "$WORK/bin" >&2 || die "the build failed"
	FSGIT=$WORK/bin/fsgit
}

# --- the catalog, twice ---------------------------------------------------

# content_of N prints the content of file N with "\n" escapes, the same
# string literal in CUE and in Puppet (no $, no quote, no other escape).
content_of() {
	local i=$1
	printf '# managed by the fsgit benchmark\\nid = %d\\nname = feature-store-%04d\\nbuffer_pool_size = %dM\\nlisten = 127.0.0.1:%d\\n' \
		"$i" "$i" $((128 + i % 64)) $((20000 + i))
}

mode_of() {
	case $(($1 % 3)) in
	0) echo 0644 ;;
	1) echo 0640 ;;
	2) echo 0600 ;;
	esac
}

file_name() { printf 'f%04d.conf' "$1"; }

# gen_site writes a CUE site with one node, bench, whose resources are the
# directory /bench/files and the files in it.
gen_site() {
	local dir=$WORK/site
	mkdir -p "$dir"
	{
		cat <<-'EOF'
			package bench

			import "github.com/fsgit/fsgit/schema"

			schema.#Site

			schemaVersion: schema.#Version
			name:          "bench"
			roles: bench: profiles: []
			nodes: bench: role: "bench"
			nodes: bench: resources: {
				"directory:/bench/files": {mode: "0755"}
		EOF
		local i
		for ((i = 1; i <= FILES; i++)); do
			printf '\t"file:/bench/files/%s": {\n\t\trequire: ["directory:/bench/files"]\n\t\tmode:    "%s"\n\t\tcontent: "%s"\n\t}\n' \
				"$(file_name "$i")" "$(mode_of "$i")" "$(content_of "$i")"
		done
		echo "}"
	} >"$dir/site.cue"
}

# gen_manifest writes the equivalent Puppet manifest for files under $1.
gen_manifest() {
	local base=$1 i
	{
		printf "file { '%s':\n  ensure => directory,\n  owner  => 'root',\n  group  => 'root',\n  mode   => '0755',\n}\n" "$base"
		for ((i = 1; i <= FILES; i++)); do
			printf "file { '%s/%s':\n  ensure  => file,\n  owner   => 'root',\n  group   => 'root',\n  mode    => '%s',\n  content => \"%s\",\n}\n" \
				"$base" "$(file_name "$i")" "$(mode_of "$i")" "$(content_of "$i")"
		done
	} >"$WORK/site.pp"
}

# --- timing ---------------------------------------------------------------

# timed LABEL CMD...: runs CMD once, appends its wall time (microseconds)
# to $WORK/t.LABEL and its peak RSS (KiB) to $WORK/rss.LABEL. Exit codes 0
# and 2 (changes) are success, as with Puppet's --detailed-exitcodes. The
# clock is bash's own ($EPOCHREALTIME), read without a process: a `date`
# before and after each run added ~1.7 ms of two processes to every
# figure. /usr/bin/time, for the peak RSS, stays inside the interval (its
# fork and exec: 2.6-3.1 ms with /bin/true as CMD), for both tools alike.
timed() {
	local label=$1
	shift
	local start end rc=0
	start=${EPOCHREALTIME//[.,]/}
	/usr/bin/time -f '%M' -o "$WORK/rss.last" "$@" >"$WORK/out.last" 2>&1 || rc=$?
	end=${EPOCHREALTIME//[.,]/}
	if [ "$rc" != 0 ] && [ "$rc" != 2 ]; then
		cat "$WORK/out.last" >&2
		die "$label: $1 exited $rc"
	fi
	echo "$((end - start))" >>"$WORK/t.$label"
	tail -n1 "$WORK/rss.last" >>"$WORK/rss.$label"
	LAST_RC=$rc
}

# median FILE prints the median of the numbers in FILE.
median() {
	sort -n "$1" | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

seconds() { awk -v us="$1" 'BEGIN {printf "%.4f", us / 1e6}'; }

report() {
	local tool=$1 what=$2 label=$3
	printf '%s %s: %s s (median of %d)\n' "$tool" "$what" "$(seconds "$(median "$WORK/t.$label")")" "$RUNS"
}

# aside DIR...: moves each DIR that exists out of the way, into a fresh
# directory under $WORK/aside, so that a first run starts from nothing
# without an rm -rf just before it.
aside() {
	local d dest
	dest=$(mktemp -d "$WORK/aside/XXXXXX")
	for d in "$@"; do
		if [ -e "$d" ]; then mv "$d" "$dest/"; fi
	done
}

# Each tool is described by three variables: <tool>_files (its files
# directory), <tool>_reset (a function that removes its files and state) and
# the array <tool>_cmd (its apply command).

# first_runs TOOL: RUNS first runs, each from nothing.
first_runs() {
	local tool=$1 i reset cmd
	reset=${tool}_reset
	cmd="${tool}_cmd[@]"
	for ((i = 0; i < RUNS; i++)); do
		$reset
		# Each first run flushes only what it wrote itself: fsgit's
		# commit syncs the file system (syncfs), which would otherwise
		# also write out what the runs before it left unwritten (Puppet
		# syncs nothing; with 3,000 small files left dirty, 3 first runs
		# of 4 were 67-115 ms slower here). Untimed, alike for both.
		sync
		timed "$tool.first" "${!cmd}"
		[ "$LAST_RC" = 2 ] || die "$tool first run changed nothing (exit $LAST_RC): $(head -c 2000 "$WORK/out.last")"
	done
	local files=${tool}_files
	check_tree "$tool" "${!files}"
}

# noop_run TOOL: one run with nothing to change.
noop_run() {
	local tool=$1 cmd="${1}_cmd[@]"
	timed "$tool.noop" "${!cmd}"
	[ "$LAST_RC" = 0 ] || die "$tool no-op run reported changes (exit $LAST_RC): $(head -c 2000 "$WORK/out.last")"
}

# noop_nocache_run: one fsgit run with nothing to change that evaluates the
# CUE site instead of reading the cached catalog.
noop_nocache_run() {
	timed fsgit.noop-nocache "${fsgit_cmd[@]}" --no-cache
	[ "$LAST_RC" = 0 ] || die "fsgit no-op run (--no-cache) reported changes (exit $LAST_RC): $(head -c 2000 "$WORK/out.last")"
}

# drift_run TOOL: change one file behind the tool's back; one run fixes it.
drift_run() {
	local tool=$1 cmd="${1}_cmd[@]" files=${1}_files victim
	victim=${!files}/$(file_name $((FILES / 2)))
	echo "drifted" >"$victim"
	timed "$tool.drift" "${!cmd}"
	[ "$LAST_RC" = 2 ] || die "$tool drift run changed nothing (exit $LAST_RC): $(head -c 2000 "$WORK/out.last")"
	grep -q '^id = ' "$victim" || die "$tool did not correct the drifted file"
}

# check_tree TOOL DIR: the tree holds FILES files with the right modes and
# content, identical for both tools (same digest of names, modes, content).
check_tree() {
	local tool=$1 dir=$2 n sum
	n=$(find "$dir" -maxdepth 1 -type f -name 'f*.conf' | wc -l)
	[ "$n" = "$FILES" ] || die "$tool: $n files in $dir, want $FILES"
	sum=$(cd "$dir" && for f in f*.conf; do printf '%s %s %s\n' "$f" "$(stat -c '%a %U %G' "$f")" "$(sha256sum <"$f")"; done | sha256sum | cut -c1-16)
	note "$tool tree digest $sum"
	echo "$sum" >"$WORK/digest.$tool"
}

# --- Puppet -----------------------------------------------------------------

puppet_files=$WORK/puppet-root/bench/files
puppet_reset() { aside "$WORK/puppet-root" "$WORK/puppet-home/var"; mkdir -p "$WORK/puppet-root/bench"; }
setup_puppet() {
	local h=$WORK/puppet-home
	mkdir -p "$h/conf" "$h/code"
	ensure_puppet
	gen_manifest "$puppet_files"
	puppet_cmd=(puppet apply --detailed-exitcodes --color=false
		--confdir "$h/conf" --codedir "$h/code" --vardir "$h/var" --logdir "$h/log" --rundir "$h/run"
		"$WORK/site.pp")
	note "puppet $(puppet --version), $FILES files, $RUNS runs per figure"
}

# --- fsgit ------------------------------------------------------------------

fsgit_root=$WORK/fsgit-root
fsgit_files=$fsgit_root/bench/files
fsgit_reset() { aside "$fsgit_root"; mkdir -p "$fsgit_root"; }
setup_fsgit() {
	ensure_fsgit
	gen_site
	# shellcheck disable=SC2206
	fsgit_cmd=("$FSGIT" apply --once --site "$WORK/site" --node bench --root "$fsgit_root" ${FSGIT_APPLY_ARGS:-})
	note "$("$FSGIT" version 2>/dev/null | head -n1), $FILES files, $RUNS runs per figure"
}

# --- main -------------------------------------------------------------------

TOOLS=()
[ "$DO_PUPPET" = 1 ] && TOOLS+=(puppet)
[ "$DO_FSGIT" = 1 ] && TOOLS+=(fsgit)
for t in "${TOOLS[@]}"; do "setup_$t"; done
for t in "${TOOLS[@]}"; do first_runs "$t"; done
# No-op and drift runs alternate between the tools, so that a change in the
# machine's load weighs on both alike.
for ((i = 0; i < RUNS; i++)); do
	for t in "${TOOLS[@]}"; do noop_run "$t"; done
	if [ "$DO_FSGIT" = 1 ]; then noop_nocache_run; fi
done
for ((i = 0; i < RUNS; i++)); do
	for t in "${TOOLS[@]}"; do drift_run "$t"; done
done
for t in "${TOOLS[@]}"; do
	files_var=${t}_files
	check_tree "$t" "${!files_var}"
done

if [ "$DO_PUPPET" = 1 ]; then
	report puppet "first run" puppet.first
	report puppet "no-op run" puppet.noop
	report puppet "drift run (1 file corrected)" puppet.drift
fi
if [ "$DO_FSGIT" = 1 ]; then
	report fsgit "first run" fsgit.first
	report fsgit "no-op run" fsgit.noop
	report fsgit "no-op run, CUE evaluated (--no-cache)" fsgit.noop-nocache
	report fsgit "drift run (1 file corrected)" fsgit.drift
	printf 'fsgit peak RSS: first %d MiB, no-op %d MiB, drift %d MiB (max of runs)\n' \
		$(($(sort -n "$WORK/rss.fsgit.first" | tail -n1) / 1024)) \
		$(($(sort -n "$WORK/rss.fsgit.noop" | tail -n1) / 1024)) \
		$(($(sort -n "$WORK/rss.fsgit.drift" | tail -n1) / 1024))
fi
if [ "$DO_PUPPET" = 1 ] && [ "$DO_FSGIT" = 1 ]; then
	[ "$(cat "$WORK/digest.puppet")" = "$(cat "$WORK/digest.fsgit")" ] ||
		die "the two tools left different trees"
	awk -v f="$(median "$WORK/t.fsgit.first")" -v p="$(median "$WORK/t.puppet.first")" \
		'BEGIN {printf "first ratio fsgit/puppet = %.4f\n", f / p}'
	awk -v f="$(median "$WORK/t.fsgit.noop-nocache")" -v p="$(median "$WORK/t.puppet.noop")" \
		'BEGIN {printf "noop ratio fsgit --no-cache/puppet = %.4f\n", f / p}'
	awk -v f="$(median "$WORK/t.fsgit.noop")" -v p="$(median "$WORK/t.puppet.noop")" \
		'BEGIN {printf "noop ratio fsgit/puppet = %.4f\n", f / p}'
fi
