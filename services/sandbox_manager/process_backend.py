"""Sandboxes as kernel subprocesses on the host: for development and machines without Docker.

There is no isolation here: the code runs with the manager's user, files and network. The
manager logs a warning saying so at start-up. A kernel exits when its stdin closes, so kernels
never outlive a manager that was killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

from services.common.logging import log_fields
from services.sandbox_manager.errors import BackendUnavailable
from services.sandbox_manager.hardening import ContainerLimits
from services.sandbox_manager.kernel_client import KernelClient, KernelError

_log = logging.getLogger(__name__)


@dataclass
class ProcessSandbox:
    kernel: KernelClient
    container_id: str
    scratch: str

    async def destroy(self) -> None:
        with contextlib.suppress(Exception):
            await self.kernel.close(grace_s=2.0)
        shutil.rmtree(self.scratch, ignore_errors=True)


class ProcessBackend:
    kind = "process"
    image = ""

    def __init__(self, ready_timeout_s: float) -> None:
        self.limits = ContainerLimits(memory_bytes=0, cpus=0, pids=0, network_mode="host")
        self._ready_timeout_s = ready_timeout_s
        log_fields(
            _log,
            logging.WARNING,
            "process backend: sandboxes are NOT isolated",
            detail="code runs as the manager's user with its files and network; "
            "use the docker backend anywhere but development",
        )

    async def start(self, sandbox_id: str) -> ProcessSandbox:
        scratch = tempfile.mkdtemp(prefix=f"catalog-sandbox-{sandbox_id}-")
        env = {**os.environ, "CATALOG_KERNEL_SCRATCH": scratch}
        try:
            kernel = await KernelClient.spawn(
                [sys.executable, "-m", "catalog_kernel"],
                env=env,
                ready_timeout_s=self._ready_timeout_s,
            )
        except (KernelError, OSError) as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise BackendUnavailable(f"could not start a kernel process: {exc}") from exc
        return ProcessSandbox(kernel, str(kernel.hello.get("pid", "")), scratch)

    async def remove_orphans(self) -> int:
        return 0  # orphaned kernels exit by themselves when the manager's pipe closes

    async def close(self) -> None:
        return None
