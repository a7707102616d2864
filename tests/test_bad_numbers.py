"""Numbers that once passed validation and then hung or crashed a run: each is refused now.

Every case here is one a fuzzing session found (issue 19): the scenario must be
refused by ``surplus validate`` (and so by ``run``) with exit status 2 and a
one-line message naming the field, its bound or the rule broken.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.scenario import ScenarioError, scenario_from_text
from sim.scenario.yaml_input import parse_yaml

SCENARIOS = Path(__file__).parent.parent / "scenarios"
QUICKSTART = SCENARIOS / "quickstart.yaml"
META = SCENARIOS / "meta-24k-ib.yaml"


def refused(path: Path, *overrides: str) -> str:
    """Validate with overrides; assert exit 2 and one-line messages; return the output."""
    args = ["validate", str(path)]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), result.output
    assert all(len(line) < 300 for line in lines), result.output
    return result.output


@pytest.mark.parametrize("rate", [".inf", "1e30", "1e7", "1.0e+30", ".nan", "-1", "0"])
def test_arrival_rates_that_hung_are_refused(rate):
    out = refused(QUICKSTART, f"tenants.bolt.workload.arrivals.rate_per_hour={rate}")
    assert "tenants[1].workload.arrivals.rate_per_hour" in out


def test_a_rate_within_its_bound_that_would_run_for_hours_is_refused_by_its_size():
    out = refused(QUICKSTART, "horizon=30d", "tenants.bolt.workload.arrivals.rate_per_hour=5000")
    assert "marketplace events" in out and "at most 2,000,000" in out
    assert "tenants[1].workload.arrivals.rate_per_hour" in out


@pytest.mark.parametrize("horizon", ["1.0e+300", "1e300", "876601", "1e6h", "5000w"])
def test_horizons_beyond_a_century_are_refused(horizon):
    assert "horizon" in refused(QUICKSTART, f"horizon={horizon}")


def test_a_long_horizon_within_the_century_is_refused_by_its_size():
    out = refused(QUICKSTART, "horizon=4000w")
    assert "marketplace events" in out


@pytest.mark.parametrize("price", [".inf", "1e400", "1e300", "20000"])
def test_prices_are_finite_and_bounded(price):
    out = refused(QUICKSTART, f"tenants.bolt.contract.price_per_gpu_hour={price}")
    assert "price_per_gpu_hour" in out
    assert "10000" in out or "finite" in out


@pytest.mark.parametrize(
    "override",
    [
        "tenants.bolt.workload.training.model.params_billion=.inf",
        "tenants.bolt.workload.training.model.active_params_billion=.inf",
        "internal.inference.serving.requests.rate_per_second=.inf",
        "internal.inference.serving.model.params_billion=1e300",
    ],
)
def test_model_sizes_and_request_rates_are_finite(override):
    assert override.split("=")[0].split(".")[-1] in refused(META, override)


def test_moe_top_k_above_experts_is_refused_at_validation():
    out = refused(META, "tenants.bolt.workload.training.model.top_k=9")
    assert "top_k (9) exceeds experts (8)" in out


def test_active_parameters_above_the_total_are_refused_at_validation():
    out = refused(META, "tenants.bolt.workload.training.model.active_params_billion=1000")
    assert "active_params_billion (1000.0) exceeds params_billion" in out
    out = refused(META, "internal.inference.serving.model.active_params_billion=100")
    assert "active_params_billion (100) exceeds params_billion (70)" in out


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("seed=true", "seed"),
        ("provider.sites.0.power.price.usd_per_mwh=false", "usd_per_mwh"),
        ("provider.sites.0.clusters.0.nodes=true", "nodes"),
        ("tenants.acme.contract.gpus=64.5", "gpus"),
        ("tenants.acme.contract.gpus='64'", "gpus"),
    ],
)
def test_booleans_strings_and_fractions_are_not_numbers(override, field):
    assert field in refused(QUICKSTART, override)


def test_unicode_digits_are_not_durations():
    assert "invalid duration" in refused(QUICKSTART, "horizon=٣h")


def test_negative_override_indices_are_refused():
    out = refused(QUICKSTART, "tenants.-1.contract.gpus=8")
    assert "index -1 is negative" in out


@pytest.mark.parametrize("seed", ["1e23", str(2**64), "-1"])
def test_seeds_are_whole_and_bounded(seed):
    assert "seed" in refused(QUICKSTART, f"seed={seed}")


def test_the_seed_option_rejects_a_float():
    result = CliRunner().invoke(app, ["run", str(QUICKSTART), "--seed", "1e23"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["run", str(QUICKSTART), "--seed", str(2**64), "-q"])
    assert result.exit_code == 2 and "seed" in result.output


def test_set_problems_are_pinned_on_the_override_not_a_file_line():
    out = refused(QUICKSTART, "policies.placement.kind=banana")
    assert "quickstart.yaml (--set): policies.placement: unknown kind 'banana'" in out
    out = refused(QUICKSTART, "tenants.bolt.contract.kind=banana")
    assert "(--set): tenants[1].contract: unknown kind 'banana'" in out


def test_exponent_notation_reads_as_a_number():
    data, _ = parse_yaml("a: 1e300\nb: 5e-3\nc: .5e3\nd: 1e\n", "f.yaml")
    assert data == {"a": 1e300, "b": 0.005, "c": 500.0, "d": "1e"}
    out = refused(QUICKSTART, "tenants.bolt.contract.price_per_gpu_hour=1e300")
    assert "less than or equal to 10000" in out


def test_nan_says_it_is_not_finite():
    out = refused(QUICKSTART, "tenants.bolt.contract.price_per_gpu_hour=.nan")
    assert "finite number" in out and "greater than" not in out


def test_steps_shorter_than_a_second_are_refused():
    out = refused(QUICKSTART, "internal.inference.step=1ms")
    assert "a step must be at least 1s, got 1ms" in out


def test_a_provider_of_more_than_a_million_gpus_is_refused():
    out = refused(
        QUICKSTART, "provider.sites.0.power=null", "provider.sites.0.clusters.0.nodes=200000"
    )
    assert "1,600,000 GPUs" in out and "1,048,576" in out


def test_a_sweep_of_too_many_points_is_refused():
    grid = "{" + ", ".join(f"a{i}.x: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for i in range(6)) + "}"
    out = refused(QUICKSTART, f"sweep={{grid: {grid}}}")
    assert "1,000,000 points" in out


def test_a_recursive_alias_is_refused():
    with pytest.raises(ScenarioError, match="nested more than 64 levels"):
        scenario_from_text("name: x\nhorizon: 1h\nprovider: &p {sites: [*p]}\n")
    assert "nested more than" in refused(QUICKSTART, "seed=&x [*x]")


def test_an_alias_bomb_is_refused():
    text = "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    for i in range(1, 7):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    with pytest.raises(ScenarioError, match="more than 1,000,000 values"):
        parse_yaml(text, "bomb.yaml")


def test_time_of_use_periods_last_at_least_a_second():
    out = refused(
        SCENARIOS / "power-cap.yaml",
        "provider.sites.0.power.price="
        "{kind: time_of_use, periods: [{start_hour: 1.0e-15, usd_per_mwh: 50}]}",
    )
    assert "at least a second" in out


def test_an_infinite_price_fails_before_the_run_and_keeps_the_last_one(tmp_path):
    good = tmp_path / "good"
    runner = CliRunner()
    first = runner.invoke(
        app, ["run", str(QUICKSTART), "--set", "horizon=1h", "-q", "--out", str(good)]
    )
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    second = runner.invoke(
        app,
        [
            "run",
            str(QUICKSTART),
            "--seed",
            "9",
            "--set",
            "horizon=1h",
            "--set",
            "tenants.bolt.contract.price_per_gpu_hour=.inf",
            "--out",
            str(good),
        ],
    )
    assert second.exit_code == 2 and "finite number" in second.output
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before
    assert json.loads((good / "summary.json").read_text())["seed"] == 42


def test_compare_seeds_and_workers_are_bounded():
    policies = SCENARIOS / "tenancy-policies.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(policies), "--seeds", "1000000000", "-q"])
    assert result.exit_code == 2 and "at most 10,000 seeds" in result.output
    result = runner.invoke(
        app, ["compare", str(policies), "--seeds", "3", "--seed", str(2**63 - 2), "-q"]
    )
    assert result.exit_code == 2 and "go past the largest seed" in result.output
    result = runner.invoke(app, ["compare", str(policies), "--workers", "100000", "-q"])
    assert result.exit_code == 2 and "--workers: need 1 to 1,024" in result.output


def test_messages_listing_values_stay_short():
    sizes = ", ".join(str(1000 * (i + 1)) for i in range(200))
    out = refused(QUICKSTART, f"tenants.bolt.workload.gpus={{kind: choice, values: [{sizes}]}}")
    assert "jobs of 1000, 2000, 3000, 4000 and 196 more GPUs can never run" in out
