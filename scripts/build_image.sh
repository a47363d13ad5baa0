#!/usr/bin/env bash
# Builds the sandbox image catalog-agents/sandbox:<hash>, where <hash> is the first 12 hex digits
# of a sha256 over sandbox/ (sorted paths and contents, without __pycache__ and *.pyc), and points
# catalog-agents/sandbox:latest at it. Skips the build when that tag exists already.
#
# BASE_IMAGE (env) picks the base of both stages. Unset, the script uses catalog-agents/base:bookworm,
# a Debian bookworm minbase with python3 that it builds with debootstrap when missing (nothing can
# be pulled from an image registry here). The host CA bundle goes into the build context as
# extra-ca.crt so pip trusts a TLS-intercepting proxy (see sandbox/Dockerfile).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/sandbox
IMAGE=catalog-agents/sandbox
LOCAL_BASE=catalog-agents/base:bookworm
HOST_CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

say() { echo "build_image: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}
now() { date +%s; }

command -v docker >/dev/null 2>&1 || die "no docker client (run scripts/ensure_docker.sh)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/ensure_docker.sh)"

# The files that make the image, relative to sandbox/, NUL-separated and sorted bytewise.
list_files() {
  (cd "$SRC" && find . \( -name __pycache__ -o -name .pytest_cache -o -name .mypy_cache \) -prune \
    -o -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z)
}

content_hash() {
  # sha256 over "path NUL sha256(content) NUL" for every file: paths and contents, in order.
  (cd "$SRC" && list_files | while IFS= read -r -d '' f; do
    printf '%s\0%s\0' "${f#./}" "$(sha256sum <"$f" | cut -d' ' -f1)"
  done) | sha256sum | cut -c1-12
}

HASH=$(content_hash)
TAG=$IMAGE:$HASH

if docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG exists, build skipped"
  docker tag "$TAG" "$IMAGE:latest"
  say "$IMAGE:latest -> $TAG"
  exit 0
fi

ensure_local_base() {
  if docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    return 0
  fi
  ((EUID == 0)) || die "building $LOCAL_BASE needs root (debootstrap); or set BASE_IMAGE"
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local dir t0
  t0=$(now)
  dir=$(mktemp -d /var/tmp/catalog-agents-base.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$dir'" EXIT
  say "building $LOCAL_BASE with debootstrap (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$dir" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$dir.log" 2>&1 || {
    tail -n 30 "$dir.log" >&2
    rm -f "$dir.log"
    die "debootstrap failed"
  }
  rm -f "$dir.log"
  # Make the base smaller: apt lists and caches are refetched by the Dockerfile anyway.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log
  tar -C "$dir" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$LOCAL_BASE" >/dev/null
  rm -rf "$dir"
  trap - EXIT
  say "built $LOCAL_BASE in $(($(now) - t0))s"
}

if [[ -n ${BASE_IMAGE:-} ]]; then
  base=$BASE_IMAGE
else
  ensure_local_base
  base=$LOCAL_BASE
fi

ctx=$(mktemp -d /tmp/catalog-agents-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
(cd "$SRC" && list_files | tar --null -T - -c) | tar -C "$ctx" -x
if [[ -f $HOST_CA ]]; then
  cp "$HOST_CA" "$ctx/extra-ca.crt"
fi

say "building $TAG from $base"
t0=$(now)
DOCKER_BUILDKIT=0 docker build \
  --network host \
  --build-arg BASE_IMAGE="$base" \
  --label "catalog-agents.sandbox.hash=$HASH" \
  --label "catalog-agents.sandbox.base=$base" \
  -t "$TAG" \
  "$ctx"
docker tag "$TAG" "$IMAGE:latest"
# Drop the tags of earlier contents (their layers below the kernel are shared with this one);
# an image a container still uses stays.
# (grep finds nothing on a first build: that is no failure.)
{ docker image ls "$IMAGE" --format '{{.Tag}}' | grep -E '^[0-9a-f]{12}$' | grep -vx "$HASH" || true; } |
  while read -r old; do docker rmi "$IMAGE:$old" >/dev/null 2>&1 || true; done
size=$(docker image inspect -f '{{.Size}}' "$TAG")
say "built $TAG in $(($(now) - t0))s ($((size / 1000000)) MB); $IMAGE:latest -> $TAG"
