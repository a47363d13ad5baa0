"""How a sandbox container is locked down, as data, so every launcher applies the same rules.

By default: every capability dropped but the three the kernel needs to keep sessions apart, no
new privileges, a read-only root with a small tmpfs for the session's scratch files, and pids,
memory and CPU limits. The kernel runs as root holding only CAP_SETUID, CAP_SETGID and CAP_KILL;
every worker drops to a uid of the sandbox's own (``session_uid``, random per container) before it
runs a cell, so cells cannot signal, trace or read the kernel, and the kernel can kill everything a
session started by uid (see ``catalog_kernel.isolation``).
No Docker socket is ever mounted. Two host folders may be, both read only: the sandbox's own
relay folder, and one data folder the operator names (`data_mount`), at the same path, so
`duckdb:///that/path/x.duckdb` opens inside the sandbox as on the host. The network is ``none``:
the sandbox reaches its database only through the manager's relay, the folder (``relay_dir``)
mounted at ``RELAY_MOUNT`` (see ``db_relay``). An operator may name another network, but only
``none`` is isolated.

The OCI runtime is the operator's choice too: ``runc`` (Docker's default, the containers share the
host's kernel) or ``runsc`` (gVisor: each sandbox gets its own user-space kernel, so a kernel
exploit in a cell lands in gVisor, not on the host). scripts/ensure_docker.sh registers runsc with
``--network=none``, so under it a sandbox has no network whatever ``network_mode`` says.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

RELAY_MOUNT = "/run/catalog-db"  # where a sandbox finds its relay folder (fixed: DSNs name it)
KERNEL_USER = "0:0"
KERNEL_CAPABILITIES = ("SETUID", "SETGID", "KILL")
# Session uids are random per container, so RLIMIT_NPROC (counted per uid across the host)
# never lets one sandbox's fork bomb starve another's.
_SESSION_UID_BASE = 200_000
_SESSION_UID_SPAN = 1_000_000


def new_session_uid() -> int:
    return _SESSION_UID_BASE + secrets.randbelow(_SESSION_UID_SPAN)


@dataclass(frozen=True)
class ContainerLimits:
    memory_bytes: int = 1024 * 2**20
    cpus: float = 1.0
    pids: int = 256
    tmpfs_bytes: int = 256 * 2**20
    network_mode: str = "none"
    data_mount: str = ""  # an absolute host folder mounted read only at the same path; "" none
    runtime: str = "runc"  # a runtime dockerd lists in `docker info`: runc, or runsc (gVisor)


def _tmpfs_options(limits: ContainerLimits, session_uid: int) -> str:
    return f"rw,nosuid,nodev,size={limits.tmpfs_bytes},uid={session_uid},gid={session_uid}"


# Under gVisor (ptrace platform) every process a cell forks costs the sandbox tens of MB and
# host threads of its own, which count against the container's pids limit: a dozen forks of the
# preloaded kernel already overran 768 MB here. So sessions get few processes there, and the
# pids limit leaves room for gVisor's threads; the guest's RLIMIT_NPROC is what bounds a cell.
_GVISOR_RUNTIMES = {"runsc"}
_GVISOR_SESSION_PROCESSES = 4
_GVISOR_MIN_PIDS = 1024


def _session_max_processes(limits: ContainerLimits) -> int:
    if limits.runtime in _GVISOR_RUNTIMES:
        return _GVISOR_SESSION_PROCESSES
    return max(8, limits.pids // 2)  # a fork bomb in a cell leaves the kernel room to fork


def _pids_limit(limits: ContainerLimits) -> int:
    if limits.runtime in _GVISOR_RUNTIMES:
        return max(limits.pids, _GVISOR_MIN_PIDS)
    return limits.pids


def kernel_environment(limits: ContainerLimits, session_uid: int) -> dict[str, str]:
    """What the kernel inside needs to know to keep sessions apart."""
    return {
        "CATALOG_KERNEL_SESSION_UID": str(session_uid),
        "CATALOG_KERNEL_SESSION_MAX_PROCESSES": str(_session_max_processes(limits)),
        "CATALOG_KERNEL_SHARED_FOLDERS": "/dev/shm,/dev/mqueue",
    }


def _binds(limits: ContainerLimits, relay_dir: str) -> dict[str, dict[str, str]]:
    binds = {}
    if limits.data_mount:
        binds[limits.data_mount] = {"bind": limits.data_mount, "mode": "ro"}
    if relay_dir:
        binds[relay_dir] = {"bind": RELAY_MOUNT, "mode": "ro"}
    return binds


def unseen_duckdb_file(dsn: str, data_mount: str) -> str:
    """Why a container cannot open the DuckDB file `dsn` names, or "" when it can see it.

    It sees no host folder but `data_mount`, so a file elsewhere would fail in the kernel as
    one that "does not exist", though it does on the host: say which setting to change instead.
    """
    parts = urlsplit(dsn)
    path = unquote(parts.netloc + parts.path)
    if parts.scheme.lower() != "duckdb" or not path or path == ":memory:":
        return ""  # not a file; the kernel says what is wrong with it
    if data_mount and os.path.isabs(path):
        mount = os.path.normpath(data_mount)
        if os.path.commonpath([os.path.normpath(path), mount]) == mount:
            return ""
    if not data_mount:
        return (
            f"the DuckDB file {path} cannot be seen from the sandbox: sandboxes see no host "
            "folder unless the manager's CATALOG_SANDBOX_DATA_MOUNT names one; set it to the "
            "folder holding the file (mounted read only at the same path)"
        )
    return (
        f"the DuckDB file {path} is outside CATALOG_SANDBOX_DATA_MOUNT ({data_mount}), the one "
        "host folder sandboxes see: move the file under it, or point the setting at its folder"
    )


def docker_host_config(
    limits: ContainerLimits, session_uid: int, relay_dir: str = ""
) -> dict[str, object]:
    """The same rules as keyword arguments of the docker SDK's ``create_host_config``."""
    return {
        "runtime": limits.runtime,
        "network_mode": limits.network_mode,
        "read_only": True,
        "tmpfs": {"/tmp": _tmpfs_options(limits, session_uid)},
        "cap_drop": ["ALL"],
        "cap_add": list(KERNEL_CAPABILITIES),
        "security_opt": ["no-new-privileges"],
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # no swap: the limit is the limit
        "pids_limit": _pids_limit(limits),
        "nano_cpus": int(limits.cpus * 1e9),
        "auto_remove": True,
        "privileged": False,
        "binds": _binds(limits, relay_dir) or None,
    }


def docker_run_argv(
    image: str,
    name: str,
    limits: ContainerLimits,
    labels: Mapping[str, str],
    session_uid: int | None = None,
    relay_dir: str = "",
) -> list[str]:
    """A `docker run -i` command line whose attached stdio is the kernel's channel."""
    session_uid = new_session_uid() if session_uid is None else session_uid
    argv = ["docker", "run", "-i", "--rm", "--name", name]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    for key, value in kernel_environment(limits, session_uid).items():
        argv += ["--env", f"{key}={value}"]
    for capability in KERNEL_CAPABILITIES:
        argv += ["--cap-add", capability]
    return [
        *argv,
        "--user",
        KERNEL_USER,
        "--runtime",
        limits.runtime,
        "--network",
        limits.network_mode,
        "--read-only",
        "--tmpfs",
        f"/tmp:{_tmpfs_options(limits, session_uid)}",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--memory",
        str(limits.memory_bytes),
        "--memory-swap",
        str(limits.memory_bytes),  # no swap: the limit is the limit
        "--pids-limit",
        str(_pids_limit(limits)),
        "--cpus",
        str(limits.cpus),
        *(
            arg
            for source, bind in _binds(limits, relay_dir).items()
            for arg in ("--volume", f"{source}:{bind['bind']}:ro")
        ),
        image,
    ]
