"""Scenario parsing: durations, overrides, line numbers, defaults."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.scenario import ScenarioError, dump_scenario, scenario_from_text
from sim.scenario.durations import MAX_DURATION_HOURS, format_duration, parse_duration_hours

BASE = """\
name: base
horizon: 2d
provider:
  sites:
    - name: s
      clusters:
        - {name: a, nodes: 4}
        - {name: b, nodes: 2, gpus_per_node: 4}
tenants:
  - name: acme
    contract: {kind: on_demand, max_wait: 1h}
    workload: {arrivals: {kind: poisson, rate_per_hour: 1}, gpus: 8, duration: 2h}
  - name: zed
    contract: {kind: spot}
    workload: {arrivals: {kind: poisson, rate_per_hour: 1}, gpus: 4, duration: 2h}
"""


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("90s", 0.025),
        ("15m", 0.25),
        ("6h", 6.0),
        ("30d", 720.0),
        ("1h30m", 1.5),
        ("2w", 336.0),
        ("250ms", 250 / 3.6e6),
        (3, 3.0),
        (0.5, 0.5),
        ("0", None),
    ],
)
def test_durations(text, hours):
    if hours is None:
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration_hours(text)
    else:
        assert parse_duration_hours(text) == pytest.approx(hours)


@pytest.mark.parametrize("bad", ["soon", "-1h", "5 parsecs", "", "h", True, None, [1]])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration_hours(bad)


@given(st.floats(min_value=0, max_value=MAX_DURATION_HOURS, allow_nan=False))
def test_format_duration_round_trips(hours):
    assert parse_duration_hours(format_duration(hours)) == pytest.approx(hours, rel=1e-11, abs=0)


def test_defaults_and_shorthands():
    spec = scenario_from_text(BASE)
    assert spec.horizon == 48.0
    assert spec.seed == 0
    acme = spec.tenants[0]
    assert acme.workload.gpus.kind == "fixed" and acme.workload.gpus.value == 8
    assert acme.workload.duration.kind == "fixed" and acme.workload.duration.value == 2.0
    assert spec.tenants[1].contract.notice == pytest.approx(2 / 60)
    assert spec.policies.placement.kind == "first_fit"


def test_overrides_by_name_index_and_new_key():
    spec = scenario_from_text(
        BASE,
        overrides=[
            "tenants.zed.contract.notice=5m",
            "tenants.0.workload.gpus={kind: choice, values: [1, 2]}",
            "provider.sites.s.clusters.b.nodes=3",
            "internal.inference={gpus: 8}",
            "seed=9",
        ],
    )
    assert spec.tenants[1].contract.notice == pytest.approx(5 / 60)
    assert spec.tenants[0].workload.gpus.values == [1, 2]
    assert spec.provider.sites[0].clusters[1].nodes == 3
    assert spec.internal.inference.gpus == 8
    assert spec.seed == 9
    assert scenario_from_text(BASE, seed=4, overrides=["seed=9"]).seed == 4


def test_errors_name_the_override_and_collect_all_problems():
    with pytest.raises(ScenarioError) as info:
        scenario_from_text(
            BASE, "f.yaml", overrides=["tenants.zed.contract.notice=later", "horizon=-1"]
        )
    problems = info.value.problems
    assert any(
        p.startswith("f.yaml (--set): tenants[1].contract.notice: invalid duration")
        for p in problems
    )
    assert any(p.startswith("f.yaml (--set): horizon:") for p in problems)


def test_cross_field_problems_point_at_their_line():
    text = BASE.replace("gpus: 4, duration", "gpus: 64, duration")
    with pytest.raises(ScenarioError) as info:
        scenario_from_text(
            text + "  - name: acme\n    contract: {kind: reserved, gpus: 12}\n"
            "    workload: {arrivals: {kind: poisson, rate_per_hour: 1}, gpus: 8, "
            "duration: 2h}\n",
            "f.yaml",
        )
    text_out = "\n".join(info.value.problems)
    assert "f.yaml:15: tenants[1].workload.gpus: jobs of 64 GPUs can never run" in text_out
    assert "tenant name 'acme' is used twice" in text_out
    assert "f.yaml:17: tenants[2].contract.gpus: 12 GPUs must be whole nodes" in text_out


def test_unknown_cluster_and_reserved_name():
    with pytest.raises(ScenarioError, match=r"tenants\[0\]\.cluster: no cluster named 'q'"):
        scenario_from_text(BASE, overrides=["tenants.acme.cluster=q"])
    with pytest.raises(ScenarioError, match="kept for the provider's own demand"):
        scenario_from_text(BASE, overrides=["tenants.acme.name=internal"])


def test_duplicate_keys_are_errors():
    with pytest.raises(ScenarioError, match=r"f.yaml:2: horizon: duplicate key"):
        scenario_from_text("horizon: 1d\nhorizon: 2d\n", "f.yaml")


def test_resolved_yaml_round_trips():
    spec = scenario_from_text(BASE, overrides=["tenants.zed.contract.notice=90s"])
    assert scenario_from_text(dump_scenario(spec)) == spec
