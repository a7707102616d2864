"""``surplus compare``: common random numbers, Student-t intervals, paired differences."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.compare import (
    Policy,
    compare,
    mean_interval,
    metric_values,
    parse_policies,
    prepare,
)
from sim.report import decimals_for, print_comparison
from sim.runner import simulate
from sim.scenario import ScenarioError, load_scenario
from tests.helpers import run_cli

SHORT = ["horizon=12h"]
FIRST_FIT = Policy("first_fit", ("policies.placement.kind=first_fit",))
TOPOLOGY = Policy("topology", ("policies.placement.kind=topology_aware",))


@pytest.mark.parametrize("sample", [[1.0, 2.0], [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]])
def test_the_interval_is_students_t(sample):
    mean, low, high = mean_interval(sample)
    expected = stats.t.interval(0.95, len(sample) - 1, loc=np.mean(sample), scale=stats.sem(sample))
    assert mean == pytest.approx(np.mean(sample))
    assert (low, high) == pytest.approx(expected, rel=1e-12)


def test_one_sample_has_no_interval():
    assert mean_interval([2.5]) == (2.5, None, None)


def test_policies_gather_their_overrides_in_order():
    policies = parse_policies(["b", "a=x.y=1", "b=p.q=two", "a=z=[1, 2]"])
    assert policies == [Policy("b", ("p.q=two",)), Policy("a", ("x.y=1", "z=[1, 2]"))]
    with pytest.raises(ScenarioError, match="--policy =x=1"):
        parse_policies(["=x=1"])
    with pytest.raises(ScenarioError, match=r"dotted\.path=value"):
        parse_policies(["a=novalue"])


def test_metrics_are_every_number_of_a_summary_per_tenant_too():
    summary = {
        "scenario": "s",
        "seed": 1,
        "wall_seconds": 0.5,
        "jobs_completed": 3,
        "revenue_usd": None,
        "tenants": {"acme": {"contract": "spot", "preemptions": 2}},
    }
    assert metric_values(summary) == {"jobs_completed": 3.0, "tenants.acme.preemptions": 2.0}


def test_every_policy_sees_the_same_arrivals_for_a_seed(quickstart_path):
    """Common random numbers: a seed's jobs arrive alike whatever the placement policy."""
    arrivals = []
    for policy in (FIRST_FIT, TOPOLOGY):
        scenario = load_scenario(quickstart_path, [*SHORT, *policy.overrides], seed=7)
        jobs = simulate(scenario).jobs
        arrivals.append(jobs[["job_id", "tenant", "gpus", "submit_hours", "work_hours"]])
    pd.testing.assert_frame_equal(arrivals[0], arrivals[1])
    assert len(arrivals[0]) > 10


def test_differences_are_paired_by_seed_and_workers_change_nothing(quickstart_path):
    policies, seeds = prepare(quickstart_path, [FIRST_FIT, TOPOLOGY], 3, "topology", SHORT)
    assert [p.name for p in policies] == ["topology", "first_fit"]
    assert seeds == [42, 43, 44]  # from the file's seed
    alone = compare(quickstart_path, policies, seeds, SHORT, workers=1)
    pooled = compare(quickstart_path, policies, seeds, SHORT, workers=2)
    assert alone.results == pooled.results
    assert alone.table == pooled.table
    row = next(
        r for r in alone.table if r["policy"] == "first_fit" and r["metric"] == "sold_gpu_hours"
    )
    own = [alone.summaries[("first_fit", s)]["sold_gpu_hours"] for s in seeds]
    base = [alone.summaries[("topology", s)]["sold_gpu_hours"] for s in seeds]
    assert row["mean"] == pytest.approx(np.mean(own))
    differences = np.subtract(own, base)
    mean, low, high = mean_interval(differences)
    assert (row["diff_mean"], row["diff_ci_low"], row["diff_ci_high"]) == (mean, low, high)
    baseline_row = next(
        r for r in alone.table if r["policy"] == "topology" and r["metric"] == "sold_gpu_hours"
    )
    assert baseline_row["diff_mean"] is None


def test_the_command_writes_a_comparison_directory(tmp_path, quickstart_path):
    out = tmp_path / "cmp"
    result = run_cli(
        "compare", str(quickstart_path), "--policy", "shared",
        "--policy", "first_fit=policies.placement.kind=first_fit",
        "--seeds", "2", "-j", "1", "--set", "horizon=12h", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Δ first_fit" in result.output
    assert "2 seeds per policy (mean ± 95 % CI half-width" in result.output
    assert "e+0" not in result.output and "…" not in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".surplus.json",  # the marker: a comparison directory (sim.outputs)
        "comparison.json",
        "comparison.parquet",
        "latency.parquet",  # the quickstart fleet serves a model
        "results.parquet",
        "runs",
    ]
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "first_fit-s42.json",
        "first_fit-s43.json",
        "shared-s42.json",
        "shared-s43.json",
    ]
    results = pd.read_parquet(out / "results.parquet")
    assert list(results.columns) == ["policy", "seed", "metric", "value"]
    summary = json.loads((out / "runs" / "shared-s43.json").read_text())
    jobs = results.query("policy == 'shared' and seed == 43 and metric == 'jobs_submitted'")
    assert jobs["value"].item() == summary["jobs_submitted"]
    document = json.loads((out / "comparison.json").read_text())
    assert document["baseline"] == "shared"
    assert document["policies"] == {
        "shared": [],
        "first_fit": ["policies.placement.kind=first_fit"],
    }


def test_a_compare_block_in_the_scenario_is_used_without_policies(tmp_path, quickstart_path):
    text = quickstart_path.read_text() + (
        "\ncompare:\n  seeds: 2\n  baseline: topology\n  policies:\n"
        "    first_fit: {policies.placement.kind: first_fit}\n"
        "    topology: {policies.placement: {kind: topology_aware, pod_wait: 0h}}\n"
    )
    scenario = tmp_path / "with-block.yaml"
    scenario.write_text(text)
    policies, seeds = prepare(scenario, [], None, overrides=SHORT)
    assert [p.name for p in policies] == ["topology", "first_fit"]
    assert policies[0].overrides == ("policies.placement={kind: topology_aware, pod_wait: 0h}",)
    assert seeds == [42, 43]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "a", "--baseline", "b", "--seeds", "2"], "--baseline: no policy named 'b'"),
        (["--policy", "a=policies.nope.kind=x", "--seeds", "2"], "policy a:"),
        (["--policy", "a", "--seeds", "0"], "--seeds: need at least 1"),
        (["--policy", "a"], "--seeds: how many seeds?"),
        (["--seeds", "2"], "no policies to compare"),
        (["--policy", "a", "--seeds", "2", "--workers", "0"], "--workers: need 1 to 1,024"),
    ],
)
def test_bad_comparisons_exit_2_naming_the_problem(tmp_path, quickstart_path, args, message):
    out = tmp_path / "cmp"
    result = run_cli("compare", str(quickstart_path), *args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_one_seed_says_so_and_warns_that_intervals_need_two(tmp_path, quickstart_path):
    out = tmp_path / "cmp"
    result = run_cli(
        "compare", str(quickstart_path), "--policy", "a", "--policy",
        "b=policies.placement.kind=spread", "--seeds", "1", "-j", "1",
        "--set", "horizon=6h", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: 1 seed per policy: no confidence intervals" in result.output
    assert "1 seed per policy (one run each, no intervals" in result.output
    assert "1 seeds" not in result.output and "±" not in result.output


@pytest.mark.parametrize(
    ("magnitude", "decimals"),
    [(33_000.0, 0), (710.0, 0), (45.2, 1), (1.33, 2), (0.86, 3), (0.0014, 5), (0.0, 0)],
)
def test_decimals_show_three_significant_digits_of_the_largest_mean(magnitude, decimals):
    assert decimals_for(magnitude) == decimals


def test_every_cell_of_a_metric_has_one_style(capsys):
    result = SimpleNamespace(
        scenario="s",
        seeds=[1, 2, 3],
        baseline="a",
        policies=[SimpleNamespace(name=n) for n in ("a", "a_policy_with_a_rather_long_name")],
        table=[
            {"policy": "a", "metric": "sold_gpu_hours", "mean": 11_850.0, "ci_low": 11_590.0,
             "ci_high": 12_110.0, "diff_mean": None, "diff_ci_low": None, "diff_ci_high": None},
            {"policy": "a_policy_with_a_rather_long_name", "metric": "sold_gpu_hours",
             "mean": 10_900.4, "ci_low": 10_000.0, "ci_high": 11_800.8, "diff_mean": -949.6,
             "diff_ci_low": -1_200.0, "diff_ci_high": -699.2},
        ],
    )  # fmt: skip

    print_comparison(result, ["sold_gpu_hours"])
    printed = capsys.readouterr().out
    assert "11,850 ± 260" in printed  # not 1.185e+04 ± 2.6e+02
    assert "10,900 ± 900" in printed
    assert "-950 ± 250" in printed
    assert "Δ a_policy_with_a_rather_long_name" in printed  # piped: nothing cut
