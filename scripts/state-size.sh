#!/bin/sh
# state-size.sh: the state file's size and the peak RSS of `fsgit apply
# --once` for one file resource with large inline content (issue 12, item
# 8). Usage: scripts/state-size.sh [FSGIT_BINARY] (default: builds
# ./cmd/fsgit). Prints one line per content size: exit code, peak RSS,
# state.db size. Content over 1 MiB is refused by the schema (exit 1).
set -eu
bin=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$bin" ]; then
	bin=$work/fsgit
	go build -o "$bin" ./cmd/fsgit
fi
for size in 1000000 50000000; do
	site=$work/site-$size
	mkdir -p "$site"
	python3 - "$size" "$site/site.cue" <<'PY'
import sys
size, out = int(sys.argv[1]), sys.argv[2]
parts, n, i = [], 0, 0
while n < size:
    s = "feature,store,row,%d,0.12345,abcdef\\n" % i
    parts.append(s); n += len(s) - 1; i += 1
open(out, "w").write('''package big

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "big"
roles: r: profiles: []
nodes: "n1": {
	role: "r"
	resources: "file:/srv/big.bin": content: "%s"
}
''' % "".join(parts))
PY
	root=$work/root-$size
	/usr/bin/time -f "%x %M" -o "$work/time" "$bin" apply --once --site "$site" --node n1 --root "$root" --no-cache >/dev/null 2>"$work/err" || true
	read -r code rss <<TIME
$(tail -n 1 "$work/time")
TIME
	db=$(stat -c %s "$root/var/lib/fsgit/state.db" 2>/dev/null || echo none)
	printf 'content %9d bytes: exit %s, peak RSS %6d KiB, state.db %s bytes\n' "$size" "$code" "$rss" "$db"
done
