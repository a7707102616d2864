"""A sweep's results per point: verdicts in results.parquet, table.parquet, the printed table."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sim.compare import metric_values
from sim.points_table import points_table
from tests.helpers import TAIL_SLA, run_cli, tail_sweep

T_975_1 = 12.706204736174698
"""Student-t 97.5 % quantile with one degree of freedom (two seeds)."""

Z = 1.959963984540054
"""Standard normal 97.5 % quantile."""

RATE = "tenants.bolt.workload.arrivals.rate_per_hour"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    return tail_sweep(tmp_path_factory.mktemp("table"))


def test_metric_values_adds_each_verdict_as_one_or_zero_and_leaves_nulls_out():
    summary = {
        "scenario": "s",
        "seed": 1,
        "revenue_usd": 10.0,
        "tenants": {
            "a": {"sla_held": True, "revenue_usd": 4.0},
            "b": {"sla_held": False, "jobs_completed": 3},
            "c": {"sla_held": None},
        },
    }
    assert metric_values(summary) == {
        "revenue_usd": 10.0,
        "tenants.a.revenue_usd": 4.0,
        "tenants.a.sla_held": 1.0,
        "tenants.b.jobs_completed": 3.0,
        "tenants.b.sla_held": 0.0,
    }


def test_results_carry_each_tenants_verdict(swept):
    results = pd.read_parquet(swept / "results.parquet")
    held = results[results["metric"].str.endswith(".sla_held")]
    assert set(held["metric"]) == {"tenants.bolt.sla_held"}, "internal has no terms"
    assert len(held) == 4
    for row in held.itertuples():
        summary = json.loads((swept / "points" / row.key / "summary.json").read_text())
        assert row.value == (1.0 if summary["tenants"]["bolt"]["sla_held"] else 0.0)
    # At 4 jobs an hour bolt never waits 30 minutes; at 40 it always does.
    by_rate = held.groupby(RATE)["value"].apply(list).to_dict()
    assert by_rate == {"4": [1.0, 1.0], "40": [0.0, 0.0]}


def test_the_table_holds_each_points_means_and_intervals(swept):
    results = pd.read_parquet(swept / "results.parquet")
    table = pd.read_parquet(swept / "table.parquet")
    assert list(table.columns) == [RATE, "metric", "n", "mean", "low", "high"]
    assert list(dict.fromkeys(table[RATE])) == ["4", "40"]
    checked = 0
    for (rate, metric), own in results.groupby([RATE, "metric"]):
        row = table[(table[RATE] == rate) & (table["metric"] == metric)].iloc[0]
        a, b = sorted(own["value"])
        mean = (a + b) / 2
        half = T_975_1 * abs(b - a) / math.sqrt(2) / math.sqrt(2)  # s = |b - a| / sqrt(2)
        assert row["n"] == 2
        assert row["mean"] == pytest.approx(mean, rel=1e-12, abs=1e-12)
        assert row["low"] == pytest.approx(mean - half, rel=1e-9, abs=1e-9)
        assert row["high"] == pytest.approx(mean + half, rel=1e-9, abs=1e-9)
        checked += 1
    assert checked == len(table) - 2, "every metric, and two hold probabilities"
    holds = table[table["metric"] == "tenants.bolt.sla_held_probability"].set_index(RATE)
    # Wilson at p = 1 over n: low = n / (n + z²); at p = 0: high = z² / (n + z²).
    assert holds.loc["4", ["n", "mean", "high"]].tolist() == [2, 1.0, 1.0]
    assert holds.loc["4", "low"] == pytest.approx(2 / (2 + Z * Z), rel=1e-9)
    assert holds.loc["40", ["n", "mean", "low"]].tolist() == [2, 0.0, 0.0]
    assert holds.loc["40", "high"] == pytest.approx(Z * Z / (2 + Z * Z), rel=1e-9)


def test_one_seed_has_no_interval_and_no_path_is_one_point():
    results = pd.DataFrame(
        {"seed": [1, 2, 1], "metric": ["x", "x", "tenants.a.sla_held"], "value": [1.0, 3.0, 1.0]}
    )
    table = points_table(results, [])
    assert table["metric"].tolist() == ["tenants.a.sla_held", "tenants.a.sla_held_probability", "x"]
    first, _, x = table.to_dict("records")
    assert first["n"] == 1 and first["mean"] == 1.0
    assert math.isnan(first["low"]) and math.isnan(first["high"])
    assert x["mean"] == 2.0 and x["n"] == 2
    assert x["high"] - x["mean"] == pytest.approx(T_975_1 * math.sqrt(2) / math.sqrt(2))


def test_the_sweep_prints_its_table(swept):
    scenario = swept.parent / "tails.yaml"
    args = ("sweep", str(scenario), "-o", str(swept), "-j", "1", "--set", TAIL_SLA)
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "0 points run, 4 already finished, 0 failed" in out
    assert "tails: 2 points (mean ± 95 % CI half-width" in out
    for header in (RATE, "seeds", "revenue_usd", "queue_wait_hours_p99",
                   "tenants.bolt.sla_held_probability"):  # fmt: skip
        assert header in out
    assert "1.00 [0.34, 1.00] 2/2" in out and "0.00 [0.00, 0.66] 0/2" in out
    table = pd.read_parquet(swept / "table.parquet").set_index([RATE, "metric"])
    revenue = table.loc[("40", "revenue_usd")]
    assert f"{revenue['mean']:,.0f} ± {(revenue['high'] - revenue['low']) / 2:,.0f}" in out

    chosen = run_cli(*args, "-m", "tenants.bolt.jobs_completed", "-m", "no_such_metric")
    assert chosen.exit_code == 0
    assert "tenants.bolt.jobs_completed" in chosen.stdout and "revenue_usd" not in chosen.stdout
    assert "warning: --metric no_such_metric: no point has this figure" in chosen.stderr

    quiet = run_cli(*args, "-q")
    assert quiet.exit_code == 0 and "seeds" not in quiet.output and "±" not in quiet.output
