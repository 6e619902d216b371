#!/usr/bin/env bash
# bench-plan.sh: how long fsgit takes on sites/example and on generated
# sites of N nodes (NS, default "300 1000"; the example's 4 nodes plus
# generated ones, a third per role), whole processes, median of R runs
# (default 5), wall time and CPU time (user + system):
#   - fsgit vet;
#   - fsgit render of one node (what an agent evaluates: its own node);
#   - fsgit plan of a change to one role (the online nodes' buffer pool)
#     and of a change to the base profile (every node).
# On a busy machine the CPU figures are the steadier ones. FSGIT=path
# measures that binary instead of building ./cmd/fsgit (e.g. an older one,
# for before/after figures).
set -euo pipefail
cd "$(dirname "$0")/.."
NS="${NS:-300 1000}"
R="${R:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "${FSGIT:-}" ]; then
  cp "$FSGIT" "$work/fsgit"
else
  go build -o "$work/fsgit" ./cmd/fsgit
fi

mkrepo() { # dir nodes
  local dir="$1" n="$2"
  mkdir -p "$dir"
  cp -r sites cue.mod "$dir/"
  mkdir -p "$dir/schema" && cp -r schema/profile "$dir/schema/"
  if [ "$n" -gt 4 ]; then
    {
      echo "package example"
      echo
      echo "nodes: {"
      roles=(feature_store_online feature_store_offline feature_store_vector)
      for i in $(seq 1 $((n - 4))); do
        r=${roles[$((i % 3))]}
        printf '\t"gen-%04d": {role: "%s", fqdn: "gen-%04d.internal"}\n' "$i" "$r" "$i"
      done
      echo "}"
    } > "$dir/sites/example/generated_nodes.cue"
  fi
  git -C "$dir" init -q -b main
  git -C "$dir" -c user.name=b -c user.email=b@b add -A
  git -C "$dir" -c user.name=b -c user.email=b@b commit -q -m base
  sed -i 's/innodbBufferPoolSize: "2G"/innodbBufferPoolSize: "4G"/' "$dir/sites/example/roles.cue"
  git -C "$dir" -c user.name=b -c user.email=b@b commit -q -am bufferpool
  sed -i 's/"MaxAuthTries \\(S.maxAuthTries)",/"MaxAuthTries \\(S.maxAuthTries)",\n\t\t\t\t\t"LoginGraceTime 30",/' "$dir/schema/profile/base.cue"
  git -C "$dir" -c user.name=b -c user.email=b@b commit -q -am profile
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# timed CMD...: "W s (CPU C s)", medians of R runs of a command whose exit
# status 0, 1 or 2 is expected (plan exits 2 on changes).
timed() {
  local t="$work/times"
  : > "$t"
  for _ in $(seq 1 "$R"); do
    /usr/bin/time -a -o "$t" -f "%e %U %S" "$@" >/dev/null 2>&1 || [ $? -le 2 ]
  done
  local wall cpu
  # time adds a line "Command exited with non-zero status N": skip it.
  wall=$(awk 'NF == 3 && $1 ~ /^[0-9.]+$/ {print $1}' "$t" | median)
  cpu=$(awk 'NF == 3 && $1 ~ /^[0-9.]+$/ {printf "%.2f\n", $2 + $3}' "$t" | median)
  echo "$wall s (CPU $cpu s)"
}

mkrepo "$work/n4" 4
echo "vet sites/example (4 nodes): $(timed "$work/fsgit" vet --site "$work/n4/sites/example")"
echo "render one node, sites/example (4 nodes): $(timed "$work/fsgit" render --site "$work/n4/sites/example" --node online-1 -o json)"
echo "plan sites/example (4 nodes), one role changed: $(timed "$work/fsgit" plan --repo "$work/n4" --base HEAD~2 --head HEAD~1 -o markdown)"
for n in $NS; do
  mkrepo "$work/n$n" "$n"
  echo "vet generated site ($n nodes): $(timed "$work/fsgit" vet --site "$work/n$n/sites/example")"
  echo "render one node, generated site ($n nodes): $(timed "$work/fsgit" render --site "$work/n$n/sites/example" --node online-1 -o json)"
  echo "plan generated site ($n nodes), one role changed: $(timed "$work/fsgit" plan --repo "$work/n$n" --base HEAD~2 --head HEAD~1 -o markdown)"
  echo "plan generated site ($n nodes), base profile changed: $(timed "$work/fsgit" plan --repo "$work/n$n" --base HEAD~1 --head HEAD -o markdown)"
done
last=$(echo "$NS" | awk '{print $NF}')
/usr/bin/time -f "plan generated site ($last nodes), base profile changed, peak RSS: %M KiB" "$work/fsgit" plan --repo "$work/n$last" --base HEAD~1 --head HEAD -o json >/dev/null 2>"$work/rss" || true
tail -1 "$work/rss"
