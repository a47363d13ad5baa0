"""Browsing stored runs in Chromium: every page, hostile names as text, search, compare,
the framed pages, a run started from the form and cancelled, and signing in with a key."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from services.orchestrator.ui.web import prefix_id
from tests.orchestrator.stack import Orchestrator
from tests.ui.conftest import Browser, serve_ui
from tests.ui.stored_runs import HOSTILE_COMMENT, HOSTILE_TABLE, timestamp, write_runs

RUNS = 6


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    """An orchestrator with RUNS stored runs under `shop`; (its URL, the prefix)."""
    workdir = tmp_path_factory.mktemp("ui")
    write_runs(workdir / "shop", RUNS, 4)
    orchestrator = await serve_ui(workdir)
    yield orchestrator.http_url, f"file://{workdir}/shop"
    await orchestrator.stop()


async def test_every_page_shows_hostile_names_as_text(
    browser: Browser, site: tuple[str, str]
) -> None:
    url, prefix = site
    base = f"{url}/p/{prefix_id(prefix)}"
    latest, first = timestamp(RUNS - 1), timestamp(0)
    pages = {
        "home": f"{url}/?q=onerror",
        "prefix": base,
        "table": f"{base}/table?name={quote(HOSTILE_TABLE, safe='')}",
        "compare": f"{base}/compare?a={first}&b={latest}",
        "stored-run": f"{base}/r/{latest}",
        "new-run": f"{url}/new",
    }
    page = await browser.page()
    for name, address in pages.items():
        await browser.visit(page, address, shot=name)
        text = await page.locator("main").inner_text()
        if name in ("home", "prefix", "table", "compare"):
            assert HOSTILE_TABLE in text, name
        if name == "table":
            assert HOSTILE_COMMENT in text
        # the name stayed text: no element was made from it, nothing ran
        assert await page.locator("img[src='x']").count() == 0, name
        assert await page.evaluate("document.scripts.length") == 1, name


async def test_search_finds_a_column_by_its_name_and_comment(
    browser: Browser, site: tuple[str, str]
) -> None:
    url, _ = site
    page = await browser.page()
    await browser.visit(page, url)
    await page.get_by_label("Find tables and columns").fill("loyalty")
    await page.get_by_role("button", name="Search").click()
    await browser.settle(page, shot="search")
    hits = page.locator("tr.hit")
    assert await hits.count() == 2  # its name, and its comment "customer loyalty level"
    assert "loyalty_tier" in await hits.first.inner_text()


async def test_two_runs_are_compared_by_the_toolkit(
    browser: Browser, site: tuple[str, str]
) -> None:
    url, prefix = site
    page = await browser.page()
    await browser.visit(page, f"{url}/p/{prefix_id(prefix)}")
    await page.get_by_label("Compare", exact=True).select_option(timestamp(0))
    await page.get_by_label("with", exact=True).select_option(timestamp(RUNS - 1))
    await page.get_by_role("button", name="Compare").click()
    await browser.settle(page)
    findings = await page.locator("#findings").inner_text()
    assert "loyalty_tier" in findings  # the column the last run added
    assert re.search(r"new rows", findings)


async def test_a_stored_page_is_framed_sandboxed_and_cannot_run_script(
    browser: Browser, site: tuple[str, str]
) -> None:
    url, prefix = site
    page = await browser.page()
    await browser.visit(page, f"{url}/p/{prefix_id(prefix)}/r/{timestamp(RUNS - 1)}")
    frame = page.locator("iframe[title='catalog page']")
    assert await frame.get_attribute("sandbox") == ""
    heading = page.frame_locator("iframe[title='catalog page']").locator("h1")
    assert await heading.inner_text() == f"catalog page of run {RUNS - 1}"
    src = await frame.get_attribute("src")
    async with aiohttp.ClientSession() as client, client.get(f"{url}{src}") as served:
        assert served.headers["content-security-policy"].startswith("sandbox;")


async def test_a_run_started_from_the_form_is_followed_live_and_cancelled(
    browser: Browser, site: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = site
    page = await browser.page()
    await browser.visit(page, f"{url}/new")
    await page.get_by_label("Database URL").fill("duckdb:///nowhere/shop.duckdb")
    await page.get_by_label("Tables").fill("customers, orders")
    await page.get_by_label("Output prefix").fill(f"{prefix}-live")
    await page.get_by_role("button", name="Start the run").click()
    await page.wait_for_url(re.compile(r"/runs/"))
    await page.evaluate("window.notReloaded = true")
    # the manager never answers: the page learns the first step over SSE, without a reload
    await page.locator("#events li").first.wait_for(timeout=15000)
    assert "acquiring_sandbox" in await page.locator("#events").inner_text()
    await browser.settle(page, shot="run-live")
    await page.get_by_role("button", name="Cancel this run").click()
    await page.wait_for_url(re.compile(r"/runs/"))
    await page.locator("#run-status", has_text="CANCELLED").wait_for(timeout=15000)
    await browser.settle(page, shot="run-cancelled")


async def test_a_post_without_the_session_csrf_token_is_refused(site: tuple[str, str]) -> None:
    url, _ = site
    body = {"dsn": "duckdb:///x.duckdb", "tables": "t", "prefix": "file:///tmp/x"}
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{url}/new") as form:
            token = re.search(r'name="csrf" value="([^"]+)"', await form.text())
        assert token
        async with client.post(f"{url}/new", data={**body, "csrf": "forged"}) as refused:
            assert refused.status == 403
    copied = {**body, "csrf": token.group(1)}  # another visitor holding a copied token
    async with aiohttp.ClientSession() as other, other.post(f"{url}/new", data=copied) as stolen:
        assert stolen.status == 403


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Orchestrator]:
    """Keys required; tenant acme may see only its own prefix."""
    workdir = tmp_path_factory.mktemp("ui-keys")
    write_runs(workdir / "shop", 2, 2)
    write_runs(workdir / "acme", 2, 2)
    tenants = f'{{"acme": {{"keys": ["k-acme"], "prefixes": ["file://{workdir}/acme"]}}}}'
    orchestrator = await serve_ui(workdir, CATALOG_API_KEYS="k-admin", CATALOG_TENANTS=tenants)
    yield orchestrator
    await orchestrator.stop()


async def test_signing_in_with_a_key_keeps_a_session_and_a_tenant_sees_its_own(
    browser: Browser, guarded: Orchestrator
) -> None:
    url = guarded.http_url
    page = await browser.page()
    await browser.visit(page, url)
    assert "/login" in page.url
    await page.get_by_label("API key").fill("wrong")
    await page.get_by_role("button", name="Sign in").click()
    assert "not valid" in await page.locator("main").inner_text()
    browser.problems.clear()  # the refused sign-in answered 401, which Chromium logs
    await page.get_by_label("API key").fill("k-acme")
    await page.get_by_role("button", name="Sign in").click()
    await browser.settle(page, shot="home-signed-in")
    text = await page.locator("main").inner_text()
    assert "/acme" in text and "/shop" not in text
    cookie = next(c for c in await page.context.cookies() if c["name"] == "catalog_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    shop = f"file://{Path(text.split('file://')[1].split()[0]).parent}/shop"
    other = await page.goto(f"{url}/p/{prefix_id(shop)}")
    assert other is not None and other.status == 404
    browser.problems.clear()
