#!/usr/bin/env bash
# Copies an image Docker built (default warren-agent:latest) into podman's own image store, for WARREN_RUNTIME=podman
# on a machine that builds with Docker (CI). Skips the copy when podman already holds the very same image (same id).
# Rootless podman: run it as the user who runs Warren (each user has a store of their own).
set -euo pipefail
TAG="${1:-warren-agent:latest}"
id="$(docker image inspect -f '{{.Id}}' "$TAG")"
if [ "$(podman image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)" = "${id#sha256:}" ]; then
  echo "==> podman already has $TAG (${id:7:12})" >&2
  exit 0
fi
echo "==> docker save $TAG | podman load (about 30 s for the agent image)" >&2
docker save "$TAG" | podman load -q >/dev/null
[ "$(podman image inspect -f '{{.Id}}' "$TAG")" = "${id#sha256:}" ] || { echo "error: podman's $TAG is not Docker's" >&2; exit 1; }
