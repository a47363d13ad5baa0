"""`make demo`, as a user runs it: two catalogs of the sample shop (two sources: the app's
database and the warehouse's lagging copy of its orders), every agent's page of both runs, the
changes seen, and what differs across the two sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.multi_kit import section_of

REPO = Path(__file__).resolve().parents[2]


AGENTS = ("catalog", "anomalies", "pii", "relations", "summary")


def test_the_demo_catalogs_the_sample_database_twice_and_prints_every_page(
    docker_image: str, tmp_path: Path
) -> None:
    run, pages = run_demo(tmp_path)
    shop = tmp_path / "catalogs" / "shop"
    assert all(p.is_relative_to(shop) for p in pages)
    runs = sorted({p.parent for p in pages})
    assert len(runs) == 2 and {p.name for p in pages} == {f"{a}.html" for a in AGENTS}
    first, second = ({a: (r / f"{a}.html").read_text() for a in AGENTS} for r in runs)
    data = [{a: json.loads((r / f"{a}.json").read_text()) for a in AGENTS} for r in runs]
    # Two weeks of daily runs before the first, generated, marked so, and without pages.
    generated = sorted(p for p in shop.iterdir() if p not in runs)
    assert len(generated) == 14 and generated[-1].name < runs[0].name
    for folder in generated:
        assert [p.name for p in folder.iterdir()] == ["catalog.json"]
        assert "not a real run" in json.loads((folder / "catalog.json").read_text())["generated"]

    # Two sources, a section each, and the warehouse's copy of orders found lagging behind.
    assert section_of(first["catalog"], "app") and section_of(first["catalog"], "warehouse")
    assert list(data[0]["catalog"]["sources"]) == ["app", "warehouse"]
    lag = {
        f["kind"]: f
        for f in data[0]["catalog"]["cross_source"]["findings"]
        if set(f["tables"]) == {"app/orders", "warehouse/orders"}
    }
    assert "688 rows more" in lag["row_count"]["text"]
    # the watermark is 4 days (less a few minutes) before the newest past order; the orders in
    # the future, which its load never reaches, do not make it look years behind
    assert "is 3 days later" in lag["newest"]["text"], lag["newest"]["text"]
    across = first["catalog"].split("Across sources", 1)[1]
    assert "688" in across and "warehouse/orders" in across
    assert "events" in first["catalog"] and "refunds" not in first["catalog"]
    assert "refunds" in second["catalog"] and "channel" in second["catalog"]
    assert "failed pass" not in first["catalog"]  # every table is profiled (TIMESTAMPTZ too)
    for flag in ("every value is null", "negative values", "values in the future"):
        assert flag in first["catalog"], flag  # the dirty data is flagged
    # pii: the email and card columns, shown masked only.
    found = {(f["table"], f["column"], f["kind"]) for f in data[0]["pii"]["findings"]}
    assert {
        ("app/customers", "email", "email"),
        ("app/payments", "card_number", "payment_card"),
    } <= found
    assert "**** **** **** 4242" in first["pii"] and "4242424242424242" not in first["pii"]
    # relations: the key left undeclared, with its coverage, and the diagram.
    assert "99.8% of app/payments.order_id values are in app/orders.id" in first["relations"]
    assert '<img src="data:image/svg+xml' in first["relations"]
    assert "main." not in first["relations"]  # one box per table: references use the run's names
    # anomalies: past learning at once; the first run is like its history, the second is not.
    assert (data[0]["anomalies"]["state"], data[0]["anomalies"]["runs"]) == ("ready", 15)
    assert data[0]["anomalies"]["findings"] == []
    anomalies = {(f["table"], f["column"], f["kind"]) for f in data[1]["anomalies"]["findings"]}
    assert {
        ("app/customers", "email", "null_rate_up"),
        ("app/orders", None, "volume_spike"),
    } <= anomalies
    assert "null rate 28.8%, baseline 5.1%" in second["anomalies"]
    # The summary: what changed in the schema, and each other agent's page with its counts.
    findings = data[1]["summary"]["findings"]
    seen = {(f["table"], f["column"], f["kind"], f["severity"]) for f in findings}
    for expected in [
        ("app/refunds", None, "table_added", "neutral"),
        ("app/events", None, "table_removed", "bad"),
        ("app/orders", "channel", "column_added", "neutral"),
    ]:
        assert expected in seen, (expected, sorted(seen))
    assert runs[0].name in second["summary"]  # the second summary found the first run
    for agent in AGENTS[:-1]:
        assert f'href="{agent}.html"' in second["summary"], agent
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
