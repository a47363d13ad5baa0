"""What the attack tests share: real managers (from tests/sandbox_manager), under each runtime.

`sandbox_runtime` runs a test once under runc (Docker's default) and once under runsc (gVisor).
runsc works on the machines we test on, so it is required: with CI=true an unregistered runsc
fails the test, saying how to register it; elsewhere (say, Docker Desktop, where gVisor cannot
run) the runsc half is skipped with the same words. Starts under runsc are slow: parametrise few
tests with it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.sandbox_manager.conftest import start_manager as start_manager

RUNTIMES = ["runc", "runsc"]
# Where scripts/ensure_docker.sh writes why runsc could not run on this host.
RUNSC_FAILED = Path("/var/lib/catalog-agents/runsc-failed")


def registered_runtimes() -> set[str]:
    """The runtimes dockerd lists in `docker info`."""
    info = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(info.stdout))


@pytest.fixture(scope="session", params=RUNTIMES)
def sandbox_runtime(request: pytest.FixtureRequest) -> str:
    """A CATALOG_SANDBOX_RUNTIME value dockerd knows: "runc", then "runsc"."""
    runtime: str = request.param
    if runtime in registered_runtimes():
        return runtime
    why = f"dockerd has no runtime {runtime!r}"
    if RUNSC_FAILED.exists():
        why += f" (ensure_docker.sh found it cannot run here: {RUNSC_FAILED.read_text().strip()})"
    fix = "run `bash scripts/ensure_docker.sh` as root (make test does), which registers runsc"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}: {fix}", pytrace=False)
    pytest.skip(f"{why}: {fix}")
