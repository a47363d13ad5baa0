"""Every marked example in README.md and docs/ runs as written against the stack `make serve`
starts (here on free ports), after `make sample`, and its answer has the shape the page shows.

What the test changes, and nothing else:
- addresses: `localhost:50053`, `localhost:8080` and `localhost:50051` become the test stack's;
  the CLI and the Python examples read CATALOG_ADDRESS, set to the orchestrator's;
- ids: a catalog id a page shows in an answer stands for the one the run got, in the commands
  after it; and a command that reads a run (`GET /catalog/ID`, `open ID`) runs once that run
  has ended, as the answer shown is a finished run's;
- `catalog-agents` is the console script's module (`python -m services.common.cli`), on PATH.
The shape check: every word of the answer shown, less numbers, ids, times, paths and `...`,
is in the real answer (field names, step and status names, the CLI's own words).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from services.common.clients import CatalogClient
from tests.conftest import MYSQL_URL, POSTGRES_URL
from tests.docs.examples import Block, blocks
from tests.orchestrator.stack import PLANE, REPO, Orchestrator, StartOrchestrator
from tests.sandbox_manager.conftest import RunningManager

EXAMPLES = [b for b in blocks() if b.marker == "example"]
OUTPUTS = Path("/tmp/catalogs")  # where the examples write, as make serve allows
IDS = re.compile(r'"catalog_id":\s*"([\w.@-]+)"|catalog ([0-9a-f]{32}) started')
NOISE = re.compile(
    r"file://\S+|/tmp/\S+|[0-9a-f]{32}|\d[\d.:TZ-]*s?|\([^)]*\)|\.\.\.|[\[\]{}\",:;]"
)


@pytest.fixture(scope="module")
def sample() -> Iterator[None]:
    """`make sample`'s shop and reader; removed afterwards only if this test made them."""
    had = _sample_present()
    done = subprocess.run(
        [sys.executable, "scripts/sample.py"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    yield
    if not had:
        _remove_sample()


def _sample_present() -> bool:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        row = db.execute("SELECT to_regnamespace('shop') IS NOT NULL").fetchone()
        return bool(row and row[0])


def _remove_sample() -> None:
    import MySQLdb

    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute("DROP SCHEMA IF EXISTS shop CASCADE")
        db.execute("DROP OWNED BY catalog_reader")
        db.execute("DROP ROLE IF EXISTS catalog_reader")
    my = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    my.cursor().execute("DROP DATABASE IF EXISTS shop")
    my.cursor().execute("DROP USER IF EXISTS 'catalog_reader'@'%'")
    my.close()
    assert MYSQL_URL  # the same server the sample script loads by default


@pytest.fixture
def outputs() -> Iterator[None]:
    """The pages the examples write under /tmp/catalogs go when the test ends."""
    existed = OUTPUTS.exists()
    before = set(OUTPUTS.rglob("*")) if existed else set()
    yield
    if not existed:
        shutil.rmtree(OUTPUTS, ignore_errors=True)
        return
    for path in sorted(set(OUTPUTS.rglob("*")) - before, key=lambda p: len(p.parts)):
        if path.is_dir() and path.exists():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def shell_env(tmp_path: Path, orchestrator: Orchestrator) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "catalog-agents"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m services.common.cli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    pythonpath = f"{REPO}:{REPO / 'protos'}:{REPO / 'sandbox'}"
    return {
        **os.environ,
        "PATH": path,
        "PYTHONPATH": pythonpath,
        "CATALOG_ADDRESS": orchestrator.address,
        "CATALOG_SERVICE_TOKEN": PLANE.service_token,
    }


def localised(text: str, orchestrator: Orchestrator, manager: RunningManager) -> str:
    http = orchestrator.http_url.removeprefix("http://")
    return (
        text.replace("localhost:50053", orchestrator.address)
        .replace("localhost:8080", http)
        .replace("localhost:50051", manager.address)
    )


async def run(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    return process.returncode or 0, out.decode()


def shape_words(shown: str) -> set[str]:
    return {word for word in NOISE.sub(" ", shown).split() if word.strip("-.")}


def ids_in(text: str) -> list[str]:
    return [a or b for a, b in IDS.findall(text)]


async def run_shell(
    block: Block, env: dict[str, str], orch: Orchestrator, mgr: RunningManager, cwd: Path
) -> None:
    ids: dict[str, str] = {}
    for command in block.commands():
        text = localised(command.text, orch, mgr)
        for shown_id, real in ids.items():
            text = text.replace(shown_id, real)
        for real in {
            v for k, v in ids.items() if v in text and re.search(r"open |/catalog/", text)
        }:
            async with CatalogClient(orch.address) as client:
                await client.wait(real, timeout_s=600)
        code, out = await run(text, env, cwd)
        where = f"{block.page}:{block.line} `{command.text[:60]}`"
        assert code == 0, f"{where} failed ({code}):\n{out[-3000:]}"
        missing = sorted(w for w in shape_words(command.shown) if w not in out)
        assert not missing, (
            f"{where}: the answer lacks {missing} that the page shows:\n{out[-3000:]}"
        )
        ids.update(zip(ids_in(command.shown), ids_in(out), strict=False))


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.name for b in EXAMPLES])
async def test_the_documented_example_runs_as_written(
    block: Block,
    sample: None,
    outputs: None,
    start: StartOrchestrator,
    manager: RunningManager,
    tmp_path: Path,
) -> None:
    orchestrator = await start(CATALOG_FILE_ROOTS=f"{tmp_path},{OUTPUTS}")
    env = shell_env(tmp_path, orchestrator)
    if block.language == "python":
        script = tmp_path / "example.py"
        script.write_text(block.code)
        code, out = await run(f'"{sys.executable}" {script}', env, tmp_path)
        assert code == 0, f"{block.page}:{block.line} failed:\n{out[-3000:]}"
    else:
        await run_shell(block, env, orchestrator, manager, tmp_path)
        out = ""
    assert block.expect in out, f"{block.page}:{block.line}: no {block.expect!r} in:\n{out}"
