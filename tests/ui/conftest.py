"""The UI's browser tests: Debian's Chromium driven by Playwright (no browser is downloaded),
an orchestrator process serving the UI, and runs stored under its file root.

Every visit goes through `Browser.visit`, which fails the test on a console error, a page
error or a dialog (an `alert` would mean a value ran as script), runs axe-core on the page
(no `serious` or `critical` violation may remain), and saves a 1280x800 screenshot under
`.artifacts/ui/` (or $CATALOG_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser as Chromium
from playwright.async_api import Page, async_playwright

from scripts.vendor_frontend import vendored
from services.common.ports import free_port
from tests.orchestrator.stack import (  # noqa: F401
    REPO,
    Orchestrator,
    manager,
    offline_runner,
    orchestrator_env,
    reader_table,
    start,
    start_orchestrator,
)

ARTIFACTS = Path(os.environ.get("CATALOG_TEST_ARTIFACTS", REPO / ".artifacts")) / "ui"
CHROMIUM = "/usr/bin/chromium"
# axe-core as vendored from npm (checked against its pinned sha256 when the tests load it)
AXE = vendored("axe-core", "axe.min.js").read_text()
# The framed pages are the agents' output, run no script (sandbox="") and are not the UI's
# markup: axe checks the UI's own document (that each frame has a title, for one).
AXE_RUN = """async () => {
  const result = await axe.run(document, {iframes: false, resultTypes: ['violations']});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map(n => n.target).join(' | ')}`);
}"""


@dataclass
class Browser:
    chromium: Chromium
    problems: list[str] = field(default_factory=list)

    async def page(self, **context: Any) -> Page:
        ctx = await self.chromium.new_context(viewport={"width": 1280, "height": 800}, **context)
        page = await ctx.new_page()
        page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: self.problems.append(f"a dialog opened: {d.message}"))
        return page

    async def visit(self, page: Page, url: str, shot: str = "") -> None:
        response = await page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"
        await self.settle(page, shot)

    async def settle(self, page: Page, shot: str = "") -> None:
        await page.wait_for_load_state("load")
        if shot:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
        await self.check_accessible(page)
        assert not self.problems, self.problems

    async def check_accessible(self, page: Page) -> None:
        """axe-core's serious and critical violations on the page, as problems.

        Evaluated through the DevTools protocol, not added as a <script>: the page's CSP
        (scripts from /static only) stays as it is served."""
        if not await page.evaluate("typeof window.axe === 'object'"):
            await page.evaluate(AXE)
        violations = await page.evaluate(AXE_RUN)
        self.problems.extend(f"axe on {page.url}: {v}" for v in violations)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is not installed: run `apt-get install -y chromium`", pytrace=False)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield Browser(chromium)
        await chromium.close()


@pytest.fixture(autouse=True)
def _fresh_problems(request: pytest.FixtureRequest) -> None:
    if "browser" in request.fixturenames:
        request.getfixturevalue("browser").problems.clear()


async def serve_ui(workdir: Path, **overrides: str) -> Orchestrator:
    """An orchestrator whose sandbox manager never answers: runs wait at their first step."""
    nowhere = f"127.0.0.1:{free_port()}"
    env = orchestrator_env(workdir, nowhere, nowhere, CATALOG_ACQUIRE_WAIT_S="600", **overrides)
    return await start_orchestrator(env, workdir / "orchestrator.log")
