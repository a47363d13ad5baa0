"""The anomalies agent judges this run against a robust baseline of earlier runs' catalog data."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from catalog_toolkit import find_anomalies, record
from catalog_toolkit.anomalies import judge_runs
from catalog_toolkit.baseline import Floor, Rules, judge_series
from catalog_toolkit.kits import KITS

from bench.histories import (
    CATEGORY,
    KINDS,
    constant_runs,
    earlier_runs,
    inject,
    stamp,
    synthetic_catalog,
)

NOW = dt.datetime(2026, 5, 16, 9, 30, tzinfo=dt.UTC)  # a Saturday
Runs = list[tuple[str, dict[str, Any]]]


def history(seed: int, runs: int = 12, **options: Any) -> tuple[Runs, dict[str, Any]]:
    """Earlier runs with drift, and the current run's catalog (not yet in the list)."""
    current = synthetic_catalog(random.Random(seed), NOW)
    return earlier_runs(current, stamp(NOW), runs=runs, seed=seed, **options), current


def found(runs: Runs) -> set[tuple[Any, ...]]:
    result = judge_runs(runs, runs[-1][0], Rules())
    return {(f["table"], f["column"], f["category"]) for f in result["findings"]}


def store(folder: Path, runs: Runs) -> None:
    for timestamp, data in runs:
        (folder / timestamp).mkdir(parents=True)
        (folder / timestamp / "catalog.json").write_text(json.dumps(data))


@pytest.mark.parametrize("kind", KINDS)
def test_each_injected_kind_is_found_where_it_was_put(kind: str) -> None:
    for seed in range(3):
        earlier, current = history(100 + seed)
        rng = random.Random(seed)
        table, column = inject(
            current, kind, rng, previous=earlier[-1][1], earlier=earlier[-4][1], strong=True
        )
        assert (table, column, CATEGORY[kind]) in found([*earlier, (stamp(NOW), current)])


def test_a_history_with_only_drift_raises_nothing() -> None:
    for seed in range(5):
        earlier, current = history(200 + seed, runs=20)
        assert found([*earlier, (stamp(NOW), current)]) == set()


def test_it_is_learning_until_four_earlier_runs_and_stays_silent(tmp_path: Path) -> None:
    earlier, current = history(7, runs=3)
    inject(current, "drop", random.Random(1), previous=earlier[-1][1], earlier=earlier[0][1])
    store(tmp_path, [*earlier, (stamp(NOW), current)])
    result = find_anomalies(str(tmp_path), stamp(NOW))
    assert (result["state"], result["findings"], result["runs"]) == ("learning", [], 4)
    assert "alerts start at 4" in result["note"]
    assert result["headline"] == "Learning: 3 of 4 earlier runs, no alerts yet."
    assert record.recalled("anomalies") is result
    # One more earlier run and the same drop is an alert.
    more, current = history(7, runs=4)
    inject(current, "drop", random.Random(1), previous=more[-1][1], earlier=more[0][1])
    assert judge_runs([*more, (stamp(NOW), current)], stamp(NOW), Rules())["state"] == "ready"


def test_a_constant_history_never_alerts_and_a_move_beyond_the_floor_does() -> None:
    current = synthetic_catalog(random.Random(3), NOW)
    runs = [*constant_runs(current, stamp(NOW), runs=20), (stamp(NOW), current)]
    assert found(runs) == set()
    moved = copy.deepcopy(current)
    table = sorted(moved["tables"])[0]
    moved["tables"][table]["rows"] = int(moved["tables"][table]["rows"] * 0.8)
    (finding,) = judge_runs([*runs[:-1], (stamp(NOW), moved)], stamp(NOW), Rules())["findings"]
    assert (finding["kind"], finding["severity"], finding["score"]) == ("volume_drop", "bad", -20.0)


def test_past_anomalies_are_left_out_of_the_baseline() -> None:
    times = [NOW - dt.timedelta(days=k) for k in range(13, -1, -1)]
    # Half the earlier runs are spikes (none three in a row, so none becomes the new normal).
    values = [10.0, 10.2, 9.9, 10.1, 30.0, 10.0, 30.0, 10.1, 30.0, 9.9, 30.0, 10.2, 30.0, 20.0]
    verdicts = judge_series(times, values, growth=False, floor=Floor(0.01, 0.01), rules=Rules())
    assert [i for i, v in enumerate(verdicts) if v and v.anomaly] == [4, 6, 8, 10, 12, 13]
    last = verdicts[-1]
    assert last is not None and last.baseline == pytest.approx(10.05) and last.runs == 8


def test_an_anomaly_that_lasts_becomes_the_new_normal() -> None:
    times = [NOW - dt.timedelta(days=k) for k in range(9, -1, -1)]
    values = [5.0, 5.1, 4.9, 5.0, 5.1, 9.0, 9.1, 8.9, 9.0, 9.1]
    verdicts = judge_series(times, values, growth=False, floor=Floor(0.01, 0.01), rules=Rules())
    assert [bool(v and v.anomaly) for v in verdicts[5:]] == [True, True, True, False, False]


def test_after_a_one_off_load_whose_rows_stay_the_next_normal_runs_are_not_spikes() -> None:
    times = [NOW - dt.timedelta(days=k) for k in range(11, -1, -1)]
    # An append-only table: about 100 rows a day, then one run loads 2,000 extra rows that stay.
    steps = [100, 104, 97, 101, 99, 103, 98, 2100, 102, 97, 101, 250]
    values = [float(sum(steps[: k + 1]) + 10_000) for k in range(len(steps))]
    verdicts = judge_series(times, values, growth=True, floor=Floor(1, 0.01), rules=Rules())
    flags = [bool(v and v.anomaly) for v in verdicts]
    assert flags[7:] == [True, False, False, False, True]  # the load, and a real spike later
    last = verdicts[-1]
    assert last is not None and last.baseline == pytest.approx(values[-2] + 100, abs=3)


def test_a_drop_that_stays_alerts_once_and_a_load_that_stops_keeps_alerting() -> None:
    times = [NOW - dt.timedelta(days=k) for k in range(9, -1, -1)]
    steps = [1000, 1010, 990, 1005, 995, -5000, 1000, 1002]  # rows deleted once, then growth
    deleted = [float(sum(steps[: k + 1]) + 50_000) for k in range(len(steps))]
    verdicts = judge_series(times[2:], deleted, growth=True, floor=Floor(1, 0.01), rules=Rules())
    assert [bool(v and v.anomaly) for v in verdicts[5:]] == [True, False, False]
    stopped = [50_000.0 + 1000 * k for k in range(7)] + [56_000.0] * 3  # no new rows since
    verdicts = judge_series(times, stopped, growth=True, floor=Floor(1, 0.001), rules=Rules())
    assert [bool(v and v.anomaly) for v in verdicts[7:]] == [True, True, True]


def test_a_row_count_change_under_min_change_never_alerts() -> None:
    times = [NOW - dt.timedelta(days=k) for k in range(9, -1, -1)]
    # A table reloaded nightly: it moves by a row or two, then by six rows (0.4%).
    values = [1500.0, 1501, 1500, 1502, 1501, 1500, 1501, 1502, 1501, 1507]
    verdicts = judge_series(times, values, growth=True, floor=Floor(1, 0.01), rules=Rules())
    last = verdicts[-1]
    assert last is not None and last.score > Rules().sensitivity and not last.anomaly
    strict = judge_series(
        times, values, growth=True, floor=Floor(1, 0.01), rules=Rules(min_change=0.0)
    )
    assert strict[-1] is not None and strict[-1].anomaly
    # 2% of the rows is beyond the default floor: an alert.
    moved = [*values[:-1], 1531.0]
    verdicts = judge_series(times, moved, growth=True, floor=Floor(1, 0.01), rules=Rules())
    assert verdicts[-1] is not None and verdicts[-1].anomaly
    # A big append-only table: a double load of a day's rows is under 1% of it, yet many rows.
    big = [1_000_000.0 + 1000 * k + (7 if k % 2 else 0) for k in range(9)] + [1_011_000.0]
    verdicts = judge_series(times, big, growth=True, floor=Floor(1, 0.01), rules=Rules())
    assert verdicts[-1] is not None and verdicts[-1].anomaly


def test_weekday_seasonality_compares_a_saturday_with_saturdays() -> None:
    earlier, current = history(11, runs=35, weekly=True, noise=0.3)
    before = earlier[-1][1]["tables"]
    table = next(t for t in sorted(before) if before[t]["rows"] != current["tables"][t]["rows"])
    saturday_growth = current["tables"][table]["rows"] - earlier[-1][1]["tables"][table]["rows"]
    result = judge_runs([*earlier, (stamp(NOW), current)], stamp(NOW), Rules())
    assert result["findings"] == []
    # Weekday-sized growth on a Saturday: normal for the week, a spike for a Saturday.
    busy = copy.deepcopy(current)
    busy["tables"][table]["rows"] += 4 * saturday_growth
    (finding,) = judge_runs([*earlier, (stamp(NOW), busy)], stamp(NOW), Rules())["findings"]
    assert (finding["table"], finding["kind"], finding["seasonal"]) == (table, "volume_spike", True)
    assert "same-weekday" in finding["message"]


def test_the_kit_exports_json_and_renders_escaped_sparklines(tmp_path: Path) -> None:
    earlier, current = history(5)
    current["tables"]["<script>x</script>"] = current["tables"].pop("table_0")
    for _, run in earlier:
        run["tables"]["<script>x</script>"] = run["tables"].pop("table_0")
    inject(current, "null_jump", random.Random(2), previous=earlier[-1][1], earlier=earlier[0][1])
    store(tmp_path, [*earlier, (stamp(NOW), current)])
    record.results.clear()
    kit = KITS["anomalies"]
    context = {"history_dir": str(tmp_path), "current_timestamp": stamp(NOW), "con": None}
    data = kit.export(**context, limits={"sensitivity": 3, "max_output_chars": 8000})
    assert {k: data[k] for k in ("format", "kind", "state", "runs")} == {
        "format": 1,
        "kind": "anomalies",
        "state": "ready",
        "runs": 13,
    }
    assert data["counts"]["bad"] >= 1 and json.loads(json.dumps(data)) == data
    found, bad = len(data["findings"]), data["counts"]["bad"]
    noun = "anomaly" if found == 1 else "anomalies"
    assert data["headline"] == f"{found} {noun}, {bad} bad, against 12 earlier runs."
    page = kit.render(data)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count('<img src="data:image/svg+xml;base64,') == len(data["findings"])
    digest = kit.digest(**context)
    assert digest["headline"].startswith(f"{len(data['findings'])} anomalies against 12")
    severities = {item.split(":")[0] for item in digest["items"]}
    assert severities and severities <= {"bad", "good", "neutral"}
