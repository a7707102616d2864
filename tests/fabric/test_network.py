"""The marketplace's network fabric: jobs' collectives solved together, slowdown per job."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import sim.fabric.network as network_module
from sim.fabric.dcqcn import fixed_point
from sim.fabric.dcqcn_dynamics import limit_cycle
from sim.fabric.model import RunningPlacement
from sim.fabric.network import NetworkFabric
from sim.fabric.routing import route
from sim.fabric.transport import Transport
from sim.scenario.fabric import FabricConfig, NetworkFabricConfig
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


def dp_gbps(state) -> float:
    """A job's data-parallel all-reduce bus bandwidth: the rate of its slowest flow."""
    return next(gbps for name, _, gbps in state.collective_gbps if name == "dp")


def test_ecmp_collisions_slow_a_lone_job_and_more_queue_pairs_help():
    zone = {**SMALL_ZONE, "ctsw_per_pod": 16}  # one 400G uplink per CTSW, as at Meta
    job = placement(0, range(8), GPN, data_parallel(tp=8))  # all of pod 0: 4 racks
    one_qp = network({"kind": "roce", "pfc": True, "cc": "dcqcn"}, zone).solve([job])
    many = network({"kind": "roce", "pfc": True, "cc": "dcqcn", "qps_per_connection": 16}, zone)
    many_qp = many.solve([job])
    spray = network({"kind": "ideal"}, zone).solve([job])
    assert spray.jobs[0].slowdown == pytest.approx(1.0)
    # Eight flows leave each rack over sixteen uplinks, each on NCCL's 4 channels: 32 queue
    # pairs of 100 Gb/s. Hashing puts 6 on one uplink, so the ring keeps 400/600 of its pace.
    assert dp_gbps(one_qp.jobs[0]) == pytest.approx(NIC_GBPS * 4 / 6)
    assert one_qp.jobs[0].slowdown > 1.02  # 1.026: the all-reduce is a small part of the step
    # 16 queue pairs per connection: 512 per rack over 16 uplinks, none past its capacity.
    assert dp_gbps(many_qp.jobs[0]) == pytest.approx(NIC_GBPS)
    assert many_qp.jobs[0].slowdown == pytest.approx(1.0)
    assert one_qp.ecn_mark_fraction > 0


def test_a_lone_job_asks_no_link_for_more_than_it_carries():
    """The collective's pace: every queue pair at its ideal rate times its collective's pace."""
    zone = {**SMALL_ZONE, "ctsw_per_pod": 16}
    job = placement(0, [0, 1, 2, 3, 8, 9], GPN, data_parallel(tp=8))  # across both pods
    for transport in (
        {"kind": "roce", "pfc": True, "cc": "none"},
        {"kind": "roce", "pfc": True, "cc": "dcqcn"},
        {"kind": "roce", "pfc": False, "cc": "none"},
    ):
        fabric = network(transport, zone)
        state = fabric.solve([job]).jobs[0]
        traffic = fabric._jobs[0]
        load = traffic.incidence.T @ traffic.demand_gbps
        capacity = fabric.transport.capacity
        assert np.all(load <= capacity * (1 + 1e-9))  # and one link is full: the pace's
        assert np.max(load / np.where(capacity > 0, capacity, 1.0)) == pytest.approx(1.0)
        # So whatever the transport, nothing pauses or drops and every queue pair gets its ask.
        assert state.pfc_pause_fraction in (0.0, None)
        flow_rates = traffic.flow_rates_gbps(traffic.demand_gbps)
        assert dp_gbps(state) == pytest.approx(flow_rates.min())
    assert dp_gbps(state) < NIC_GBPS  # its own collisions cost it some of its pace


@pytest.mark.parametrize(
    "transport",
    [{"kind": "roce", "pfc": True, "cc": "dcqcn"}, {"kind": "ideal"}],
    ids=["dcqcn", "ideal"],
)
def test_a_flows_queue_pairs_on_one_path_share_a_row_exactly(transport):
    """Max-min shares: k queue pairs on one path are one row with entries k, rates unchanged."""
    zone = {**SMALL_ZONE, "ctsw_per_pod": 16}
    jobs = [
        placement(0, [0, 1, 2, 3], GPN, data_parallel(tp=8)),
        placement(1, [4, 5, 8, 9], GPN, data_parallel(tp=8)),
    ]
    fabric = network(
        {**transport, "qps_per_connection": 4} if transport["kind"] == "roce" else transport, zone
    )
    merged = fabric.solve(jobs)
    parts = [fabric._jobs[j.job_id] for j in jobs]
    rows = sum(p.incidence.shape[0] for p in parts)
    pairs = sum(int(p.plan.queue_pairs.sum()) for p in parts)
    assert all(np.array_equal(
        np.bincount(p.row_flow, weights=p.row_count), p.plan.queue_pairs
    ) for p in parts)  # fmt: skip
    assert rows < pairs  # some queue pairs of a flow share a path
    # Every queue pair a row of its own, entries 1: the same rates for every queue pair.
    incidence = sp.vstack([sp.diags(1.0 / p.row_count) @ p.incidence for p in parts]).tocsr()
    count = np.concatenate([p.row_count for p in parts])
    each = np.repeat(np.arange(count.size), count)
    demand = np.concatenate([p.demand_gbps for p in parts])
    alone = fabric.transport.allocate(sp.csr_matrix(incidence[each]), demand=demand[each])
    together = fabric.transport.allocate(
        sp.vstack([p.incidence for p in parts]).tocsr(), demand=demand
    )
    np.testing.assert_allclose(together.rates_gbps[each], alone.rates_gbps, rtol=1e-9)
    assert merged.jobs[0].slowdown >= 1.0


def test_under_back_pressure_every_queue_pair_is_a_row():
    """A paused NIC serves its queue pairs in turn, which rows of several could not say."""
    fabric = network({"kind": "roce", "pfc": True, "cc": "none"})
    fabric.solve([placement(0, [0, 1, 2, 3], GPN, data_parallel(tp=8))])
    traffic = fabric._jobs[0]
    assert np.all(traffic.row_count == 1)
    assert traffic.incidence.shape[0] == traffic.plan.queue_pairs.sum()
    assert set(traffic.plan.queue_pairs.tolist()) == {4}  # NCCL's 4 channels, 1 QP each


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
    from sim.fabric.link_pairs import Crossings, link_crossings, upstream_chains
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


def test_an_unstable_dcqcn_costs_marketplace_jobs_rate_and_marks():
    # At 40 Gb/s (Zhu et al.'s links) two tenants' rings crossing the pods meet several
    # flows a port; with an 85 us feedback delay those ports oscillate instead of holding
    # the fixed point: they carry less and mark more, and both jobs pay for it.
    zone = {**SMALL_ZONE, "link_gbps": 40.0}
    spec = data_parallel(tp=8)
    jobs = [
        placement(0, [0, 1, 8, 9], GPN, spec),
        placement(1, [2, 3, 4, 5, 10, 11, 12, 13], GPN, spec),
    ]

    def solve(delay_us: float):
        dcqcn = {
            "kind": "roce",
            "pfc": True,
            "cc": "dcqcn",
            "dcqcn": {"feedback_delay_us": delay_us},
        }
        return network(dcqcn, zone).solve(jobs)

    stable, unstable = solve(4.0), solve(85.0)
    for job in (0, 1):
        assert unstable.jobs[job].slowdown > stable.jobs[job].slowdown * 1.01
        assert unstable.jobs[job].ecn_mark_fraction > 3 * stable.jobs[job].ecn_mark_fraction
    assert unstable.ecn_mark_fraction > 3 * stable.ecn_mark_fraction


def test_an_epoch_takes_an_unstable_port_from_its_limit_cycle():
    # What a marketplace epoch asks of the transport (no burst): ten flows into one
    # 40 Gb/s port, with Zhu et al.'s 85 us feedback delay.
    config = FabricConfig.model_validate(
        {
            "topology": {"kind": "fat_tree", "k": 4, "link_gbps": 40},
            "transport": {"kind": "roce", "dcqcn": {"feedback_delay_us": 85.0}},
        }
    )
    topology = config.build_topology()
    routes = route(topology, np.arange(1, 11), np.zeros(10, dtype=np.int64), mode="ecmp")
    epoch = Transport(config.transport, topology).allocate(routes.incidence.tocsr())
    port = int(np.flatnonzero(epoch.queue_us > 0)[0])
    cycle = limit_cycle(10, config.transport.dcqcn_params(40.0))
    # The port carries the cycle's share of its capacity, fairly; its queue and marks
    # are the cycle's, as the bytes crossing it meet them.
    np.testing.assert_allclose(epoch.rates_gbps, cycle.rate_gbps, rtol=1e-9)
    assert epoch.queue_us[port] == pytest.approx(cycle.queue_seen_kb * 8 / 40, rel=1e-12)
    assert epoch.marking[port] == pytest.approx(cycle.ecn_mark_fraction, rel=1e-12)
    assert epoch.marked_share == pytest.approx(cycle.ecn_mark_fraction, rel=1e-12)
    samples, weights = epoch.cycles[port]
    assert np.dot(weights, samples) == pytest.approx(epoch.queue_us[port], rel=0.01)
    assert list(epoch.cycles) == [port]
    # The same port with the default 4 us delay holds the exact fixed point.
    steady = FabricConfig.model_validate(
        {"topology": {"kind": "fat_tree", "k": 4, "link_gbps": 40}, "transport": {"kind": "roce"}}
    )
    held = Transport(steady.transport, topology).allocate(routes.incidence.tocsr())
    np.testing.assert_allclose(held.rates_gbps, 4.0, rtol=1e-9)
    assert held.queue_us[port] == pytest.approx(fixed_point(10).queue_kb_exact * 8 / 40)
    assert held.cycles == {}


def test_each_hop_of_a_single_path_is_fed_by_the_hop_before_also_when_stacked():
    from sim.fabric.link_pairs import Crossings, link_crossings, upstream_chains
    from sim.fabric.trunks import Trunked

    fabric = network({"kind": "roce", "pfc": True, "cc": "none"})
    jobs = [
        placement(0, range(0, 6), GPN, data_parallel()),
        placement(1, range(6, 14), GPN, data_parallel()),
    ]
    fabric.solve(jobs)
    parts = [fabric._jobs[j.job_id] for j in jobs]
    paths = Trunked.stack([p.paths for p in parts])
    topology = fabric.topology
    kept = Crossings.stack(
        [p.crossings for p in parts],
        [p.paths.shape[0] for p in parts],
        [p.paths.n_trunks for p in parts],
    )
    found = link_crossings(paths, topology)

    def hops(crossings: Crossings) -> set:
        chains = upstream_chains(paths, topology, crossings)
        fed = np.flatnonzero(chains.feeder >= 0)
        feeder = chains.feeder[fed]
        # The feeder is the same sub-flow's crossing into this one's upstream link.
        assert np.array_equal(chains.flow[feeder], chains.flow[fed])
        assert np.array_equal(chains.pair_l[chains.pair[feeder]], chains.pair_u[chains.pair[fed]])
        # On one path, every crossing but a sub-flow's first (out of its NIC link) has one.
        first = np.bincount(chains.flow, minlength=paths.shape[0])
        assert chains.flow.size - fed.size == np.count_nonzero(first)
        upstream = chains.pair_u[chains.pair[fed]]
        return set(zip(chains.flow[fed].tolist(), upstream.tolist(), strict=True))

    assert hops(kept) == hops(found)


def test_an_epoch_with_more_groups_than_the_cache_keeps_re_solves_none(monkeypatch):
    # With room for two solutions, an epoch of three groups visited in order would
    # evict each just before the next epoch needs it: every group re-solved.
    monkeypatch.setattr(network_module, "_SOLUTIONS_KEPT", 2)
    spec = data_parallel(tp=8)
    jobs = [placement(i, [2 * i, 2 * i + 1], GPN, spec) for i in range(3)]  # a rack each
    fabric = network({"kind": "roce", "pfc": True, "cc": "none"})
    first = fabric.solve(jobs)
    assert fabric.solves == 3
    assert fabric.solve(jobs) == first and fabric.solves == 3
