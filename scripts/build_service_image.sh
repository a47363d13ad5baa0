#!/usr/bin/env bash
# Builds the services image catalog-agents/services:<hash> from the Dockerfile at the repository
# root, where <hash> is the first 12 hex digits of a sha256 over the files that make the image
# (Dockerfile, .dockerignore, pyproject.toml, README.md, protos/, services/, prompts/, the price
# table deploy/prices.yaml and the
# Python packages under sandbox/: sorted paths and contents, without __pycache__ and *.pyc), and
# points catalog-agents/services:latest at it. Skips the build when that tag exists already.
# Prints the tag it made or found on stdout (everything else goes to stderr).
#
# BASE_IMAGE (env) picks the base of all stages. Unset, the script uses
# catalog-agents/base:bookworm, the Debian bookworm minbase with python3 that
# scripts/build_image.sh makes with debootstrap (nothing can be pulled from an image registry
# here): when it is missing, build_image.sh runs first, which also builds the sandbox image the
# services drive. The host CA bundle goes into
# the build context as extra-ca.crt so pip trusts a TLS-intercepting proxy (see the Dockerfile).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=catalog-agents/services
LOCAL_BASE=catalog-agents/base:bookworm
HOST_CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# What the Dockerfile copies (keep in step with it and with .dockerignore, which also leaves out
# the sandbox image's own Dockerfile and requirements.txt).
INPUTS=(Dockerfile .dockerignore pyproject.toml README.md protos sandbox services prompts deploy/prices.yaml)

say() { echo "build_service_image: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}
now() { date +%s; }

command -v docker >/dev/null 2>&1 || die "no docker client (run scripts/ensure_docker.sh)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/ensure_docker.sh)"

# The files that make the image, relative to the root, NUL-separated and sorted bytewise.
list_files() {
  (cd "$ROOT" && find "${INPUTS[@]}" \( -name __pycache__ -o -name .pytest_cache -o -name .mypy_cache \) \
    -prune -o -type f ! -name '*.pyc' ! -path sandbox/Dockerfile ! -path sandbox/requirements.txt \
    -print0 | LC_ALL=C sort -z)
}

content_hash() {
  # sha256 over "path NUL sha256(content) NUL" for every file: paths and contents, in order.
  (cd "$ROOT" && list_files | while IFS= read -r -d '' f; do
    printf '%s\0%s\0' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
  done) | sha256sum | cut -c1-12
}

HASH=$(content_hash)
TAG=$IMAGE:$HASH

if docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG exists, build skipped"
  docker tag "$TAG" "$IMAGE:latest"
  echo "$TAG"
  exit 0
fi

if [[ -n ${BASE_IMAGE:-} ]]; then
  base=$BASE_IMAGE
else
  base=$LOCAL_BASE
  if ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    say "$LOCAL_BASE is missing: scripts/build_image.sh builds it (and the sandbox image)"
    bash "$ROOT/scripts/build_image.sh"
  fi
fi

ctx=$(mktemp -d /tmp/catalog-agents-services.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
(cd "$ROOT" && list_files | tar --null -T - -c) | tar -C "$ctx" -x
if [[ -f $HOST_CA ]]; then
  cp "$HOST_CA" "$ctx/extra-ca.crt"
fi

say "building $TAG from $base"
t0=$(now)
# stdout of the build goes to stderr: this script's stdout is the tag alone.
DOCKER_BUILDKIT=0 docker build \
  --network host \
  --build-arg BASE_IMAGE="$base" \
  --label "catalog-agents.services.hash=$HASH" \
  --label "catalog-agents.services.base=$base" \
  -t "$TAG" \
  "$ctx" >&2
docker tag "$TAG" "$IMAGE:latest"
# Drop the tags of earlier contents; an image a container still uses stays.
{ docker image ls "$IMAGE" --format '{{.Tag}}' | grep -E '^[0-9a-f]{12}$' | grep -vx "$HASH" || true; } |
  while read -r old; do docker rmi "$IMAGE:$old" >/dev/null 2>&1 || true; done
size=$(docker image inspect -f '{{.Size}}' "$TAG")
say "built $TAG in $(($(now) - t0))s ($((size / 1000000)) MB); $IMAGE:latest -> $TAG"
echo "$TAG"
