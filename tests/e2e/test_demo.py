"""`make demo`, as a user runs it: two catalogs of the sample shop, every agent's page of both
runs, the changes seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_catalogs_the_sample_database_twice_and_prints_every_page(
    docker_image: str, tmp_path: Path
) -> None:
    run, pages = run_demo(tmp_path)
    assert all(p.is_relative_to(tmp_path / "catalogs" / "shop") for p in pages)
    runs = sorted({p.parent for p in pages})
    assert len(runs) == 2 and {"catalog.html", "summary.html"} <= {p.name for p in pages}
    first_catalog, first_summary, second_catalog, second_summary = (
        (run_folder / f"{agent}.html").read_text()
        for run_folder in runs
        for agent in ("catalog", "summary")
    )
    assert "events" in first_catalog and "refunds" not in first_catalog
    assert "the first run under the prefix" in first_summary
    assert "refunds" in second_catalog and "channel" in second_catalog
    assert runs[0].name in second_summary  # the second summary found the first run
    assert 'href="catalog.html"' in second_summary  # it links the run's other pages
    # Every table is profiled (events has a TIMESTAMPTZ column), and the dirty data flagged.
    assert "failed pass" not in first_catalog
    # The dirty data is flagged on the catalog page.
    for flag in ("every value is null", "negative values", "values in the future"):
        assert flag in first_catalog, flag
    # The second summary compares numbers: what the evolution changed, each marked.
    findings = json.loads((runs[1] / "summary.json").read_text())["findings"]
    seen = {(f["table"], f["column"], f["kind"], f["severity"]) for f in findings}
    for expected in [
        ("refunds", None, "table_added", "neutral"),
        ("events", None, "table_removed", "bad"),
        ("orders", "channel", "column_added", "neutral"),
        ("orders", None, "rows_grew", "good"),
        ("customers", "email", "null_rate_up", "bad"),
    ]:
        assert expected in seen, (expected, sorted(seen))
    assert "orders" in second_summary and "null rate rose" in second_summary
    assert "demo: step RUNNING_AGENT catalog" in run.stdout  # progress is shown while it runs


def test_without_docker_the_demo_runs_on_the_process_backend_and_says_so(tmp_path: Path) -> None:
    """No Docker engine: the demo still runs, warning that the sandbox does not isolate."""
    # Only the venv's folder on PATH: no `docker` client, so no engine answers.
    run, pages = run_demo(tmp_path, PATH=str(Path(sys.executable).parent))
    assert "using the process backend, which does NOT isolate code" in run.stderr
    assert all(p.with_suffix(".json").is_file() for p in pages)


def run_demo(folder: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[Path]]:
    """`make demo`'s script in `folder`, on embedded defaults; its output and every page."""
    environment = {**os.environ, "CATALOG_DEMO_DIR": str(folder), **env}
    for name in ("ANTHROPIC_API_KEY", "CATALOG_SANDBOX_BACKEND"):
        environment.pop(name, None)
    run = subprocess.run(
        [sys.executable, "demo/run_demo.py"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    listed = run.stdout.split("The pages:")[1].split()
    pages = [Path(p) for p in listed if p.endswith(".html")]
    assert len(pages) >= 4 and all(p.is_file() for p in pages)
    return run, pages
