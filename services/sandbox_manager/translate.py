"""Protos in, domain values out, and back: request validation lives here, nowhere else.

Every bad field becomes an InvalidArgument naming the field, so a caller knows what to fix.
"""

from __future__ import annotations

import re
from typing import Any

from catalog.v1 import sandbox_pb2
from catalog_kernel.protocol import Message
from google.protobuf import duration_pb2, timestamp_pb2

from services.common.errors import InvalidArgument
from services.common.redaction import shown_value
from services.common.source_names import NAME
from services.sandbox_manager.config import Settings
from services.sandbox_manager.fleet import PooledSandbox, SandboxState
from services.sandbox_manager.kernel_client import KernelSession
from services.sandbox_manager.leases import PoolLease
from services.sandbox_manager.pool import AcquireRequest

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_ENV = ("CATALOG_", "PYTHON", "AWS_")
_RESERVED_ENV_NAMES = {"PATH", "HOME"}
_MAX_LABELS = 64
_MAX_KEY_CHARS = 256

STATES = {
    SandboxState.STARTING: sandbox_pb2.SANDBOX_STATE_STARTING,
    SandboxState.WARM: sandbox_pb2.SANDBOX_STATE_WARM,
    SandboxState.LEASED: sandbox_pb2.SANDBOX_STATE_LEASED,
    SandboxState.RECYCLING: sandbox_pb2.SANDBOX_STATE_RECYCLING,
    SandboxState.BROKEN: sandbox_pb2.SANDBOX_STATE_BROKEN,
}
_STATUSES = {
    "ok": sandbox_pb2.EXECUTION_STATUS_OK,
    "error": sandbox_pb2.EXECUTION_STATUS_ERROR,
    "timeout": sandbox_pb2.EXECUTION_STATUS_TIMEOUT,
    "interrupted": sandbox_pb2.EXECUTION_STATUS_INTERRUPTED,
    "crashed": sandbox_pb2.EXECUTION_STATUS_CRASHED,
}
_STREAMS = {"stdout": sandbox_pb2.OUTPUT_STREAM_STDOUT, "stderr": sandbox_pb2.OUTPUT_STREAM_STDERR}


def seconds(value: duration_pb2.Duration) -> float:
    return float(value.seconds) + value.nanos / 1e9


def duration(value_s: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromNanoseconds(int(value_s * 1e9))
    return message


def _bounded_seconds(request: Any, name: str, default: float, maximum: float) -> float:
    if not request.HasField(name):
        return default
    value = seconds(getattr(request, name))
    if value < 0:
        raise InvalidArgument(f"{name} must not be negative", field_violations=[(name, "< 0")])
    if value > maximum:
        raise InvalidArgument(
            f"{name} of {value:g} s is over the maximum of {maximum:g} s",
            field_violations=[(name, f"over {maximum:g} s")],
        )
    return value


def lease_id_of(request: Any) -> str:
    if not request.lease_id:
        raise InvalidArgument("lease_id is empty", field_violations=[("lease_id", "required")])
    return str(request.lease_id)


def session_of(
    config: sandbox_pb2.SessionConfig, field: str = "session", max_databases: int = 8
) -> dict[str, Any]:
    """The kernel's session message. Holds secrets: never log it."""
    for key in config.env:
        if not _ENV_NAME.match(key):
            raise InvalidArgument(
                f"{field}.env key {key!r} is not a valid variable name",
                field_violations=[(f"{field}.env", key)],
            )
        if key.startswith(_RESERVED_ENV) or key in _RESERVED_ENV_NAMES:
            raise InvalidArgument(
                f"{field}.env key {key!r} is reserved by the sandbox",
                field_violations=[(f"{field}.env", key)],
            )
    endpoint = config.s3.endpoint_url
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise InvalidArgument(
            f"{field}.s3.endpoint_url must be an http(s) URL",
            field_violations=[(f"{field}.s3.endpoint_url", "not http(s)")],
        )
    session: dict[str, Any] = {
        "db_dsn": config.db_dsn,
        "env": dict(config.env),
        "s3": {
            "endpoint_url": endpoint,
            "region": config.s3.region,
            "access_key_id": config.s3.access_key_id,
            "secret_access_key": config.s3.secret_access_key,
            "session_token": config.s3.session_token,
        },
    }
    if config.databases:
        session["databases"] = databases_of(config, field, max_databases)
    if config.HasField("statement_timeout"):
        statement_s = seconds(config.statement_timeout)
        if statement_s < 0:
            raise InvalidArgument(
                f"{field}.statement_timeout must not be negative",
                field_violations=[(f"{field}.statement_timeout", "< 0")],
            )
        session["statement_timeout_s"] = statement_s
    return session


def databases_of(
    config: sandbox_pb2.SessionConfig, field: str, max_databases: int
) -> list[dict[str, str]]:
    """The session's databases, in order: named, unique, each with a DSN, and not beside
    `db_dsn` (its shorthand for one named "default")."""
    where = f"{field}.databases"
    if config.db_dsn:
        raise InvalidArgument(
            f"give {field}.databases or {field}.db_dsn (the shorthand for one database named "
            "`default`), not both",
            field_violations=[(where, f"given with {field}.db_dsn")],
        )
    if len(config.databases) > max_databases:
        raise InvalidArgument(
            f"{where} holds {len(config.databases)} databases, over the limit of "
            f"{max_databases} (CATALOG_SANDBOX_MAX_DATABASES)",
            field_violations=[(where, f"over {max_databases}")],
        )
    seen: set[str] = set()
    for index, database in enumerate(config.databases):
        name, at = database.name, f"{where}[{index}]"
        if not NAME.match(name):
            raise InvalidArgument(
                f"{at}.name {shown_value(name)} is not a database name: a lowercase letter, "
                "then up to 30 lowercase letters, digits or '_'",
                field_violations=[(f"{at}.name", "not [a-z][a-z0-9_]{0,30}")],
            )
        if name in seen:
            raise InvalidArgument(
                f"{at}.name {name!r} is given twice: each database needs a name of its own",
                field_violations=[(f"{at}.name", "duplicate")],
            )
        seen.add(name)
        if not database.dsn:
            raise InvalidArgument(
                f"{at}.dsn is empty: give the database's connection string",
                field_violations=[(f"{at}.dsn", "required")],
            )
    return [{"name": d.name, "dsn": d.dsn} for d in config.databases]


def acquire_request(
    request: sandbox_pb2.AcquireSandboxRequest, settings: Settings, time_remaining: float | None
) -> AcquireRequest:
    if len(request.labels) > _MAX_LABELS:
        raise InvalidArgument(
            f"at most {_MAX_LABELS} labels", field_violations=[("labels", "too many")]
        )
    if len(request.idempotency_key) > _MAX_KEY_CHARS:
        raise InvalidArgument(
            f"idempotency_key is {len(request.idempotency_key)} characters, over the limit of "
            f"{_MAX_KEY_CHARS}: derive a shorter key (a hash, say)",
            field_violations=[("idempotency_key", f"over {_MAX_KEY_CHARS} characters")],
        )
    # Answer RESOURCE_EXHAUSTED a little before the deadline, not DEADLINE_EXCEEDED at it.
    wait_cap = settings.max_wait_s if time_remaining is None else max(0.0, time_remaining - 0.5)
    wait_s = _bounded_seconds(request, "wait_timeout", wait_cap, float("inf"))
    return AcquireRequest(
        session=session_of(request.session, max_databases=settings.max_databases),
        ttl_s=_bounded_seconds(request, "lease_ttl", settings.lease_ttl_s, settings.max_lease_ttl_s)
        or settings.lease_ttl_s,
        wait_s=min(wait_s, wait_cap),
        labels=dict(request.labels),
        client_id=request.client_id,
        idempotency_key=request.idempotency_key,
    )


def execute_limits(request: sandbox_pb2.ExecuteRequest, settings: Settings) -> tuple[float, int]:
    """Validate the cell; return its timeout and output cap."""
    if not request.code.strip():
        raise InvalidArgument(
            "code is empty: send the Python source to run", field_violations=[("code", "empty")]
        )
    size = len(request.code.encode("utf-8"))
    if size > settings.max_code_bytes:
        raise InvalidArgument(
            f"code is {size} bytes, over the limit of {settings.max_code_bytes}: split the work "
            "into smaller cells or read data from files",
            field_violations=[("code", f"over {settings.max_code_bytes} bytes")],
        )
    if request.max_output_bytes < 0:
        raise InvalidArgument(
            "max_output_bytes must not be negative", field_violations=[("max_output_bytes", "< 0")]
        )
    if request.max_output_bytes > settings.max_output_bytes_ceiling:
        raise InvalidArgument(
            f"max_output_bytes of {request.max_output_bytes} is over the manager's ceiling of "
            f"{settings.max_output_bytes_ceiling} (CATALOG_SANDBOX_OUTPUT_BYTES_CEILING): ask "
            "for less, or 0 for the default",
            field_violations=[("max_output_bytes", f"over {settings.max_output_bytes_ceiling}")],
        )
    timeout_s = (
        _bounded_seconds(request, "timeout", settings.exec_timeout_s, settings.max_exec_timeout_s)
        or settings.exec_timeout_s
    )
    return timeout_s, int(request.max_output_bytes or settings.max_output_bytes)


def session_info(info: KernelSession) -> sandbox_pb2.SessionInfo:
    message = sandbox_pb2.SessionInfo(backend=info.backend, read_only=info.read_only)
    if info.connect_error:
        message.connect_error = info.connect_error
    for each in info.databases:
        database = message.databases.add(
            name=each.name, backend=each.backend, read_only=each.read_only
        )
        if each.connect_error:
            database.connect_error = each.connect_error
    return message


def timestamp(value: Any) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def lease(value: PoolLease, manager_id: str) -> sandbox_pb2.Lease:
    return sandbox_pb2.Lease(
        lease_id=value.lease_id,
        sandbox_id=value.sandbox_id,
        manager_id=manager_id,
        expire_time=timestamp(value.expire_time),
        ttl=duration(value.ttl_s),
        client_id=value.client_id,
    )


# A cell may print tens of MB at once (a catalog of 3,000 tables' data); one message per chunk
# stays under gRPC's limits (a client's 4 MiB receive default): 256k characters, 1 MiB at most.
OUTPUT_CHUNK_CHARS = 256 * 1024


def split_output(event: Message, size: int = OUTPUT_CHUNK_CHARS) -> list[Message]:
    """A stdout or stderr event in pieces of at most `size` characters (in order, so the
    client's accumulator joins them back); any other event as it is."""
    text = event.get("text")
    if event["ev"] not in ("stdout", "stderr") or not isinstance(text, str) or len(text) <= size:
        return [event]
    return [{**event, "text": text[i : i + size]} for i in range(0, len(text), size)]


def execute_event(event: Message) -> sandbox_pb2.ExecuteResponse | None:
    kind = event["ev"]
    if kind == "stdout":
        return sandbox_pb2.ExecuteResponse(stdout=sandbox_pb2.OutputChunk(text=event["text"]))
    if kind == "stderr":
        return sandbox_pb2.ExecuteResponse(stderr=sandbox_pb2.OutputChunk(text=event["text"]))
    if kind == "truncated":
        return sandbox_pb2.ExecuteResponse(
            truncated=sandbox_pb2.OutputTruncated(
                stream=_STREAMS[event["stream"]], bytes_omitted=event["bytes_omitted"]
            )
        )
    if kind == "result":
        return sandbox_pb2.ExecuteResponse(
            result=sandbox_pb2.ResultValue(text_plain=event["text_plain"])
        )
    if kind == "error":
        return sandbox_pb2.ExecuteResponse(
            error=sandbox_pb2.ExecutionError(
                ename=event["ename"], evalue=event["evalue"], traceback=event["traceback"]
            )
        )
    if kind == "done":
        return sandbox_pb2.ExecuteResponse(
            finished=sandbox_pb2.ExecutionFinished(
                status=_STATUSES[event["status"]],
                duration=duration(event["duration_ms"] / 1000),
                state_lost=event["state_lost"],
                stdout_bytes_omitted=event["stdout_bytes_omitted"],
                stderr_bytes_omitted=event["stderr_bytes_omitted"],
            )
        )
    return None


def sandbox(
    value: PooledSandbox, settings: Settings, backend_kind: str, image: str
) -> sandbox_pb2.Sandbox:
    limits = settings.limits
    message = sandbox_pb2.Sandbox(
        sandbox_id=value.sandbox_id,
        manager_id=settings.manager_id,
        backend=backend(backend_kind),
        state=STATES[value.state],
        container_id=value.instance.container_id if value.instance else "",
        image=image,
        leases_served=value.leases_served,
        create_time=timestamp(value.create_time),
        last_used_time=timestamp(value.last_used_time),
        limits=sandbox_pb2.ResourceLimits(
            memory_bytes=limits.memory_bytes, cpus=limits.cpus, pids=limits.pids
        ),
        network_mode="host" if backend_kind == "process" else limits.network_mode,
    )
    if value.lease is not None and value.state is SandboxState.LEASED:
        message.lease.CopyFrom(lease(value.lease, settings.manager_id))
        # The lease id is the right to run code in this session (its database is open): a
        # listing shows that the sandbox is leased, to whom and until when, never the id.
        message.lease.lease_id = ""
        message.labels.update(value.lease.labels)
    return message


def backend(kind: str) -> sandbox_pb2.SandboxBackend.ValueType:
    if kind == "docker":
        return sandbox_pb2.SANDBOX_BACKEND_DOCKER
    return sandbox_pb2.SANDBOX_BACKEND_PROCESS
