#!/usr/bin/env bash
# pr-plan.sh: what a pipeline runs on a pull request. It vets the site at
# the head revision, then plans the change against the merge base with the
# target branch, and writes the plan as markdown for a PR comment.
#
#   scripts/pr-plan.sh [--target BRANCH] [--site DIR] [--out FILE] [--fsgit BIN]
#
# Exit codes: 0 no node changes, 2 changes (the comment has them), 1 the
# site does not validate or the plan could not be made.
set -uo pipefail

target="${PLAN_TARGET:-origin/main}"
site="${PLAN_SITE:-sites/example}"
out="${PLAN_OUT:-fsgit-plan.md}"
fsgit="${FSGIT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --site) site="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --fsgit) fsgit="$2"; shift 2 ;;
    *) echo "pr-plan: unknown argument $1" >&2; exit 1 ;;
  esac
done

if [ -z "$fsgit" ]; then
  fsgit="$(mktemp -d)/fsgit"
  go build -o "$fsgit" ./cmd/fsgit || exit 1
fi

echo "pr-plan: vet $site"
if ! "$fsgit" vet --site "$site"; then
  { echo "### fsgit plan"; echo; echo "**The site does not validate**; see the job log for positions."; } > "$out"
  exit 1
fi

echo "pr-plan: plan $target...HEAD"
"$fsgit" plan --repo . --site "$site" --base "$target" --head HEAD --merge-base -o markdown > "$out"
rc=$?
case $rc in
  0|2) echo "pr-plan: wrote $out"; cat "$out"; exit $rc ;;
  *) echo "pr-plan: plan failed (exit $rc)" >&2; exit 1 ;;
esac
