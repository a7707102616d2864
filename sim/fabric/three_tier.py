"""Three-tier folded Clos kinds: pods of leaves and aggregation switches under a core.

``fat_tree`` is the k-ary fat tree, non-blocking at every tier;
``meta_ai_zone`` is Meta's 24,576-GPU training zone, non-blocking within a
pod and oversubscribed between pods. In both, aggregation switch ``a`` of
every pod connects to the core switches of plane ``a``.

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


def fat_tree(
    k: int = 8,
    *,
    link_gbps: float = 100.0,
    prop_delay_us: float = DEFAULT_PROP_DELAY_US,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    mtu_bytes: int = DEFAULT_MTU_BYTES,
) -> ClosWiring:
    """The k-ary three-tier fat tree (Al-Fares et al., SIGCOMM 2008).

    ``k`` pods, each with ``k/2`` edge and ``k/2`` aggregation switches;
    ``k/2`` hosts per edge (``k**3/4`` hosts); ``(k/2)**2`` core switches.
    Aggregation switch ``a`` of every pod connects to cores
    ``a*k/2 .. a*k/2 + k/2 - 1``. All links run at ``link_gbps``: non-blocking.

    Args:
        k: Switch radix; even, at least 2.
        link_gbps: Speed of every link in Gb/s.
        prop_delay_us: Propagation delay of every link in microseconds.
        buffer_bytes: Buffer per egress port in bytes.
        mtu_bytes: MTU in bytes.

    Returns:
        The wiring, from checked parameters.
    """
    half = k // 2
    n_hosts = k * half * half
    layout = ClosLayout(
        n_hosts=n_hosts,
        n_pods=k,
        leaves_per_pod=half,
        aggs_per_pod=half,
        cores_per_plane=half,
        leaf_of_host=readonly(np.arange(n_hosts, dtype=np.int64) // half),
    )
    names = [f"host{h}" for h in range(n_hosts)]
    names += [f"edge{p}-{e}" for p in range(k) for e in range(half)]
    names += [f"agg{p}-{a}" for p in range(k) for a in range(half)]
    names += [f"core{a}-{j}" for a in range(half) for j in range(half)]
    return ClosWiring(
        layout=layout,
        leaf_agg_gbps=link_gbps,
        agg_core_gbps=link_gbps,
        tier_names=("host-edge", "edge-aggregation", "aggregation-core"),
        node_tier_names=("host", "edge", "aggregation", "core"),
        node_names=names,
        hosts_per_node=1,
    )


def meta_ai_zone(
    gpus_per_node: int = 8,
    nodes_per_rack: int = 2,
    racks_per_pod: int = 192,
    pods: int = 8,
    ctsw_per_pod: int = 16,
    atsw_per_plane: int = 4,
    *,
    oversubscription: float = 7.0,
    link_gbps: float = 400.0,
    prop_delay_us: float = DEFAULT_PROP_DELAY_US,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    mtu_bytes: int = DEFAULT_MTU_BYTES,
) -> ClosWiring:
    """Meta's 24,576-GPU training cluster (Llama 3 paper; Meta's RoCE paper, SIGCOMM 2024).

    Defaults reproduce the production layout: 8 GPUs per Grand Teton node,
    one 400 Gb/s NIC per GPU, two nodes (16 GPUs) per rack on one RTSW;
    192 racks make a non-blocking pod of 3,072 GPUs through CTSWs; 8 pods are
    joined by ATSWs at 1:7 oversubscription: 24,576 GPUs.

    Switch counts (the published figures do not fix them; these defaults are
    ours): ``ctsw_per_pod = 16`` so that each RTSW has one uplink per CTSW at
    the NIC speed (16 x 400G down, 16 x 400G up). In general every RTSW has one
    uplink to every CTSW of its pod of speed
    ``gpus_per_rack * link_gbps / ctsw_per_pod``, so the pod is always
    non-blocking. ATSWs are arranged in ``ctsw_per_pod`` planes of
    ``atsw_per_plane`` switches (default 4, so 64 ATSWs): CTSW number ``a`` of
    every pod connects to every ATSW of plane ``a`` with one (bundled) link of
    speed ``pod_gpus * link_gbps / (oversubscription * ctsw_per_pod *
    atsw_per_plane)``, so a pod's uplink capacity is its GPU capacity over
    ``oversubscription`` (1:7 means uplink : downlink = 1 : 7). A bundle of
    parallel cables is modelled as one link of their summed speed.

    Args:
        gpus_per_node: GPUs (and 1 NIC each) per server.
        nodes_per_rack: Servers per rack (one RTSW each rack).
        racks_per_pod: Racks per pod.
        pods: Number of pods.
        ctsw_per_pod: Cluster switches per pod (and ATSW planes).
        atsw_per_plane: Aggregator switches per plane.
        oversubscription: Pod GPU capacity over pod CTSW-to-ATSW capacity.
        link_gbps: GPU NIC speed in Gb/s.
        prop_delay_us: Propagation delay of every link in microseconds.
        buffer_bytes: Buffer per egress port in bytes.
        mtu_bytes: MTU in bytes.

    Returns:
        The wiring, from checked parameters.
    """
    gpn, npr, rpp, n_pods = gpus_per_node, nodes_per_rack, racks_per_pod, pods
    n_ctsw, n_atsw = ctsw_per_pod, atsw_per_plane
    gpus_per_rack = gpn * npr
    pod_gpus = gpus_per_rack * rpp
    n_hosts = pod_gpus * n_pods
    hosts = np.arange(n_hosts, dtype=np.int64)
    layout = ClosLayout(
        n_hosts=n_hosts,
        n_pods=n_pods,
        leaves_per_pod=rpp,
        aggs_per_pod=n_ctsw,
        cores_per_plane=n_atsw,
        leaf_of_host=readonly(hosts // gpus_per_rack),
    )
    names = [
        f"pod{p}.rack{r}.node{n}.gpu{g}"
        for p in range(n_pods)
        for r in range(rpp)
        for n in range(npr)
        for g in range(gpn)
    ]
    names += [f"pod{p}.rtsw{r}" for p in range(n_pods) for r in range(rpp)]
    names += [f"pod{p}.ctsw{a}" for p in range(n_pods) for a in range(n_ctsw)]
    names += [f"plane{a}.atsw{j}" for a in range(n_ctsw) for j in range(n_atsw)]
    return ClosWiring(
        layout=layout,
        leaf_agg_gbps=gpus_per_rack * link_gbps / n_ctsw,
        agg_core_gbps=pod_gpus * link_gbps / (oversubscription * n_ctsw * n_atsw),
        tier_names=("gpu-rtsw", "rtsw-ctsw", "ctsw-atsw"),
        node_tier_names=("gpu", "rtsw", "ctsw", "atsw"),
        node_names=names,
        hosts_per_node=gpn,
    )
