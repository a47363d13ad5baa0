"""A run started from the UI's form on the real stack (Docker sandbox, offline agent,
PostgreSQL), followed live over SSE to SUCCEEDED, its catalog page opened in its frame."""

from __future__ import annotations

import re
from pathlib import Path

from tests.orchestrator.stack import PASSWORD, StartOrchestrator, with_password
from tests.ui.conftest import Browser


async def test_a_run_from_the_form_reaches_succeeded_live_and_shows_its_catalog(
    browser: Browser, start: StartOrchestrator, reader_table: tuple[str, str], tmp_path: Path
) -> None:
    orchestrator = await start()
    url, schema = reader_table
    page = await browser.page()
    await browser.visit(page, f"{orchestrator.http_url}/new")
    await page.get_by_label("Database URL").fill(with_password(url))
    await page.get_by_label("Tables").fill(f"{schema}.orders")
    await page.get_by_label("Output prefix").fill(f"file://{tmp_path}/live")
    await page.get_by_label("catalog").check()
    await page.get_by_role("button", name="Start the run").click()
    await page.wait_for_url(re.compile(r"/runs/"))
    await page.evaluate("window.notReloaded = true")
    await page.locator("body[data-run-done]").wait_for(timeout=240_000)
    assert await page.evaluate("window.notReloaded") is True  # it came over SSE
    assert await page.locator("body").get_attribute("data-run-done") == "SUCCEEDED"
    assert "SUCCEEDED" in await page.locator("#run-status").inner_text()
    assert "catalog: turn" in await page.locator("#events").inner_text()
    frame = page.frame_locator("iframe[title='catalog page']")
    assert "orders" in await frame.locator("body").inner_text(timeout=30_000)
    assert await page.get_by_role("link", name="JSON").count() >= 1
    await browser.settle(page, shot="run-succeeded")
    assert PASSWORD not in await page.content()  # the DSN's password never shows
