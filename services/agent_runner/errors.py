"""The agent runner's errors. A call answers with the status its class declares (the shared
`grpc_server.ErrorInterceptor` maps them); the run's own troubles end the run instead, as its
`AgentOutcome` with the message, and reach no call::

    Exception
    ├── ServiceError                (services/common/errors.py)
    │   ├── InvalidArgument         INVALID_ARGUMENT  a bad RunAgent request; an empty run_id
    │   │   └── InvalidHtml         INVALID_ARGUMENT  a page the model submitted cannot be used;
    │   │                                             the model is told what to change
    │   ├── NotFound                NOT_FOUND         no run with that id here (or past retention)
    │   └── Unavailable
    │       ├── LlmError            UNAVAILABLE       the model could not be reached, or refused
    │       └── SandboxGone         UNAVAILABLE       the lease is lost or its manager is down
    └── ValueError
        └── SettingsError           (services/common/env.py) the process stops with the message
"""

from __future__ import annotations

from services.common.errors import InvalidArgument, Unavailable


class InvalidHtml(InvalidArgument):
    """The submitted HTML cannot make a page; the message tells the model what to change."""


class LlmError(Unavailable):
    """The model could not be reached or refused the request; the message says which."""


class SandboxGone(Unavailable):
    """The sandbox cannot run code any more (lease lost, manager down): the run must end."""
