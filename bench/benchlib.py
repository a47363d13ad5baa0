"""What the benchmarks share: the output line, a free port, a service as a subprocess.

Standard library only at import time: bench_profile.py also runs in the peer's venv.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from typing import IO

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


def emit(name: str, value: float, unit: str) -> None:
    """One figure, as design.md pins it: {"name", "value", "unit"} on a line of stdout."""
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


# services.common.ports.free_port's twin: bench_profile.py runs in a venv without this repo
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """A `python -m <module>` subprocess on `port`; its output goes to `log`."""

    def __init__(self, module: str, env: dict[str, str], port: int, log: IO[bytes]) -> None:
        self.module = module
        self.env = env
        self.address = f"127.0.0.1:{port}"
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )

    async def wait_serving(self, timeout_s: float = START_TIMEOUT_S) -> None:
        from services.common.readiness import wait_serving  # grpc: not in the peer's venv

        assert self.process is not None, "start() first"
        await wait_serving(self.address, self.process, timeout_s, name=self.module)

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(
                f"{self.module} did not stop within {timeout_s} s of SIGTERM"
            ) from None

    def tail(self, lines: int = 40) -> list[str]:
        self.log.seek(0)
        return self.log.read().decode(errors="replace").splitlines()[-lines:]
