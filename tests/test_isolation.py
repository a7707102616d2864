"""Isolation: dedicated pods keep a tenant's traffic apart, at a price in utilisation."""

from __future__ import annotations

import numpy as np
import pytest

from sim.fabric.network import NetworkFabric
from sim.policies.isolation import DedicatedPods
from sim.runner import simulate
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.policies import (
    DedicatedPodsIsolation,
    RateLimitsIsolation,
    SharedIsolation,
    TrafficClassesIsolation,
)
from tests.conftest import SCENARIOS
from tests.helpers import GPN, zone_fabric, zone_inventory

ATLAS_OWN_POD = "policies.isolation={kind: dedicated_pods, pods: {atlas: 1}}"


def test_dedicated_pods_give_tenants_their_own_pods_and_the_rest_to_everyone():
    inventory, _ = zone_inventory(zone_fabric())
    isolation = DedicatedPods(DedicatedPodsIsolation(kind="dedicated_pods", pods={"a": 1, "b": 2}))
    isolation.bind(inventory)
    pod = inventory.pod
    assert sorted(set(pod[~isolation.excluded("a")].tolist())) == [0]
    assert sorted(set(pod[~isolation.excluded("b")].tolist())) == [1, 2]
    assert sorted(set(pod[~isolation.excluded("c")].tolist())) == [3]  # everyone else
    assert int(inventory.capacity[isolation.zone["b"]].sum()) == 2 * 8 * GPN
    too_many = DedicatedPods(DedicatedPodsIsolation(kind="dedicated_pods", pods={"a": 5}))
    with pytest.raises(ScenarioError, match="has 4 pod"):
        too_many.bind(inventory)


def test_each_isolation_kind_says_what_it_names_and_what_the_fabric_enforces():
    """The checks, the pods policy and the fabric ask the section; none reads its fields."""
    shared = SharedIsolation()
    pods = DedicatedPodsIsolation(kind="dedicated_pods", pods={"b": 2, "a": 1})
    limits = RateLimitsIsolation(kind="rate_limits", gbps={"swarm": 100.0})
    classes = TrafficClassesIsolation(kind="traffic_classes", high=["atlas"], low_min_share=0.1)
    assert [s.tenant_fields() for s in (shared, pods, limits, classes)] == [
        {},
        {"pods": ["b", "a"]},
        {"gbps": ["swarm"]},
        {"high": ["atlas"]},
    ]
    assert list(pods.pods_per_tenant().items()) == [("b", 2), ("a", 1)]  # the order listed
    assert limits.rate_limits_gbps() == {"swarm": 100.0}
    assert classes.high_priority_tenants() == frozenset({"atlas"})
    assert classes.low_priority_share() == 0.1
    for section in (shared, pods, limits):
        assert section.high_priority_tenants() == frozenset()
        assert section.low_priority_share() == 0.0
    for section in (shared, pods, classes):
        assert section.rate_limits_gbps() == {}


def test_with_dedicated_pods_no_two_tenants_share_a_link(monkeypatch, tmp_path):
    """Every epoch of a shared-spine scenario, the victim given a pod of its own."""
    checked = []
    original = NetworkFabric.solve

    def solve(self, placements):
        solution = original(self, placements)
        links: dict[str, set[int]] = {}
        for p in placements:
            if p.traffic is not None:
                links.setdefault(p.tenant, set()).update(self._job(p).links.tolist())
        tenants = sorted(links)
        for i, a in enumerate(tenants):
            for b in tenants[i + 1 :]:
                assert not links[a] & links[b], (a, b)
        checked.append(len(tenants))
        return solution

    monkeypatch.setattr(NetworkFabric, "solve", solve)
    scenario = load_scenario(SCENARIOS / "noisy-neighbor.yaml", ["horizon=1d", ATLAS_OWN_POD])
    simulate(scenario)
    assert max(checked) == 2  # both tenants ran side by side, each in its pod


def test_isolation_trades_idle_gpus_for_the_victims_tail():
    """The tenancy-policies scenario, one seed: what a pod of its own does for atlas."""
    path = SCENARIOS / "tenancy-policies.yaml"
    shared = simulate(load_scenario(path, seed=7)).summary
    isolated = simulate(load_scenario(path, [ATLAS_OWN_POD], seed=7)).summary
    atlas = "iteration_slowdown_p99"
    assert isolated["tenants"]["atlas"][atlas] < shared["tenants"]["atlas"][atlas] - 0.2
    assert isolated["idle_gpu_hours"] > shared["idle_gpu_hours"]
    # Spot jobs are reclaimed only where the waiting job may run, and backfilling
    # in its zone respects its start: no preemption churn (thousands before the fix).
    bolt = isolated["tenants"]["bolt"]
    assert bolt["preemptions"] <= bolt["jobs_submitted"] // 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("policies.isolation={kind: dedicated_pods, pods: {atlas: 3}}", "has 2 pod(s)"),
        ("policies.isolation={kind: dedicated_pods, pods: {nobody: 1}}", "no tenant named"),
    ],
)
def test_impossible_isolation_exits_2(tmp_path, override, message):
    from typer.testing import CliRunner

    from sim.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", str(SCENARIOS / "noisy-neighbor.yaml"), "--set", override, "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def limited(gbps: float) -> str:
    return f"policies.isolation={{kind: rate_limits, gbps: {{swarm: {gbps}}}}}"


def test_a_rate_limit_at_the_nic_rate_changes_nothing():
    path = SCENARIOS / "noisy-neighbor.yaml"
    free = simulate(load_scenario(path, ["horizon=12h"])).summary
    at_line_rate = simulate(load_scenario(path, ["horizon=12h", limited(400)])).summary
    for summary in (free, at_line_rate):
        summary.pop("wall_seconds")
    assert at_line_rate == free


def test_rate_limiting_the_noisy_tenant_spares_the_victim_and_itself():
    path = SCENARIOS / "noisy-neighbor.yaml"
    free = simulate(load_scenario(path, ["horizon=1d"])).summary
    shaped = simulate(load_scenario(path, ["horizon=1d", limited(100)])).summary
    assert shaped["pfc_pause_fraction"] < free["pfc_pause_fraction"] / 5  # 0.015 -> 0.0014
    victim = "iteration_slowdown_p99"
    assert (
        shaped["tenants"]["atlas"][victim] < free["tenants"]["atlas"][victim] - 0.08
    )  # 1.13 -> 1.04
    # The all-to-all tenant's collectives keep their own pace, so its collisions pause
    # nothing of its own: held to a quarter of its NIC, it is simply slower (1.43 -> 3.17).
    noisy = "iteration_slowdown_p50"
    assert shaped["tenants"]["swarm"][noisy] > free["tenants"]["swarm"][noisy] * 1.5


def test_a_shaped_gpu_sends_no_more_than_its_limit():
    from sim.fabric.model import RunningPlacement
    from sim.workloads.training import ModelShape, TrainingSpec

    fabric = zone_fabric()
    fabric.rate_limits_gbps = {"t": 50.0}
    spec = TrainingSpec(
        model=ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192), tp=8
    )
    nodes = np.array([0, 2, 4, 6])  # four racks of pod 0
    job = RunningPlacement(1, "t", "on_demand", nodes, np.full(4, GPN), spec)
    fabric.solve([job])
    traffic = fabric._job(job)
    capacity = fabric._shaped([traffic])
    epoch = fabric.transport.allocate(
        traffic.incidence, crossings=traffic.crossings, capacity_gbps=capacity
    )
    sent = np.bincount(
        traffic.plan.src[traffic.row_flow],
        weights=epoch.rates_gbps * traffic.row_scale,
        minlength=64,
    )
    assert sent.max() <= 50.0 * (1 + 1e-9)
    assert sent.max() > 40.0  # and the shaper is work-conserving: it is the bottleneck


@pytest.mark.parametrize(("pods", "inside"), [("{atlas: 1}", True), ("{swarm: 1}", False)])
def test_reserved_blocks_keep_to_their_zone(pods, inside):
    """A block is carved from its tenant's own pods, or from the pods nobody owns."""
    from sim.runner import Simulation

    scenario = load_scenario(
        SCENARIOS / "noisy-neighbor.yaml",
        [
            "horizon=2h",
            "tenants.0.contract={kind: reserved, gpus: 64}",
            f"policies.isolation={{kind: dedicated_pods, pods: {pods}}}",
        ],
    )
    simulation = Simulation(scenario)
    simulation.run()
    (block,) = simulation.market.reservations
    zone = simulation.market.isolation.zone["atlas" if inside else "swarm"]
    assert len(block.nodes) == 8
    assert bool(zone[block.nodes].all()) is inside
    assert bool(zone[block.nodes].any()) is inside
