"""Revenue against the tail: the Pareto front, its points, `surplus plot --kind frontier`."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from sim.frontier import frontier_points, pareto_front
from tests.helpers import run_cli, tail_sweep

PNG = b"\x89PNG\r\n\x1a\n"

Z = 1.959963984540054
"""Standard normal 97.5 % quantile."""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    return tail_sweep(tmp_path_factory.mktemp("frontier"))


@pytest.fixture
def plan_dir(swept, tmp_path):
    """A plan-like directory: the sweep's files, its sweep.json renamed plan.json."""
    out = tmp_path / "plan"
    shutil.copytree(swept, out)
    (out / "sweep.json").rename(out / "plan.json")
    (out / "frontier.png").unlink(missing_ok=True)
    return out


@pytest.mark.parametrize(
    ("tail", "revenue", "front"),
    [
        ([1.0], [5.0], [True]),  # one point
        ([1, 2, 3], [10, 20, 30], [True, True, True]),  # each buys revenue with tail
        ([1, 2, 3], [10, 5, 30], [True, False, True]),  # 2 has more tail, less revenue than 1
        ([1, 1, 2], [5, 10, 10], [False, True, False]),  # same tail less revenue; same revenue
        ([1, 2], [10, 10], [True, False]),  # equal revenue, the lower tail wins
        ([1, 1, 2], [10, 10, 20], [True, True, True]),  # duplicates on the front stay on it
        ([2, 2, 1], [5, 5, 10], [False, False, True]),  # duplicates dominated together
        ([3, 1, 2], [30, 10, 20], [True, True, True]),  # order of the input does not matter
        ([], [], []),
    ],
)
def test_the_front_on_hand_solved_cases(tail, revenue, front):
    assert pareto_front(tail, revenue).tolist() == front


def test_the_front_agrees_with_its_definition_on_random_ties():
    rng = np.random.default_rng(7)
    for _ in range(200):
        size = int(rng.integers(1, 12))
        tail, revenue = rng.integers(0, 4, size), rng.integers(0, 4, size)
        dominated = [
            any(
                revenue[j] >= revenue[i] and tail[j] <= tail[i]
                and (revenue[j] > revenue[i] or tail[j] < tail[i])
                for j in range(size)
            )
            for i in range(size)
        ]  # fmt: skip
        assert pareto_front(tail, revenue).tolist() == [not d for d in dominated]


def _revenue(directory):
    table = pd.read_parquet(directory / "table.parquet")
    rows = table[table["metric"] == "revenue_usd"]
    return rows["mean"].tolist(), rows["low"].tolist(), rows["high"].tolist()


def test_the_points_set_revenue_against_the_p99_and_against_breaches(swept):
    points, metric, document = frontier_points(swept, "bolt")
    assert metric == "tenants.bolt.iteration_slowdown_p99" and document["scenario"] == "tails"
    assert points["label"].tolist() == ["rate_per_hour=4", "rate_per_hour=40"]
    mean, low, high = _revenue(swept)
    assert points["revenue"].tolist() == mean and mean[1] > mean[0]
    assert points["revenue_low"].tolist() == low and points["revenue_high"].tolist() == high
    # No fabric: bolt's slowdown is 1 everywhere, so the busier point dominates.
    assert points["tail"].tolist() == [1.0, 1.0]
    assert points["front"].tolist() == [False, True]

    breach, metric, _ = frontier_points(swept, "bolt", "breach")
    assert metric == "tenants.bolt.sla_held_probability"
    assert breach["tail"].tolist() == [0.0, 1.0]  # held in 2/2 seeds at 4 an hour, 0/2 at 40
    assert breach["tail_low"].tolist() == [0.0, pytest.approx(2 / (2 + Z * Z))]
    assert breach["tail_high"].tolist() == [pytest.approx(Z * Z / (2 + Z * Z)), 1.0]
    assert breach["front"].tolist() == [True, True], "more revenue, more breaches"

    waits, _, _ = frontier_points(swept, "bolt", "tenants.bolt.queue_wait_hours_p99")
    table = pd.read_parquet(swept / "table.parquet")
    own = table[table["metric"] == "tenants.bolt.queue_wait_hours_p99"]
    assert waits["tail"].tolist() == own["mean"].tolist()


def test_the_plot_is_drawn_for_a_sweep_and_a_plan(swept, plan_dir, tmp_path):
    result = run_cli("plot", str(swept), "--kind", "frontier", "--tenant", "bolt")
    assert result.exit_code == 0, result.output
    assert (swept / "frontier.png").read_bytes().startswith(PNG)
    out = tmp_path / "breach.svg"
    args = ("plot", str(plan_dir), "-k", "frontier", "--tenant", "bolt", "--tail", "breach")
    result = run_cli(*args, "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "<svg" in text and "rate_per_hour=40" in text and "plan of 2 points" in text


def _bad(directory, *extra):
    return run_cli("plot", str(directory), "-o", str(directory.parent / "x.png"), *extra)


def test_bad_input_exits_2_naming_the_problem(swept, plan_dir, tmp_path):
    frontier = ("--kind", "frontier", "--tenant", "bolt")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (empty, frontier, "empty: not a sweep or plan directory (no sweep.json or plan.json)"),
        (empty, ("--kind", "timeline"), "neither a run directory (summary.json), a comparison,"),
        (swept, ("--kind", "frontier", "--tenant", "nobody"),
         "--tenant: no tenant 'nobody' in"),
        (swept, ("--kind", "frontier", "--tenant", "nobody"), "(tenants: bolt, internal)"),
        (swept, (*frontier, "--tail", "no_such_metric"),
         "--tail: no point has the metric 'no_such_metric'"),
        (swept, ("--kind", "frontier", "--tenant", "internal", "--tail", "breach"),
         "--tail breach: tenant 'internal' has no SLA verdict in any point"),
        (swept, ("--kind", "frontier"), "--kind frontier needs --tenant NAME"),
        (swept, ("--kind", "timeline"), "--kind timeline draws a run or comparison directory"),
        (swept, ("--kind", "timeline"), "draw this one with --kind frontier"),
        (swept, ("--kind", "bars", "--tenant", "bolt"), "--tenant and --tail are for --kind"),
    ]  # fmt: skip
    for directory, extra, message in cases:
        result = _bad(directory, *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert "Traceback" not in result.output

    (plan_dir / "results.parquet").unlink()
    result = _bad(plan_dir, *frontier)
    assert result.exit_code == 2 and "not a sweep or plan directory" in result.output
    results = pd.read_parquet(swept / "results.parquet")
    results.iloc[0:0].to_parquet(plan_dir / "results.parquet", index=False)
    result = _bad(plan_dir, *frontier)
    assert result.exit_code == 2 and "no finished points" in result.output
