"""Placement policies: first fit, and topology-aware placement in the fewest pods and racks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fabric.model import RunningPlacement
from sim.fabric.network import NetworkFabric
from sim.market.inventory import SHARED, ClusterInfo, Inventory
from sim.policies.placement import (
    PLACEMENTS,
    FirstFit,
    Pack,
    RailAligned,
    Spread,
    TopologyAware,
)
from sim.scenario.fabric import NetworkFabricConfig
from sim.scenario.policies import TopologyAwarePlacement
from sim.workloads.training import ModelShape, TrainingSpec
from tests.helpers import GPN, NODES, zone_fabric, zone_inventory


def test_node_domains_follow_the_topology():
    rack, pod = zone_fabric().node_domains(NODES)
    assert rack.tolist() == [n // 2 for n in range(NODES)]  # two nodes under each RTSW
    assert pod.tolist() == [n // 8 for n in range(NODES)]  # four racks per pod


def test_a_job_that_fits_a_pod_goes_to_the_pod_it_fills_best():
    fabric = zone_fabric()
    inventory, info = zone_inventory(fabric)
    # Pod 0 has 3 free nodes, pod 1 has 5, pods 2 and 3 have all 8.
    inventory.allocate(np.arange(0, 5), np.full(5, GPN))
    inventory.allocate(np.arange(8, 11), np.full(3, GPN))
    policy = TopologyAware()
    proposal = policy.place(inventory, [info], SHARED, 4 * GPN)
    assert set(inventory.pod[proposal.nodes].tolist()) == {1}
    # Whole free racks first: nodes 11 shares rack 5 with node 10 (held), so it comes last.
    assert proposal.nodes.tolist() == [12, 13, 14, 15]
    # First fit would have split the job over pods 0 and 1.
    first = FirstFit().place(inventory, [info], SHARED, 4 * GPN)
    assert set(inventory.pod[first.nodes].tolist()) == {0, 1}


def test_a_job_larger_than_any_pod_spans_the_fewest_pods():
    fabric = zone_fabric()
    inventory, info = zone_inventory(fabric)
    inventory.allocate(np.array([0, 1, 8]), np.full(3, GPN))  # pods 0, 1 partly held
    proposal = TopologyAware().place(inventory, [info], SHARED, 14 * GPN)
    pods = inventory.pod[proposal.nodes]
    assert sorted(set(pods.tolist())) == [2, 3]  # the two whole pods, not three partial ones
    assert np.all(np.diff(proposal.nodes) > 0)  # rank order is (pod, rack, node) order


def test_small_jobs_take_the_fullest_node_they_fit():
    fabric = zone_fabric()
    inventory, info = zone_inventory(fabric)
    inventory.allocate(np.array([3, 5]), np.array([6, 4]))  # node 3: 2 free, node 5: 4 free
    assert TopologyAware().place(inventory, [info], SHARED, 2).nodes.tolist() == [3]
    assert TopologyAware().place(inventory, [info], SHARED, 3).nodes.tolist() == [5]


def test_jobs_placed_topology_aware_in_their_own_pods_share_no_link():
    fabric = zone_fabric()
    inventory, info = zone_inventory(fabric)
    policy = TopologyAware()
    spec = TrainingSpec(
        model=ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192), tp=8
    )
    placements = []
    for job_id, gpus in enumerate([48, 64, 32, 40]):
        proposal = policy.place(inventory, [info], SHARED, gpus)
        inventory.allocate(proposal.nodes, proposal.counts)
        placements.append(
            RunningPlacement(job_id, "t", "on_demand", proposal.nodes, proposal.counts, spec)
        )
    fabric.solve(placements)
    links = [set(fabric._jobs[p.job_id].links.tolist()) for p in placements]
    for i in range(len(links)):
        for j in range(i + 1, len(links)):
            assert not links[i] & links[j], (i, j)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 12 * GPN)), min_size=1, max_size=25))
def test_topology_aware_never_holds_a_gpu_twice_and_uses_the_fewest_pods(ops):
    fabric = zone_fabric()
    inventory, info = zone_inventory(fabric)
    policy = TopologyAware()
    running: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for release, gpus in ops:
        if release and running:
            inventory.release(*running.pop(0))
            continue
        whole_free = inventory.free == GPN
        per_pod = np.bincount(inventory.pod[whole_free], minlength=4)
        proposal = policy.place(inventory, [info], SHARED, gpus)
        if proposal is None:
            continue
        assert int(proposal.counts.sum()) == gpus
        assert np.unique(proposal.nodes).size == proposal.nodes.size
        assert np.all(inventory.free[proposal.nodes] >= proposal.counts)
        whole = gpus // GPN
        if whole:
            pods = np.unique(inventory.pod[proposal.nodes[proposal.counts == GPN]])
            fewest = int(np.searchsorted(np.cumsum(np.sort(per_pod)[::-1]), whole) + 1)
            assert pods.size == fewest
        slots = inventory.allocate(proposal.nodes, proposal.counts)  # raises if held twice
        running.append((proposal.nodes, proposal.counts, slots))
        held = inventory.held.sum(axis=1)
        assert np.array_equal(held, inventory.capacity - inventory.free)  # slots agree
    assert np.all(inventory.free >= 0)


def test_with_a_pod_wait_a_job_holds_out_for_a_pod_then_spans_pods():
    fabric = zone_fabric()
    inventory, info = zone_inventory(fabric)
    # Every pod has 3 free nodes: a 4-node job fits a pod by size but finds no pod with room.
    for pod in range(4):
        inventory.allocate(np.arange(pod * 8, pod * 8 + 5), np.full(5, GPN))
    config = TopologyAwarePlacement(kind="topology_aware", pod_wait=1.0)
    policy = TopologyAware(config)
    assert policy.wait_hours == 1.0
    assert policy.place(inventory, [info], SHARED, 4 * GPN, waited_hours=0.5) is None
    late = policy.place(inventory, [info], SHARED, 4 * GPN, waited_hours=1.0)
    assert np.unique(inventory.pod[late.nodes]).size == 2
    # A job larger than any pod never waits for one; without a wait nothing waits.
    assert policy.place(inventory, [info], SHARED, 10 * GPN, waited_hours=0.0) is not None
    assert TopologyAware().place(inventory, [info], SHARED, 4 * GPN, waited_hours=0.0)


def test_a_job_waiting_for_a_pod_starts_in_one_when_it_frees(tmp_path):
    from sim.runner import simulate
    from sim.scenario import scenario_from_text

    text = """
name: podwait
horizon: 10h
provider:
  sites:
    - name: s
      clusters:
        - name: zone
          nodes: 32
          fabric:
            kind: network
            topology: {kind: meta_ai_zone, racks_per_pod: 4, pods: 4, ctsw_per_pod: 4,
                       atsw_per_plane: 2}
            transport: {kind: roce, pfc: true, cc: none}
tenants:
  - name: filler        # four 5-node jobs, one per pod, ending at 2 h
    contract: {kind: on_demand}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 1000}
      gpus: 40
      duration: 2h
      max_jobs: 4
  - name: late          # a 4-node job, shortly after
    contract: {kind: on_demand}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 100}
      gpus: 32
      duration: 1h
      max_jobs: 1
policies:
  placement: {kind: topology_aware, pod_wait: WAIT}
"""
    waits = {}
    for wait in ("0h", "3h"):
        result = simulate(scenario_from_text(text.replace("WAIT", wait), "p.yaml"))
        late = result.jobs[result.jobs["tenant"] == "late"].iloc[0]
        waits[wait] = float(late["wait_hours"])
    assert waits["0h"] == 0.0  # spans pods at once
    assert 1.9 < waits["3h"] <= 2.0  # waits for a filler to end, then takes its pod


def test_pack_fills_partly_used_racks_before_breaking_whole_ones():
    inventory, info = zone_inventory(zone_fabric())
    # Racks 0 (nodes 0-1) and 1 (nodes 2-3) of pod 0 each have one node held.
    inventory.allocate(np.array([0, 2]), np.full(2, GPN))
    proposal = Pack().place(inventory, [info], SHARED, 2 * GPN)
    assert proposal.nodes.tolist() == [1, 3]  # the two half-full racks of the fullest pod
    # Topology-aware placement keeps the job in one rack instead: a whole free one.
    assert TopologyAware().place(inventory, [info], SHARED, 2 * GPN).nodes.tolist() == [4, 5]
    # Small jobs: the fullest node they fit (best fit).
    inventory.allocate(np.array([3, 5]), np.array([6, 4]))
    assert Pack().place(inventory, [info], SHARED, 2).nodes.tolist() == [3]


def test_spread_takes_one_node_per_rack_across_the_pods():
    inventory, info = zone_inventory(zone_fabric())
    proposal = Spread().place(inventory, [info], SHARED, 8 * GPN)
    racks = inventory.rack[proposal.nodes]
    pods = inventory.pod[proposal.nodes]
    assert np.unique(racks).size == 8  # eight racks, one node each
    assert np.bincount(pods, minlength=4).tolist() == [2, 2, 2, 2]  # evenly over the pods
    # Small jobs: the emptiest node (worst fit).
    inventory.allocate(np.array([0]), np.array([6]))
    assert Spread().place(inventory, [info], SHARED, 2).nodes.tolist() == [1]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(PLACEMENTS)),
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 12 * GPN), st.sampled_from([1, 2, 4, 8])),
        min_size=1,
        max_size=25,
    ),
)
def test_no_placement_policy_holds_a_gpu_twice(kind, ops):
    inventory, info = zone_inventory(zone_fabric())
    policy = PLACEMENTS[kind]()
    running: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for release, gpus, tp in ops:
        if release and running:
            inventory.release(*running.pop(0))
            continue
        proposal = policy.place(inventory, [info], SHARED, gpus, tp=tp)
        if proposal is None:
            # Only when there is no room of the shape the job needs (first fit finds none).
            assert FirstFit().place(inventory, [info], SHARED, gpus) is None
            continue
        assert int(proposal.counts.sum()) == gpus
        assert np.unique(proposal.nodes).size == proposal.nodes.size
        assert np.all(inventory.free[proposal.nodes] >= proposal.counts)
        if proposal.slots is not None:
            assert not inventory.held[
                np.repeat(proposal.nodes, proposal.counts), proposal.slots
            ].any()
        # Raises if a GPU would be held twice.
        slots = inventory.allocate(proposal.nodes, proposal.counts, proposal.slots)
        running.append((proposal.nodes, proposal.counts, slots))
        held = inventory.held.sum(axis=1)
        assert np.array_equal(held, inventory.capacity - inventory.free)  # slots agree
    assert np.all(inventory.free >= 0)


def test_jobs_sharing_a_node_hold_different_gpus_and_nics():
    """Two 12-GPU jobs: a whole node each, and four GPUs each of one shared node."""
    fabric = zone_fabric()
    inventory, info = zone_inventory(fabric)
    placed = []
    for job_id in (1, 2):
        proposal = FirstFit().place(inventory, [info], SHARED, 12)
        slots = inventory.allocate(proposal.nodes, proposal.counts)
        placed.append(
            RunningPlacement(job_id, "t", "on_demand", proposal.nodes, proposal.counts, None, slots)
        )
    shared_node = set(placed[0].nodes.tolist()) & set(placed[1].nodes.tolist())
    assert len(shared_node) == 1
    gpus = [set(fabric._gpus(p).tolist()) for p in placed]
    assert not gpus[0] & gpus[1]  # no GPU, hence no NIC, in both jobs
    # A freed slot is the next one handed out.
    inventory.release(placed[0].nodes, placed[0].counts, placed[0].slots)
    again = inventory.allocate(placed[0].nodes[-1:], np.array([4]))
    assert sorted(again.tolist()) == sorted(placed[0].slots[-4:].tolist())


# Two rail groups of 4 nodes of 8 GPUs; rail switches joined by spines at 2:1.
RAILS = {
    "kind": "rail_optimized",
    "nodes_per_group": 4,
    "groups": 2,
    "spines": 4,
    "oversubscription": 2.0,
}
TP4 = TrainingSpec(
    model=ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=4096), tp=4, microbatches=8
)


def rail_setup(channels_per_nic: int = 4) -> tuple[NetworkFabric, Inventory, ClusterInfo]:
    config = NetworkFabricConfig.model_validate(
        {
            "kind": "network",
            "topology": RAILS,
            "transport": {"kind": "roce", "pfc": True},
            "collectives": {"channels_per_nic": channels_per_nic},
        }
    )
    fabric = NetworkFabric(config, gpus_per_node=GPN, accelerator="H100")
    info = ClusterInfo(0, "rails", "site", 0, 8, GPN, "H100")
    inventory = Inventory([info])
    inventory.set_domains(info, *fabric.node_domains(8))
    return fabric, inventory, info


def rail_job(fabric: NetworkFabric, proposal, inventory: Inventory) -> RunningPlacement:
    """The proposal started as a tp=4 training job, and the fabric solved for it."""
    slots = inventory.allocate(proposal.nodes, proposal.counts, proposal.slots)
    placement = RunningPlacement(1, "t", "on_demand", proposal.nodes, proposal.counts, TP4, slots)
    fabric.solve([placement])
    return placement


def test_rings_of_a_job_of_whole_nodes_stay_on_their_rails():
    """tp=4 on 8-GPU nodes: a node holds two tensor groups, so a data-parallel ring
    has two GPUs on each node. The ring snakes (NCCL's order): it enters and leaves a
    node on the same slot, so no hop between nodes changes rail."""
    fabric, inventory, info = rail_setup()
    proposal = RailAligned().place(inventory, [info], SHARED, 4 * GPN, tp=4)
    placement = rail_job(fabric, proposal, inventory)
    assert placement.nodes.tolist() == [0, 1, 2, 3]  # one rail group
    plan = fabric._jobs[1].plan
    assert plan.src.size and np.array_equal(plan.src % GPN, plan.dst % GPN)
    assert set(fabric.topology.link_tier[fabric._jobs[1].links].tolist()) == {0}  # GPU-rail
    assert fabric.solve([placement]).jobs[1].slowdown == 1.0


def test_rail_aligned_takes_the_same_slots_on_partly_used_nodes():
    def setup(channels_per_nic: int = 4):
        fabric, inventory, info = rail_setup(channels_per_nic)
        # Nodes 0-2 have slots 0-3 held, node 3 slots 2-5, nodes 4-7 are free.
        inventory.allocate(np.arange(3), np.full(3, 4))
        inventory.allocate(np.array([3]), np.array([4]), np.array([2, 3, 4, 5]))
        return fabric, inventory, info

    fabric, inventory, info = setup()
    proposal = RailAligned().place(inventory, [info], SHARED, 12, tp=4)
    assert proposal.nodes.tolist() == [0, 1, 2]  # not a whole node and a remainder
    assert proposal.slots.tolist() == [4, 5, 6, 7] * 3
    rail_job(fabric, proposal, inventory)
    assert set(fabric.topology.link_tier[fabric._jobs[1].links].tolist()) == {0}
    # Topology-aware takes a whole node and four GPUs of another. The rings through the
    # remainder's GPUs (rails 0-3) reach the whole node's GPUs 4-7 through the spines.
    fabric, inventory, info = setup()
    proposal = TopologyAware().place(inventory, [info], SHARED, 12, tp=4)
    assert proposal.counts.tolist() == [8, 4]
    placement = rail_job(fabric, proposal, inventory)
    assert 1 in set(fabric.topology.link_tier[fabric._jobs[1].links].tolist())  # rail-spine
    # On NCCL's 4 channels its spine hops spread over the 4 spines: here that costs nothing.
    assert fabric.solve([placement]).jobs[1].slowdown == pytest.approx(1.0)
    # On one channel two hops meet on one spine and the ring runs at half its rate.
    fabric, inventory, info = setup(channels_per_nic=1)
    placement = rail_job(
        fabric, TopologyAware().place(inventory, [info], SHARED, 12, tp=4), inventory
    )
    state = fabric.solve([placement]).jobs[1]
    assert dict((name, gbps) for name, _, gbps in state.collective_gbps)["dp"] == 200.0
    assert state.slowdown > 1.05  # 1.09


def test_rail_aligned_falls_back_when_no_slots_line_up():
    _, inventory, info = rail_setup()
    # Node 0 is free, node 1 has slots 0-3 free, the rest are full: two nodes share a
    # window of four slots, a 12-GPU job needs three. A whole node and a remainder fit.
    inventory.allocate(np.array([1]), np.array([4]), np.array([4, 5, 6, 7]))
    inventory.allocate(np.arange(2, 8), np.full(6, GPN))
    proposal = RailAligned().place(inventory, [info], SHARED, 12, tp=4)
    assert proposal.nodes.tolist() == [0, 1] and proposal.counts.tolist() == [8, 4]
    assert proposal.slots is None  # ranks node by node, as topology-aware places them
    # A job of at most one node, or with no tensor parallelism to align, likewise.
    assert RailAligned().place(inventory, [info], SHARED, 4, tp=4).nodes.tolist() == [1]


def test_allocating_given_slots_refuses_a_gpu_held_or_not_there():
    _, inventory, _ = rail_setup()
    inventory.allocate(np.array([0]), np.array([2]), np.array([6, 7]))
    assert inventory.held[0].tolist() == [False] * 6 + [True] * 2
    for slots in ([5, 6], [1, 1], [7, 8], [3]):
        with pytest.raises(RuntimeError, match="held or not there"):
            inventory.allocate(np.array([0]), np.array([2]), np.array(slots))
    assert inventory.free[0] == 6  # a refused allocation takes nothing


def test_rail_aligned_scenario_gives_tenants_more_usable_compute():
    """The shipped comparison, one seed: jobs of 1.5-3.5 nodes on 2:1 rail spines."""
    from sim.runner import simulate
    from sim.scenario import load_scenario
    from tests.conftest import SCENARIOS

    path = SCENARIOS / "rail-aligned.yaml"
    usable, p99 = {}, {}
    for kind in ("topology_aware", "rail_aligned"):
        s = simulate(load_scenario(path, overrides=[f"policies.placement.kind={kind}"])).summary
        usable[kind], p99[kind] = s["usable_compute_fraction"], s["iteration_slowdown_p99"]
    assert usable["rail_aligned"] > usable["topology_aware"] + 0.1
    assert p99["rail_aligned"] < p99["topology_aware"]
