"""The marketplace's network fabric: jobs' collectives solved together, slowdown per job."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sim.fabric.model import RunningPlacement
from sim.fabric.network import NetworkFabric
from sim.scenario.models import NetworkFabric as NetworkFabricConfig
from sim.workloads.training import ModelShape, TrainingSpec

# A small Meta-style zone: 2 pods of 4 racks of 2 nodes of 8 GPUs (128 GPUs).
SMALL_ZONE = {
    "kind": "meta_ai_zone",
    "racks_per_pod": 4,
    "pods": 2,
    "ctsw_per_pod": 4,
    "atsw_per_plane": 2,
}
GPN = 8
NIC_GBPS = 400.0


def network(transport: dict, topology: dict | None = None) -> NetworkFabric:
    config = NetworkFabricConfig.model_validate(
        {"kind": "network", "topology": topology or SMALL_ZONE, "transport": transport}
    )
    return NetworkFabric(config, gpus_per_node=GPN, accelerator="H100")


def data_parallel(tp: int = 1) -> TrainingSpec:
    # An 8B-class dense model. With tp = 8 a node holds one tensor group and every
    # data-parallel ring (one per GPU index, a "rail") crosses every node boundary.
    return TrainingSpec(
        model=ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192),
        tp=tp,
        microbatches=8,
    )


def placement(job_id: int, nodes, per_node: int, traffic, tenant: str = "t") -> RunningPlacement:
    nodes = np.asarray(nodes, dtype=np.int64)
    return RunningPlacement(
        job_id, tenant, "on_demand", nodes, np.full(nodes.size, per_node), traffic
    )


@pytest.mark.parametrize(
    "transport",
    [{"kind": "ideal"}, {"kind": "infiniband", "adaptive_routing": True}],
    ids=["ideal", "infiniband-adaptive"],
)
def test_a_job_alone_in_a_non_blocking_pod_is_not_slowed(transport):
    fabric = network(transport)
    job = placement(0, range(8), GPN, data_parallel())  # 64 GPUs, half of pod 0
    solution = fabric.solve([job])
    assert solution.jobs[0].slowdown == pytest.approx(1.0, abs=1e-12)


def test_ring_all_reduce_through_the_fabric_reaches_nccl_bus_bandwidth():
    # One GPU per node on 16 nodes: a 16-rank ring, every hop over the fabric.
    fabric = network({"kind": "ideal"})
    job = placement(0, range(16), 1, data_parallel())
    fabric.solve([job])
    traffic = fabric._jobs[0]
    rates = traffic.ideal_rates_gbps
    dp = next(c for c in traffic.plan.collectives if c.name == "dp")
    seconds = dp.call_s(rates)
    n = dp.ranks
    algbw_gbps = dp.bytes_per_call * 8 / seconds / 1e9
    busbw_gbps = algbw_gbps * 2 * (n - 1) / n  # nccl-tests: busbw = algbw * 2(n-1)/n
    assert busbw_gbps == pytest.approx(NIC_GBPS, rel=0.05)
    assert busbw_gbps <= NIC_GBPS


def test_ecmp_collisions_slow_a_lone_job_and_more_queue_pairs_help():
    zone = {**SMALL_ZONE, "ctsw_per_pod": 16}  # one 400G uplink per CTSW, as at Meta
    job = placement(0, range(8), GPN, data_parallel(tp=8))  # all of pod 0: 4 racks
    one_qp = network({"kind": "roce", "pfc": True, "cc": "dcqcn"}, zone).solve([job])
    many = network({"kind": "roce", "pfc": True, "cc": "dcqcn", "qps_per_connection": 16}, zone)
    many_qp = many.solve([job])
    spray = network({"kind": "ideal"}, zone).solve([job])
    assert spray.jobs[0].slowdown == pytest.approx(1.0)
    # Eight flows leave each rack over sixteen uplinks: hashing collides.
    assert one_qp.jobs[0].slowdown > 1.05
    assert 1.0 <= many_qp.jobs[0].slowdown < one_qp.jobs[0].slowdown
    assert one_qp.ecn_mark_fraction > 0


def test_a_neighbour_across_pods_slows_a_job_on_the_oversubscribed_spine():
    transport = {"kind": "roce", "pfc": True, "cc": "none"}
    spec = data_parallel(tp=8)
    # The victim spans both pods, so its ring crosses the 1:7 aggregation layer.
    victim_nodes = [0, 1, 8, 9]
    alone = network(transport).solve([placement(0, victim_nodes, GPN, spec)])
    noisy_nodes = [2, 3, 4, 5, 10, 11, 12, 13]
    both = network(transport).solve(
        [placement(0, victim_nodes, GPN, spec), placement(1, noisy_nodes, GPN, spec)]
    )
    assert both.jobs[0].slowdown > alone.jobs[0].slowdown
    assert both.pfc_pause_fraction > 0


def test_solutions_are_cached_by_traffic_mix_and_jobs_without_traffic_are_left_out():
    fabric = network({"kind": "roce"})
    spec = data_parallel()
    jobs = [placement(0, [0, 1], GPN, spec), placement(1, [2], GPN, None)]
    first = fabric.solve(jobs)
    again = fabric.solve(jobs)
    assert again == first and fabric.solves == 1
    assert set(first.jobs) == {0}
    # A job inside one node never touches the fabric.
    inside = fabric.solve([placement(2, [5], GPN, spec)])
    assert inside.jobs[2].slowdown == 1.0


def test_a_cluster_whose_topology_does_not_match_its_gpus_is_refused():
    config = NetworkFabricConfig.model_validate(
        {"kind": "network", "topology": SMALL_ZONE, "transport": {"kind": "roce"}}
    )
    assert config.host_problem(128) is None
    assert "128 hosts" in config.host_problem(256)


def test_jobs_that_share_no_link_are_solved_apart_and_exactly():
    transport = {"kind": "roce", "pfc": True, "cc": "none"}
    spec = data_parallel(tp=8)
    pod0 = placement(0, [0, 1, 2, 3], GPN, spec)  # racks 0-1 of pod 0
    pod1 = placement(1, [8, 9, 10, 11], GPN, spec)  # racks 0-1 of pod 1
    together = network(transport)
    both = together.solve([pod0, pod1])
    assert together.solves == 2  # two groups, one solve each
    for job in (pod0, pod1):
        alone = network(transport).solve([job])
        assert both.jobs[job.job_id] == alone.jobs[job.job_id]
    # A change in pod 1 leaves pod 0's group to the cache.
    together.solve([pod0, placement(2, [12, 13], GPN, spec)])
    assert together.solves == 3


def test_link_pairs_kept_per_job_stack_into_those_of_the_group():
    from sim.fabric.backpressure import Crossings, link_crossings, upstream_chains
    from sim.fabric.trunks import Trunked

    fabric = network({"kind": "infiniband", "adaptive_routing": True})
    jobs = [
        placement(0, range(0, 6), GPN, data_parallel(tp=8)),
        placement(1, range(6, 14), GPN, data_parallel()),
    ]
    fabric.solve(jobs)
    parts = [fabric._jobs[j.job_id] for j in jobs]
    # The first job's sprayed routes share trunks; the second's are too few to factor.
    assert [p.paths.n_trunks > 0 for p in parts] == [True, False]
    topology = fabric.topology
    paths = Trunked.stack([p.paths for p in parts])
    kept = Crossings.stack(
        [p.crossings for p in parts],
        [p.paths.shape[0] for p in parts],
        [p.paths.n_trunks for p in parts],
    )
    found = link_crossings(paths, topology)
    assert np.array_equal(kept.numbers, found.numbers)
    for who, upstream, pair in (
        ("flow", "upstream", "pair"),
        ("trunk", "trunk_upstream", "trunk_pair"),
    ):
        a, b = (
            np.unique(
                np.column_stack([getattr(c, who), getattr(c, upstream), getattr(c, pair)]), axis=0
            )
            for c in (kept, found)
        )
        assert np.array_equal(a, b) and len(a) == getattr(kept, who).size, who
    # Trunk crossings, spread over the trunks' members, are the whole matrix's crossings.
    stacked = sp.vstack([p.incidence for p in parts], format="csr")
    whole = link_crossings(stacked, topology)
    assert whole.trunk.size == 0
    members = [np.flatnonzero(paths.trunk_of == t) for t in kept.trunk]
    spread = np.concatenate(
        [np.column_stack([kept.flow, kept.numbers[kept.pair]])]
        + [
            np.column_stack([m, np.full(m.size, kept.numbers[p])])
            for m, p in zip(members, kept.trunk_pair, strict=True)
        ]
    )
    expected = np.column_stack([whole.flow, whole.numbers[whole.pair]])
    assert np.array_equal(np.unique(spread, axis=0), np.unique(expected, axis=0))
    assert len(spread) == len(expected)
    chains = upstream_chains(stacked, topology, whole)
    # Each pair is a link feeding the next, crossed by the flow, never a U-turn.
    assert np.all(topology.link_dst[chains.pair_u] == topology.link_src[chains.pair_l])
    assert np.all(topology.reverse_link[chains.pair_u] != chains.pair_l)
    dense = stacked.toarray() > 0
    u = chains.pair_u[chains.pair]
    l_ = chains.pair_l[chains.pair]
    assert dense[chains.flow, u].all() and dense[chains.flow, l_].all()
