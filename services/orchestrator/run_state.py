"""A catalog run's state and progress, as the workflow records them and both APIs read them.

The workflow rewrites one `RunState` (a DBOS event) at every change, so GetCatalog reads where a
run is; it appends a `ProgressEvent` to a DBOS stream for each change, so WatchCatalog follows
it. DBOS pickles both: every type here lives at module level, and a field added later needs a
default so states written by an older version still load.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from services.common.usage import TokenUsage


class Step(enum.StrEnum):
    """Where a run is: catalog.v1.CatalogStep without its prefix."""

    UNSPECIFIED = "UNSPECIFIED"
    ACQUIRING_SANDBOX = "ACQUIRING_SANDBOX"
    CHECKING_READ_ONLY = "CHECKING_READ_ONLY"
    CATALOG_AGENT = "CATALOG_AGENT"  # runs from before pipelines; now RUNNING_AGENT
    RESETTING_SANDBOX = "RESETTING_SANDBOX"
    SUMMARY_AGENT = "SUMMARY_AGENT"  # runs from before pipelines; now RUNNING_AGENT
    RELEASING = "RELEASING"
    DONE = "DONE"
    RUNNING_AGENT = "RUNNING_AGENT"  # RunState.agent names the agent


class AgentStatus(enum.StrEnum):
    """What became of an agent of a run: catalog.v1.AgentStatus without its prefix."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class RunAgent:
    """One agent of the run, in run order, and what became of it."""

    name: str
    status: AgentStatus = AgentStatus.PENDING
    skipped_because: str = ""  # SKIPPED: the need that kept it from running
    detail: str = ""  # for people: why it was skipped or how it failed


@dataclass(frozen=True)
class OutputRef:
    """A page an agent wrote, and the data beside it ("" when the sandbox could not export it)."""

    agent_name: str
    uri: str
    complete: bool
    data_uri: str = ""


@dataclass(frozen=True)
class AgentUsage:
    """What an agent run cost and how it stopped (stop_reason: StopReason without its prefix)."""

    agent_name: str
    stop_reason: str
    turns: int
    usage: TokenUsage
    cost_usd: float | None = None  # USD (the runner's price table); None: no price known


@dataclass(frozen=True)
class RunError:
    code: str  # CatalogError.code, e.g. TABLE_NOT_FOUND
    message: str  # for people; free of secrets
    step: Step  # where the run stopped


@dataclass
class RunState:
    """The run as GetCatalog shows it; the workflow's only mutable value."""

    tables: list[str]
    s3_prefix: str
    step: Step = Step.ACQUIRING_SANDBOX
    timestamp: str = ""  # the run's key timestamp, fixed at its start
    outputs: list[OutputRef] = field(default_factory=list)
    usage: list[AgentUsage] = field(default_factory=list)
    error: RunError | None = None
    agents: list[RunAgent] = field(default_factory=list)  # empty in runs from before pipelines
    agent: str = ""  # the agent at work while step is RUNNING_AGENT

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A state pickled before pipelines lacks the newer fields: give them their defaults."""
        self.__dict__.update({"agents": [], "agent": "", **state})

    def set_agent(
        self, name: str, status: AgentStatus, because: str = "", detail: str = ""
    ) -> None:
        self.agents = [
            RunAgent(name, status, because, detail) if a.name == name else a for a in self.agents
        ]

    @property
    def cost_usd(self) -> float:
        """What the agents cost so far, those with a known price."""
        return sum(u.cost_usd for u in self.usage if u.cost_usd is not None)

    @classmethod
    def from_event(cls, value: Any) -> RunState | None:
        """The state a run published; a dict is a run from before these types, read as one."""
        if isinstance(value, RunState) or value is None:
            return value
        if not isinstance(value, dict):
            return None
        error = value.get("error")
        return cls(
            tables=list(value.get("tables", [])),
            s3_prefix=str(value.get("s3_prefix", "")),
            step=Step(value.get("step", Step.UNSPECIFIED)),
            timestamp=str(value.get("timestamp", "")),
            outputs=[OutputRef(**o) for o in value.get("outputs", [])],
            usage=[
                AgentUsage(u["agent_name"], u["stop_reason"], u["turns"], TokenUsage(**u["usage"]))
                for u in value.get("usage", [])
            ],
            error=RunError(error["code"], error["message"], Step(error["step"])) if error else None,
            agents=[
                RunAgent(a["name"], AgentStatus(a["status"]), a["skipped_because"], a["detail"])
                for a in value.get("agents", [])
            ],
            agent=str(value.get("agent", "")),
        )


# --- progress events, in the order a run sends them ----------------------------------------------
@dataclass(frozen=True)
class StepChanged:
    step: Step
    time: float  # seconds since the epoch
    agent: str = ""  # the agent at work, when step is RUNNING_AGENT


@dataclass(frozen=True)
class AgentSkipped:
    """An agent will not run: `dependency` did not do what its run_when asks."""

    agent_name: str
    dependency: str
    reason: str
    time: float


@dataclass(frozen=True)
class AgentProgress:
    """Sent after each tool call of an agent."""

    agent_name: str
    turn: int
    tool_name: str
    usage: TokenUsage  # the run's usage so far
    time: float


@dataclass(frozen=True)
class OutputWritten:
    output: OutputRef
    time: float


@dataclass(frozen=True)
class RunFinished:
    """The last event of a run that succeeded; a watcher then reads the final state."""

    time: float


ProgressEvent = StepChanged | AgentProgress | OutputWritten | AgentSkipped | RunFinished
