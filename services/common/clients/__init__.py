"""Clients of our own gRPC services, shared by every service that calls another.

- `SandboxClient`: leases sandboxes across several managers and runs code in them.
- `AgentRunnerClient`: runs an agent at the agent runner and follows its progress.

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

__all__ = [
    "AgentCall",
    "AgentProgressEvent",
    "AgentRun",
    "AgentRunnerClient",
    "AgentStop",
    "CallTimedOut",
    "EventCallback",
    "Execution",
    "ExecutionError",
    "ExecutionStatus",
    "InvalidRequest",
    "LeaseInUse",
    "LeaseLost",
    "ManagerUnavailable",
    "OnProgress",
    "OutputCallback",
    "PoolBusy",
    "RetryPolicy",
    "SandboxClient",
    "SandboxClientError",
    "SandboxLease",
    "SandboxSession",
    "SessionSettings",
    "UnknownManager",
]
