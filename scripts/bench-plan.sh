#!/usr/bin/env bash
# bench-plan.sh: how long `fsgit plan` takes on sites/example and on a
# generated site of N nodes (default 300), for a change that touches every
# online node (the buffer pool) and one that touches every node (a base
# profile setting). Prints one line per figure: median of R runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-300}"
R="${R:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/fsgit" ./cmd/fsgit

mkrepo() { # dir nodes
  local dir="$1" n="$2"
  mkdir -p "$dir"
  cp -r sites cue.mod "$dir/"
  mkdir -p "$dir/schema" && cp -r schema/profile "$dir/schema/"
  if [ "$n" -gt 0 ]; then
    {
      echo "package example"
      echo
      echo "nodes: {"
      roles=(feature_store_online feature_store_offline feature_store_vector)
      for i in $(seq 1 "$n"); do
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

time_plan() { # dir base head
  for _ in $(seq 1 "$R"); do
    s=$(date +%s.%N)
    "$work/fsgit" plan --repo "$1" --base "$2" --head "$3" -o markdown >/dev/null || [ $? -eq 2 ]
    e=$(date +%s.%N)
    echo "$e - $s" | bc
  done | median
}

mkrepo "$work/example" 0
mkrepo "$work/big" "$N"
nodes_big=$(( N + 3 ))
echo "plan sites/example (3 nodes), buffer pool change: $(time_plan "$work/example" HEAD~2 HEAD~1) s"
echo "plan sites/example (3 nodes), base profile change: $(time_plan "$work/example" HEAD~1 HEAD) s"
echo "plan generated site ($nodes_big nodes), buffer pool change: $(time_plan "$work/big" HEAD~2 HEAD~1) s"
echo "plan generated site ($nodes_big nodes), base profile change: $(time_plan "$work/big" HEAD~1 HEAD) s"
/usr/bin/time -f "plan generated site ($nodes_big nodes), peak RSS: %M KiB" "$work/fsgit" plan --repo "$work/big" --base HEAD~1 --head HEAD -o json >/dev/null || true
