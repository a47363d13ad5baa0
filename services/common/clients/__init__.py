"""Clients of our own gRPC services, shared by every service that calls another.

- `SandboxClient`: leases sandboxes across several managers and runs code in them.
- `AgentRunnerClient`: runs an agent at the agent runner and follows its progress.
- `CatalogClient`: starts, follows and cancels catalog runs at the orchestrator, and manages
  their schedules (what another backend service or the `catalog-agents` CLI uses); it needs
  neither DBOS nor docker.

The modules are private, one concern each (errors, models, output accumulation, routing
across managers, and one per client); this list is the public surface.
"""

from services.common.clients._agent_runner import (
    AgentCall,
    AgentProgressEvent,
    AgentRun,
    AgentRunnerClient,
    AgentStop,
    OnProgress,
)
from services.common.clients._catalog import CatalogClient, OnEvent
from services.common.clients._catalog_errors import (
    CatalogClientError,
    CatalogConflict,
    CatalogInvalidRequest,
    CatalogNotFound,
    CatalogPermissionDenied,
    CatalogRateLimited,
    CatalogRunFailed,
    CatalogTimedOut,
    CatalogUnauthenticated,
    CatalogUnavailable,
)
from services.common.clients._catalog_models import (
    AgentOutcome,
    AgentProgress,
    AgentSkipped,
    AgentStatus,
    CatalogEvent,
    CatalogList,
    CatalogRun,
    CatalogStatus,
    CatalogStep,
    Finished,
    OutputWritten,
    PageOutput,
    RunAgent,
    RunError,
    Source,
    StepChanged,
)
from services.common.clients._errors import (
    CallTimedOut,
    InvalidRequest,
    LeaseInUse,
    LeaseLost,
    ManagerUnavailable,
    PoolBusy,
    SandboxClientError,
    UnknownManager,
)
from services.common.clients._models import (
    DatabaseSession,
    Execution,
    ExecutionError,
    ExecutionStatus,
    RetryPolicy,
    SandboxLease,
    SandboxSession,
    SessionSettings,
)
from services.common.clients._output import EventCallback, OutputCallback
from services.common.clients._sandbox import SandboxClient
from services.common.clients._schedule_models import (
    CatchUp,
    Overlap,
    Schedule,
    ScheduleList,
    ScheduleRun,
    SkippedTick,
    Webhook,
)

__all__ = [
    "AgentCall",
    "AgentOutcome",
    "AgentProgress",
    "AgentProgressEvent",
    "AgentRun",
    "AgentRunnerClient",
    "AgentSkipped",
    "AgentStatus",
    "AgentStop",
    "CallTimedOut",
    "CatalogClient",
    "CatalogClientError",
    "CatalogConflict",
    "CatalogEvent",
    "CatalogInvalidRequest",
    "CatalogList",
    "CatalogNotFound",
    "CatalogPermissionDenied",
    "CatalogRateLimited",
    "CatalogRun",
    "CatalogRunFailed",
    "CatalogStatus",
    "CatalogStep",
    "CatalogTimedOut",
    "CatalogUnauthenticated",
    "CatalogUnavailable",
    "CatchUp",
    "DatabaseSession",
    "EventCallback",
    "Execution",
    "ExecutionError",
    "ExecutionStatus",
    "Finished",
    "InvalidRequest",
    "LeaseInUse",
    "LeaseLost",
    "ManagerUnavailable",
    "OnEvent",
    "OnProgress",
    "OutputCallback",
    "OutputWritten",
    "Overlap",
    "PageOutput",
    "PoolBusy",
    "RetryPolicy",
    "RunAgent",
    "RunError",
    "SandboxClient",
    "SandboxClientError",
    "SandboxLease",
    "SandboxSession",
    "Schedule",
    "ScheduleList",
    "ScheduleRun",
    "SessionSettings",
    "SkippedTick",
    "Source",
    "StepChanged",
    "UnknownManager",
    "Webhook",
]
