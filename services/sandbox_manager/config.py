"""The sandbox manager's settings, read once from the environment at start-up.

Every variable is documented in docs/settings.md.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass, field

from services.common import ports
from services.common.control_plane import ControlPlane
from services.common.env import SettingsError, env_float, env_int, env_list
from services.sandbox_manager.hardening import ContainerLimits

__all__ = ["Settings", "SettingsError"]

MANAGER_ID_PATTERN = re.compile(r"^[a-z0-9-]{1,63}$")
# What dockerd accepts as a runtime's name; whether it is registered is checked at backend start.
RUNTIME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _default_manager_id() -> str:
    host = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().lower())[:50].strip("-")
    return f"sm-{host or 'local'}"


@dataclass(frozen=True)
class Settings:
    manager_id: str = field(default_factory=_default_manager_id)
    # loopback unless told otherwise: whoever reaches the manager runs code in its sandboxes
    host: str = "127.0.0.1"
    port: int = ports.SANDBOX_MANAGER
    metrics_port: int = ports.SANDBOX_MANAGER_METRICS  # Prometheus /metrics; 0 serves none
    backend: str = "docker"  # "docker" or "process"
    image: str = "catalog-agents/sandbox:latest"
    min_warm: int = 2
    max_size: int = 8
    lease_ttl_s: float = 600.0
    max_lease_ttl_s: float = 3600.0
    max_wait_s: float = 300.0
    exec_timeout_s: float = 120.0
    max_exec_timeout_s: float = 900.0
    max_code_bytes: int = 1024 * 1024
    max_output_bytes: int = 1024 * 1024
    max_databases: int = 8  # databases one session may open (SessionConfig.databases)
    # the most a call may ask for (above it: INVALID_ARGUMENT); the kernel holds head and tail
    max_output_bytes_ceiling: int = 64 * 1024 * 1024
    # events of one call held for a slow caller before the kernel is made to wait
    exec_queue_events: int = 256
    kernel_ready_timeout_s: float = 120.0
    health_interval_s: float = 30.0
    shutdown_grace_s: float = 10.0
    limits: ContainerLimits = field(default_factory=ContainerLimits)
    # Each sandbox's relay folder is made here; dockerd must see the same path (compose.yaml).
    relay_dir: str = "/run/catalog-agents/relay"
    # Fronts PostgreSQL so no password enters a sandbox; "" relays its bytes (password inside).
    pgbouncer: str = "pgbouncer"
    # What the relay never dials (networks, addresses, host names): link-local is cloud metadata.
    relay_deny: tuple[str, ...] = ("169.254.0.0/16", "fe80::/10")
    allow_host_network: bool = False  # `host` shares the host's network: development only
    # the service token its callers must send, and TLS (see services/common/control_plane.py)
    control_plane: ControlPlane = field(default_factory=ControlPlane)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        defaults = cls()
        limits = ContainerLimits(
            memory_bytes=env_int(env, "CATALOG_SANDBOX_MEMORY_BYTES", defaults.limits.memory_bytes),
            cpus=env_float(env, "CATALOG_SANDBOX_CPUS", defaults.limits.cpus),
            pids=env_int(env, "CATALOG_SANDBOX_PIDS", defaults.limits.pids),
            tmpfs_bytes=env_int(env, "CATALOG_SANDBOX_TMPFS_BYTES", defaults.limits.tmpfs_bytes),
            network_mode=env.get("CATALOG_SANDBOX_NETWORK", defaults.limits.network_mode),
            data_mount=env.get("CATALOG_SANDBOX_DATA_MOUNT", ""),
            runtime=env.get("CATALOG_SANDBOX_RUNTIME", defaults.limits.runtime),
        )
        settings = cls(
            manager_id=env.get("CATALOG_SANDBOX_MANAGER_ID", defaults.manager_id),
            host=env.get("CATALOG_SANDBOX_HOST", defaults.host),
            port=env_int(env, "CATALOG_SANDBOX_PORT", defaults.port),
            metrics_port=env_int(
                env, "CATALOG_SANDBOX_METRICS_PORT", defaults.metrics_port, minimum=0
            ),
            backend=env.get("CATALOG_SANDBOX_BACKEND", defaults.backend),
            image=env.get("CATALOG_SANDBOX_IMAGE", defaults.image),
            min_warm=env_int(env, "CATALOG_SANDBOX_MIN_WARM", defaults.min_warm),
            max_size=env_int(env, "CATALOG_SANDBOX_MAX_SIZE", defaults.max_size),
            lease_ttl_s=env_float(env, "CATALOG_SANDBOX_LEASE_TTL_S", defaults.lease_ttl_s),
            max_wait_s=env_float(env, "CATALOG_SANDBOX_MAX_WAIT_S", defaults.max_wait_s),
            exec_timeout_s=env_float(
                env, "CATALOG_SANDBOX_EXEC_TIMEOUT_S", defaults.exec_timeout_s
            ),
            max_exec_timeout_s=env_float(
                env, "CATALOG_SANDBOX_MAX_EXEC_TIMEOUT_S", defaults.max_exec_timeout_s
            ),
            max_code_bytes=env_int(env, "CATALOG_SANDBOX_MAX_CODE_BYTES", defaults.max_code_bytes),
            max_output_bytes=env_int(
                env, "CATALOG_SANDBOX_MAX_OUTPUT_BYTES", defaults.max_output_bytes, minimum=1
            ),
            max_databases=env_int(
                env, "CATALOG_SANDBOX_MAX_DATABASES", defaults.max_databases, minimum=1
            ),
            max_output_bytes_ceiling=env_int(
                env,
                "CATALOG_SANDBOX_OUTPUT_BYTES_CEILING",
                defaults.max_output_bytes_ceiling,
                minimum=1,
            ),
            exec_queue_events=env_int(
                env, "CATALOG_SANDBOX_EXEC_QUEUE_EVENTS", defaults.exec_queue_events, minimum=1
            ),
            kernel_ready_timeout_s=env_float(
                env, "CATALOG_SANDBOX_KERNEL_READY_TIMEOUT_S", defaults.kernel_ready_timeout_s
            ),
            shutdown_grace_s=env_float(
                env, "CATALOG_SANDBOX_SHUTDOWN_GRACE_S", defaults.shutdown_grace_s
            ),
            health_interval_s=env_float(
                env, "CATALOG_SANDBOX_HEALTH_INTERVAL_S", defaults.health_interval_s
            ),
            limits=limits,
            control_plane=ControlPlane.from_env(env),
            relay_dir=env.get("CATALOG_SANDBOX_RELAY_DIR", defaults.relay_dir),
            pgbouncer=env.get("CATALOG_SANDBOX_PGBOUNCER", defaults.pgbouncer),
            relay_deny=env_list(env, "CATALOG_SANDBOX_RELAY_DENY", defaults.relay_deny),
            allow_host_network=env.get("CATALOG_SANDBOX_ALLOW_HOST_NETWORK", "") == "1",
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not MANAGER_ID_PATTERN.match(self.manager_id):
            raise SettingsError(
                "CATALOG_SANDBOX_MANAGER_ID must be 1 to 63 lower-case letters, digits or '-'"
            )
        if self.backend not in ("docker", "process"):
            raise SettingsError("CATALOG_SANDBOX_BACKEND must be 'docker' or 'process'")
        if not 0 <= self.min_warm <= self.max_size or self.max_size < 1:
            raise SettingsError(
                "need 0 <= CATALOG_SANDBOX_MIN_WARM <= CATALOG_SANDBOX_MAX_SIZE, and a size >= 1"
            )
        if not 0 < self.lease_ttl_s <= self.max_lease_ttl_s:
            raise SettingsError("CATALOG_SANDBOX_LEASE_TTL_S must be above 0 and at most 3600")
        if self.max_output_bytes > self.max_output_bytes_ceiling:
            raise SettingsError(
                f"CATALOG_SANDBOX_MAX_OUTPUT_BYTES={self.max_output_bytes} is above its ceiling "
                f"CATALOG_SANDBOX_OUTPUT_BYTES_CEILING={self.max_output_bytes_ceiling}: raise "
                "the ceiling or lower the default"
            )
        if not RUNTIME_PATTERN.match(self.limits.runtime):
            raise SettingsError(
                f"CATALOG_SANDBOX_RUNTIME must name a Docker runtime (runc, runsc), "
                f"not {self.limits.runtime!r}"
            )
        if self.backend == "docker":
            self._validate_relay()
        mount = self.limits.data_mount
        if mount and (not os.path.isabs(mount) or not os.path.isdir(mount) or mount == "/"):
            raise SettingsError(
                f"CATALOG_SANDBOX_DATA_MOUNT must be an existing absolute folder other than /, "
                f"not {mount!r}"
            )

    def _validate_relay(self) -> None:
        if self.limits.network_mode == "host" and not self.allow_host_network:
            raise SettingsError(
                "CATALOG_SANDBOX_NETWORK=host gives sandboxes the host's network, loopback "
                "included; sandboxes reach their database through the relay on the default "
                "`none`. For development only, set CATALOG_SANDBOX_ALLOW_HOST_NETWORK=1"
            )
        if not os.path.isabs(self.relay_dir) or self.relay_dir == "/":
            raise SettingsError(
                f"CATALOG_SANDBOX_RELAY_DIR must be an absolute folder other than /, "
                f"not {self.relay_dir!r}"
            )
        if self.pgbouncer and shutil.which(self.pgbouncer) is None:
            raise SettingsError(
                f"CATALOG_SANDBOX_PGBOUNCER names {self.pgbouncer!r}, which is not installed: "
                "install Debian's `pgbouncer` (scripts/ensure_host_packages.sh), or set it "
                "empty to relay PostgreSQL without it (the password then enters the sandbox)"
            )
