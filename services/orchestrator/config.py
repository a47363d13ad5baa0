"""The orchestrator's settings, read once from the environment at start-up.

Every name is documented in docs/settings.md. Secrets (API keys, the sealing
key) are kept out of the repr so a logged Settings never shows them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.common import ports
from services.common.control_plane import ControlPlane
from services.common.env import SettingsError, env_float, env_int, env_list
from services.orchestrator.tenants import Tenant, check_tenants, parse_tenants
from services.orchestrator.webhook_spec import check_webhook_secret

__all__ = ["Settings", "SettingsError"]


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    grpc_port: int = ports.ORCHESTRATOR_GRPC
    http_port: int = ports.ORCHESTRATOR_HTTP
    # DBOS: the system database (SQLite by default, PostgreSQL in production), the version
    # that recovery matches on, and this replica's own executor id.
    system_database_url: str = "sqlite:///.catalog/orchestrator.sqlite"
    application_version: str = "catalog-agents-2"
    executor_id: str = field(default_factory=socket.gethostname)
    queue_concurrency: int = 4
    # how long a replica's liveness lock must stay free before a survivor recovers its runs
    recovery_after_s: float = 60.0
    # Where the other services listen.
    sandbox_managers: tuple[str, ...] = (f"localhost:{ports.SANDBOX_MANAGER}",)
    agent_runner: str = f"localhost:{ports.AGENT_RUNNER}"
    prompts_dir: Path = Path("prompts")
    # Seals the connection string before DBOS stores it; see sealing.py.
    secret_key: str = field(default="", repr=False)
    secret_key_file: Path = Path(".catalog/secret.key")
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # the tenant `default`'s keys
    # named tenants: their keys and the prefixes each may write (tenants.py)
    tenants: tuple[Tenant, ...] = field(default=(), repr=False)
    rate_per_s: float = 5.0
    rate_burst: int = 20
    max_watches_per_key: int = 32  # WatchCatalog streams one key may hold open at once
    # Bounds of one run.
    agent_timeout_s: float = 3600.0
    lease_ttl_s: float = 900.0
    acquire_wait_s: float = 600.0
    statement_timeout_s: float = 60.0
    max_sources: int = 8  # databases one run may name (`sources`)
    history_runs: int = 20
    history_max_bytes: int = 32 * 1024 * 1024
    # S3 endpoint for S3-compatible stores (else boto3's own AWS_ENDPOINT_URL resolution).
    s3_endpoint_url: str = ""
    storage_retry_s: float = 120.0
    runner_retry_s: float = 2.0  # the first pause before a step calls an unreachable runner again
    # file:// prefixes must lie under one of these folders; empty means ./catalogs.
    file_roots: tuple[str, ...] = ()
    # S3 prefixes whose stored runs the web UI lists besides those of its runs (file:// ones
    # under the file roots are found by walking them)
    ui_prefixes: tuple[str, ...] = ()
    shutdown_grace_s: float = 30.0
    # the largest HTTP request body and gRPC message taken
    max_request_bytes: int = 1024 * 1024
    # the token sent to the manager and the runner, and TLS for them and for its own listeners
    control_plane: ControlPlane = field(default_factory=ControlPlane)
    # Webhooks (webhooks.py): the Standard Webhooks signing secret (`whsec_` + base64), how
    # long a delivery is retried, its first wait (doubling after), one attempt's timeout, and
    # the SSRF guards' two escape hatches (tests and trusted networks only).
    webhook_secret: str = field(default="", repr=False)
    webhook_retry_s: float = 86400.0
    webhook_backoff_s: float = 10.0
    webhook_timeout_s: float = 10.0
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False
    # Schedules (schedules.py): the shortest gap between two ticks a cron may ask for.
    schedule_min_interval_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        d = cls()
        settings = cls(
            host=env.get("CATALOG_ORCHESTRATOR_HOST", d.host),
            grpc_port=env_int(env, "CATALOG_ORCHESTRATOR_GRPC_PORT", d.grpc_port, minimum=0),
            http_port=env_int(env, "CATALOG_ORCHESTRATOR_HTTP_PORT", d.http_port, minimum=0),
            system_database_url=env.get("DBOS_SYSTEM_DATABASE_URL", d.system_database_url),
            application_version=env.get("CATALOG_APPLICATION_VERSION", d.application_version),
            executor_id=env.get("CATALOG_EXECUTOR_ID", d.executor_id),
            queue_concurrency=env_int(
                env, "CATALOG_QUEUE_CONCURRENCY", d.queue_concurrency, minimum=1
            ),
            recovery_after_s=env_float(
                env, "CATALOG_RECOVERY_AFTER_S", d.recovery_after_s, minimum=0
            ),
            sandbox_managers=env_list(env, "CATALOG_SANDBOX_MANAGERS", d.sandbox_managers),
            agent_runner=env.get("CATALOG_AGENT_RUNNER", d.agent_runner),
            prompts_dir=Path(env.get("CATALOG_PROMPTS_DIR", str(d.prompts_dir))),
            secret_key=env.get("CATALOG_SECRET_KEY", ""),
            secret_key_file=Path(env.get("CATALOG_SECRET_KEY_FILE", str(d.secret_key_file))),
            api_keys=env_list(env, "CATALOG_API_KEYS", ()),
            tenants=parse_tenants(env.get("CATALOG_TENANTS", "")),
            rate_per_s=env_float(env, "CATALOG_RATE_PER_S", d.rate_per_s, minimum=0),
            rate_burst=env_int(env, "CATALOG_RATE_BURST", d.rate_burst, minimum=1),
            max_watches_per_key=env_int(
                env, "CATALOG_MAX_WATCHES_PER_KEY", d.max_watches_per_key, minimum=1
            ),
            agent_timeout_s=env_float(env, "CATALOG_AGENT_TIMEOUT_S", d.agent_timeout_s, minimum=0),
            lease_ttl_s=env_float(env, "CATALOG_LEASE_TTL_S", d.lease_ttl_s, minimum=0),
            acquire_wait_s=env_float(env, "CATALOG_ACQUIRE_WAIT_S", d.acquire_wait_s, minimum=0),
            statement_timeout_s=env_float(
                env, "CATALOG_STATEMENT_TIMEOUT_S", d.statement_timeout_s, minimum=0
            ),
            max_sources=env_int(env, "CATALOG_MAX_SOURCES", d.max_sources, minimum=1),
            history_runs=env_int(env, "CATALOG_HISTORY_RUNS", d.history_runs, minimum=0),
            history_max_bytes=env_int(
                env, "CATALOG_HISTORY_MAX_BYTES", d.history_max_bytes, minimum=0
            ),
            s3_endpoint_url=env.get("CATALOG_S3_ENDPOINT_URL", ""),
            storage_retry_s=env_float(env, "CATALOG_STORAGE_RETRY_S", d.storage_retry_s, minimum=0),
            runner_retry_s=env_float(env, "CATALOG_RUNNER_RETRY_S", d.runner_retry_s, minimum=0),
            file_roots=env_list(env, "CATALOG_FILE_ROOTS", ()),
            ui_prefixes=env_list(env, "CATALOG_UI_PREFIXES", ()),
            shutdown_grace_s=env_float(
                env, "CATALOG_SHUTDOWN_GRACE_S", d.shutdown_grace_s, minimum=0
            ),
            max_request_bytes=env_int(
                env, "CATALOG_MAX_REQUEST_BYTES", d.max_request_bytes, minimum=4096
            ),
            control_plane=ControlPlane.from_env(env),
            webhook_secret=env.get("CATALOG_WEBHOOK_SECRET", ""),
            webhook_retry_s=env_float(env, "CATALOG_WEBHOOK_RETRY_S", d.webhook_retry_s, minimum=0),
            webhook_backoff_s=env_float(
                env, "CATALOG_WEBHOOK_BACKOFF_S", d.webhook_backoff_s, minimum=0.01
            ),
            webhook_timeout_s=env_float(
                env, "CATALOG_WEBHOOK_TIMEOUT_S", d.webhook_timeout_s, minimum=0.1
            ),
            webhook_allow_http=env.get("CATALOG_WEBHOOK_ALLOW_HTTP", "") == "1",
            webhook_allow_private=env.get("CATALOG_WEBHOOK_ALLOW_PRIVATE", "") == "1",
            schedule_min_interval_s=env_float(
                env, "CATALOG_SCHEDULE_MIN_INTERVAL_S", d.schedule_min_interval_s, minimum=0
            ),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse at start-up what would otherwise fail mid-run, naming the variable."""
        if not self.sandbox_managers:
            raise SettingsError(
                "CATALOG_SANDBOX_MANAGERS names no sandbox manager: list at least one "
                "host:port, e.g. localhost:50051"
            )
        if not self.agent_runner.strip():
            raise SettingsError(
                "CATALOG_AGENT_RUNNER names no agent runner: set its host:port, "
                "e.g. localhost:50052"
            )
        check_tenants(self.tenants, self.api_keys)  # no key in two tenants
        if self.webhook_secret:
            check_webhook_secret(self.webhook_secret)
