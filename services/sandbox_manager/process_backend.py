"""Sandboxes as kernel subprocesses on the host: for development and machines without Docker.

There is no isolation here: the code runs with the manager's user, files and network. The
manager logs a warning saying so at start-up, and runs this backend only when it is named
(``CATALOG_SANDBOX_BACKEND=process``). The kernel's environment is built from scratch, so none of
the manager's own secrets (API keys, AWS credentials, the sealing key) reach a cell.

A kernel exits when its stdin closes, so kernels never outlive a manager that was killed; the
scratch folders such a manager left behind carry its id in their names, and its next run removes
them.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.logging import log_fields
from services.sandbox_manager.errors import BackendUnavailable
from services.sandbox_manager.hardening import ContainerLimits
from services.sandbox_manager.kernel_client import (
    DEFAULT_QUEUED_EVENTS,
    KernelClient,
    KernelError,
)

_log = logging.getLogger(__name__)


@dataclass
class ProcessSandbox:
    kernel: KernelClient
    container_id: str
    scratch: str
    live_scratch: set[str]

    async def open_database(self, dsn: str, statement_timeout_s: float, name: str = "") -> str:
        return dsn  # the kernel shares the manager's network: it dials the database itself

    async def close_database(self) -> None:
        return None

    async def destroy(self) -> None:
        try:
            with contextlib.suppress(Exception):
                await self.kernel.close(grace_s=2.0)
        finally:  # even when cancelled: a folder left here would outlive the manager
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.live_scratch.discard(self.scratch)


class ProcessBackend:
    kind = "process"
    image = ""

    def __init__(
        self, manager_id: str, ready_timeout_s: float, queued_events: int = DEFAULT_QUEUED_EVENTS
    ) -> None:
        self._scratch_prefix = os.path.join(tempfile.gettempdir(), f"catalog-sandbox-{manager_id}.")
        self._live_scratch: set[str] = set()
        self.limits = ContainerLimits(memory_bytes=0, cpus=0, pids=0, network_mode="host")
        self._ready_timeout_s = ready_timeout_s
        self._queued_events = queued_events
        log_fields(
            _log,
            logging.WARNING,
            "process backend: sandboxes are NOT isolated",
            detail="code runs as the manager's user with its files and network; "
            "use the docker backend anywhere but development",
        )

    async def start(self, sandbox_id: str) -> ProcessSandbox:
        scratch = tempfile.mkdtemp(prefix=f"catalog-sandbox-{sandbox_id}-")
        self._live_scratch.add(scratch)
        env = subprocess_environment(os.environ, scratch)
        try:
            kernel = await KernelClient.spawn(
                [sys.executable, "-m", "catalog_kernel"],
                env=env,
                ready_timeout_s=self._ready_timeout_s,
                max_queued_events=self._queued_events,
            )
        except (KernelError, OSError) as exc:
            self._live_scratch.discard(scratch)
            shutil.rmtree(scratch, ignore_errors=True)
            raise BackendUnavailable(f"could not start a kernel process: {exc}") from exc
        return ProcessSandbox(kernel, str(kernel.hello.get("pid", "")), scratch, self._live_scratch)

    async def remove_orphans(self) -> int:
        """Remove the scratch folders of this manager's sandboxes that are no longer running.

        Orphaned kernels exit by themselves when the manager's pipe closes.
        """
        found = glob.glob(glob.escape(self._scratch_prefix) + "*")
        left = [path for path in found if path not in self._live_scratch]
        for path in left:
            shutil.rmtree(path, ignore_errors=True)
        return len(left)

    async def close(self) -> None:
        return None


# What a kernel subprocess may inherit from the manager: how to find Python and its packages,
# the locale, and the kernel's own settings. Nothing else: the manager's environment holds keys.
_INHERITED = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_INHERITED_PREFIX = "CATALOG_KERNEL_"


def subprocess_environment(manager_env: Mapping[str, str], scratch: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in manager_env.items()
        if key in _INHERITED or key.startswith(_INHERITED_PREFIX)
    }
    return {
        **env,
        "HOME": scratch,
        "PYTHONSAFEPATH": "1",  # the working folder is never importable
        "PYTHONNOUSERSITE": "1",
        "CATALOG_KERNEL_SCRATCH": scratch,
    }
