"""A fake of the sandbox manager's `Backend` protocol: each sandbox is a `FakeKernel` in memory.

The pool drives it exactly as it drives Docker or kernel subprocesses (start, open and close a
database, destroy, remove orphans), and a test can fail starts, kill a kernel or look at what
was destroyed, all in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.sandbox_manager.errors import BackendUnavailable, DatabaseUnreachable
from services.sandbox_manager.hardening import ContainerLimits
from services.sandbox_manager.kernel_client import KernelClient
from tests.fakes.kernel import FakeKernel

UNREACHABLE_HOST = "unreachable.invalid"  # a DSN naming this host cannot be relayed


@dataclass
class FakeSandbox:
    sandbox_id: str
    kernel: KernelClient
    fake: FakeKernel
    databases: list[str] = field(default_factory=list)  # every DSN opened, in order
    destroyed: bool = False

    @property
    def container_id(self) -> str:
        return f"fake-{self.sandbox_id}"

    async def open_database(self, dsn: str, statement_timeout_s: float, name: str = "") -> str:
        if UNREACHABLE_HOST in dsn:
            raise DatabaseUnreachable(f"{UNREACHABLE_HOST} does not resolve")
        self.databases.append(dsn)
        return dsn

    async def close_database(self) -> None:
        return None

    async def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            await self.kernel.close(grace_s=0.1)


class FakeBackend:
    kind = "fake"
    image = ""

    def __init__(self, orphans: int = 0) -> None:
        self.limits = ContainerLimits()
        self.started: list[FakeSandbox] = []
        self.failing = ""  # while set, every start fails with this message
        self.orphans = orphans  # what remove_orphans finds, once
        self.closed = False

    def sandbox(self, sandbox_id: str) -> FakeSandbox:
        return next(s for s in self.started if s.sandbox_id == sandbox_id)

    @property
    def live(self) -> list[FakeSandbox]:
        return [s for s in self.started if not s.destroyed]

    async def start(self, sandbox_id: str) -> FakeSandbox:
        if self.failing:
            raise BackendUnavailable(self.failing)
        fake = FakeKernel()
        kernel = KernelClient(fake.channel())
        await kernel.wait_ready(5)
        sandbox = FakeSandbox(sandbox_id, kernel, fake)
        self.started.append(sandbox)
        return sandbox

    async def remove_orphans(self) -> int:
        found, self.orphans = self.orphans, 0
        return found

    async def close(self) -> None:
        self.closed = True
