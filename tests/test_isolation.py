"""Isolation: dedicated pods keep a tenant's traffic apart, at a price in utilisation."""

from __future__ import annotations

import pytest

from sim.fabric.network import NetworkFabric
from sim.policies.isolation import DedicatedPods
from sim.runner import simulate
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.models import DedicatedPodsIsolation
from tests.conftest import SCENARIOS
from tests.test_placement import GPN, zone_fabric, zone_inventory

ATLAS_OWN_POD = "policies.isolation={kind: dedicated_pods, pods: {atlas: 1}}"


def test_dedicated_pods_give_tenants_their_own_pods_and_the_rest_to_everyone():
    inventory, _ = zone_inventory(zone_fabric())
    isolation = DedicatedPods(DedicatedPodsIsolation(kind="dedicated_pods", pods={"a": 1, "b": 2}))
    isolation.bind(inventory)
    pod = inventory.pod
    assert sorted(set(pod[~isolation.excluded("a")].tolist())) == [0]
    assert sorted(set(pod[~isolation.excluded("b")].tolist())) == [1, 2]
    assert sorted(set(pod[~isolation.excluded("c")].tolist())) == [3]  # everyone else
    assert isolation.zone_gpus("b", inventory) == 2 * 8 * GPN
    too_many = DedicatedPods(DedicatedPodsIsolation(kind="dedicated_pods", pods={"a": 5}))
    with pytest.raises(ScenarioError, match="has 4 pod"):
        too_many.bind(inventory)


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
