"""scenarios/noisy-neighbor.yaml: PFC spreads a neighbour's incasts onto a victim's jobs."""

from __future__ import annotations

import pytest

from sim.runner import simulate
from sim.scenario import load_scenario
from tests.conftest import SCENARIOS

NOISY = SCENARIOS / "noisy-neighbor.yaml"


def victim_p99(*overrides: str) -> float:
    summary = simulate(load_scenario(NOISY, overrides=list(overrides))).summary
    return summary["tenants"]["atlas"]["iteration_slowdown_p99"]


@pytest.fixture(scope="module")
def shared_pfc() -> float:
    return victim_p99()


def test_pfc_spreads_the_neighbours_pauses_onto_the_victim(shared_pfc):
    lossy = victim_p99("provider.sites.0.clusters.0.fabric.transport.pfc=false")
    # Same jobs, same placements: only PFC's pause spreading differs.
    assert shared_pfc > 1.15
    assert shared_pfc > lossy + 0.07  # 1.29 against 1.15


def test_a_victim_in_its_own_pod_is_spared(shared_pfc):
    isolated = victim_p99("tenants.atlas.contract={kind: reserved, gpus: 128}")
    assert isolated < 1.12
    assert shared_pfc > isolated + 0.05  # 1.29 against 1.11


def test_with_per_priority_pfc_the_victim_is_spared(shared_pfc):
    classes = "policies.isolation={kind: traffic_classes, high: [atlas], low_min_share: 0.1}"
    assert victim_p99(classes) < shared_pfc - 0.07  # 1.29 -> 1.09


def test_a_high_priority_class_sees_a_low_priority_incast_not_at_all():
    """Fixed placements on shared spines: strict priority with per-priority PFC."""
    from sim.fabric.model import RunningPlacement
    from sim.fabric.network import NetworkFabric
    from tests.helpers import GPN

    scenario = load_scenario(NOISY)
    config = scenario.provider.clusters()[0].fabric  # RoCE, PFC, no congestion control

    def zone_fabric() -> NetworkFabric:
        return NetworkFabric(config, gpus_per_node=GPN, accelerator="H100")

    atlas_spec, swarm_spec = (t.workload.training.spec() for t in scenario.tenants)
    nodes = [list(range(0, 16, 4)), list(range(1, 16, 2))]  # interleaved over the racks
    atlas = RunningPlacement(1, "atlas", "on_demand", nodes[0], [GPN] * 4, atlas_spec)
    swarm = RunningPlacement(2, "swarm", "on_demand", nodes[1], [GPN] * 8, swarm_spec)
    shared = zone_fabric().solve([atlas, swarm]).jobs
    alone = zone_fabric().solve([atlas]).jobs[1]
    classes = zone_fabric()
    classes.high_priority = frozenset({"atlas"})  # strict priority: low_min_share 0
    prioritised = classes.solve([atlas, swarm]).jobs
    assert shared[1].slowdown > alone.slowdown  # sharing hurts atlas
    assert prioritised[1] == alone  # its own class: exactly as if swarm were not there
    assert prioritised[2].slowdown >= shared[2].slowdown  # swarm takes what is left
