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
    assert shared_pfc > 1.2
    assert shared_pfc > lossy + 0.2


def test_a_victim_in_its_own_pod_is_spared(shared_pfc):
    isolated = victim_p99("tenants.atlas.contract={kind: reserved, gpus: 128}")
    assert isolated < 1.15
    assert shared_pfc > isolated + 0.2
