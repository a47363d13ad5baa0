"""How a sandbox container is locked down, as data, so every launcher applies the same rules.

By default: every capability dropped, no new privileges, a read-only root with a small tmpfs
for the session's scratch files, the image's non-root user, and pids, memory and CPU limits.
No Docker socket is ever mounted, and no host folder unless the operator names one data folder
(`data_mount`): it is mounted read only, at the same path, so `duckdb:///that/path/x.duckdb`
opens inside the sandbox as on the host. The network is ``none``: the sandbox reaches its
database only through the manager's relay, a host folder of its own (``relay_dir``) mounted read
only at ``RELAY_MOUNT`` (see ``db_relay``). An operator may name another network, but only
``none`` is isolated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SANDBOX_USER = "10001:10001"
RELAY_MOUNT = "/run/catalog-db"  # where a sandbox finds its relay folder (fixed: DSNs name it)


@dataclass(frozen=True)
class ContainerLimits:
    memory_bytes: int = 1024 * 2**20
    cpus: float = 1.0
    pids: int = 256
    tmpfs_bytes: int = 256 * 2**20
    network_mode: str = "none"
    data_mount: str = ""  # an absolute host folder mounted read only at the same path; "" none


def _tmpfs_options(limits: ContainerLimits) -> str:
    return f"rw,nosuid,nodev,size={limits.tmpfs_bytes},uid=10001,gid=10001"


def _binds(limits: ContainerLimits, relay_dir: str) -> dict[str, dict[str, str]]:
    binds = {}
    if limits.data_mount:
        binds[limits.data_mount] = {"bind": limits.data_mount, "mode": "ro"}
    if relay_dir:
        binds[relay_dir] = {"bind": RELAY_MOUNT, "mode": "ro"}
    return binds


def docker_host_config(limits: ContainerLimits, relay_dir: str = "") -> dict[str, object]:
    """The same rules as keyword arguments of the docker SDK's ``create_host_config``."""
    return {
        "network_mode": limits.network_mode,
        "read_only": True,
        "tmpfs": {"/tmp": _tmpfs_options(limits)},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # no swap: the limit is the limit
        "pids_limit": limits.pids,
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
    relay_dir: str = "",
) -> list[str]:
    """A `docker run -i` command line whose attached stdio is the kernel's channel."""
    argv = ["docker", "run", "-i", "--rm", "--name", name]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    return [
        *argv,
        "--user",
        SANDBOX_USER,
        "--network",
        limits.network_mode,
        "--read-only",
        "--tmpfs",
        f"/tmp:rw,nosuid,nodev,size={limits.tmpfs_bytes},uid=10001,gid=10001",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--memory",
        str(limits.memory_bytes),
        "--memory-swap",
        str(limits.memory_bytes),  # no swap: the limit is the limit
        "--pids-limit",
        str(limits.pids),
        "--cpus",
        str(limits.cpus),
        *(
            arg
            for source, bind in _binds(limits, relay_dir).items()
            for arg in ("--volume", f"{source}:{bind['bind']}:ro")
        ),
        image,
    ]
