"""What the catalog client returns: dataclasses over catalog.v1's messages, built in one place.

A caller of `CatalogClient` never handles a proto: a run is a `CatalogRun`, a watch yields
`StepChanged`, `AgentProgress`, `AgentSkipped`, `OutputWritten` and, last, `Finished`.

An enum value this client does not know (a newer orchestrator's step or status) reads as that
enum's UNSPECIFIED rather than raising: an old client keeps following a newer server's runs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from catalog.v1 import catalog_pb2 as pb
from google.protobuf import timestamp_pb2

from services.common.clients._agent_runner import AgentStop
from services.common.source_names import qualify
from services.common.usage import TokenUsage


class CatalogStatus(enum.StrEnum):
    """A run's status (catalog.v1.CatalogStatus without its prefix)."""

    UNSPECIFIED = "UNSPECIFIED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (CatalogStatus.SUCCEEDED, CatalogStatus.FAILED, CatalogStatus.CANCELLED)

    def to_proto(self) -> pb.CatalogStatus.ValueType:
        return pb.CatalogStatus.Value(f"CATALOG_STATUS_{self.value}")


class CatalogStep(enum.StrEnum):
    """A run's step (catalog.v1.CatalogStep without its prefix). Runs started before pipelines
    say CATALOG_AGENT and SUMMARY_AGENT; newer ones say RUNNING_AGENT with the agent's name."""

    UNSPECIFIED = "UNSPECIFIED"
    ACQUIRING_SANDBOX = "ACQUIRING_SANDBOX"
    CHECKING_READ_ONLY = "CHECKING_READ_ONLY"
    CATALOG_AGENT = "CATALOG_AGENT"
    RESETTING_SANDBOX = "RESETTING_SANDBOX"
    SUMMARY_AGENT = "SUMMARY_AGENT"
    RELEASING = "RELEASING"
    DONE = "DONE"
    RUNNING_AGENT = "RUNNING_AGENT"


class AgentStatus(enum.StrEnum):
    """What became of one agent of a run (catalog.v1.AgentStatus without its prefix)."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


_E = TypeVar("_E", bound=enum.StrEnum)
_V = TypeVar("_V", bound=int)  # a proto enum's ValueType


def enum_from_proto(kind: type[_E], name_of: Callable[[_V], str], value: _V, prefix: str) -> _E:
    """`kind`'s member for a proto enum value; UNSPECIFIED for one this client does not know
    (a number newer than its catalog.v1, or a name newer than `kind`)."""
    try:
        name = name_of(value).removeprefix(prefix)
    except ValueError:
        return kind("UNSPECIFIED")
    return kind(name) if name in kind.__members__ else kind("UNSPECIFIED")


@dataclass(frozen=True)
class Source:
    """One database of a run, for `start(sources=[...])`: a short `name` (a lowercase letter,
    then up to 30 lowercase letters, digits or '_'; unique in the run), its URL (secret: left
    out of the repr) and its tables. Pages and data name its tables `name/table`."""

    name: str
    db_conn_string: str = field(repr=False)
    tables: tuple[str, ...] = ()

    def to_proto(self) -> pb.DatabaseSource:
        return pb.DatabaseSource(
            name=self.name, db_conn_string=self.db_conn_string, tables=list(self.tables)
        )


def qualified(source: str, table: str) -> str:
    """A source's table as runs name it: `billing/invoices`, bare for the source `default`."""
    return qualify(source, table)


@dataclass(frozen=True)
class PageOutput:
    """A page a run wrote, and its data beside it ("" when none could be stored)."""

    agent_name: str
    uri: str
    complete: bool  # the agent submitted it itself (not forced by a budget or an error)
    data_uri: str


@dataclass(frozen=True)
class AgentOutcome:
    """How one agent of a run went."""

    agent_name: str
    usage: TokenUsage
    stop_reason: AgentStop
    turns: int
    cost_usd: float | None  # None when the runner has no price for its model


@dataclass(frozen=True)
class RunAgent:
    """One agent of a run and what became of it so far, in the order the agents run."""

    name: str
    status: AgentStatus
    skipped_because: str  # for SKIPPED: the dependency that kept it from running; else ""
    detail: str  # for people: why it was skipped, or how it failed; else ""


@dataclass(frozen=True)
class RunError:
    """Why a run failed: `code` is the orchestrator's failure code, e.g. DATABASE_AUTH_FAILED."""

    code: str
    message: str
    step: CatalogStep


@dataclass(frozen=True)
class CatalogRun:
    """A catalog run as the orchestrator shows it. Never holds the connection string."""

    catalog_id: str
    status: CatalogStatus
    current_step: CatalogStep
    tables: tuple[str, ...]
    s3_prefix: str
    timestamp: str  # the run's fixed UTC time in its pages' keys; "" while queued
    outputs: tuple[PageOutput, ...]
    agent_usage: tuple[AgentOutcome, ...]
    error: RunError | None  # set only when FAILED
    create_time: datetime | None
    update_time: datetime | None
    agents: tuple[RunAgent, ...]  # empty for runs started before pipelines
    current_agent: str  # the agent at work when current_step is RUNNING_AGENT; else ""
    cost_usd: float  # what its agents cost so far, US dollars; 0 when none could be priced
    schedule_id: str = ""  # the schedule that started it, if one did
    tick_time: datetime | None = None  # the tick of that schedule it runs for
    # its databases by name, in request order: ("default",) for one db_conn_string; `tables`
    # names the tables of the others `source/table`
    sources: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status.finished

    def page(self, agent_name: str = "catalog") -> str:
        """The URI of that agent's page, or "" when it has written none."""
        return next((o.uri for o in self.outputs if o.agent_name == agent_name), "")


@dataclass(frozen=True)
class CatalogList:
    """One page of ListCatalogs: newest first; `next_page_token` is "" on the last page."""

    catalogs: tuple[CatalogRun, ...]
    next_page_token: str


@dataclass(frozen=True)
class StepChanged:
    step: CatalogStep
    time: datetime | None
    agent_name: str = ""  # the agent at work when `step` is RUNNING_AGENT


@dataclass(frozen=True)
class AgentSkipped:
    """An agent will not run: `dependency`, one of its needs, did not do what it asks."""

    agent_name: str
    dependency: str
    reason: str  # for people, e.g. "pii needs catalog, which failed (run_when: succeeded)"


@dataclass(frozen=True)
class AgentProgress:
    """An agent made progress (after each tool call); `usage` is its running total."""

    agent_name: str
    turn: int
    tool_name: str
    usage: TokenUsage


@dataclass(frozen=True)
class OutputWritten:
    output: PageOutput


@dataclass(frozen=True)
class Finished:
    """The run ended; always a watch's last event."""

    catalog: CatalogRun


CatalogEvent = StepChanged | AgentProgress | AgentSkipped | OutputWritten | Finished


def _time(stamp: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def _output(message: pb.OutputObject) -> PageOutput:
    return PageOutput(message.agent_name, message.uri, message.complete, message.data_uri)


def run_from_proto(message: pb.Catalog) -> CatalogRun:
    return CatalogRun(
        catalog_id=message.catalog_id,
        status=enum_from_proto(
            CatalogStatus, pb.CatalogStatus.Name, message.status, "CATALOG_STATUS_"
        ),
        current_step=step_from_proto(message.current_step),
        tables=tuple(message.tables),
        s3_prefix=message.s3_prefix,
        timestamp=message.timestamp,
        outputs=tuple(_output(o) for o in message.outputs),
        agent_usage=tuple(_outcome(u) for u in message.agent_usage),
        error=_error(message),
        create_time=_time(message.create_time, message.HasField("create_time")),
        update_time=_time(message.update_time, message.HasField("update_time")),
        agents=tuple(_agent(a) for a in message.agents),
        current_agent=message.current_agent,
        cost_usd=message.cost_usd,
        schedule_id=message.schedule_id,
        tick_time=_time(message.tick_time, message.HasField("tick_time")),
        sources=tuple(message.sources),
    )


def _agent(message: pb.RunAgent) -> RunAgent:
    status = enum_from_proto(AgentStatus, pb.AgentStatus.Name, message.status, "AGENT_STATUS_")
    return RunAgent(message.agent_name, status, message.skipped_because, message.detail)


def _outcome(message: pb.AgentUsage) -> AgentOutcome:
    stop = AgentStop.from_proto(message.stop_reason)
    cost = message.cost_usd if message.HasField("cost_usd") else None
    usage = TokenUsage.from_proto(message.usage)
    return AgentOutcome(message.agent_name, usage, stop, message.turns, cost)


def _error(message: pb.Catalog) -> RunError | None:
    if not (message.HasField("error") and message.error.code):
        return None
    error = message.error
    return RunError(error.code, error.message, step_from_proto(error.step))


def step_from_proto(value: pb.CatalogStep.ValueType) -> CatalogStep:
    return enum_from_proto(CatalogStep, pb.CatalogStep.Name, value, "CATALOG_STEP_")


def event_from_proto(message: pb.WatchCatalogResponse) -> CatalogEvent | None:
    """The event, or None for a kind this client does not know (a newer server's)."""
    kind = message.WhichOneof("event")
    if kind == "step_changed":
        changed = message.step_changed
        time = _time(changed.time, changed.HasField("time"))
        return StepChanged(step_from_proto(changed.step), time, changed.agent_name)
    if kind == "agent_progress":
        p = message.agent_progress
        return AgentProgress(p.agent_name, p.turn, p.tool_name, TokenUsage.from_proto(p.usage))
    if kind == "agent_skipped":
        s = message.agent_skipped
        return AgentSkipped(s.agent_name, s.dependency, s.reason)
    if kind == "output_written":
        return OutputWritten(_output(message.output_written.output))
    if kind == "final":
        return Finished(run_from_proto(message.final))
    return None
