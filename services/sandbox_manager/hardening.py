"""How a sandbox container is locked down, as data, so every launcher applies the same rules.

By default: every capability dropped, no new privileges, a read-only root with a small tmpfs
for the session's scratch files, the image's non-root user, and pids, memory and CPU limits.
No Docker socket is ever mounted, and no host folder unless the operator names one data folder
(`data_mount`): it is mounted read only, at the same path, so `duckdb:///that/path/x.duckdb`
opens inside the sandbox as on the host. The network mode is the caller's choice: a dedicated
network in production, ``host`` for tests whose databases listen on loopback.

The OCI runtime is the operator's choice too: ``runc`` (Docker's default, the containers share the
host's kernel) or ``runsc`` (gVisor: each sandbox gets its own user-space kernel, so a kernel
exploit in a cell lands in gVisor, not on the host). scripts/ensure_docker.sh registers runsc with
``--network=none``, so under it a sandbox has no network whatever ``network_mode`` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SANDBOX_USER = "10001:10001"


@dataclass(frozen=True)
class ContainerLimits:
    memory_bytes: int = 1024 * 2**20
    cpus: float = 1.0
    pids: int = 256
    tmpfs_bytes: int = 256 * 2**20
    network_mode: str = "bridge"
    data_mount: str = ""  # an absolute host folder mounted read only at the same path; "" none
    runtime: str = "runc"  # a runtime dockerd lists in `docker info`: runc, or runsc (gVisor)


def _tmpfs_options(limits: ContainerLimits) -> str:
    return f"rw,nosuid,nodev,size={limits.tmpfs_bytes},uid=10001,gid=10001"


def docker_host_config(limits: ContainerLimits) -> dict[str, object]:
    """The same rules as keyword arguments of the docker SDK's ``create_host_config``."""
    return {
        "runtime": limits.runtime,
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
        "binds": (
            {limits.data_mount: {"bind": limits.data_mount, "mode": "ro"}}
            if limits.data_mount
            else None
        ),
    }


def docker_run_argv(
    image: str, name: str, limits: ContainerLimits, labels: Mapping[str, str]
) -> list[str]:
    """A `docker run -i` command line whose attached stdio is the kernel's channel."""
    argv = ["docker", "run", "-i", "--rm", "--name", name]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    return [
        *argv,
        "--user",
        SANDBOX_USER,
        "--runtime",
        limits.runtime,
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
        *(["--volume", f"{limits.data_mount}:{limits.data_mount}:ro"] if limits.data_mount else []),
        image,
    ]
