"""Real processes to break: a Docker sandbox manager, an agent runner and an orchestrator (each
a `python -m` subprocess, so a case can kill -9 it and start it again with the same identity),
DBOS on a PostgreSQL database of the case's own, a moto S3 server process, and the checks every
case ends with: the run over with a documented outcome, no lease or container left, one page
per agent, each with its JSON, and the run in DBOS finished (not lost)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
from catalog.v1 import catalog_pb2 as pb
from catalog.v1 import sandbox_pb2

from services.common.ports import free_port
from services.common.readiness import wait_serving
from tests.orchestrator.stack import PLANE, REPO, run_rows
from tests.sandbox_manager.conftest import RunningManager, labelled_containers

# The codes docs/orchestrator.md documents; a FAILED case must end with one of them.
DOCUMENTED_CODES = {
    "DATABASE_UNREACHABLE",
    "DATABASE_AUTH_FAILED",
    "TABLE_NOT_FOUND",
    "WRITABLE_CONNECTION",
    "SANDBOX_UNAVAILABLE",
    "AGENT_FAILED",
    "AGENT_RUNNER_UNAVAILABLE",
    "OUTPUT_WRITE_FAILED",
    "STORAGE_UNAVAILABLE",
}
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-access-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# A lease a killed process held ends with its time to live at the latest: kept short here.
LEASE_TTL_S = 45.0


@dataclass
class Service:
    """A `python -m` service started from `env`, restartable with the same identity."""

    module: str
    env: dict[str, str]
    address: str
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, env=self.env, cwd=REPO, stderr=log
            )
        try:
            await wait_serving(self.address, self.process, timeout_s=90, plane=PLANE)
        except BaseException as exc:
            await self.kill()
            raise RuntimeError(f"{self.module} did not start: {self.log()[-2000:]}") from exc

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)
            await asyncio.wait_for(self.process.wait(), 90)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def runner_service(workdir: Path, manager_address: str, anthropic_url: str) -> Service:
    port = free_port()
    env = {
        **os.environ,
        "CATALOG_AGENT_HOST": "127.0.0.1",
        "CATALOG_AGENT_PORT": str(port),
        "CATALOG_AGENT_METRICS_PORT": "0",
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": anthropic_url,
        "CATALOG_SANDBOX_MANAGERS": manager_address,
        "CATALOG_AGENT_STATE_DIR": str(workdir / "runner-state"),
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
    }
    return Service("services.agent_runner", env, f"127.0.0.1:{port}", workdir / "runner.log")


async def restart_manager(manager: RunningManager) -> None:
    """The same manager again: its id, its port, its settings (it removes its old sandboxes)."""
    manager.process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.sandbox_manager", env=manager.env
    )
    await wait_serving(manager.address, manager.process, timeout_s=90, plane=PLANE)
    manager.__post_init__()  # stop() closed the old channel: a new one, and its stub


class MotoS3:
    """moto's S3 server as a process of its own, so a case can freeze and thaw it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        moto = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.client().list_buckets()
                return
            except Exception:  # not listening yet
                time.sleep(0.2)
        raise RuntimeError("moto_server did not start")

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def freeze(self) -> None:
        """Stopped (SIGSTOP): connections hang and new ones wait, as for a store gone away."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()
            self.process.terminate()
            self.process.wait(30)

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        return [item["Key"] for item in listed]


def terminate_backends(database_url: str, *, database: str = "", role: str = "") -> int:
    """pg_terminate_backend on every other session of a database or a role: what a restart of
    PostgreSQL does to its clients, without restarting the server other tests share."""
    where, value = ("datname", database) if database else ("usename", role)
    with psycopg.connect(database_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE {where} = %s AND pid <> pg_backend_pid()",
            (value,),
        ).fetchall()
    return len(rows)


async def leased(manager: RunningManager) -> int:
    listed = await manager.stub.ListSandboxes(sandbox_pb2.ListSandboxesRequest(), timeout=10)
    return sum(1 for s in listed.sandboxes if s.state == sandbox_pb2.SANDBOX_STATE_LEASED)


async def no_lease_left(manager: RunningManager, within_s: float = LEASE_TTL_S + 15) -> float:
    """Seconds until the manager holds no lease; fails after `within_s`."""
    started = time.monotonic()
    for _ in range(int(within_s * 2)):
        if not (count := await leased(manager)):
            break
        await asyncio.sleep(0.5)
    assert count == 0, f"{count} lease(s) still held {within_s:.0f} s after the run ended"
    return time.monotonic() - started


def check_outcome(final: pb.Catalog, allowed: set[str] = DOCUMENTED_CODES) -> str:
    """SUCCEEDED, or FAILED with a documented code: returns which, for the table."""
    if final.status == pb.CATALOG_STATUS_SUCCEEDED:
        return "SUCCEEDED"
    assert final.status == pb.CATALOG_STATUS_FAILED, pb.CatalogStatus.Name(final.status)
    assert final.error.code in allowed, (final.error.code, final.error.message)
    return f"FAILED {final.error.code}"


def check_pages(keys: list[str], final: pb.Catalog) -> None:
    """One run folder, each agent's page once, and each page with its JSON beside it."""
    runs = {key.rsplit("/", 2)[-2] for key in keys if key.endswith((".html", ".json"))}
    assert len(runs) <= 1, f"pages in {len(runs)} run folders: {sorted(keys)}"
    names = Counter(key.rsplit("/", 1)[-1] for key in keys)
    pages = [n for n in names if n.endswith(".html") and n != "index.html"]
    assert all(count == 1 for count in names.values()), names
    missing = [p for p in pages if p.replace(".html", ".json") not in names]
    assert not missing, f"pages without their JSON: {missing}"
    if final.status == pb.CATALOG_STATUS_SUCCEEDED:
        assert "catalog.html" in names, sorted(keys)


def check_not_lost(system_database: str, catalog_id: str) -> None:
    (row,) = [r for r in run_rows(system_database) if r[0] == catalog_id]
    assert row[1] in ("SUCCESS", "ERROR"), f"the run is {row[1]} in DBOS: lost"


def check_no_containers(manager: RunningManager) -> None:
    left = labelled_containers(manager.manager_id)
    assert not left, f"containers outlived manager {manager.manager_id}: {left}"


def check_no_relays(manager: RunningManager) -> None:
    """No pgbouncer of the manager's leases outlived it (a killed manager's children too)."""
    listed = subprocess.run(["pgrep", "-af", "pgbouncer"], capture_output=True, text=True)
    left = [line for line in listed.stdout.splitlines() if f"-{manager.manager_id}." in line]
    assert not left, f"relays outlived manager {manager.manager_id}: {left}"


def file_keys(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
