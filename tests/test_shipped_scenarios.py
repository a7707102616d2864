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


def test_the_131k_scenario_is_the_24k_one_scaled_to_43_pods():
    import yaml

    small, large = (
        yaml.safe_load((SCENARIOS / f"meta-{n}-roce.yaml").read_text()) for n in ("24k", "131k")
    )
    f = 43 / 8
    site_s, site_l = small["provider"]["sites"][0], large["provider"]["sites"][0]
    cluster_s, cluster_l = site_s["clusters"][0], site_l["clusters"][0]
    assert cluster_l["fabric"]["topology"] == {"kind": "meta_ai_zone", "pods": 43}
    assert cluster_l["nodes"] * cluster_l["gpus_per_node"] == 132_096 == 43 * 3_072
    assert cluster_l["fabric"]["transport"] == cluster_s["fabric"]["transport"]
    assert site_l["power"]["cap_mw"] == pytest.approx(site_s["power"]["cap_mw"] * f)
    inf_s, inf_l = small["internal"]["inference"], large["internal"]["inference"]
    assert inf_l["gpus"] == inf_s["gpus"] * f
    rate = inf_l["serving"]["requests"]["rate_per_second"]
    assert rate == pytest.approx(inf_s["serving"]["requests"]["rate_per_second"] * f)
    workloads = [(small["internal"]["training"], large["internal"]["training"])]
    for tenant_s, tenant_l in zip(small["tenants"], large["tenants"], strict=True):
        assert tenant_l["name"] == tenant_s["name"]
        if tenant_s["contract"]["kind"] == "reserved":
            assert tenant_l["contract"]["gpus"] == tenant_s["contract"]["gpus"] * f
        work_s, work_l = tenant_s["workload"], tenant_l["workload"]
        if work_s.get("kind") == "inference":
            assert work_l["replicas"] == work_s["replicas"] * f
            requests = work_l["serving"]["requests"]["rate_per_second"]
            assert requests == pytest.approx(work_s["serving"]["requests"]["rate_per_second"] * f)
        else:
            workloads.append((work_s, work_l))
    for work_s, work_l in workloads:
        rate = work_l["arrivals"]["rate_per_hour"]
        assert rate == pytest.approx(work_s["arrivals"]["rate_per_hour"] * f)
        assert work_l["gpus"] == work_s["gpus"]  # job sizes keep their distributions
    assert large["horizon"] == "7d"
