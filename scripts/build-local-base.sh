#!/usr/bin/env bash
# Builds the local base image warren-base:local (Debian bookworm minbase + this machine's Node and npm), for
# machines without a container registry. Users with a registry do not need it: agent/Dockerfile defaults to
# node:22-bookworm-slim. CI: scripts/build-local-base.sh && docker build --build-arg BASE_IMAGE=warren-base:local ...
set -euo pipefail

TAG="warren-base:local"
FORCE=0
HOST_CA=1
SUITE="bookworm"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_BIN="${NODE_BIN:-$(command -v node || true)}"

usage() {
  cat <<USAGE
usage: $0 [--force] [--no-host-ca] [--tag NAME]
  Builds ${TAG} with debootstrap and docker import. Skips the build when the tag exists, unless --force.
  Copies this machine's extra CA certificates (/usr/local/share/ca-certificates) in, unless --no-host-ca.
  Needs root, debootstrap, docker and a node binary (NODE_BIN, default: the one on PATH). DEBIAN_MIRROR overrides
  the Debian mirror (default http://deb.debian.org/debian).
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --no-host-ca) HOST_CA=0 ;;
    --tag) TAG="${2:?--tag needs a value}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

step() { echo "==> $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }

command -v docker >/dev/null || fail "docker not found"
if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  step "$TAG already exists (use --force to rebuild)"
  exit 0
fi
[ "$(id -u)" = 0 ] || fail "debootstrap needs root"
command -v debootstrap >/dev/null || fail "debootstrap not found (apt-get install debootstrap)"
[ -n "$NODE_BIN" ] && [ -x "$NODE_BIN" ] || fail "node not found (set NODE_BIN)"
NODE_BIN="$(readlink -f "$NODE_BIN")"
# npm ships next to node in every layout we support: <prefix>/bin/node and <prefix>/lib/node_modules/npm.
NPM_DIR="${NPM_DIR:-$(dirname "$(dirname "$NODE_BIN")")/lib/node_modules/npm}"
[ -f "$NPM_DIR/bin/npm-cli.js" ] || fail "npm not found at $NPM_DIR (set NPM_DIR)"

WORK="$(mktemp -d /tmp/warren-base.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

# libstdc++6: node needs it. ca-certificates: TLS for npm during docker build. bash and libc (librt, libpthread,
# libdl, libm: the Claude Code binary's libraries) are in minbase already; checked below.
step "debootstrap $SUITE (minbase) from $MIRROR (about 40 s)"
debootstrap --variant=minbase --include=ca-certificates,libstdc++6 "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -n 20 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }

step "adding node $("$NODE_BIN" --version) and npm $("$NODE_BIN" "$NPM_DIR/bin/npm-cli.js" --version)"
install -D -m 0755 "$NODE_BIN" "$ROOTFS/usr/local/bin/node"
mkdir -p "$ROOTFS/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$ROOTFS/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"

# Machines behind a TLS-inspecting proxy trust an extra CA (in /usr/local/share/ca-certificates); without it, npm
# inside docker build fails with SELF_SIGNED_CERT_IN_CHAIN. Certificates are public: copying them leaks nothing.
IMPORT_CHANGES=()
if [ "$HOST_CA" = 1 ] && compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  step "adding this machine's extra CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
  chroot "$ROOTFS" update-ca-certificates >/dev/null 2>&1 || fail "update-ca-certificates failed"
  # Node uses its own CA list unless told otherwise.
  IMPORT_CHANGES+=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
fi

step "checking the image's libraries"
for lib in librt.so.1 libpthread.so.0 libdl.so.2 libm.so.6 libc.so.6 libstdc++.so.6 libgcc_s.so.1; do
  [ -e "$ROOTFS/lib/x86_64-linux-gnu/$lib" ] || [ -e "$ROOTFS/usr/lib/x86_64-linux-gnu/$lib" ] ||
    [ -e "$ROOTFS/lib/aarch64-linux-gnu/$lib" ] || [ -e "$ROOTFS/usr/lib/aarch64-linux-gnu/$lib" ] ||
    fail "missing $lib in the root filesystem"
done
chroot "$ROOTFS" /bin/bash -c 'node --version && npm --version' >/dev/null || fail "node or npm does not run in the image"

step "trimming apt caches and docs"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* \
  "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old

step "docker import as $TAG"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' "${IMPORT_CHANGES[@]}" \
  --message "warren local base: debian $SUITE minbase + node $("$NODE_BIN" --version)" \
  - "$TAG" >/dev/null
step "done: $TAG ($(docker image inspect "$TAG" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"
