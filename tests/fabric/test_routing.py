"""Routing: equal-cost paths, ECMP collision statistics, adaptive routing, determinism."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fabric.hashing import flow_hash, hash_choice
from sim.fabric.paths import (
    CLASS_CROSS_POD,
    CLASS_LOCAL,
    CLASS_SAME_LEAF,
    CLASS_SAME_POD,
    equal_cost_path_count,
    flow_class,
    path_links,
)
from sim.fabric.routing import ROUTING_MODES, route
from sim.fabric.solver import max_min_certificate_ok, max_min_rates
from sim.fabric.topology import Topology
from sim.fabric.topology_kinds import build_topology
from tests.fabric.strategies import host_pairs, small_topologies


def assert_walk(topology: Topology, links: np.ndarray, src: int, dst: int) -> None:
    """``links`` (padded with -1) is a walk from host ``src`` to host ``dst``."""
    hops = links[links >= 0]
    assert topology.link_src[hops[0]] == src
    assert topology.link_dst[hops[-1]] == dst
    np.testing.assert_array_equal(topology.link_dst[hops[:-1]], topology.link_src[hops[1:]])


def permutation_throughput(topology: Topology, dst: np.ndarray, **kwargs) -> float:
    """Mean rate of host i -> dst[i] flows over the NIC rate, fabric flows only."""
    src = np.arange(topology.n_hosts)
    routes = route(topology, src, dst, **kwargs)
    rates = max_min_rates(routes.incidence, topology.capacity_gbps)
    flow_rates = routes.flow_rates_gbps(rates)
    fabric = src != dst
    return float(np.mean(flow_rates[fabric] / topology.nic_gbps[src[fabric]]))


# --------------------------------------------------------------------------- paths


def test_fat_tree_path_counts_and_classes() -> None:
    topology = build_topology("fat_tree", k=4)  # 2 hosts per edge, 4 per pod
    src = np.array([0, 0, 0, 0])
    dst = np.array([0, 1, 2, 4])
    assert flow_class(topology, src, dst).tolist() == [
        CLASS_LOCAL,
        CLASS_SAME_LEAF,
        CLASS_SAME_POD,
        CLASS_CROSS_POD,
    ]
    assert equal_cost_path_count(topology, src, dst).tolist() == [1, 1, 2, 4]


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_every_equal_cost_path_is_a_shortest_walk(data: st.DataObject) -> None:
    topology = data.draw(small_topologies())
    src, dst = data.draw(host_pairs(topology, max_flows=8))
    graph = topology.to_networkx()
    cls = flow_class(topology, src, dst)
    counts = equal_cost_path_count(topology, src, dst)
    for s, d, c, n in zip(src.tolist(), dst.tolist(), cls.tolist(), counts.tolist(), strict=True):
        every = path_links(topology, np.full(n, s), np.full(n, d), np.arange(n))
        if c == CLASS_LOCAL:
            assert np.all(every == -1)  # same host or same server: NVLink, no fabric
            continue
        shortest = list(nx.all_shortest_paths(graph, s, d))
        assert n == len(shortest)
        link_sets = {tuple(row[row >= 0]) for row in every}
        assert len(link_sets) == n  # all distinct
        for row in every:
            assert np.count_nonzero(row >= 0) == len(shortest[0]) - 1
            assert_walk(topology, row, s, d)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from(ROUTING_MODES), st.integers(1, 3))
def test_routes_follow_valid_paths(data: st.DataObject, mode: str, qps: int) -> None:
    topology = data.draw(small_topologies())
    src, dst = data.draw(host_pairs(topology))
    routes = route(topology, src, dst, mode=mode, qps_per_connection=qps, adaptive_chunks=2)
    assert routes.incidence.shape == (src.size * qps, topology.n_links)
    sub_src, sub_dst = src[routes.flow_of_subflow], dst[routes.flow_of_subflow]
    local = routes.flow_class == CLASS_LOCAL
    assert np.all(routes.incidence.getnnz(axis=1)[local] == 0)
    # Each sub-flow's traffic leaves its source NIC and reaches its destination NIC whole.
    dense = routes.incidence.toarray()
    np.testing.assert_allclose(dense[~local, sub_src[~local]], 1.0)
    np.testing.assert_allclose(dense[~local, topology.n_hosts + sub_dst[~local]], 1.0)
    # Flow conservation at every switch: what enters leaves.
    n_nodes = topology.n_nodes
    out_of = sp.csr_matrix(
        (np.ones(topology.n_links), (topology.link_src, np.arange(topology.n_links))),
        shape=(n_nodes, topology.n_links),
    )
    into = sp.csr_matrix(
        (np.ones(topology.n_links), (topology.link_dst, np.arange(topology.n_links))),
        shape=(n_nodes, topology.n_links),
    )
    net = (out_of @ dense.T - into @ dense.T)[topology.n_hosts :]
    np.testing.assert_allclose(net, 0.0, atol=1e-12)
    chosen = routes.path_index >= 0
    assert np.all(routes.path_index[chosen] < routes.n_paths[chosen])
    if mode in ("ecmp", "dmodk"):
        links = path_links(topology, sub_src, sub_dst, routes.path_index)
        for row, s, d, c in zip(links, sub_src, sub_dst, routes.flow_class, strict=True):
            if c != CLASS_LOCAL:
                assert_walk(topology, row, s, d)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from(ROUTING_MODES), st.integers(1, 3))
def test_pinned_flows_take_their_path_and_the_rest_are_routed_as_before(
    data: st.DataObject, mode: str, qps: int
) -> None:
    topology = data.draw(small_topologies())
    src, dst = data.draw(host_pairs(topology))
    counts = equal_cost_path_count(topology, src, dst)
    pinned = np.array([data.draw(st.integers(-1, int(n) - 1)) for n in counts], dtype=np.int64)
    kwargs = {"mode": mode, "qps_per_connection": qps, "adaptive_chunks": 2}
    routes = route(topology, src, dst, pinned_path=pinned, **kwargs)
    free = route(topology, src, dst, **kwargs)
    dense, free_dense = routes.incidence.toarray(), free.incidence.toarray()
    sub_pin = pinned[routes.flow_of_subflow]
    on = sub_pin >= 0
    links = path_links(
        topology,
        src[routes.flow_of_subflow][on],
        dst[routes.flow_of_subflow][on],
        sub_pin[on],
    )
    for row, want in zip(dense[on], links, strict=True):
        assert set(np.flatnonzero(row)) == set(want[want >= 0])
        np.testing.assert_allclose(row[row != 0], 1.0)
    np.testing.assert_array_equal(routes.path_index[on], sub_pin[on])
    if mode != "adaptive":  # adaptive flows choose around the pinned ones' load
        np.testing.assert_allclose(dense[~on], free_dense[~on])


def test_adaptive_flows_choose_around_a_pinned_flow() -> None:
    topology = build_topology("fat_tree", k=4)
    src, dst = np.array([0, 1]), np.array([8, 9])  # one leaf to one leaf of another pod
    for path in range(4):
        routes = route(
            topology, src, dst, mode="adaptive", adaptive_chunks=1, pinned_path=np.array([path, -1])
        )
        chosen = path_links(topology, src, dst, routes.path_index)
        assert routes.path_index[0] == path
        assert not set(chosen[0][1:-1]) & set(chosen[1][1:-1])  # no fabric link shared


def test_same_node_flows_use_no_fabric_link() -> None:
    topology = build_topology("rail_optimized", gpus_per_node=8, nodes_per_group=2, groups=1)
    src = np.array([0, 0, 0, 3])
    dst = np.array([7, 8, 9, 3])  # same node, same rail other node, other rail, itself
    routes = route(topology, src, dst)
    assert routes.flow_class.tolist() == [CLASS_LOCAL, CLASS_SAME_LEAF, CLASS_SAME_POD, CLASS_LOCAL]
    assert routes.incidence.getnnz(axis=1).tolist() == [0, 2, 4, 0]
    rates = max_min_rates(routes.incidence, topology.capacity_gbps)
    assert np.isinf(rates[0]) and np.isinf(rates[3])


# --------------------------------------------------------------------------- ECMP


def expected_used_fraction(n: int) -> tuple[float, float]:
    """Mean and variance of the fraction of n bins hit by n uniform balls."""
    p_empty = (1 - 1 / n) ** n
    var_empty = n * (n - 1) * (1 - 2 / n) ** n + n * p_empty - (n * p_empty) ** 2
    return 1 - p_empty, var_empty / n**2


@pytest.mark.parametrize(("n", "trials"), [(8, 400), (32, 200), (128, 100)])
def test_ecmp_collisions_match_balls_into_bins(n: int, trials: int) -> None:
    """n flows hashed onto n equal paths use 1 - (1 - 1/n)^n of them on average (~63 %).

    Two leaves of n hosts joined by n spines, with each leaf uplink as fast as
    a NIC: host i of leaf 0 sends to host i of leaf 1, so every flow has n
    equal paths (one per spine). The flows on one spine share its uplink and
    downlink equally, so the max-min aggregate throughput is exactly
    (spines used) x NIC rate: the throughput lost is the collision loss.
    """
    topology = build_topology("leaf_spine", hosts_per_leaf=n, leaves=2, spines=n, link_gbps=100.0)
    src = np.arange(n)
    dst = src + n
    fractions = []
    for seed in range(trials):
        routes = route(topology, src, dst, mode="ecmp", hash_seed=seed)
        assert np.all(routes.n_paths == n)
        used = np.unique(routes.path_index).size
        rates = max_min_rates(routes.incidence, topology.capacity_gbps)
        assert rates.sum() == pytest.approx(used * 100.0)
        fractions.append(used / n)
    mean, var = expected_used_fraction(n)
    standard_error = np.sqrt(var / trials)
    assert abs(np.mean(fractions) - mean) < 4 * standard_error
    assert np.var(fractions) == pytest.approx(var, rel=0.35)


def test_hash_choice_is_uniform() -> None:
    keys = np.arange(200_000)
    for n in (3, 16, 100):
        choice = hash_choice(flow_hash([keys], seed=11), n)
        counts = np.bincount(choice, minlength=n)
        expected = keys.size / n
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        # chi-square with n-1 degrees of freedom: mean n-1, sd sqrt(2(n-1)).
        assert chi2 < (n - 1) + 5 * np.sqrt(2 * (n - 1))


def test_ecmp_permutation_loss_matches_random_path_choice() -> None:
    """On a fat tree, hashed ECMP loses what independent uniform path choices predict.

    If the hash behaves like an independent uniform choice among the equal-cost
    paths, the max-min throughput of a random permutation under ECMP has the
    same distribution as under uniformly random choices. We estimate the
    latter by Monte Carlo (numpy Generator draws, not the hash) on the same
    permutations and compare the means within four standard errors.
    """
    topology = build_topology("fat_tree", k=8, link_gbps=100.0)
    rng = np.random.default_rng(2024)
    src = np.arange(topology.n_hosts)
    hashed, uniform = [], []
    for trial in range(40):
        dst = rng.permutation(topology.n_hosts)
        hashed.append(permutation_throughput(topology, dst, mode="ecmp", hash_seed=trial))
        counts = equal_cost_path_count(topology, src, dst)
        choice = rng.integers(0, counts)
        links = path_links(topology, src, dst, choice)
        rows = np.repeat(src, links.shape[1]).reshape(links.shape)
        mask = links >= 0
        incidence = sp.csr_matrix(
            (np.ones(mask.sum()), (rows[mask], links[mask])),
            shape=(src.size, topology.n_links),
        )
        rates = max_min_rates(incidence, topology.capacity_gbps)
        fabric = src != dst
        uniform.append(float(np.mean(rates[fabric] / 100.0)))
    se = np.sqrt(np.var(hashed) / len(hashed) + np.var(uniform) / len(uniform))
    assert abs(np.mean(hashed) - np.mean(uniform)) < 4 * se
    assert 0.3 < np.mean(hashed) < 0.65  # collisions cost a third or more


def test_qp_scaling_recovers_part_of_the_collision_loss() -> None:
    topology = build_topology("fat_tree", k=8, link_gbps=100.0)
    rng = np.random.default_rng(5)
    one, eight_even, eight_sum = [], [], []
    src = np.arange(topology.n_hosts)
    for trial in range(10):
        dst = rng.permutation(topology.n_hosts)
        one.append(permutation_throughput(topology, dst, mode="ecmp", hash_seed=trial))
        routes = route(topology, src, dst, mode="ecmp", hash_seed=trial, qps_per_connection=8)
        rates = max_min_rates(routes.incidence, topology.capacity_gbps)
        fabric = src != dst
        eight_even.append(np.mean(routes.flow_rates_gbps(rates)[fabric]) / 100.0)
        eight_sum.append(np.mean(routes.flow_rates_gbps(rates, even_split=False)[fabric]) / 100.0)
    assert np.mean(eight_even) > np.mean(one) + 0.08
    assert np.mean(eight_sum) > np.mean(eight_even) + 0.1
    assert np.mean(eight_sum) < 0.95


# --------------------------------------------------------------------------- adaptive & others


@pytest.mark.parametrize("k", [8, 16])
def test_adaptive_routing_recovers_most_of_the_ecmp_loss(k: int) -> None:
    topology = build_topology("fat_tree", k=k, link_gbps=100.0)
    rng = np.random.default_rng(k)
    for trial in range(2):
        dst = rng.permutation(topology.n_hosts)
        ecmp = permutation_throughput(topology, dst, mode="ecmp", hash_seed=trial)
        adaptive = permutation_throughput(topology, dst, mode="adaptive")
        per_flow = permutation_throughput(topology, dst, mode="adaptive", adaptive_chunks=1)
        assert ecmp < 0.6
        assert adaptive >= 0.95
        assert ecmp < per_flow < adaptive


def test_adaptive_routing_routes_every_flow_of_a_k16_permutation() -> None:
    topology = build_topology("fat_tree", k=16)
    dst = np.random.default_rng(3).permutation(topology.n_hosts)
    routes = route(topology, np.arange(topology.n_hosts), dst, mode="adaptive")
    assert routes.n_subflows == topology.n_hosts


def test_adaptive_counts_load_weight() -> None:
    # Leaf-spine with 2 spines; a heavy flow and two light flows leave leaf 0.
    # Counting bytes, the two light flows share the spine the heavy one avoids.
    topology = build_topology("leaf_spine", hosts_per_leaf=3, leaves=2, spines=2)
    routes = route(
        topology,
        np.array([0, 1, 2]),
        np.array([3, 4, 5]),
        mode="adaptive",
        adaptive_chunks=1,
        load_weight=np.array([10.0, 1.0, 1.0]),
    )
    assert routes.path_index.tolist() == [0, 1, 1]


def test_spray_is_ideal_on_a_permutation() -> None:
    topology = build_topology("fat_tree", k=8, link_gbps=100.0)
    dst = np.random.default_rng(1).permutation(topology.n_hosts)
    assert permutation_throughput(topology, dst, mode="spray") == pytest.approx(1.0)


def test_spray_sees_oversubscription() -> None:
    # 3:1 leaf-spine, everyone sends to the other leaf: a third of line rate each.
    topology = build_topology(
        "leaf_spine", hosts_per_leaf=6, leaves=2, spines=3, oversubscription=3.0
    )
    dst = (np.arange(12) + 6) % 12
    assert permutation_throughput(topology, dst, mode="spray") == pytest.approx(1 / 3)
    # Meta-style 1:7 ATSW layer: every GPU sends to the same GPU of the next pod.
    meta = build_topology("meta_ai_zone", racks_per_pod=2, pods=2, ctsw_per_pod=4, atsw_per_plane=2)
    half = meta.n_hosts // 2
    dst = (np.arange(meta.n_hosts) + half) % meta.n_hosts
    assert permutation_throughput(meta, dst, mode="spray") == pytest.approx(1 / 7)


def test_dmodk_depends_on_destination_only() -> None:
    topology = build_topology("fat_tree", k=8)
    src = np.array([0, 5, 40, 100])
    dst = np.full(4, 77)
    routes = route(topology, src, dst, mode="dmodk")
    cross = routes.flow_class == CLASS_CROSS_POD
    assert len(set(routes.path_index[cross].tolist())) == 1


# --------------------------------------------------------------------------- determinism & API


@pytest.mark.parametrize("mode", ROUTING_MODES)
def test_same_inputs_same_routes(mode: str) -> None:
    topology = build_topology("fat_tree", k=8)
    dst = np.random.default_rng(9).permutation(topology.n_hosts)
    src = np.arange(topology.n_hosts)
    a = route(topology, src, dst, mode=mode, qps_per_connection=2, hash_seed=3)
    b = route(topology, src, dst, mode=mode, qps_per_connection=2, hash_seed=3)
    assert (a.incidence != b.incidence).nnz == 0
    np.testing.assert_array_equal(a.path_index, b.path_index)


def test_hash_seed_and_connection_ids() -> None:
    topology = build_topology("fat_tree", k=8)
    dst = np.random.default_rng(4).permutation(topology.n_hosts)
    src = np.arange(topology.n_hosts)
    a = route(topology, src, dst, hash_seed=1)
    b = route(topology, src, dst, hash_seed=2)
    assert np.mean(a.path_index != b.path_index) > 0.5
    # A connection keeps its ECMP path when others come and go.
    keep = np.arange(0, topology.n_hosts, 3)
    subset = route(topology, src[keep], dst[keep], hash_seed=1, connection_id=keep)
    np.testing.assert_array_equal(subset.path_index, a.path_index[keep])
    # The flow hash is a fixed function of its inputs (not Python's salted
    # hash()): pinned values guard against drift across runs and versions.
    assert flow_hash([np.array([1, 2])], seed=0).tolist() == [
        13943388763836615440,
        9453775692468010413,
    ]
    assert flow_hash([np.array([1, 2]), np.array([3, 4])], seed=7).tolist() == [
        13675733053274516921,
        3903740923138740097,
    ]


def test_qp_subflows_and_rates() -> None:
    topology = build_topology("fat_tree", k=4)
    routes = route(topology, np.array([0, 1]), np.array([15, 1]), qps_per_connection=4)
    assert routes.n_subflows == 8
    assert routes.flow_of_subflow.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(routes.expand(np.array([8.0, 4.0])), [2, 2, 2, 2, 1, 1, 1, 1])
    np.testing.assert_allclose(routes.expand(np.array([8.0, 4.0]), split=False)[:4], 8.0)
    rates = np.array([10.0, 20.0, 30.0, 40.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(routes.flow_rates_gbps(rates), [40.0, 4.0])
    np.testing.assert_allclose(routes.flow_rates_gbps(rates, even_split=False), [100.0, 4.0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mode": "ospf"}, "mode"),
        ({"qps_per_connection": 0}, "qps_per_connection"),
        ({"qps_per_connection": 1.5}, "qps_per_connection"),
        ({"hash_seed": 1.5}, "hash_seed"),
        ({"adaptive_chunks": 0}, "adaptive_chunks"),
        ({"src": np.array([0, 99])}, "src"),
        ({"dst": np.array([0.0, 1.0])}, "dst"),
        ({"dst": np.array([1])}, "same length"),
        ({"connection_id": np.array([-1, 0])}, "connection_id"),
        ({"load_weight": np.array([1.0, -1.0])}, "load_weight"),
        ({"pinned_path": np.array([0])}, "pinned_path"),
        ({"pinned_path": np.array([0.0, 1.0])}, "pinned_path"),
        ({"pinned_path": np.array([2, 0])}, "pinned_path of flow 0 is 2; it has 2"),
        ({"pinned_path": np.array([0, -2])}, "pinned_path of flow 1"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, name: str) -> None:
    topology = build_topology("fat_tree", k=4)
    args = {"src": np.array([0, 1]), "dst": np.array([2, 3])}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        route(topology, **args)


def test_fabric_solution_is_certified_max_min() -> None:
    topology = build_topology("meta_ai_zone", racks_per_pod=4, pods=3, ctsw_per_pod=4)
    rng = np.random.default_rng(0)
    src = rng.integers(0, topology.n_hosts, 500)
    dst = rng.integers(0, topology.n_hosts, 500)
    for mode in ROUTING_MODES:
        routes = route(topology, src, dst, mode=mode, qps_per_connection=2)
        rates = max_min_rates(routes.incidence, topology.capacity_gbps)
        assert max_min_certificate_ok(routes.incidence, topology.capacity_gbps, rates)
