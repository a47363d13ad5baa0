#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine. Fast (one `docker info`) when one already
# does; otherwise installs Debian's docker.io if needed, starts dockerd detached (no systemd in
# the sandboxes we run in), and proves that `docker run` works on the default bridge and with
# --network host. Storage drivers are tried in order: the daemon's default (overlay2),
# fuse-overlayfs (when installed), vfs; the one that works is remembered for the next start.
# Then it makes gVisor available as the runtime `runsc` (CATALOG_SANDBOX_RUNTIME=runsc): installs
# Debian's runsc, registers it in /etc/docker/daemon.json and reloads dockerd with SIGHUP (never a
# restart: running containers stay). A runsc that cannot run here is reported and left out;
# runc still works. CATALOG_SKIP_RUNSC=1 skips this part.
set -euo pipefail

LOG=/var/log/catalog-agents-dockerd.log
STATE_DIR=/var/lib/catalog-agents
DRIVER_FILE=$STATE_DIR/docker-storage-driver
WAIT_SECONDS=${DOCKER_WAIT_SECONDS:-60}
SMOKE_IMAGE=catalog-agents/smoke:tini
DAEMON_JSON=/etc/docker/daemon.json
RUNSC_FAILED=$STATE_DIR/runsc-failed
# --network=none: gVisor's own network stack cannot run in this kind of VM, and the sandboxes
# need no network (they reach their database through a bind-mounted Unix socket, which
# --fsgofer-host-uds allows them to connect to).
RUNSC_ARGS='["--network=none", "--fsgofer-host-uds"]'

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

runtimes() { timeout 10 docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}' 2>/dev/null; }
has_runsc() { [[ " $(runtimes) " == *" runsc "* ]]; }

# Writes runsc into daemon.json (add) or takes it out (remove), keeping every other key; prints
# "changed" when it wrote the file.
edit_daemon_json() {
  python3 - "$DAEMON_JSON" "$1" "$(command -v runsc || echo /usr/bin/runsc)" "$RUNSC_ARGS" <<'PY'
import json, os, sys
path, action, binary, args = sys.argv[1:]
try:
    with open(path) as f:
        config = json.load(f)
except FileNotFoundError:
    config = {}
runtimes = config.setdefault("runtimes", {})
wanted = {"path": binary, "runtimeArgs": json.loads(args)}
if action == "add" and runtimes.get("runsc") != wanted:
    runtimes["runsc"] = wanted
elif action == "remove" and "runsc" in runtimes:
    del runtimes["runsc"]
    if not runtimes:
        del config["runtimes"]
else:
    sys.exit(0)
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".tmp", "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.replace(path + ".tmp", path)
print("changed")
PY
}

# SIGHUP makes dockerd re-read daemon.json; runtimes are among the options it reloads.
reload_dockerd() {
  local pid want=$1 i
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  [[ -n $pid ]] || return 1
  kill -HUP "$pid"
  for ((i = 0; i < 20; i++)); do
    if [[ $want == present ]] && has_runsc; then return 0; fi
    if [[ $want == absent ]] && ! has_runsc; then return 0; fi
    sleep 0.5
  done
  return 1
}

ensure_runsc() {
  [[ ${CATALOG_SKIP_RUNSC:-} == 1 ]] && return 0
  has_runsc && return 0
  if [[ -s $RUNSC_FAILED ]]; then
    say "runsc did not work here earlier, sandboxes run under runc only ($(head -n 1 "$RUNSC_FAILED")); delete $RUNSC_FAILED to try again"
    return 0
  fi
  if ((EUID != 0)); then
    say "runsc is not registered with dockerd and I am not root: sandboxes run under runc only"
    return 0
  fi
  if ! command -v runsc >/dev/null 2>&1; then
    say "installing Debian's runsc (gVisor)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq runsc >/dev/null 2>&1; then
      apt-get update -qq || true
      if ! apt-get install -y -qq runsc >/dev/null; then
        say "could not install runsc: sandboxes run under runc only"
        return 0
      fi
    fi
  fi
  if [[ -n $(edit_daemon_json add) ]]; then
    say "registered runsc in $DAEMON_JSON"
  fi
  if ! reload_dockerd present; then
    say "dockerd did not pick runsc up after SIGHUP (see $LOG): sandboxes run under runc only"
    return 0
  fi
  local error
  if ! error=$(runsc_smoke 2>&1); then
    mkdir -p "$STATE_DIR"
    printf '%s\n' "${error:-docker run --runtime runsc failed}" >"$RUNSC_FAILED"
    say "runsc cannot run containers here, unregistering it; sandboxes run under runc only. The error:"
    echo "$error" >&2
    edit_daemon_json remove >/dev/null
    reload_dockerd absent || true
    return 0
  fi
  say "gVisor is ready: dockerd runs containers with --runtime runsc"
}

# A container under runsc, with no network, as the sandboxes run.
runsc_smoke() {
  import_smoke_image || return 1
  timeout 60 docker run --rm --label catalog-agents.test=1 --runtime runsc --network none \
    "$SMOKE_IMAGE" /tini --version
}

# The static tini that docker.io ships, as a one-file image.
import_smoke_image() {
  local tini dir
  docker image inspect "$SMOKE_IMAGE" >/dev/null 2>&1 && return 0
  tini=$(command -v docker-init || true)
  [[ -z $tini ]] && tini=$(command -v tini-static || true)
  if [[ -z $tini ]]; then
    echo "no static tini found to build $SMOKE_IMAGE"
    return 1
  fi
  dir=$(mktemp -d)
  cp -L "$tini" "$dir/tini"
  if ! tar -C "$dir" -c tini | docker import - "$SMOKE_IMAGE" >/dev/null; then
    rm -rf "$dir"
    return 1
  fi
  rm -rf "$dir"
}

if docker_ok; then
  ensure_runsc
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
    ensure_runsc
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

# Runs the one-file smoke image on the default bridge and on the host network: this exercises
# the storage driver, runc and the networking.
smoke_test() {
  local net
  if ! command -v docker-init >/dev/null 2>&1 && ! command -v tini-static >/dev/null 2>&1; then
    say "no static tini found, skipping the docker run smoke test"
    return 0
  fi
  import_smoke_image || return 1
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
    ensure_runsc
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
    ensure_runsc
    exit 0
  fi
  say "dockerd with storage driver $driver does not work, stopping it"
  stop_dockerd "$pid"
done

die "could not start a working Docker engine (tried storage drivers: ${tried[*]})"
