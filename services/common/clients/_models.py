"""The sandbox client's values: what goes to a manager, and what comes back, as dataclasses.

Names differ from the manager's own (`pool.Lease`, `kernel_client.SessionInfo`) and from the
messages (`sandbox_pb2.Lease`): these are what a caller of the manager holds.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from catalog.v1 import sandbox_pb2 as pb
from google.protobuf import duration_pb2


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of UNAVAILABLE: `attempts` tries in all, pauses growing from the initial one."""

    attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("RetryPolicy needs attempts >= 1 and non-negative backoffs")

    def backoff_s(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (1-based)."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)  # jitter, so many clients do not retry in step


@dataclass(frozen=True)
class SessionSettings:
    """Connection settings for the kernel. The repr leaves the secrets out."""

    db_dsn: str = field(default="", repr=False)
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)
    s3_session_token: str = field(default="", repr=False)
    env: Mapping[str, str] = field(default_factory=dict)
    statement_timeout_s: float | None = None
    # Several databases, name -> DSN in order (`cons[name]`; the first is `con`); instead of
    # db_dsn, which is the shorthand for one named "default".
    databases: Mapping[str, str] = field(default_factory=dict, repr=False)

    def to_proto(self) -> pb.SessionConfig:
        config = pb.SessionConfig(db_dsn=self.db_dsn, env=dict(self.env))
        for name, dsn in self.databases.items():
            config.databases.add(name=name, dsn=dsn)
        s3 = pb.S3Settings(
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
            session_token=self.s3_session_token,
        )
        if s3.ByteSize():
            config.s3.CopyFrom(s3)
        if self.statement_timeout_s is not None:
            config.statement_timeout.CopyFrom(duration(self.statement_timeout_s))
        return config


@dataclass(frozen=True)
class DatabaseSession:
    """What the kernel made of one database of the session."""

    name: str
    backend: str
    read_only: bool
    connect_error: str | None


@dataclass(frozen=True)
class SandboxSession:
    """What the kernel made of the session: its database backend, or why it has none. The
    three first fields describe the first database (`con`); `databases` each of them."""

    backend: str
    read_only: bool
    connect_error: str | None
    databases: tuple[DatabaseSession, ...] = ()


@dataclass(frozen=True)
class SandboxLease:
    """A sandbox leased from a manager; `lease_id` reads `{manager_id}.{random}`."""

    lease_id: str
    sandbox_id: str
    manager_id: str
    expire_time: datetime
    ttl_s: float
    session: SandboxSession


@dataclass(frozen=True)
class ExecutionError:
    """An exception the user's code raised."""

    ename: str
    evalue: str
    traceback: str


class ExecutionStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"


@dataclass(frozen=True)
class Execution:
    """One cell's outcome: its output, its value or exception, and how it ended."""

    stdout: str
    stderr: str
    result: str | None  # plain-text value of the last expression
    result_html: str | None
    error: ExecutionError | None
    status: ExecutionStatus
    duration_s: float
    state_lost: bool  # the interpreter was replaced: earlier names are gone
    stdout_bytes_omitted: int
    stderr_bytes_omitted: int

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.OK

    def whole_stdout(self) -> str:
        """What the cell printed, for a caller that needs all of it (data, not a report to
        read); ValueError, saying why, when the cell failed or its output was cut."""
        if not self.ok:
            why = f"{self.error.ename}: {self.error.evalue}" if self.error else "no error"
            raise ValueError(f"the cell ended {self.status.value} ({why})")
        if self.stdout_bytes_omitted:
            raise ValueError(f"the cell's output was cut by {self.stdout_bytes_omitted} bytes")
        return self.stdout


def duration(value_s: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromNanoseconds(round(value_s * 1e9))
    return message


def session_of(message: pb.SessionInfo) -> SandboxSession:
    error = message.connect_error if message.HasField("connect_error") else None
    databases = tuple(
        DatabaseSession(
            d.name,
            d.backend,
            d.read_only,
            d.connect_error if d.HasField("connect_error") else None,
        )
        for d in message.databases
    )
    return SandboxSession(message.backend, message.read_only, error, databases)


def lease_of(reply: pb.AcquireSandboxResponse) -> SandboxLease:
    lease = reply.lease
    return SandboxLease(
        lease_id=lease.lease_id,
        sandbox_id=lease.sandbox_id,
        manager_id=lease.manager_id,
        expire_time=lease.expire_time.ToDatetime(tzinfo=UTC),
        ttl_s=lease.ttl.ToNanoseconds() / 1e9,
        session=session_of(reply.session),
    )
