"""Anomalies benchmark: precision and recall of `find_anomalies` over generated run histories.

Each history (bench/histories.py, fixed seeds) is a made-up catalog of three tables and the
runs before it, daily, hourly or daily with quiet weekends (28 to 35 runs, so weekday
seasonality applies), with the usual drift. Four in ten also hold one past anomaly (a spike in
rows or a null-rate blip in one earlier run) that the baseline must not absorb. Then:
- injected: the current run gets one anomaly, 35 histories per kind: a row-count drop or
  spike, a null-rate jump, stale data (the newest time stopped), a type change, a rename;
- clean controls: 60 histories with nothing injected;
- constant: 20 histories where nothing ever changed; learning: 20 with only 1 to 3 earlier
  runs and an anomaly injected (it must stay silent).
A finding on the injected table and column, of the injected kind's category, is a true
positive; every other finding is a false one.
- anomalies.precision, anomalies.recall: over the injected and clean histories (goal ≥ 0.95);
- anomalies.false_alerts_constant_or_learning: findings on the constant and learning
  histories (goal 0);
- peer.naive_zscore.precision, .recall: the same histories judged with the mean and standard
  deviation of the last runs, past anomalies kept in (a standard deviation of 0 makes any
  change infinitely anomalous); the schema rules are the same for both.
Runs in a few seconds, in-process. Prints one JSON object a line: {"name", "value", "unit"}.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from benchlib import emit
from histories import (
    CATEGORY,
    KINDS,
    constant_runs,
    earlier_runs,
    inject,
    stamp,
    synthetic_catalog,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sandbox"))
import itertools

from catalog_toolkit import anomalies
from catalog_toolkit.baseline import Floor, Rules, Verdict

SEED = 20261
PER_KIND = 35
CLEAN = 60
CONSTANT = 20
LEARNING = 20
PAST_ANOMALY_SHARE = 0.4
START = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)

Truth = tuple[str, str | None, str] | None  # (table, column, category) of the injected anomaly


def make_case(seed: int, kind: str | None, *, runs: int | None = None) -> tuple[list[Any], Truth]:
    """One history: (timestamp, catalog) runs, oldest first, and where its anomaly is."""
    rng = random.Random(seed)
    cadence = rng.choice(["daily", "hourly", "weekly"])
    every = dt.timedelta(hours=1) if cadence == "hourly" else dt.timedelta(days=1)
    count = runs or (rng.randint(28, 35) if cadence == "weekly" else rng.randint(6, 30))
    now = START + dt.timedelta(days=rng.randint(0, 200), minutes=rng.randint(0, 600))
    current = synthetic_catalog(rng, now)
    history = earlier_runs(
        current, stamp(now), runs=count, seed=seed, every=every, weekly=cadence == "weekly"
    )
    if rng.random() < PAST_ANOMALY_SHARE and count >= 4:
        k = rng.randint(1, count - 2)
        past = rng.choice(["spike", "null_jump"])
        inject(history[k][1], past, rng, previous=history[k - 1][1], earlier=history[0][1])
    truth: Truth = None
    if kind is not None:
        table, column = inject(
            current, kind, rng, previous=history[-1][1], earlier=history[max(0, count - 4)][1]
        )
        truth = (table, column, CATEGORY[kind])
    return [*history, (stamp(now), current)], truth


def naive_series(
    times: list[dt.datetime],
    values: list[float | None],
    *,
    growth: bool,
    floor: Floor,
    rules: Rules,
) -> list[Verdict | None]:
    """The peer: mean and standard deviation of the last `window` values (or changes per hour),
    anomalies kept in; only the current value is judged."""
    del floor
    known = [(t.timestamp() / 3600, v) for t, v in zip(times, values, strict=True) if v is not None]
    verdicts: list[Verdict | None] = [None] * len(values)
    if values[-1] is None or len(known) - 1 < rules.min_runs:
        return verdicts
    (now_h, value), past = known[-1], known[:-1][-rules.window :]
    samples = [v for _, v in past]
    if growth:
        samples = [(b - a) / (tb - ta) for (ta, a), (tb, b) in itertools.pairwise(past)]
    mean, std = statistics.fmean(samples), statistics.pstdev(samples)
    hours = now_h - past[-1][0]
    expected, spread = (past[-1][1] + mean * hours, std * hours) if growth else (mean, std)
    gap = value - expected
    score = gap / spread if spread else (0.0 if abs(gap) < 1e-12 else math.copysign(math.inf, gap))
    verdicts[-1] = Verdict(
        value, expected, spread, score, abs(score) > rules.sensitivity, False, len(samples)
    )
    return verdicts


def score(cases: list[tuple[list[Any], Truth]]) -> tuple[float, float, int]:
    """(precision, recall, findings on histories with nothing to find)."""
    hits = false = injected = 0
    for runs, truth in cases:
        result = anomalies.judge_runs(runs, runs[-1][0], Rules())
        found = [(f["table"], f["column"], f["category"]) for f in result["findings"]]
        injected += truth is not None
        hits += truth in found
        false += sum(f != truth for f in found)
    return hits / max(1, hits + false), hits / max(1, injected), false


def main() -> None:
    cases = [
        make_case(SEED + 1000 * k + i, kind)
        for k, kind in enumerate(KINDS)
        for i in range(PER_KIND)
    ]
    cases += [make_case(SEED + 90_000 + i, None) for i in range(CLEAN)]
    quiet = [_constant(SEED + 95_000 + i) for i in range(CONSTANT)]
    quiet += [
        make_case(SEED + 97_000 + i, KINDS[i % len(KINDS)], runs=1 + i % 3) for i in range(LEARNING)
    ]
    precision, recall, _ = score(cases)
    emit("anomalies.precision", precision, "ratio")
    emit("anomalies.recall", recall, "ratio")
    emit("anomalies.false_alerts_constant_or_learning", score(quiet)[2], "findings")
    emit("anomalies.histories", len(cases) + len(quiet), "histories")
    # The peer shares everything but the series judge, swapped in for this one measurement.
    with mock.patch.object(anomalies, "judge_series", naive_series):
        precision, recall, _ = score(cases)
    emit("peer.naive_zscore.precision", precision, "ratio")
    emit("peer.naive_zscore.recall", recall, "ratio")


def _constant(seed: int) -> tuple[list[Any], Truth]:
    rng = random.Random(seed)
    now = START + dt.timedelta(days=rng.randint(0, 200))
    current = synthetic_catalog(rng, now)
    runs = [*constant_runs(current, stamp(now), runs=rng.randint(4, 30)), (stamp(now), current)]
    return runs, None


if __name__ == "__main__":
    main()
