"""Two-tier folded Clos kinds: one pod of leaves under spines, no core.

``leaf_spine`` hangs single-NIC hosts off leaves; ``rail_optimized`` hangs
multi-GPU servers off rail switches, GPU ``r`` of every server of a group on
rail ``r``. Both realise oversubscription by the speed of the leaf uplinks,
never by their count: every leaf has exactly one uplink to every spine.

Each builder's signature is the one statement of its parameters and
defaults; :func:`sim.fabric.topology_kinds.build_topology` checks them against
the ranges of :mod:`sim.fabric.limits` and calls the builder with the checked
values. A builder returns the kind's :class:`~sim.fabric.topology.ClosWiring`,
which :func:`~sim.fabric.topology.compile_clos` lays out as arrays.
"""

from __future__ import annotations

import numpy as np

from sim.fabric.topology import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_MTU_BYTES,
    DEFAULT_PROP_DELAY_US,
    ClosLayout,
    ClosWiring,
    readonly,
)


def leaf_spine(
    hosts_per_leaf: int = 16,
    leaves: int = 8,
    spines: int = 4,
    *,
    oversubscription: float = 1.0,
    link_gbps: float = 100.0,
    prop_delay_us: float = DEFAULT_PROP_DELAY_US,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    mtu_bytes: int = DEFAULT_MTU_BYTES,
) -> ClosWiring:
    """Two-tier leaf-spine: every leaf has one uplink to every spine.

    Oversubscription is realised by **uplink speed**, not count: each leaf has
    exactly one uplink per spine, of speed
    ``hosts_per_leaf * link_gbps / (oversubscription * spines)``, so a leaf's
    uplink capacity is its downlink capacity divided by ``oversubscription``
    (1.0 is non-blocking, 3.0 is 3:1).

    Args:
        hosts_per_leaf: Hosts under each leaf.
        leaves: Number of leaf switches.
        spines: Number of spine switches.
        oversubscription: Leaf downlink capacity over uplink capacity.
        link_gbps: Host NIC speed in Gb/s.
        prop_delay_us: Propagation delay of every link in microseconds.
        buffer_bytes: Buffer per egress port in bytes.
        mtu_bytes: MTU in bytes.

    Returns:
        The wiring, from checked parameters.
    """
    n_hosts = hosts_per_leaf * leaves
    layout = ClosLayout(
        n_hosts=n_hosts,
        n_pods=1,
        leaves_per_pod=leaves,
        aggs_per_pod=spines,
        cores_per_plane=0,
        leaf_of_host=readonly(np.arange(n_hosts, dtype=np.int64) // hosts_per_leaf),
    )
    names = [f"host{h}" for h in range(n_hosts)]
    names += [f"leaf{i}" for i in range(leaves)]
    names += [f"spine{s}" for s in range(spines)]
    return ClosWiring(
        layout=layout,
        leaf_agg_gbps=hosts_per_leaf * link_gbps / (oversubscription * spines),
        agg_core_gbps=0.0,
        tier_names=("host-leaf", "leaf-spine"),
        node_tier_names=("host", "leaf", "spine"),
        node_names=names,
        hosts_per_node=1,
    )


def rail_optimized(
    gpus_per_node: int = 8,
    nodes_per_group: int = 16,
    groups: int = 4,
    spines: int = 8,
    *,
    oversubscription: float = 1.0,
    link_gbps: float = 400.0,
    prop_delay_us: float = DEFAULT_PROP_DELAY_US,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    mtu_bytes: int = DEFAULT_MTU_BYTES,
) -> ClosWiring:
    """Rail-optimised fabric: GPU ``r`` of every node in a group shares rail switch ``r``.

    Each GPU is one host with its own NIC; hosts are numbered
    ``(group * nodes_per_group + node) * gpus_per_node + gpu``. A group of
    ``nodes_per_group`` nodes has ``gpus_per_node`` rail switches; every rail
    switch of every group has one uplink to every spine, of speed
    ``nodes_per_group * link_gbps / (oversubscription * spines)`` (as in
    :func:`leaf_spine`, oversubscription is realised by uplink speed).
    Same-rail traffic within a group crosses one switch; cross-rail traffic
    goes through a spine (no PXN forwarding over NVLink is modelled); traffic
    between GPUs of one node uses NVLink and never touches the fabric
    (:meth:`~sim.fabric.topology.Topology.same_node`).

    Args:
        gpus_per_node: GPUs (and NICs) per server; also rails per group.
        nodes_per_group: Servers per rail group.
        groups: Number of rail groups.
        spines: Number of spine switches joining all rail switches.
        oversubscription: Rail switch downlink capacity over uplink capacity.
        link_gbps: GPU NIC speed in Gb/s.
        prop_delay_us: Propagation delay of every link in microseconds.
        buffer_bytes: Buffer per egress port in bytes.
        mtu_bytes: MTU in bytes.

    Returns:
        The wiring, from checked parameters.
    """
    gpn, npg = gpus_per_node, nodes_per_group
    n_hosts = gpn * npg * groups
    hosts = np.arange(n_hosts, dtype=np.int64)
    leaf_of_host = (hosts // (gpn * npg)) * gpn + hosts % gpn
    layout = ClosLayout(
        n_hosts=n_hosts,
        n_pods=1,
        leaves_per_pod=groups * gpn,
        aggs_per_pod=spines,
        cores_per_plane=0,
        leaf_of_host=readonly(leaf_of_host),
    )
    names = [
        f"group{g}.node{n}.gpu{r}" for g in range(groups) for n in range(npg) for r in range(gpn)
    ]
    names += [f"group{g}.rail{r}" for g in range(groups) for r in range(gpn)]
    names += [f"spine{s}" for s in range(spines)]
    return ClosWiring(
        layout=layout,
        leaf_agg_gbps=npg * link_gbps / (oversubscription * spines),
        agg_core_gbps=0.0,
        tier_names=("gpu-rail", "rail-spine"),
        node_tier_names=("gpu", "rail", "spine"),
        node_names=names,
        hosts_per_node=gpn,
    )
