"""Topology builders: sizes, connectivity, oversubscription as built, bad parameters."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings

from sim.fabric.topology import Topology, check_topology
from sim.fabric.topology_kinds import TOPOLOGIES, build_topology
from tests.fabric.strategies import small_topologies


def tier_capacity_gbps(topology: Topology, tier_name: str, *, up: bool) -> float:
    return float(topology.capacity_gbps[topology.links_of_tier(tier_name, up=up)].sum())


@pytest.mark.parametrize("k", [2, 4, 6, 8, 16])
def test_fat_tree_sizes(k: int) -> None:
    topology = build_topology("fat_tree", k=k)
    assert topology.n_hosts == k**3 // 4
    assert topology.layout.n_pods == k
    assert topology.layout.n_cores == (k // 2) ** 2
    assert topology.n_switches == k * k + (k // 2) ** 2  # k pods x k switches, plus cores
    assert topology.n_links == 2 * 3 * k**3 // 4  # three cable layers of k^3/4 cables


def test_fat_tree_is_non_blocking() -> None:
    topology = build_topology("fat_tree", k=8, link_gbps=100.0)
    hosts = tier_capacity_gbps(topology, "host-edge", up=True)
    assert tier_capacity_gbps(topology, "edge-aggregation", up=True) == hosts
    assert tier_capacity_gbps(topology, "aggregation-core", up=True) == hosts
    assert np.all(topology.capacity_gbps == 100.0)


@settings(max_examples=30, deadline=None)
@given(small_topologies())
def test_small_topologies_check_out(topology: Topology) -> None:
    check_topology(topology)
    graph = topology.to_networkx()
    assert nx.is_connected(graph)
    assert all(graph.degree(h) == 1 for h in range(topology.n_hosts))
    assert graph.number_of_edges() == topology.n_links // 2
    # Hosts come first, switches after, as the public numbering promises.
    assert np.all(topology.node_tier[: topology.n_hosts] == 0)
    assert np.all(topology.node_tier[topology.n_hosts :] > 0)
    assert len(topology.node_names) == topology.n_nodes == len(set(topology.node_names))
    np.testing.assert_array_equal(
        topology.link_src[: topology.n_hosts], np.arange(topology.n_hosts)
    )


@pytest.mark.parametrize("oversubscription", [1.0, 2.0, 3.0])
def test_leaf_spine_oversubscription_as_built(oversubscription: float) -> None:
    topology = build_topology(
        "leaf_spine",
        hosts_per_leaf=12,
        leaves=4,
        spines=4,
        link_gbps=100.0,
        oversubscription=oversubscription,
    )
    assert topology.n_hosts == 48
    up = topology.links_of_tier("leaf-spine", up=True)
    down = topology.links_of_tier("host-leaf", up=False)
    for leaf in range(4):
        leaf_node = topology.layout.leaf_node0 + leaf
        uplink = topology.capacity_gbps[up[topology.link_src[up] == leaf_node]].sum()
        downlink = topology.capacity_gbps[down[topology.link_src[down] == leaf_node]].sum()
        assert uplink / downlink == pytest.approx(1 / oversubscription)
    # One uplink per spine per leaf: the ratio is realised by uplink speed.
    assert up.size == 4 * 4
    assert np.allclose(topology.capacity_gbps[up], 12 * 100.0 / (oversubscription * 4))


def test_rail_optimized_rails_and_nodes() -> None:
    topology = build_topology(
        "rail_optimized", gpus_per_node=4, nodes_per_group=3, groups=2, spines=2
    )
    assert topology.n_hosts == 24
    assert topology.n_servers == 6
    assert topology.hosts_per_node == 4
    leaf = topology.layout.leaf_of_host
    # GPU r of every node of a group hangs off rail switch r of that group.
    assert leaf[0] == leaf[4] == leaf[8] != leaf[12]
    assert leaf[1] == leaf[5] != leaf[0]
    assert len(set(leaf.tolist())) == 2 * 4
    assert topology.same_node(np.array([0, 0, 3]), np.array([3, 4, 3])).tolist() == [
        True,
        False,
        True,
    ]
    np.testing.assert_array_equal(topology.hosts_of_node(2), [8, 9, 10, 11])
    assert topology.node_names[5] == "group0.node1.gpu1"
    with pytest.raises(ValueError, match="node"):
        topology.hosts_of_node(6)


def test_meta_ai_zone_full_size() -> None:
    topology = build_topology("meta_ai_zone")
    assert topology.n_hosts == 24_576
    assert topology.hosts_per_node == 8
    assert topology.n_servers == 3_072
    lay = topology.layout
    assert lay.n_pods == 8
    assert lay.n_leaves == 8 * 192  # one RTSW per rack of two nodes
    assert lay.n_hosts // lay.n_pods == 3_072
    assert lay.aggs_per_pod == 16
    assert lay.n_cores == 64
    assert np.all(topology.nic_gbps == 400.0)
    assert topology.node_names[0] == "pod0.rack0.node0.gpu0"
    assert topology.node_names[-1] == "plane15.atsw3"


def test_meta_ai_zone_pod_non_blocking_and_atsw_one_to_seven() -> None:
    topology = build_topology("meta_ai_zone")
    lay = topology.layout
    gpu = tier_capacity_gbps(topology, "gpu-rtsw", up=True)
    assert tier_capacity_gbps(topology, "rtsw-ctsw", up=True) == pytest.approx(gpu)
    assert tier_capacity_gbps(topology, "ctsw-atsw", up=True) == pytest.approx(gpu / 7)
    # Per pod too: pod 0's CTSW-to-ATSW capacity is 1/7 of its 3,072 x 400G.
    up = topology.links_of_tier("ctsw-atsw", up=True)
    pod0_ctsw = lay.agg_node0 + np.arange(lay.aggs_per_pod)
    pod0 = topology.capacity_gbps[up[np.isin(topology.link_src[up], pod0_ctsw)]].sum()
    assert pod0 == pytest.approx(3_072 * 400.0 / 7)
    # Each RTSW: 16 GPUs x 400G down, 16 x 400G up.
    rtsw_up = topology.links_of_tier("rtsw-ctsw", up=True)
    assert np.all(topology.capacity_gbps[rtsw_up] == 400.0)
    assert np.count_nonzero(topology.link_src[rtsw_up] == lay.leaf_node0) == 16


def test_meta_ai_zone_small_version() -> None:
    topology = build_topology(
        "meta_ai_zone",
        gpus_per_node=2,
        nodes_per_rack=2,
        racks_per_pod=3,
        pods=2,
        ctsw_per_pod=2,
        atsw_per_plane=2,
        oversubscription=3.0,
        link_gbps=100.0,
    )
    assert topology.n_hosts == 2 * 2 * 3 * 2
    check_topology(topology)
    gpu = tier_capacity_gbps(topology, "gpu-rtsw", up=True)
    assert tier_capacity_gbps(topology, "ctsw-atsw", up=True) == pytest.approx(gpu / 3)
    assert topology.same_node(np.array([0]), np.array([1]))[0]
    assert not topology.same_node(np.array([1]), np.array([2]))[0]


def test_common_parameters_are_applied() -> None:
    topology = build_topology(
        "fat_tree", k=4, link_gbps=25.0, prop_delay_us=1.5, buffer_bytes=12_345, mtu_bytes=1024
    )
    assert np.all(topology.capacity_gbps == 25.0)
    assert np.all(topology.prop_delay_us == 1.5)
    assert np.all(topology.buffer_bytes == 12_345)
    assert topology.mtu_bytes == 1024
    assert topology.params["k"] == 4
    assert topology.params["link_gbps"] == 25.0


def test_links_pair_into_cables() -> None:
    topology = build_topology("meta_ai_zone", racks_per_pod=4, pods=2)
    rev = topology.reverse_link
    np.testing.assert_array_equal(rev[rev], np.arange(topology.n_links))
    np.testing.assert_array_equal(topology.link_src[rev], topology.link_dst)
    assert np.all(topology.link_is_up != topology.link_is_up[rev])


def test_arrays_are_read_only_and_builds_deterministic() -> None:
    a = build_topology("rail_optimized")
    b = build_topology("rail_optimized")
    with pytest.raises(ValueError):
        a.capacity_gbps[0] = 1.0
    for name in ("link_src", "link_dst", "capacity_gbps", "link_tier", "node_of_host"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.node_names == b.node_names


def test_registry_lists_every_kind() -> None:
    assert sorted(TOPOLOGIES) == ["fat_tree", "leaf_spine", "meta_ai_zone", "rail_optimized"]
    for kind in sorted(TOPOLOGIES):
        if kind != "meta_ai_zone":
            assert build_topology(kind).kind == kind


@pytest.mark.parametrize(
    ("kind", "params", "name"),
    [
        ("fat_tree", {"k": 5}, "'k'"),
        ("fat_tree", {"k": 0}, "'k'"),
        ("fat_tree", {"k": 4.0}, "'k'"),
        ("fat_tree", {"k": True}, "'k'"),
        ("fat_tree", {"link_gbps": -100.0}, "'link_gbps'"),
        ("fat_tree", {"link_gbps": float("nan")}, "'link_gbps'"),
        ("fat_tree", {"prop_delay_us": -1.0}, "'prop_delay_us'"),
        ("fat_tree", {"buffer_bytes": -1}, "'buffer_bytes'"),
        ("fat_tree", {"mtu_bytes": 10}, "'mtu_bytes'"),
        ("fat_tree", {"radix": 4}, "'radix'"),
        ("leaf_spine", {"oversubscription": 0.0}, "'oversubscription'"),
        ("leaf_spine", {"spines": 0}, "'spines'"),
        ("leaf_spine", {"hosts_per_leaf": "8"}, "'hosts_per_leaf'"),
        ("rail_optimized", {"gpus_per_node": 0}, "'gpus_per_node'"),
        ("meta_ai_zone", {"pods": -1}, "'pods'"),
        ("meta_ai_zone", {"oversubscription": -7.0}, "'oversubscription'"),
        ("meta_ai_zone", {"atsw_per_plane": 0}, "'atsw_per_plane'"),
    ],
)
def test_bad_parameters_name_the_parameter(kind: str, params: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        build_topology(kind, **params)


def test_unknown_kind_lists_valid_kinds() -> None:
    with pytest.raises(ValueError, match="fat_tree, leaf_spine, meta_ai_zone, rail_optimized"):
        build_topology("torus")
