#!/usr/bin/env bash
# build-images.sh builds, and caches by version, the local Docker images that
# the docker and weaviate kinds' tests and the example site's weaviate_node
# profile use. No registry is reachable here, so nothing is pulled: each
# image is a static Go binary packed with `docker import` from a tiny root
# file system (no base image).
#
#   fsgit.local/weaviate:$WEAVIATE_VERSION
#       the real Weaviate server, built with
#       go install github.com/weaviate/weaviate/cmd/weaviate-server@v$WEAVIATE_VERSION
#   fsgit.local/weaviate:$WEAVIATE_VERSION-r2
#       the SAME server binary imported a second time with another label, so
#       that it has another image ID. It stands in for an image upgrade in the
#       "image bumped -> recreated with data kept" test (building a second
#       Weaviate release costs another ~10 minutes of compile here).
#   fsgit.local/t2v-transformers:standin-$STANDIN_VERSION
#       cmd/t2v-standin: a STAND-IN for semitechnologies/transformers-inference
#       (same HTTP contract, deterministic hashing embedder, no model weights).
#   fsgit.local/systemd:$SYSTEMD_SUITE
#       a Debian $SYSTEMD_SUITE root file system (debootstrap --variant=minbase
#       with systemd, systemd-sysv, dbus, from Debian's mirror) that boots
#       systemd as PID 1: the service kind's live test runs in it.
#   fsgit.local/node:$SYSTEMD_SUITE
#       the fleet's node (scripts/fleet.sh): the systemd image plus what a
#       freshly provisioned Debian VM has (apt sources with updates and
#       security, ca-certificates, iproute2, procps, curl, less) and
#       nothing a site installs itself: no MariaDB, no chrony, no Java, no
#       fsgit (installed when a node starts, as an operator would).
#   fsgit.local/fleet-git:$SYSTEMD_SUITE
#       the fleet's git server: the node image plus git (its http-backend
#       serves the site repository; test/e2e/gitserver is mounted in).
#
# The node and git images carry the hash of what they are built from as a
# label (fsgit.source-sha256) and are rebuilt when it changes.
#
# An image whose tag exists (and, for the stand-in, whose source hash label
# matches) is not rebuilt. The weaviate-server binary is cached under
# $FSGIT_CACHE (default ~/.cache/fsgit). Set FORCE=1 to rebuild everything.
set -euo pipefail

cd "$(dirname "$0")/.."

WEAVIATE_VERSION="${WEAVIATE_VERSION:-1.35.2}"
STANDIN_VERSION=1
CACHE="${FSGIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fsgit}"
FORCE="${FORCE:-0}"

WEAVIATE_IMAGE="fsgit.local/weaviate:${WEAVIATE_VERSION}"
WEAVIATE_BUMP_IMAGE="fsgit.local/weaviate:${WEAVIATE_VERSION}-r2"
STANDIN_IMAGE="fsgit.local/t2v-transformers:standin-${STANDIN_VERSION}"
SYSTEMD_SUITE="${SYSTEMD_SUITE:-bookworm}"
SYSTEMD_IMAGE="${SYSTEMD_IMAGE:-fsgit.local/systemd:${SYSTEMD_SUITE}}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_IMAGE="${NODE_IMAGE:-fsgit.local/node:${SYSTEMD_SUITE}}"
FLEET_GIT_IMAGE="${FLEET_GIT_IMAGE:-fsgit.local/fleet-git:${SYSTEMD_SUITE}}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log() { printf 'build-images: %s\n' "$*" >&2; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

image_label() {
	docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# rootfs_skeleton DIR: the few files a static Go server needs besides itself.
rootfs_skeleton() {
	local d="$1"
	mkdir -p "$d/bin" "$d/etc/ssl/certs" "$d/tmp"
	chmod 1777 "$d/tmp"
	if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
		cp /etc/ssl/certs/ca-certificates.crt "$d/etc/ssl/certs/"
	fi
	printf 'root:x:0:0:root:/:/bin/nologin\nnobody:x:65534:65534:nobody:/:/bin/nologin\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
	printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
}

# import_rootfs DIR TAG CHANGE...: pack DIR as a one-layer image.
import_rootfs() {
	local d="$1" tag="$2"
	shift 2
	local args=()
	for c in "$@"; do args+=(--change "$c"); done
	tar -C "$d" --owner=0 --group=0 --numeric-owner --sort=name --mtime='2000-01-01 00:00Z' -cf - . |
		docker import "${args[@]}" - "$tag" >/dev/null
	log "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
}

build_weaviate() {
	if [ "$FORCE" != 1 ] && have_image "$WEAVIATE_IMAGE"; then
		log "$WEAVIATE_IMAGE exists, skipped"
	else
		local bindir="$CACHE/bin/weaviate-$WEAVIATE_VERSION"
		if [ "$FORCE" = 1 ] || [ ! -x "$bindir/weaviate-server" ]; then
			log "compiling weaviate-server v$WEAVIATE_VERSION (takes 10+ minutes on 2 cores)"
			mkdir -p "$bindir"
			(cd "$CACHE" && CGO_ENABLED=0 GOBIN="$bindir" GOFLAGS=-buildvcs=false \
				go install -trimpath -ldflags='-s -w' \
				"github.com/weaviate/weaviate/cmd/weaviate-server@v$WEAVIATE_VERSION")
		fi
		local root="$WORK/weaviate"
		rootfs_skeleton "$root"
		cp "$bindir/weaviate-server" "$root/bin/weaviate"
		mkdir -p "$root/var/lib/weaviate"
		import_rootfs "$root" "$WEAVIATE_IMAGE" \
			'ENTRYPOINT ["/bin/weaviate"]' \
			'CMD ["--host", "0.0.0.0", "--port", "8080", "--scheme", "http"]' \
			'EXPOSE 8080/tcp' \
			'ENV PERSISTENCE_DATA_PATH=/var/lib/weaviate' \
			"LABEL org.opencontainers.image.title=weaviate org.opencontainers.image.version=$WEAVIATE_VERSION fsgit.image.source=github.com/weaviate/weaviate/cmd/weaviate-server@v$WEAVIATE_VERSION"
	fi
	if [ "$FORCE" != 1 ] && have_image "$WEAVIATE_BUMP_IMAGE"; then
		log "$WEAVIATE_BUMP_IMAGE exists, skipped"
		return
	fi
	# A second image ID with the same binary (see the header).
	local root="$WORK/weaviate-r2" cid
	mkdir -p "$root"
	cid="$(docker create "$WEAVIATE_IMAGE")"
	docker export "$cid" | tar -C "$root" -xf -
	docker rm "$cid" >/dev/null
	import_rootfs "$root" "$WEAVIATE_BUMP_IMAGE" \
		'ENTRYPOINT ["/bin/weaviate"]' \
		'CMD ["--host", "0.0.0.0", "--port", "8080", "--scheme", "http"]' \
		'EXPOSE 8080/tcp' \
		'ENV PERSISTENCE_DATA_PATH=/var/lib/weaviate' \
		"LABEL org.opencontainers.image.title=weaviate org.opencontainers.image.version=$WEAVIATE_VERSION-r2 fsgit.image.note=same-binary-as-$WEAVIATE_VERSION-second-image-id-for-upgrade-tests"
}

build_standin() {
	local sum
	sum="$(cat cmd/t2v-standin/*.go | sha256sum | cut -c1-16)"
	if [ "$FORCE" != 1 ] && have_image "$STANDIN_IMAGE" &&
		[ "$(image_label "$STANDIN_IMAGE" fsgit.source-sha256)" = "$sum" ]; then
		log "$STANDIN_IMAGE exists, skipped"
		return
	fi
	local root="$WORK/standin"
	rootfs_skeleton "$root"
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=standin-$STANDIN_VERSION" \
		-o "$root/bin/t2v-standin" ./cmd/t2v-standin
	import_rootfs "$root" "$STANDIN_IMAGE" \
		'ENTRYPOINT ["/bin/t2v-standin"]' \
		'EXPOSE 8080/tcp' \
		"LABEL org.opencontainers.image.title=t2v-transformers-standin org.opencontainers.image.version=standin-$STANDIN_VERSION fsgit.source-sha256=$sum fsgit.image.note=stand-in-for-semitechnologies/transformers-inference-hashing-embedder-no-model"
}

build_systemd() {
	if [ "$FORCE" != 1 ] && have_image "$SYSTEMD_IMAGE"; then
		log "$SYSTEMD_IMAGE exists, skipped"
		return
	fi
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	if ! command -v debootstrap >/dev/null; then
		log "installing debootstrap"
		$sudo apt-get update -q
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends debootstrap
	fi
	local root="$WORK/systemd" start
	start=$SECONDS
	log "debootstrap $SYSTEMD_SUITE from $DEBIAN_MIRROR (about a minute)"
	$sudo debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
		"$SYSTEMD_SUITE" "$root" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
		tail -n 20 "$WORK/debootstrap.log" >&2
		return 1
	}
	log "debootstrap took $((SECONDS - start))s"
	# No apt caches in the image; no getty on a console a container has not.
	$sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	$sudo rm -f "$root"/etc/systemd/system/getty.target.wants/*
	$sudo tar -C "$root" --numeric-owner --sort=name --mtime='2000-01-01 00:00Z' -cf - . |
		docker import --change 'CMD ["/lib/systemd/systemd"]' \
			--change 'ENV container=docker' \
			--change "LABEL org.opencontainers.image.title=systemd org.opencontainers.image.version=$SYSTEMD_SUITE fsgit.image.source=debootstrap-minbase-$SYSTEMD_SUITE" \
			- "$SYSTEMD_IMAGE" >/dev/null
	$sudo rm -rf "$root"
	log "built $SYSTEMD_IMAGE ($(docker image inspect -f '{{.Size}}' "$SYSTEMD_IMAGE") bytes)"
}

# build_derived TAG FROM DOCKERFILE: docker build TAG from the local image
# FROM (nothing is pulled), skipped when TAG carries the same source hash.
build_derived() {
	local tag="$1" from="$2" dockerfile="$3" sum
	sum="$(printf '%s\n%s\n' "$(docker image inspect -f '{{.Id}}' "$from")" "$dockerfile" | sha256sum | cut -c1-16)"
	if [ "$FORCE" != 1 ] && have_image "$tag" &&
		[ "$(image_label "$tag" fsgit.source-sha256)" = "$sum" ]; then
		log "$tag exists, skipped"
		return
	fi
	local start=$SECONDS
	log "building $tag from $from (apt-get from Debian's mirror, about a minute)"
	printf '%s\n' "$dockerfile" >"$WORK/Dockerfile"
	docker build -q --pull=false --label "fsgit.source-sha256=$sum" -t "$tag" -f "$WORK/Dockerfile" "$WORK" >"$WORK/build.log" 2>&1 || {
		tail -n 30 "$WORK/build.log" >&2
		return 1
	}
	log "built $tag in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
}

build_node() {
	have_image "$SYSTEMD_IMAGE" || build_systemd
	build_derived "$NODE_IMAGE" "$SYSTEMD_IMAGE" "FROM $SYSTEMD_IMAGE
LABEL org.opencontainers.image.title=fsgit-node org.opencontainers.image.version=$SYSTEMD_SUITE
# The apt sources of a Debian cloud image.
RUN printf 'deb http://deb.debian.org/debian $SYSTEMD_SUITE main\\ndeb http://deb.debian.org/debian $SYSTEMD_SUITE-updates main\\ndeb http://deb.debian.org/debian-security $SYSTEMD_SUITE-security main\\n' >/etc/apt/sources.list \\
 && apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates iproute2 procps curl less \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb"
}

build_fleet_git() {
	build_node
	build_derived "$FLEET_GIT_IMAGE" "$NODE_IMAGE" "FROM $NODE_IMAGE
LABEL org.opencontainers.image.title=fsgit-fleet-git org.opencontainers.image.version=$SYSTEMD_SUITE
RUN apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
CMD [\"/usr/local/bin/gitserver\"]"
}

what="${1:-all}"
case "$what" in
all)
	build_standin
	build_weaviate
	build_systemd
	build_node
	build_fleet_git
	;;
fleet)
	build_node
	build_fleet_git
	;;
node) build_node ;;
standin) build_standin ;;
weaviate) build_weaviate ;;
systemd) build_systemd ;;
*)
	echo "usage: $0 [all|standin|weaviate|systemd|node|fleet]" >&2
	exit 2
	;;
esac
