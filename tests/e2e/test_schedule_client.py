"""The client's and the CLI's schedule calls and webhooks against the real stack (a Docker
sandbox manager, the offline runner, the orchestrator as a process), with a local receiver
that verifies each delivery's signature (tests/orchestrator/schedule_kit.py). Crons fire at
03:00 at the soonest: the runs seen are the ones the tests trigger."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.common.clients import (
    CatalogClient,
    CatalogInvalidRequest,
    CatalogNotFound,
    CatalogStatus,
    CatchUp,
    Overlap,
    Webhook,
)
from tests.e2e.test_catalog_client import cli
from tests.orchestrator.schedule_kit import SECRET, Receiver, wait_for
from tests.orchestrator.stack import StartOrchestrator

NIGHTLY = "0 3 * * *"
WEBHOOKS = {
    "CATALOG_WEBHOOK_SECRET": SECRET,
    "CATALOG_WEBHOOK_ALLOW_HTTP": "1",
    "CATALOG_WEBHOOK_ALLOW_PRIVATE": "1",
}


async def test_the_client_creates_triggers_shows_and_deletes_a_schedule(
    start: StartOrchestrator, reader_table: tuple[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    orchestrator = await start(**WEBHOOKS)
    url, schema = reader_table
    hook = Webhook(receiver.url, ("catalog.succeeded",))
    async with CatalogClient(orchestrator.address) as client:
        made = await client.create_schedule(
            NIGHTLY, url, [f"{schema}.orders"], f"file://{tmp_path}/out",
            time_zone="Europe/Paris", agents=["catalog"], webhooks=[hook],
        )  # fmt: skip
        schedule_id = made.schedule_id
        assert (made.overlap, made.catch_up, made.paused) == (Overlap.SKIP, CatchUp.LATEST, False)
        assert made.webhooks == (hook,) and made.agents == ("catalog",)
        fires = made.next_fire_times
        assert len(fires) == 5 and list(fires) == sorted(fires) and fires[0] > datetime.now(UTC)
        assert {t.astimezone(UTC).hour for t in fires} <= {1, 2}  # 03:00 in Paris
        assert [s.schedule_id for s in (await client.list_schedules()).schedules] == [schedule_id]
        assert (await client.pause_schedule(schedule_id)).paused
        assert not (await client.resume_schedule(schedule_id)).paused

        # Two triggers at once: one tick starts the run, the other finds it live and skips.
        both = await asyncio.gather(*(client.trigger_schedule(schedule_id) for _ in range(2)))
        assert sorted(both)[0] == "" and sorted(both)[1].startswith(f"{schedule_id}@")
        catalog_id = sorted(both)[1]
        run = await client.wait(catalog_id, timeout_s=300)
        assert run.schedule_id == schedule_id and run.tick_time is not None
        shown = await client.get_schedule(schedule_id)
        assert [(r.catalog_id, r.status) for r in shown.recent_runs] == [
            (catalog_id, CatalogStatus.SUCCEEDED)
        ]
        assert len(shown.skipped_ticks) == 1 and "still runs" in shown.skipped_ticks[0].reason
        listed = await client.list(schedule_id=schedule_id)
        assert [c.catalog_id for c in listed.catalogs] == [catalog_id]

        async def delivered() -> bool:
            return any(p["data"]["catalog_id"] == catalog_id for _, p in receiver.got)  # type: ignore[index]

        await wait_for(delivered)
        assert receiver.got[0][1]["type"] == "catalog.succeeded"

        changed = await client.update_schedule(
            schedule_id, "30 4 * * *", [f"{schema}.orders"], f"file://{tmp_path}/out"
        )  # the stored DSN is kept
        assert (changed.schedule_id, changed.cron) == (schedule_id, "30 4 * * *")
        assert not changed.webhooks and not changed.paused
        with pytest.raises(CatalogInvalidRequest) as bad:
            await client.create_schedule("61 * * * *", url, ["t"], f"file://{tmp_path}/out")
        assert [name for name, _ in bad.value.field_violations] == ["schedule.cron"]
        await client.delete_schedule(schedule_id)
        with pytest.raises(CatalogNotFound):
            await client.get_schedule(schedule_id)
    assert url.split("@")[0] not in repr(shown)  # no DSN in what the client shows


async def test_the_cli_schedules_a_catalog_and_starts_one_with_a_webhook(
    start: StartOrchestrator, reader_table: tuple[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    orchestrator = await start(**WEBHOOKS)
    env = {"CATALOG_ADDRESS": orchestrator.address}
    url, schema = reader_table
    request = ["--db", url, "--tables", f"{schema}.orders", "--prefix", f"file://{tmp_path}/out"]
    code, out, err = await cli(
        "start", *request, "--agents", "catalog", "--webhook", f"{receiver.url},catalog.succeeded",
        "--wait", env=env,
    )  # fmt: skip
    assert code == 0, err
    catalog_id = out.split()[0]

    async def delivered() -> bool:
        return any(p["data"]["catalog_id"] == catalog_id for _, p in receiver.got)  # type: ignore[index]

    await wait_for(delivered)

    code, out, err = await cli(
        "--json", "schedule", "create", "--cron", NIGHTLY, "--time-zone", "Asia/Tokyo", *request,
        "--overlap", "ALLOW", "--webhook", receiver.url, env=env,
    )  # fmt: skip
    assert code == 0, err
    made = json.loads(out)
    schedule_id = made["schedule_id"]
    assert made["overlap"] == "ALLOW" and made["webhooks"] == [{"url": receiver.url, "events": []}]
    assert url not in out
    code, out, _ = await cli("schedule", "list", env=env)
    assert code == 0 and schedule_id in out and "Asia/Tokyo" in out
    code, out, _ = await cli("schedule", "pause", schedule_id, env=env)
    assert code == 0 and "paused" in out
    code, out, _ = await cli("schedule", "resume", schedule_id, env=env)
    assert code == 0 and "active" in out
    code, out, _ = await cli("--json", "schedule", "trigger", schedule_id, env=env)
    assert code == 0 and json.loads(out)["catalog_id"].startswith(f"{schedule_id}@")
    code, out, _ = await cli("schedule", "get", schedule_id, env=env)
    assert code == 0 and "next: " in out and "run: " in out
    code, _, err = await cli("schedule", "delete", schedule_id, env=env)
    assert code == 0 and "deleted" in err
    code, _, err = await cli("schedule", "get", schedule_id, env=env)
    assert code == 4, err  # NOT_FOUND
    code, _, err = await cli("schedule", "create", "--cron", "61 * * * *", *request, env=env)
    assert code == 2 and "schedule.cron" in err
    code, _, err = await cli("start", *request, "--webhook", f"{receiver.url},catalog.done")
    assert code == 2 and "catalog.succeeded" in err  # a bad event is refused before any call
