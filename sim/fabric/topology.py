"""Data-centre fabric topologies, compiled to flat numpy arrays for the solver.

Every fabric Surplus models is a *folded Clos*: hosts (one per NIC) hang off
leaf switches; leaves of a pod connect to every aggregation switch of that pod;
aggregation switch number ``a`` of every pod connects to the core switches of
"plane" ``a``. Think of it as a family tree of switch layers where any two hosts
meet at their lowest common ancestor layer, and every path goes up to that
layer and straight back down. The four kinds map onto it like this:

==================  ==============  ==================  ===============
kind                leaf            aggregation         core
==================  ==============  ==================  ===============
``leaf_spine``      leaf            spine (one pod)     --
``fat_tree``        edge            aggregation         core
``rail_optimized``  rail switch     spine (one pod)     --
``meta_ai_zone``    RTSW (rack)     CTSW (cluster)      ATSW (aggregator)
==================  ==============  ==================  ===============

Because of that shared structure, a topology compiles to a :class:`ClosLayout`
(a handful of integers plus the host-to-leaf map) and to per-link arrays whose
order follows fixed arithmetic, so :mod:`sim.fabric.routing` turns a choice of
aggregation/core switch straight into link ids without graph searches.

Nodes are numbered hosts first (``0 .. n_hosts-1``, the public numbering used
by traffic files), then leaves, aggregation and core switches. Every cable is
two directed links. Links come in six blocks, in this order::

    host_up    host h -> its leaf                       id = h
    host_down  leaf -> host h                           id = n_hosts + h
    leaf_up    leaf l -> aggregation a of its pod       id = leaf_up0 + l*A + a
    agg_down   aggregation a -> leaf l                  id = agg_down0 + l*A + a
    agg_up     aggregation (p, a) -> core (a, j)        id = agg_up0 + (p*A + a)*J + j
    core_down  core (a, j) -> aggregation (p, a)        id = core_down0 + (p*A + a)*J + j

with ``A`` aggregation switches per pod and ``J`` core switches per plane.

networkx is used only to *check* a compiled topology (connectivity, degrees)
when it is small enough for that to be cheap; the arrays are built directly so
Meta's 24,576-GPU zone compiles in well under a second.

This module holds the compiled form only. The kinds' builders (the wiring of
each family, :mod:`sim.fabric.two_tier` and :mod:`sim.fabric.three_tier`) and
the registry that checks their parameters and builds them
(:mod:`sim.fabric.topology_kinds`) live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import networkx as nx

DEFAULT_PROP_DELAY_US = 0.5
"""Per-link propagation delay: about 100 m of fibre at 5 ns/m."""

DEFAULT_BUFFER_BYTES = 2 * 1024 * 1024
"""Per-port buffer: a 64 MiB shared-buffer switch chip (Tomahawk-3 class) split over 32 ports."""

DEFAULT_MTU_BYTES = 4096
"""The usual RoCEv2 / InfiniBand MTU for AI fabrics."""

TIER_HOST, TIER_LEAF, TIER_AGG, TIER_CORE = 0, 1, 2, 3
"""Values of :attr:`Topology.node_tier`."""

LINK_TIER_HOST, LINK_TIER_LEAF_AGG, LINK_TIER_AGG_CORE = 0, 1, 2
"""Values of :attr:`Topology.link_tier`: host-leaf, leaf-aggregation, aggregation-core."""


def readonly(array: np.ndarray) -> np.ndarray:
    """The array itself, made read-only: arrays the fabric hands out or caches are never written."""
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ClosLayout:
    """The arithmetic shape of a folded Clos: where every node and link id lives.

    Attributes:
        n_hosts: Number of hosts (NICs).
        n_pods: Number of pods (1 for two-tier fabrics).
        leaves_per_pod: Leaf switches per pod.
        aggs_per_pod: Aggregation switches per pod (``A``); plane count.
        cores_per_plane: Core switches per plane (``J``); 0 for two-tier fabrics.
        leaf_of_host: Leaf index (``0 .. n_leaves-1``) of every host.
    """

    n_hosts: int
    n_pods: int
    leaves_per_pod: int
    aggs_per_pod: int
    cores_per_plane: int
    leaf_of_host: np.ndarray

    @property
    def n_leaves(self) -> int:
        """Number of leaf switches."""
        return self.n_pods * self.leaves_per_pod

    @property
    def n_aggs(self) -> int:
        """Number of aggregation switches."""
        return self.n_pods * self.aggs_per_pod

    @property
    def n_cores(self) -> int:
        """Number of core switches (``A * J``)."""
        return self.aggs_per_pod * self.cores_per_plane

    @property
    def n_switches(self) -> int:
        """Number of switches of all tiers."""
        return self.n_leaves + self.n_aggs + self.n_cores

    # Node ids.
    @property
    def leaf_node0(self) -> int:
        """Node id of leaf 0."""
        return self.n_hosts

    @property
    def agg_node0(self) -> int:
        """Node id of aggregation switch (pod 0, index 0)."""
        return self.n_hosts + self.n_leaves

    @property
    def core_node0(self) -> int:
        """Node id of core switch (plane 0, index 0)."""
        return self.agg_node0 + self.n_aggs

    # Link block offsets.
    @property
    def host_down0(self) -> int:
        """First link id of the host_down block."""
        return self.n_hosts

    @property
    def leaf_up0(self) -> int:
        """First link id of the leaf_up block."""
        return 2 * self.n_hosts

    @property
    def agg_down0(self) -> int:
        """First link id of the agg_down block."""
        return self.leaf_up0 + self.n_leaves * self.aggs_per_pod

    @property
    def agg_up0(self) -> int:
        """First link id of the agg_up block."""
        return self.agg_down0 + self.n_leaves * self.aggs_per_pod

    @property
    def core_down0(self) -> int:
        """First link id of the core_down block."""
        return self.agg_up0 + self.n_aggs * self.cores_per_plane

    @property
    def n_links(self) -> int:
        """Number of directed links."""
        return self.core_down0 + self.n_aggs * self.cores_per_plane

    def pod_of_leaf(self, leaf: np.ndarray) -> np.ndarray:
        """Pod index of each leaf index."""
        return np.asarray(leaf) // self.leaves_per_pod

    def leaf_up_link(self, leaf: np.ndarray, agg: np.ndarray) -> np.ndarray:
        """Link id of leaf ``leaf`` -> aggregation ``agg`` of the same pod."""
        return self.leaf_up0 + np.asarray(leaf) * self.aggs_per_pod + np.asarray(agg)

    def agg_down_link(self, leaf: np.ndarray, agg: np.ndarray) -> np.ndarray:
        """Link id of aggregation ``agg`` -> leaf ``leaf`` of the same pod."""
        return self.agg_down0 + np.asarray(leaf) * self.aggs_per_pod + np.asarray(agg)

    def agg_up_link(self, pod: np.ndarray, agg: np.ndarray, core: np.ndarray) -> np.ndarray:
        """Link id of aggregation (``pod``, ``agg``) -> core (``agg``, ``core``)."""
        return (
            self.agg_up0
            + (np.asarray(pod) * self.aggs_per_pod + np.asarray(agg)) * self.cores_per_plane
            + np.asarray(core)
        )

    def core_down_link(self, pod: np.ndarray, agg: np.ndarray, core: np.ndarray) -> np.ndarray:
        """Link id of core (``agg``, ``core``) -> aggregation (``pod``, ``agg``)."""
        return (
            self.core_down0
            + (np.asarray(pod) * self.aggs_per_pod + np.asarray(agg)) * self.cores_per_plane
            + np.asarray(core)
        )


@dataclass(frozen=True, eq=False)
class Topology:
    """A compiled fabric: the arrays the routing and rate solver work on.

    All arrays are read-only. Links are directed; ``reverse_link[i]`` is the
    other direction of the same cable. Port buffers belong to the egress port
    at ``link_src``.

    Attributes:
        kind: The registered kind that built it (a key of
            :data:`sim.fabric.topology_kinds.TOPOLOGIES`).
        params: The resolved build parameters, defaults included.
        n_hosts: Number of hosts (one per NIC; for GPU kinds one per GPU).
        n_switches: Number of switches.
        link_src: Source node of each directed link.
        link_dst: Destination node of each directed link.
        capacity_gbps: Capacity of each link in Gb/s.
        prop_delay_us: Propagation delay of each link in microseconds.
        buffer_bytes: Buffer of each link's egress port in bytes.
        link_tier: Tier of each link (index into ``tier_names``).
        tier_names: Name of each link tier, e.g. ``("host-edge", ...)``.
        link_is_up: True for links going away from the hosts.
        reverse_link: Id of the opposite direction of each link.
        node_tier: Tier of each node (index into ``node_tier_names``).
        node_tier_names: Name of each node tier, e.g. ``("gpu", "rtsw", ...)``.
        node_names: Human-readable name of every node.
        mtu_bytes: Maximum transmission unit in bytes.
        node_of_host: Server (node) index of every host; hosts of one server
            talk over NVLink, never over the fabric.
        hosts_per_node: Hosts (GPUs / NICs) per server.
        layout: The Clos arithmetic used by routing.
    """

    kind: str
    params: dict[str, Any]
    n_hosts: int
    n_switches: int
    link_src: np.ndarray
    link_dst: np.ndarray
    capacity_gbps: np.ndarray
    prop_delay_us: np.ndarray
    buffer_bytes: np.ndarray
    link_tier: np.ndarray
    tier_names: tuple[str, ...]
    link_is_up: np.ndarray
    reverse_link: np.ndarray
    node_tier: np.ndarray
    node_tier_names: tuple[str, ...]
    node_names: tuple[str, ...]
    mtu_bytes: int
    node_of_host: np.ndarray
    hosts_per_node: int
    layout: ClosLayout

    @property
    def n_nodes(self) -> int:
        """Number of nodes (hosts and switches)."""
        return self.n_hosts + self.n_switches

    @property
    def n_links(self) -> int:
        """Number of directed links."""
        return int(self.link_src.size)

    @property
    def n_servers(self) -> int:
        """Number of servers (GPU nodes); equals ``n_hosts`` for single-NIC hosts."""
        return self.n_hosts // self.hosts_per_node

    @property
    def nic_gbps(self) -> np.ndarray:
        """Line rate of every host's NIC in Gb/s (the host_up links)."""
        return self.capacity_gbps[: self.n_hosts]

    def same_node(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether hosts ``a`` and ``b`` sit in the same server (NVLink, no fabric).

        Args:
            a: Host indices.
            b: Host indices, broadcastable against ``a``.

        Returns:
            Boolean array, True where both hosts share a server.
        """
        return self.node_of_host[np.asarray(a)] == self.node_of_host[np.asarray(b)]

    def hosts_of_node(self, node: int) -> np.ndarray:
        """Host indices of server ``node`` (consecutive by construction)."""
        if not 0 <= node < self.n_servers:
            raise ValueError(f"node must be in [0, {self.n_servers}), got {node}")
        start = node * self.hosts_per_node
        return np.arange(start, start + self.hosts_per_node)

    def links_of_tier(self, tier_name: str, *, up: bool | None = None) -> np.ndarray:
        """Link ids of one tier, optionally only one direction.

        Args:
            tier_name: One of :attr:`tier_names`.
            up: True for host-outward links only, False for host-inward only.

        Returns:
            Sorted link ids.
        """
        if tier_name not in self.tier_names:
            raise ValueError(f"tier_name must be one of {list(self.tier_names)}, got {tier_name!r}")
        mask = self.link_tier == self.tier_names.index(tier_name)
        if up is not None:
            mask &= self.link_is_up == up
        return np.flatnonzero(mask)

    def to_networkx(self) -> nx.Graph:  # networkx is imported here: it is slow to import
        """An undirected networkx graph, one edge per cable, for checks and drawing."""
        import networkx as nx

        graph = nx.Graph()
        for node, (name, tier) in enumerate(zip(self.node_names, self.node_tier, strict=True)):
            graph.add_node(node, name=name, tier=self.node_tier_names[int(tier)])
        up = np.flatnonzero(self.link_is_up)
        graph.add_edges_from(
            (
                int(self.link_src[i]),
                int(self.link_dst[i]),
                {"capacity_gbps": float(self.capacity_gbps[i]), "link": int(i)},
            )
            for i in up
        )
        return graph


def check_topology(topology: Topology) -> None:
    """Check a compiled topology with networkx: cables paired, connected, hosts single-homed.

    Args:
        topology: The topology to check.

    Raises:
        ValueError: If a check fails; the message says which.
    """
    t = topology
    rev = t.reverse_link
    if not (
        np.array_equal(rev[rev], np.arange(t.n_links))
        and np.array_equal(t.link_src[rev], t.link_dst)
        and np.array_equal(t.capacity_gbps[rev], t.capacity_gbps)
        and np.array_equal(t.link_is_up[rev], ~t.link_is_up)
    ):
        raise ValueError(f"{t.kind}: links are not paired into symmetric cables")
    graph = t.to_networkx()
    if graph.number_of_edges() != t.n_links // 2:
        raise ValueError(f"{t.kind}: parallel cables between the same two nodes")
    import networkx as nx

    if not nx.is_connected(graph):
        raise ValueError(f"{t.kind}: topology is not connected")
    host_degrees = np.array([graph.degree(h) for h in range(t.n_hosts)])
    if np.any(host_degrees != 1):
        raise ValueError(f"{t.kind}: every host must have exactly one NIC link")
    switch_tiers = t.node_tier[t.n_hosts :]
    if np.any(switch_tiers == TIER_HOST):
        raise ValueError(f"{t.kind}: switch nodes labelled as hosts")


@dataclass(frozen=True, eq=False)
class ClosWiring:
    """How one kind wires its folded Clos: what a builder decides from its parameters.

    The parameters every kind shares (``link_gbps`` for the host links,
    ``prop_delay_us``, ``buffer_bytes``, ``mtu_bytes``) are applied by
    :func:`compile_clos` to every link alike.

    Attributes:
        layout: The Clos arithmetic (counts and the host-to-leaf map).
        leaf_agg_gbps: Speed of every leaf-aggregation link in Gb/s.
        agg_core_gbps: Speed of every aggregation-core link in Gb/s (0 without a core).
        tier_names: Name of each link tier, host side first.
        node_tier_names: Name of each node tier, hosts first.
        node_names: Human-readable name of every node, in node id order.
        hosts_per_node: Hosts (GPUs / NICs) per server.
    """

    layout: ClosLayout
    leaf_agg_gbps: float
    agg_core_gbps: float
    tier_names: tuple[str, ...]
    node_tier_names: tuple[str, ...]
    node_names: list[str]
    hosts_per_node: int


def compile_clos(kind: str, params: dict[str, Any], wiring: ClosWiring) -> Topology:
    """Lay out the six link blocks of a folded Clos as arrays.

    Args:
        kind: The registered kind being built.
        params: Its checked parameters, defaults included; ``link_gbps`` is the
            host links' speed, ``prop_delay_us``, ``buffer_bytes`` and
            ``mtu_bytes`` apply to every link.
        wiring: The kind's wiring.

    Returns:
        The compiled topology.
    """
    lay = wiring.layout
    host_gbps = params["link_gbps"]
    leaf_agg_gbps, agg_core_gbps = wiring.leaf_agg_gbps, wiring.agg_core_gbps
    n_h, n_l, a_n, j_n, p_n = (
        lay.n_hosts,
        lay.n_leaves,
        lay.aggs_per_pod,
        lay.cores_per_plane,
        lay.n_pods,
    )
    hosts = np.arange(n_h, dtype=np.int64)
    host_leaf_node = lay.leaf_node0 + lay.leaf_of_host.astype(np.int64)

    # leaf_up / agg_down: (leaf, agg) pairs in row-major order.
    leaf_idx = np.repeat(np.arange(n_l, dtype=np.int64), a_n)
    agg_local = np.tile(np.arange(a_n, dtype=np.int64), n_l)
    leaf_nodes = lay.leaf_node0 + leaf_idx
    agg_nodes_la = lay.agg_node0 + (leaf_idx // lay.leaves_per_pod) * a_n + agg_local

    # agg_up / core_down: (pod, agg, core) triples in row-major order.
    n_ac = p_n * a_n * j_n
    pac = np.arange(n_ac, dtype=np.int64)
    pod_agg = pac // j_n if j_n else pac
    core_j = pac % j_n if j_n else pac
    agg_nodes_ac = lay.agg_node0 + pod_agg
    core_nodes = lay.core_node0 + (pod_agg % a_n) * j_n + core_j

    link_src = np.concatenate(
        [hosts, host_leaf_node, leaf_nodes, agg_nodes_la, agg_nodes_ac, core_nodes]
    )
    link_dst = np.concatenate(
        [host_leaf_node, hosts, agg_nodes_la, leaf_nodes, core_nodes, agg_nodes_ac]
    )
    n_la = n_l * a_n
    sizes = (n_h, n_h, n_la, n_la, n_ac, n_ac)
    capacity = np.repeat(
        np.array(
            [host_gbps, host_gbps, leaf_agg_gbps, leaf_agg_gbps, agg_core_gbps, agg_core_gbps]
        ),
        sizes,
    )
    tier = np.repeat(np.array([0, 0, 1, 1, 2, 2], dtype=np.int8), sizes)
    is_up = np.repeat(np.array([True, False, True, False, True, False]), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    partner = np.array([1, 0, 3, 2, 5, 4])
    block = np.repeat(np.arange(6), sizes)
    reverse = np.arange(starts[-1], dtype=np.int64) - starts[block] + starts[partner[block]]
    n_links = int(starts[-1])
    assert n_links == lay.n_links

    node_tier = np.repeat(
        np.array([TIER_HOST, TIER_LEAF, TIER_AGG, TIER_CORE], dtype=np.int8),
        [n_h, n_l, lay.n_aggs, lay.n_cores],
    )
    return Topology(
        kind=kind,
        params=dict(params),
        n_hosts=n_h,
        n_switches=lay.n_switches,
        link_src=readonly(link_src),
        link_dst=readonly(link_dst),
        capacity_gbps=readonly(capacity.astype(np.float64)),
        prop_delay_us=readonly(np.full(n_links, params["prop_delay_us"])),
        buffer_bytes=readonly(np.full(n_links, params["buffer_bytes"], dtype=np.int64)),
        link_tier=readonly(tier),
        tier_names=wiring.tier_names,
        link_is_up=readonly(is_up),
        reverse_link=readonly(reverse),
        node_tier=readonly(node_tier),
        node_tier_names=wiring.node_tier_names,
        node_names=tuple(wiring.node_names),
        mtu_bytes=params["mtu_bytes"],
        node_of_host=readonly(hosts // wiring.hosts_per_node),
        hosts_per_node=wiring.hosts_per_node,
        layout=lay,
    )
