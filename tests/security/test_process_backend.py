"""The process backend isolates nothing: it must at least keep the manager's secrets from cells,
and it must never be chosen without the operator asking for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from catalog.v1 import sandbox_pb2 as pb

from tests.sandbox_manager.conftest import StartManager
from tests.sandbox_manager.test_lifecycle import run, stdout

REPO = Path(__file__).resolve().parents[2]
MANAGER_SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-manager-only-0001",
    "AWS_SECRET_ACCESS_KEY": "aws-manager-only-0002",
    "CATALOG_SECRET_KEY": "sealing-manager-only-0003",
}


async def test_a_cell_cannot_read_the_managers_environment(
    start_manager: StartManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in MANAGER_SECRETS.items():
        monkeypatch.setenv(name, value)
    manager = await start_manager(backend="process")
    lease = (await manager.stub.AcquireSandbox(pb.AcquireSandboxRequest())).lease
    events = await run(
        manager.stub,
        lease.lease_id,
        "import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ', 'rb').read())",
    )
    seen = stdout(events)
    assert "PATH" in seen  # the cell did print its environment
    for name, value in MANAGER_SECRETS.items():
        assert name not in seen and value not in seen


def test_serve_refuses_to_fall_back_to_the_process_backend(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "CATALOG_SANDBOX_BACKEND"}
    env["PATH"] = str(Path(sys.executable).parent)  # no `docker` client: no engine answers
    served = subprocess.run(
        [sys.executable, "scripts/serve.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode != 0
    assert "no Docker engine answers" in served.stderr
    assert "CATALOG_SANDBOX_BACKEND=process" in served.stderr  # how to ask for it on purpose
