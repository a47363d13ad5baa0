"""What the schedule and webhook tests share: a receiver that verifies every signature with
the `standardwebhooks` package, an orchestrator whose runs fail fast (no manager is there),
and the request its schedules run."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from catalog.v1 import catalog_pb2 as pb
from standardwebhooks import Webhook as Verifier

from services.common.ports import free_port
from tests.orchestrator.stack import Orchestrator, orchestrator_env, start_orchestrator

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PASSWORD = "Sched-Secret-pw-4417"
DSN = f"postgresql://reader:{PASSWORD}@127.0.0.1:5432/nowhere"


@dataclass
class Receiver:
    """Answers with `answers` in turn (then 204); 0 means: never answer."""

    answers: list[int] = field(default_factory=list)
    got: list[tuple[str, dict[str, object]]] = field(default_factory=list)  # (id, payload)
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends unanswered calls

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        payload = Verifier(SECRET).verify(body, dict(request.headers))  # raises if forged
        self.got.append((request.headers["webhook-id"], payload))
        status = self.answers.pop(0) if self.answers else 204
        if status == 0:
            await self.release.wait()
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    found.release.set()
    await runner.cleanup()


def env_for(workdir: Path, **overrides: str) -> dict[str, str]:
    settings = {
        "CATALOG_ACQUIRE_WAIT_S": "1",
        "CATALOG_SCHEDULE_MIN_INTERVAL_S": "1",
        "CATALOG_WEBHOOK_SECRET": SECRET,
        "CATALOG_WEBHOOK_ALLOW_HTTP": "1",
        "CATALOG_WEBHOOK_ALLOW_PRIVATE": "1",
        "CATALOG_WEBHOOK_BACKOFF_S": "0.3",
        **overrides,
    }
    # no manager: each run fails in about a second
    return orchestrator_env(
        workdir, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", **settings
    )


@pytest.fixture
async def orchestrator(tmp_path: Path) -> AsyncIterator[Orchestrator]:
    started = await start_orchestrator(env_for(tmp_path), tmp_path / "orchestrator.log")
    yield started
    await started.stop()


def request(out: Path, *hooks: pb.Webhook) -> pb.StartCatalogRequest:
    return pb.StartCatalogRequest(
        db_conn_string=DSN, tables=["t"], s3_prefix=f"file://{out}", webhooks=hooks
    )


async def wait_for(check, timeout_s: float = 30):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)
    return found


async def deliveries(o: Orchestrator, catalog_id: str) -> list[pb.WebhookDelivery]:
    got = await o.stub.GetCatalog(pb.GetCatalogRequest(catalog_id=catalog_id))
    return list(got.catalog.deliveries)
