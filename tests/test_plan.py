"""``surplus plan``: the capacity search, checked against Erlang C and by hand.

The marketplace with one cluster of c single-GPU nodes and Poisson arrivals of 1-GPU
jobs with exponential run times (mean 1 h) is an M/M/c queue, whose waiting time has
P(W > t) = C(c, rho) exp(-c (1 - rho) t): its P99 is ln(100 C) / (c (1 - rho)) hours.
A queue-wait term then has a threshold known in closed form, in the arrival rate (for a
fixed c) and in c (for a fixed rate); the plan must bracket it: the value found holds,
the next step does not, and the threshold lies between them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.plan import Kept, parse_keep, parse_range, plan, windows_held
from sim.scenario import ScenarioError, load_scenario
from tests.conftest import SCENARIOS as SCENARIO_DIR
from tests.helpers import erlang_c, run_cli

LIMIT_HOURS = 2.6
"""The queue-wait term: P99 of waits at most 2.6 h."""


def mmc_p99_hours(servers: int, rate_per_hour: float) -> float:
    """Erlang C's P99 wait (hours) with mean run time 1 h; inf when unstable."""
    load = rate_per_hour / servers
    if load >= 1:
        return math.inf
    return max(0.0, math.log(100 * erlang_c(servers, load)) / (servers * (1 - load)))


def rate_threshold(servers: int) -> float:
    """The arrival rate at which Erlang C's P99 wait equals LIMIT_HOURS (bisection)."""
    low, high = 0.5 * servers, servers * (1 - 1e-9)
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (
            (middle, high) if mmc_p99_hours(servers, middle) < LIMIT_HOURS else (low, middle)
        )
    return low


def write_mmc(directory: Path, horizon: str = "1500h", window: str = "run") -> Path:
    document = {
        "name": "mmc",
        "seed": 1,
        "horizon": horizon,
        "provider": {
            "sites": [
                {
                    "name": "s",
                    "clusters": [
                        {"name": "c", "nodes": 8, "gpus_per_node": 1, "accelerator": "H100"}
                    ],
                }
            ]
        },
        "tenants": [
            {
                "name": "t",
                "contract": {
                    "kind": "on_demand",
                    "price_per_gpu_hour": 2.0,
                    "sla": {"queue_wait_p99": f"{LIMIT_HOURS}h", "window": window},
                },
                "workload": {
                    "arrivals": {"kind": "poisson", "rate_per_hour": 6},
                    "gpus": {"kind": "fixed", "value": 1},
                    "duration": {"kind": "exponential", "mean": "1h"},
                },
            }
        ],
    }
    path = directory / "mmc.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


RATE = "tenants.0.workload.arrivals.rate_per_hour"
NODES = "provider.sites.0.clusters.0.nodes"


def test_erlang_c_thresholds_lie_between_the_grid_steps_used_below():
    """The analytical side of the bracketing tests, with room for sampling error."""
    threshold = rate_threshold(8)
    assert 6.0 < threshold < 7.0
    assert threshold == pytest.approx(6.506, abs=1e-3)
    assert mmc_p99_hours(8, 6.0) == pytest.approx(1.788, abs=1e-3)  # 31 % under the limit
    assert mmc_p99_hours(8, 7.0) == pytest.approx(4.152, abs=1e-3)  # 60 % over it
    assert mmc_p99_hours(7, 6.0) == pytest.approx(4.117, abs=1e-3)  # 58 % over it


def test_bisection_brackets_the_erlang_c_arrival_rate(tmp_path):
    path = write_mmc(tmp_path)
    outcome = plan(path, tmp_path / "plan", RATE, "4:8:1", seeds=2, workers=2)
    assert outcome.status == "found"
    assert (outcome.frontier, outcome.beyond) == (6.0, 7.0)
    assert outcome.frontier < rate_threshold(8) < outcome.beyond
    assert outcome.verdict(6.0).holds and not outcome.verdict(7.0).holds
    # Bisection tried the ends, then halved: 4 and 8, 6, 7; never 5.
    assert [v.value for v in outcome.verdicts] == [4.0, 6.0, 7.0, 8.0]
    assert outcome.ran == 8 and outcome.skipped == 0
    # Common random numbers: every value ran on the same two seeds.
    points = pd.read_parquet(tmp_path / "plan" / "points.parquet")
    assert sorted(points["seed"].unique()) == [1, 2]
    assert set(points["status"]) == {"done"} and len(points) == 8
    assert sorted(points[RATE].unique()) == ["4", "6", "7", "8"]
    # The measured P99 waits agree with Erlang C at the bracketing values.
    results = pd.read_parquet(tmp_path / "plan" / "results.parquet")
    p99 = results[results["metric"] == "tenants.t.queue_wait_hours_p99"].groupby(RATE)["value"]
    assert p99.mean()["6"] == pytest.approx(mmc_p99_hours(8, 6.0), rel=0.2)
    assert p99.mean()["7"] == pytest.approx(mmc_p99_hours(8, 7.0), rel=0.2)
    document = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert document["frontier"] == 6.0 and document["beyond"] == 7.0
    assert document["paths"] == [RATE] and document["seeds"] == [1, 2]
    held = {row["value"]: row["tenants"]["t"]["windows_held"] for row in document["tried"]}
    assert held == {4.0: 2, 6.0: 2, 7.0: 0, 8.0: 0}

    # Per value, the table of means over seeds; the frontier plot reads the plan.
    table = pd.read_parquet(tmp_path / "plan" / "table.parquet")
    revenue = table[table["metric"] == "revenue_usd"].set_index(RATE)["mean"]
    assert revenue["7"] > revenue["6"] > revenue["4"]  # more jobs, more GPU-hours sold
    assert revenue["6"] == pytest.approx(document["tried"][1]["revenue_usd"])
    image = tmp_path / "frontier.png"
    result = run_cli("plot", str(tmp_path / "plan"), "--kind", "frontier", "--tenant", "t",
                     "--tail", "tenants.t.queue_wait_hours_p99", "-o", str(image))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert image.stat().st_size > 10_000

    # Rerun: every run is found finished, the answer is the same.
    again = plan(path, tmp_path / "plan", RATE, "4:8:1", seeds=2, workers=2)
    assert (again.ran, again.skipped) == (0, 8)
    assert (again.frontier, again.beyond) == (6.0, 7.0)


def test_grid_finds_the_fewest_servers_erlang_c_allows(tmp_path):
    """--find min over the cluster's size: 8 servers hold the term at 6 jobs/h, 7 do not."""
    path = write_mmc(tmp_path)
    outcome = plan(
        path, tmp_path / "plan", NODES, "7:10", seeds=1, find="min", search="grid", workers=2
    )
    assert [v.value for v in outcome.verdicts] == [7.0, 8.0, 9.0, 10.0]
    assert outcome.status == "found"
    assert (outcome.frontier, outcome.beyond) == (8.0, 7.0)
    assert mmc_p99_hours(8, 6.0) < LIMIT_HOURS < mmc_p99_hours(7, 6.0)
    assert [v.holds for v in outcome.verdicts] == [False, True, True, True]
    assert outcome.not_monotone == []


def test_ends_of_the_range_are_reported(tmp_path):
    path = write_mmc(tmp_path, horizon="300h")
    nothing = plan(path, tmp_path / "a", RATE, "7.5:7.9:0.4", seeds=1, workers=1)
    assert nothing.status == "none" and nothing.frontier is None
    assert [v.value for v in nothing.verdicts] == [7.5, 7.9]
    everything = plan(path, tmp_path / "b", RATE, "2:3", seeds=1, workers=1)
    assert everything.status == "at_end" and everything.frontier == 3.0
    assert everything.beyond is None


def test_a_plan_directory_holds_one_plan(tmp_path):
    """Runs of an earlier plan that this one did not try are removed at its end."""
    path = write_mmc(tmp_path, horizon="100h")
    out = tmp_path / "plan"
    plan(path, out, RATE, "2:3", seeds=1, workers=1)
    plan(path, out, RATE, "3:4", seeds=1, workers=1)
    points = pd.read_parquet(out / "points.parquet")
    assert sorted(points[RATE]) == ["3", "4"]
    assert sorted(p.name for p in (out / "points").iterdir()) == sorted(points["key"])


def _summary(windows: dict[str, list[float | None]], limits: dict[str, float]) -> dict:
    terms = {
        term: {"limit": limits[term], "windows": values, "held": None, "reason": None}
        for term, values in windows.items()
    }
    return {"tenants": {"a": {"sla_terms": terms}}}


def test_a_window_holds_when_every_kept_term_holds_in_it():
    """Two terms breaking in different days break two of four days; a null window holds."""
    summary = _summary(
        {
            "iteration_slowdown_p99": [1.1, 1.5, 1.2, None],  # day 2 over 1.3
            "usable_compute_fraction": [0.9, 0.9, 0.8, 0.95],  # a floor: day 3 under 0.85
            "pause_fraction": [0.0, 0.5, 0.5, 0.5],  # not kept
        },
        {"iteration_slowdown_p99": 1.3, "usable_compute_fraction": 0.85, "pause_fraction": 0.05},
    )
    both = Kept("a", ("iteration_slowdown_p99", "usable_compute_fraction"), "day")
    assert windows_held(summary, both) == (2, 4)
    assert windows_held(summary, Kept("a", ("iteration_slowdown_p99",), "day")) == (3, 4)
    assert windows_held(summary, Kept("a", ("pause_fraction",), "day")) == (1, 4)


def test_a_term_that_cannot_be_measured_stops_the_plan():
    reason = "no fabric on its links records PFC pause or credit stall per job"
    figure = {"limit": 0.05, "windows": [None], "held": None, "reason": reason}
    summary = {"tenants": {"a": {"sla_terms": {"pause_fraction": figure}}}}
    with pytest.raises(ScenarioError, match="pause_fraction: not measured in this run"):
        windows_held(summary, Kept("a", ("pause_fraction",), "run"))


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1024:4096:1024", [1024, 2048, 3072, 4096]),
        ("3:5", [3, 4, 5]),
        ("7:7", [7]),
        ("0.5:1.5:0.25", [0.5, 0.75, 1.0, 1.25, 1.5]),
        ("0.1:0.3:0.1", [0.1, 0.2, 0.3]),
    ],
)
def test_ranges(text, values):
    assert parse_range(text) == values


def test_a_float_range_without_step_has_32_steps():
    values = parse_range("0:1.0")
    assert len(values) == 33 and values[1] == 0.03125 and values[-1] == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8", "expected LO:HI or LO:HI:STEP"),
        ("a:8", "LO 'a' is not a number"),
        ("8:4", "HI must be at least LO"),
        ("0:10:3", "HI must be LO plus a whole number of STEPs"),
        ("0:10:-1", "STEP must be positive"),
        ("0:1e9:1", "at most 100,000"),
        ("0:inf", "HI must be finite"),
    ],
)
def test_bad_ranges_are_named(text, message):
    with pytest.raises(ScenarioError, match=message):
        parse_range(text)


def test_keep_names_tenants_and_terms(tmp_path):
    scenario = load_scenario(write_mmc(tmp_path, window="day"))
    assert parse_keep([], scenario) == [Kept("t", ("queue_wait_p99",), "day")]
    assert parse_keep(["t.queue_wait_p99"], scenario) == parse_keep(["all"], scenario)
    with pytest.raises(ScenarioError, match="no tenant 'x' with SLA terms; those with terms: t"):
        parse_keep(["x"], scenario)
    with pytest.raises(ScenarioError, match="t has no term 'pause_fraction'"):
        parse_keep(["t.pause_fraction"], scenario)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--range", "8:4"], "--range 8:4: HI must be at least LO"),
        (["--keep", "nobody"], "--keep nobody: no tenant 'nobody'"),
        (["--confidence", "1.5"], "--confidence: a share of windows in (0, 1]"),
        (["--find", "most"], "--find: 'most' is not one of max, min"),
        (["--search", "random"], "--search: 'random' is not one of bisect, grid"),
        (["--backend", "dask"], "--backend dask needs --address"),
        (["--vary", "tenants.0.workload.arrivals.rate_pr_hour"], "--vary tenants.0"),
        (["--vary", "tenants.0.contract.kind"], "--vary tenants.0.contract.kind"),
    ],
)
def test_bad_questions_exit_2_naming_the_option(tmp_path, args, message):
    path = write_mmc(tmp_path, horizon="10h")
    base = {"--vary": RATE, "--range": "1:2"}
    for option, value in zip(args[::2], args[1::2], strict=True):
        base[option] = value
    command = ["plan", str(path), "-o", str(tmp_path / "out"), "-q"]
    for option, value in base.items():
        command += [option, value]
    result = run_cli(*command)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_scenario_without_terms_is_refused(tmp_path):
    path = write_mmc(tmp_path, horizon="10h")
    text = path.read_text().replace("sla:", "unused_sla:")
    document = yaml.safe_load(text)
    del document["tenants"][0]["contract"]["unused_sla"]
    path.write_text(yaml.safe_dump(document))
    result = run_cli("plan", str(path), "--vary", RATE, "--range", "1:2", "-q")
    assert result.exit_code == 2
    assert "--keep: no tenant of mmc has SLA terms; add `sla:` to a contract" in result.output


def test_run_only_terms_need_a_run_window(tmp_path):
    path = write_mmc(tmp_path, horizon="10h", window="week")
    document = yaml.safe_load(path.read_text())
    document["tenants"][0]["contract"]["sla"]["usable_compute_fraction"] = 0.9
    path.write_text(yaml.safe_dump(document))
    result = run_cli("plan", str(path), "--vary", RATE, "--range", "1:2", "-q")
    assert result.exit_code == 2
    assert "--keep t.usable_compute_fraction: measured over the whole run only" in result.output


def test_the_cli_prints_the_frontier(tmp_path):
    path = write_mmc(tmp_path, horizon="200h")
    out = tmp_path / "out"
    result = run_cli("plan", str(path), "--vary", RATE, "--range", "2:3", "--seeds", "1",
                     "-j", "1", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"frontier: largest {RATE} that holds = 3" in result.output
    assert "the end of the range holds: widen --range" in result.output
    assert "2 runs made, 0 already finished" in result.output
    assert json.loads((out / ".surplus.json").read_text())["kind"] == "plan"


def test_paths_that_move_together(tmp_path):
    """--vary twice: the k-th values of both ranges make the k-th point."""
    path = write_mmc(tmp_path, horizon="100h")
    outcome = plan(path, tmp_path / "plan", [NODES, RATE], ["8:10", "6:7:0.5"], seeds=1,
                   search="grid", workers=1)  # fmt: skip
    assert outcome.path == NODES
    assert outcome.companions(9.0) == {RATE: 6.5}
    points = pd.read_parquet(tmp_path / "plan" / "points.parquet")
    pairs = sorted(zip(points[NODES], points[RATE], strict=True))
    assert pairs == [("10", "7"), ("8", "6"), ("9", "6.5")]
    document = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert document["paths"] == [NODES, RATE]
    assert document["values"] == {NODES: [8.0, 9.0, 10.0], RATE: [6.0, 6.5, 7.0]}


@pytest.mark.parametrize(
    ("vary", "ranges", "message"),
    [
        ([NODES, RATE], ["8:10"], "--vary and --range come in pairs: 2 --vary, 1 --range"),
        ([NODES, RATE], ["8:10", "6:7"], "need as many values (8:10 has 3, 6:7 has 2)"),
        ([RATE, RATE], ["1:2", "1:2"], "--vary: a path is named twice"),
    ],
)
def test_paths_that_move_together_must_pair_up(tmp_path, vary, ranges, message):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        plan(write_mmc(tmp_path, horizon="10h"), tmp_path / "plan", vary, ranges, seeds=1)
    assert not (tmp_path / "plan").exists()


def test_a_dask_cluster_gives_exactly_the_local_plan(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    path = write_mmc(tmp_path, horizon="300h")
    question = (RATE, "5:8:1")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = plan(path, tmp_path / "dask", *question, seeds=2, backend="dask",
                      address=cluster.scheduler_address)  # fmt: skip
    local = plan(path, tmp_path / "local", *question, seeds=2, workers=2)
    assert (remote.frontier, remote.beyond) == (local.frontier, local.beyond)
    for name in ("results.parquet", "points.parquet", "table.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "dask" / name), pd.read_parquet(tmp_path / "local" / name)
        )


def test_the_capacity_plan_scenario_asks_its_question(tmp_path):
    """scenarios/capacity-plan.yaml's command (README), on a 2-hour horizon."""
    scenario = load_scenario(SCENARIO_DIR / "capacity-plan.yaml")
    assert parse_keep([], scenario) == [
        Kept("blocks", ("iteration_slowdown_p99", "pause_fraction"), "week"),
        Kept("internal", ("inference_latency_ms_p99", "inference_slo_attainment"), "run"),
        Kept("northwind", ("iteration_slowdown_p99", "pause_fraction"), "week"),
    ]
    outcome = plan(SCENARIO_DIR / "capacity-plan.yaml", tmp_path / "plan",
                   "tenants.0.contract.gpus", "2048:3072:1024", seeds=1, workers=2,
                   overrides=["horizon=2h"])  # fmt: skip
    assert [v.value for v in outcome.verdicts] == [2048.0, 3072.0]
    for verdict in outcome.verdicts:  # one (partial) week per run for the buyers
        assert verdict.windows["blocks"][1] == 1 and verdict.windows["internal"][1] == 1
        assert verdict.revenue_usd > 0


class _Monotone:
    """A stand-in search whose verdict follows ``rule``: monotone, as bisection assumes."""

    def __init__(self, rule):
        self.rule = rule
        self.failed: list[str] = []
        self.tried: list[int] = []

    def evaluate(self, indices):
        self.tried.extend(i for i in indices if i not in self.tried)

    def holds(self, index: int) -> bool:
        assert index in self.tried, "judged before it ran"
        return self.rule(index)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(-1, 300), st.booleans())
def test_bisection_finds_what_the_grid_finds_on_a_monotone_verdict(count, threshold, reverse):
    """Same frontier, same value beyond, same status; at most 2 + log2(count) values run."""
    from sim.plan import _bisect, _grid

    order = list(range(count))
    if reverse:  # --find min: values hold from some value on; the search starts at the top
        order.reverse()

        def rule(i):
            return i >= count - 1 - threshold
    else:

        def rule(i):
            return i <= threshold

    search = _Monotone(rule)
    assert _bisect(search, order) == _grid(_Monotone(rule), order)[:3]
    assert len(search.tried) <= 2 + math.ceil(math.log2(count))


def test_a_failing_run_stops_the_plan_and_a_rerun_finishes_it(tmp_path, monkeypatch):
    import sim.runner

    real = sim.runner.simulate

    def fragile(scenario, progress=None):
        if scenario.seed == 2:
            raise RuntimeError("the node caught fire")
        return real(scenario, progress)

    monkeypatch.setattr(sim.runner, "simulate", fragile)
    path, out = write_mmc(tmp_path, horizon="50h"), tmp_path / "plan"
    args = ("plan", str(path), "--vary", RATE, "--range", "2:3", "--seeds", "2", "-j", "1")
    result = run_cli(*args, "-o", str(out))
    assert result.exit_code == 1
    assert "no answer: a run failed" in result.output
    assert "RuntimeError: the node caught fire" in result.output
    points = pd.read_parquet(out / "points.parquet")
    assert sorted(points["status"]) == ["done", "done", "failed", "failed"]
    monkeypatch.setattr(sim.runner, "simulate", real)
    result = run_cli(*args, "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert "2 runs made, 2 already finished" in result.output
