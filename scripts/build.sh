#!/usr/bin/env bash
# build.sh: build fsgit into a directory, as it is installed:
#   DIR/fsgit-core     the full fsgit (go build ./cmd/fsgit): every command
#   DIR/fsgit          its front for cached runs (go build -tags lean
#                      ./cmd/fsgit), stamped with fsgit-core's build identity:
#                      it runs `fsgit apply --once` from the node's compiled
#                      catalog cache itself and hands every other command to
#                      fsgit-core beside it (cmd/fsgit/front.go)
#   DIR/fsgit-iceberg  the Iceberg catalog helper
# The three are built from this tree, one after the other; install them
# together, in one directory.
#
# Usage: scripts/build.sh [DIR]        (default: bin)
# Environment: GO (default go), GOFLAGS, CGO_ENABLED and the other go
# variables apply to all three builds.
set -euo pipefail

DIR=${1:-bin}
GO=${GO:-go}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cd "$REPO"

"$GO" build -o "$DIR/fsgit-core.new" ./cmd/fsgit
id=$("$DIR/fsgit-core.new" version --build-identity)
case $id in
*"'"* | *'"'*) echo "build.sh: the build identity has a quote: $id" >&2; exit 1 ;;
esac
"$GO" build -tags lean -ldflags "-X 'main.coreBuild=$id'" -o "$DIR/fsgit.new" ./cmd/fsgit
"$GO" build -o "$DIR/fsgit-iceberg.new" ./cmd/fsgit-iceberg
# Renamed into place one after the other. A front beside a core it was
# not built with is still sound: it runs only the catalogs compiled by the
# core it was stamped with, and hands every other run to the core beside
# it.
mv -f "$DIR/fsgit-iceberg.new" "$DIR/fsgit-iceberg"
mv -f "$DIR/fsgit-core.new" "$DIR/fsgit-core"
mv -f "$DIR/fsgit.new" "$DIR/fsgit"
