#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine. Fast (one `docker info`) when one already
# does; otherwise installs Debian's docker.io if needed, starts dockerd detached (no systemd in
# the sandboxes we run in), and proves that `docker run` works on the default bridge and with
# --network host. Storage drivers are tried in order: the daemon's default (overlay2),
# fuse-overlayfs (when installed), vfs; the one that works is remembered for the next start.
set -euo pipefail

LOG=/var/log/catalog-agents-dockerd.log
STATE_DIR=/var/lib/catalog-agents
DRIVER_FILE=$STATE_DIR/docker-storage-driver
WAIT_SECONDS=${DOCKER_WAIT_SECONDS:-60}
SMOKE_IMAGE=catalog-agents/smoke:tini

say() { echo "ensure_docker: $*" >&2; }
die() {
  say "ERROR: $*"
  if [[ -f $LOG ]]; then
    say "last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
  fi
  exit 1
}
docker_ok() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

if docker_ok; then
  exit 0
fi

if ((EUID != 0)); then
  die "no Docker engine answers and I am not root, so I cannot install or start one (run as root, or start Docker yourself)"
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  say "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
  # On a machine with systemd, the package may already have started the engine.
  if docker_ok; then
    exit 0
  fi
fi

dockerd_pid() {
  local pid
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
  fi
}

# Waits for the engine to answer; returns 1 early if the daemon dies.
wait_ready() {
  local pid=$1 deadline=$((SECONDS + WAIT_SECONDS))
  while ((SECONDS < deadline)); do
    if [[ -S /var/run/docker.sock ]] && docker_ok; then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.5
  done
  return 1
}

stop_dockerd() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
  sleep 1
}

# Imports a one-file image (the static tini that docker.io ships) and runs it on the default
# bridge and on the host network: this exercises the storage driver, runc and the networking.
smoke_test() {
  local tini dir net
  tini=$(command -v docker-init || true)
  [[ -z $tini ]] && tini=$(command -v tini-static || true)
  if [[ -z $tini ]]; then
    say "no static tini found, skipping the docker run smoke test"
    return 0
  fi
  if ! docker image inspect "$SMOKE_IMAGE" >/dev/null 2>&1; then
    dir=$(mktemp -d)
    cp -L "$tini" "$dir/tini"
    tar -C "$dir" -c tini | docker import - "$SMOKE_IMAGE" >/dev/null || {
      rm -rf "$dir"
      return 1
    }
    rm -rf "$dir"
  fi
  for net in bridge host; do
    if ! docker run --rm --label catalog-agents.test=1 --network "$net" "$SMOKE_IMAGE" \
      /tini --version >>"$LOG" 2>&1; then
      say "docker run --network $net failed"
      return 1
    fi
  done
}

running=$(dockerd_pid)
if [[ -n $running ]]; then
  say "dockerd (pid $running) runs but does not answer yet, waiting"
  if wait_ready "$running"; then
    exit 0
  fi
  die "dockerd (pid $running) runs but did not answer within ${WAIT_SECONDS}s"
fi

drivers=()
if [[ -s $DRIVER_FILE ]]; then
  drivers+=("$(cat "$DRIVER_FILE")")
fi
drivers+=(default)
command -v fuse-overlayfs >/dev/null 2>&1 && drivers+=(fuse-overlayfs)
drivers+=(vfs)

mkdir -p "$STATE_DIR" "$(dirname "$LOG")"
tried=()
for driver in "${drivers[@]}"; do
  [[ " ${tried[*]-} " == *" $driver "* ]] && continue
  tried+=("$driver")
  args=()
  [[ $driver != default ]] && args+=(--storage-driver="$driver")
  say "starting dockerd (storage driver: $driver), log in $LOG"
  echo "=== $(date -Is) ensure_docker: dockerd ${args[*]-}" >>"$LOG"
  setsid nohup dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
  pid=$!
  if wait_ready "$pid" && smoke_test; then
    echo "$driver" >"$DRIVER_FILE"
    say "Docker is ready ($(docker info --format '{{.Driver}}' 2>/dev/null) storage, pid $pid)"
    exit 0
  fi
  say "dockerd with storage driver $driver does not work, stopping it"
  stop_dockerd "$pid"
done

die "could not start a working Docker engine (tried storage drivers: ${tried[*]})"
