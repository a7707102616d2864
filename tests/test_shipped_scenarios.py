"""Every file in scenarios/ validates and runs, with a short horizon, to a sound summary."""

from __future__ import annotations

import pytest

from sim.runner import simulate
from sim.scenario import load_scenario
from tests.conftest import SCENARIOS, capacity_parts


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenario_runs(path):
    result = simulate(load_scenario(path, overrides=["horizon=12h"]))
    s = result.summary
    assert capacity_parts(s) == pytest.approx(s["capacity_gpu_hours"], rel=1e-9)
    assert s["jobs_submitted"] > 0
    assert 0 < s["usable_compute_fraction"] <= 1


def test_quickstart_is_busy_and_sells_every_contract(quickstart_path):
    s = simulate(load_scenario(quickstart_path)).summary
    assert s["horizon_hours"] == 48 and s["gpus_total"] == 384
    for tenant in ("acme", "bolt", "drift"):
        assert s["tenants"][tenant]["jobs_completed"] > 0
    assert s["preemptions"] > 0, "internal demand reclaims spot in the quickstart"
    assert s["tenants"]["acme"]["preemptions"] == 0
    assert s["idle_gpu_hours"] < 0.25 * s["capacity_gpu_hours"]
