"""What `catalog-agents` prints, and the exit code each outcome gives (docs/cli.md).

Humans get one line per event on stderr and the answer on stdout; `--json` gives JSON on stdout
(one object per line for a stream of events) and errors as one JSON object on stderr.
"""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from services.common.clients import (
    AgentOutcome,
    AgentProgress,
    AgentSkipped,
    AgentStatus,
    CatalogClientError,
    CatalogConflict,
    CatalogEvent,
    CatalogInvalidRequest,
    CatalogNotFound,
    CatalogPermissionDenied,
    CatalogRateLimited,
    CatalogRun,
    CatalogRunFailed,
    CatalogStatus,
    CatalogTimedOut,
    CatalogUnauthenticated,
    CatalogUnavailable,
    Finished,
    OutputWritten,
    RunAgent,
    StepChanged,
)


class Exit(enum.IntEnum):
    """The exit codes, documented in docs/cli.md."""

    OK = 0  # done; for `start --wait` and `watch`, the run SUCCEEDED
    RUN_FAILED = 1  # the run ended FAILED: its failure code and message are printed
    USAGE = 2  # bad flags, or a request the orchestrator refused as invalid
    RUN_CANCELLED = 3
    NOT_FOUND = 4  # no such catalog (or another tenant's)
    UNREACHABLE = 5  # the orchestrator cannot be reached, or asks to call later
    DENIED = 6  # no API key, an unknown one, or the key's tenant may not do this
    TIMED_OUT = 7  # --wait-timeout passed; the run goes on
    CONFLICT = 8  # the run is over already, or the idempotency key was used with other inputs
    NO_PAGE = 9  # `open`: the run has written no such page (yet)
    ERROR = 10  # anything else


# The flag that sets each request field, so a refusal names what to change on the command line.
FLAGS = {"db_conn_string": "--db", "tables": "--tables", "s3_prefix": "--prefix"}
FLAGS.update(idempotency_key="--key", agents="--agents", max_cost_usd="--max-cost-usd")
FLAGS.update(sources="--source")
# What to do about each failure code a run can end with.
FIXES = {
    "DATABASE_UNREACHABLE": "check the host, port and database name in --db, and that the "
    "sandbox manager's machine can reach that host",
    "DATABASE_AUTH_FAILED": "check the user name and password in --db (make sample creates "
    "catalog_reader)",
    "TABLE_NOT_FOUND": "check --tables: `table` or `schema.table`, spelled as the database "
    "spells them, and readable by the user in --db",
    "WRITABLE_CONNECTION": "connect as a user that may only read, or pass --allow-writable",
}


def to_json(value: Any) -> Any:
    """Dataclasses, enums and times as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_json(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def emit_json(value: Any) -> None:
    print(json.dumps(to_json(value)), flush=True)


def note(message: str) -> None:
    """A line for the human watching (stderr, so stdout stays the answer)."""
    print(message, file=sys.stderr, flush=True)


def event_line(event: CatalogEvent, elapsed_s: float) -> str:
    stamp = f"[{elapsed_s:6.1f}s]"
    if isinstance(event, StepChanged):
        agent = f": {event.agent_name} agent" if event.agent_name else ""
        return f"{stamp} step {event.step.value}{agent}"
    if isinstance(event, AgentSkipped):
        return f"{stamp} {event.agent_name} agent skipped, because of {event.dependency}: " + (
            event.reason
        )
    if isinstance(event, AgentProgress):
        tool = event.tool_name or "model turn"
        tokens = f"{event.usage.total:,} tokens"
        return f"{stamp} {event.agent_name} agent, turn {event.turn}: {tool} ({tokens})"
    if isinstance(event, OutputWritten):
        state = "" if event.output.complete else " (incomplete)"
        return f"{stamp} page written{state}: {event.output.uri}"
    assert isinstance(event, Finished)
    return f"{stamp} {event.catalog.status.value}"


def run_text(run: CatalogRun) -> str:
    """A run as a few lines: id, status, step, tables, pages, each agent, cost, error."""
    at = f" ({run.current_agent})" if run.current_agent else ""
    lines = [
        f"{run.catalog_id}  {run.status.value}  step {run.current_step.value}{at}",
        f"  tables: {', '.join(run.tables)}",
        f"  prefix: {run.s3_prefix}  timestamp: {run.timestamp or '-'}",
    ]
    lines += [f"  {o.agent_name} page: {o.uri}" for o in run.outputs]
    usage = {u.agent_name: u for u in run.agent_usage}
    # Runs from before pipelines list no agents: their usage alone says who ran.
    agents = run.agents or tuple(
        RunAgent(u.agent_name, AgentStatus.UNSPECIFIED, "", "") for u in run.agent_usage
    )
    lines += [f"  {a.name} agent: {_agent_text(a, usage.get(a.name))}" for a in agents]
    lines.append(f"  cost: {_usd(run.cost_usd)}")
    if run.error is not None:
        lines.append(f"  error: {run.error.code} at {run.error.step.value}: {run.error.message}")
        if run.error.code in FIXES:
            lines.append(f"  fix: {FIXES[run.error.code]}")
    return "\n".join(lines)


def _agent_text(agent: RunAgent, outcome: AgentOutcome | None) -> str:
    """`SUCCEEDED, 3 turns, 12,345 tokens, $0.0123, SUBMITTED`; a skip names its dependency."""
    parts = [] if agent.status == AgentStatus.UNSPECIFIED else [agent.status.value]
    if agent.skipped_because:
        parts.append(f"because of {agent.skipped_because}")
    if outcome is not None:
        parts += [f"{outcome.turns} turns", f"{outcome.usage.total:,} tokens"]
        parts += [_usd(outcome.cost_usd), outcome.stop_reason.value]
    text = ", ".join(parts)
    return f"{text}: {agent.detail}" if agent.detail else text


def _usd(cost: float | None) -> str:
    return "unpriced" if cost is None else f"${cost:.4f}"


def run_exit(run: CatalogRun) -> Exit:
    return {
        CatalogStatus.SUCCEEDED: Exit.OK,
        CatalogStatus.FAILED: Exit.RUN_FAILED,
        CatalogStatus.CANCELLED: Exit.RUN_CANCELLED,
    }.get(run.status, Exit.OK)


_EXITS: tuple[tuple[type[CatalogClientError], Exit], ...] = (
    (CatalogInvalidRequest, Exit.USAGE),
    (CatalogNotFound, Exit.NOT_FOUND),
    (CatalogUnavailable, Exit.UNREACHABLE),
    (CatalogRateLimited, Exit.UNREACHABLE),
    (CatalogUnauthenticated, Exit.DENIED),
    (CatalogPermissionDenied, Exit.DENIED),
    (CatalogTimedOut, Exit.TIMED_OUT),
    (CatalogConflict, Exit.CONFLICT),
)


def error_exit(error: CatalogClientError, as_json: bool) -> Exit:
    """Print the error (with the fix) and return its exit code."""
    if isinstance(error, CatalogRunFailed) and not as_json:
        print(run_text(error.run), flush=True)  # the answer, as a success prints it
        return run_exit(error.run)
    code = run_exit(error.run) if isinstance(error, CatalogRunFailed) else None
    code = code or next((c for kind, c in _EXITS if isinstance(error, kind)), Exit.ERROR)
    lines = [error.message]
    if isinstance(error, CatalogInvalidRequest):
        lines = [
            f"the orchestrator refused the request ({error.status.name if error.status else ''}):"
        ]
        for field, why in error.field_violations:
            flag = FLAGS.get(field.split("[")[0], field)
            lines.append(f"  {flag} ({field}): {why}")
        if not error.field_violations:
            lines.append(f"  {error.message}")
    if as_json:
        body: dict[str, Any] = {"code": error.code, "message": error.message, "exit": int(code)}
        if isinstance(error, CatalogInvalidRequest):
            body["field_violations"] = [list(v) for v in error.field_violations]
        if isinstance(error, CatalogRunFailed) and error.code in FIXES:
            body["fix"] = FIXES[error.code]
        print(json.dumps({"error": body}), file=sys.stderr, flush=True)
    else:
        note("catalog-agents: " + "\n".join(lines))
    return code
