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

Every builder checks its parameters against the ranges of
:mod:`sim.fabric.limits` (switch counts up to 512, link speeds from 1 to
3,200 Gb/s, ...) and, from the counts alone, refuses a topology too big to
build (:func:`size_problem`) before any array is allocated.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.fabric.limits import (
    MAX_BUFFER_BYTES,
    MAX_GPUS_PER_NODE,
    MAX_LINK_GBPS,
    MAX_MTU_BYTES,
    MAX_OVERSUBSCRIPTION,
    MAX_PROP_DELAY_US,
    MAX_SWITCH_PORTS,
    MIN_LINK_GBPS,
    MIN_OVERSUBSCRIPTION,
    topology_size,
)

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


def _readonly(array: np.ndarray) -> np.ndarray:
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
        kind: The registered kind that built it (a key of :data:`TOPOLOGIES`).
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


# --------------------------------------------------------------------------- validation


def _int_param(
    kind: str, name: str, value: Any, *, minimum: int = 1, maximum: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{kind}: parameter '{name}' must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{kind}: parameter '{name}' must be >= {minimum}, got {value:.6g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{kind}: parameter '{name}' must be <= {maximum:,}, got {value:.6g}")
    return int(value)


def _float_param(
    kind: str,
    name: str,
    value: Any,
    *,
    maximum: float,
    minimum: float = 0.0,
    allow_zero: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{kind}: parameter '{name}' must be a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{kind}: parameter '{name}' must be a finite number, got {value!r}")
    if number < minimum or (number == 0 and not allow_zero):
        bound = f">= {minimum:g}" if minimum > 0 or allow_zero else "> 0"
        raise ValueError(f"{kind}: parameter '{name}' must be {bound}, got {value!r}")
    if number > maximum:
        raise ValueError(f"{kind}: parameter '{name}' must be <= {maximum:g}, got {value!r}")
    return number


def _count(kind: str, name: str, value: Any, maximum: int = MAX_SWITCH_PORTS) -> int:
    """A switch or host count: an integer from 1 to ``maximum``."""
    return _int_param(kind, name, value, maximum=maximum)


def _oversubscription(kind: str, value: Any) -> float:
    return _float_param(
        kind,
        "oversubscription",
        value,
        minimum=MIN_OVERSUBSCRIPTION,
        maximum=MAX_OVERSUBSCRIPTION,
    )


def _common(
    kind: str, link_gbps: Any, prop_delay_us: Any, buffer_bytes: Any, mtu_bytes: Any
) -> tuple[float, float, int, int]:
    return (
        _float_param(kind, "link_gbps", link_gbps, minimum=MIN_LINK_GBPS, maximum=MAX_LINK_GBPS),
        _float_param(
            kind, "prop_delay_us", prop_delay_us, maximum=MAX_PROP_DELAY_US, allow_zero=True
        ),
        _int_param(kind, "buffer_bytes", buffer_bytes, minimum=0, maximum=MAX_BUFFER_BYTES),
        _int_param(kind, "mtu_bytes", mtu_bytes, minimum=64, maximum=MAX_MTU_BYTES),
    )


def size_problem(kind: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """Why a topology would be too big to build, from its parameters alone.

    The sizes come from :func:`sim.fabric.limits.topology_size` (arithmetic,
    nothing is allocated); the blamed parameter is the count furthest above
    its builder default, the one a user most likely mistyped.

    Args:
        kind: A key of :data:`TOPOLOGIES`.
        params: The builder's count parameters (others are ignored), each a
            valid count.

    Returns:
        ``(parameter, message)``, or ``None`` if the topology fits within
        :data:`sim.fabric.limits.MAX_HOSTS` hosts and
        :data:`sim.fabric.limits.MAX_LINKS` links.
    """
    signature = inspect.signature(TOPOLOGIES[kind]).parameters
    defaults = {name: p.default for name, p in signature.items() if type(p.default) is int}
    counts = {name: params.get(name, default) for name, default in defaults.items()}
    counts = {k: v for k, v in counts.items() if k not in ("buffer_bytes", "mtu_bytes")}
    problem = topology_size(kind, counts).problem()
    if problem is None:
        return None
    blamed = max(counts, key=lambda name: counts[name] / defaults[name])
    return blamed, problem


def _check_size(kind: str, **counts: int) -> None:
    """Refuse a topology too big to build before any of its arrays exists."""
    found = size_problem(kind, counts)
    if found is not None:
        raise ValueError(f"{kind}: parameter '{found[0]}': {found[1]}")


# --------------------------------------------------------------------------- compilation


def _compile(
    *,
    kind: str,
    params: dict[str, Any],
    layout: ClosLayout,
    host_gbps: float,
    leaf_agg_gbps: float,
    agg_core_gbps: float,
    prop_delay_us: float,
    buffer_bytes: int,
    mtu_bytes: int,
    tier_names: tuple[str, ...],
    node_tier_names: tuple[str, ...],
    node_names: list[str],
    hosts_per_node: int,
) -> Topology:
    """Lay out the six link blocks of a folded Clos as arrays."""
    lay = layout
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
        link_src=_readonly(link_src),
        link_dst=_readonly(link_dst),
        capacity_gbps=_readonly(capacity.astype(np.float64)),
        prop_delay_us=_readonly(np.full(n_links, prop_delay_us)),
        buffer_bytes=_readonly(np.full(n_links, buffer_bytes, dtype=np.int64)),
        link_tier=_readonly(tier),
        tier_names=tier_names,
        link_is_up=_readonly(is_up),
        reverse_link=_readonly(reverse),
        node_tier=_readonly(node_tier),
        node_tier_names=node_tier_names,
        node_names=tuple(node_names),
        mtu_bytes=mtu_bytes,
        node_of_host=_readonly(hosts // hosts_per_node),
        hosts_per_node=hosts_per_node,
        layout=lay,
    )


# --------------------------------------------------------------------------- kinds


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
) -> Topology:
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
        The compiled topology.
    """
    kind = "leaf_spine"
    hpl = _count(kind, "hosts_per_leaf", hosts_per_leaf)
    n_leaves = _count(kind, "leaves", leaves)
    n_spines = _count(kind, "spines", spines)
    over = _oversubscription(kind, oversubscription)
    gbps, delay, buf, mtu = _common(kind, link_gbps, prop_delay_us, buffer_bytes, mtu_bytes)
    _check_size(kind, hosts_per_leaf=hpl, leaves=n_leaves, spines=n_spines)
    n_hosts = hpl * n_leaves
    layout = ClosLayout(
        n_hosts=n_hosts,
        n_pods=1,
        leaves_per_pod=n_leaves,
        aggs_per_pod=n_spines,
        cores_per_plane=0,
        leaf_of_host=_readonly(np.arange(n_hosts, dtype=np.int64) // hpl),
    )
    names = [f"host{h}" for h in range(n_hosts)]
    names += [f"leaf{i}" for i in range(n_leaves)]
    names += [f"spine{s}" for s in range(n_spines)]
    return _compile(
        kind=kind,
        params={
            "hosts_per_leaf": hpl,
            "leaves": n_leaves,
            "spines": n_spines,
            "oversubscription": over,
            "link_gbps": gbps,
            "prop_delay_us": delay,
            "buffer_bytes": buf,
            "mtu_bytes": mtu,
        },
        layout=layout,
        host_gbps=gbps,
        leaf_agg_gbps=hpl * gbps / (over * n_spines),
        agg_core_gbps=0.0,
        prop_delay_us=delay,
        buffer_bytes=buf,
        mtu_bytes=mtu,
        tier_names=("host-leaf", "leaf-spine"),
        node_tier_names=("host", "leaf", "spine"),
        node_names=names,
        hosts_per_node=1,
    )


def fat_tree(
    k: int = 8,
    *,
    link_gbps: float = 100.0,
    prop_delay_us: float = DEFAULT_PROP_DELAY_US,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    mtu_bytes: int = DEFAULT_MTU_BYTES,
) -> Topology:
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
        The compiled topology.
    """
    kind = "fat_tree"
    radix = _int_param(kind, "k", k, minimum=2)
    if radix % 2:
        raise ValueError(f"{kind}: parameter 'k' must be even, got {radix:.6g}")
    gbps, delay, buf, mtu = _common(kind, link_gbps, prop_delay_us, buffer_bytes, mtu_bytes)
    _check_size(kind, k=radix)
    half = radix // 2
    n_hosts = radix * half * half
    layout = ClosLayout(
        n_hosts=n_hosts,
        n_pods=radix,
        leaves_per_pod=half,
        aggs_per_pod=half,
        cores_per_plane=half,
        leaf_of_host=_readonly(np.arange(n_hosts, dtype=np.int64) // half),
    )
    names = [f"host{h}" for h in range(n_hosts)]
    names += [f"edge{p}-{e}" for p in range(radix) for e in range(half)]
    names += [f"agg{p}-{a}" for p in range(radix) for a in range(half)]
    names += [f"core{a}-{j}" for a in range(half) for j in range(half)]
    return _compile(
        kind=kind,
        params={
            "k": radix,
            "link_gbps": gbps,
            "prop_delay_us": delay,
            "buffer_bytes": buf,
            "mtu_bytes": mtu,
        },
        layout=layout,
        host_gbps=gbps,
        leaf_agg_gbps=gbps,
        agg_core_gbps=gbps,
        prop_delay_us=delay,
        buffer_bytes=buf,
        mtu_bytes=mtu,
        tier_names=("host-edge", "edge-aggregation", "aggregation-core"),
        node_tier_names=("host", "edge", "aggregation", "core"),
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
) -> Topology:
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
    (:meth:`Topology.same_node`).

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
        The compiled topology.
    """
    kind = "rail_optimized"
    gpn = _count(kind, "gpus_per_node", gpus_per_node, MAX_GPUS_PER_NODE)
    npg = _count(kind, "nodes_per_group", nodes_per_group)
    n_groups = _count(kind, "groups", groups)
    n_spines = _count(kind, "spines", spines)
    over = _oversubscription(kind, oversubscription)
    gbps, delay, buf, mtu = _common(kind, link_gbps, prop_delay_us, buffer_bytes, mtu_bytes)
    _check_size(kind, gpus_per_node=gpn, nodes_per_group=npg, groups=n_groups, spines=n_spines)
    n_hosts = gpn * npg * n_groups
    hosts = np.arange(n_hosts, dtype=np.int64)
    leaf_of_host = (hosts // (gpn * npg)) * gpn + hosts % gpn
    layout = ClosLayout(
        n_hosts=n_hosts,
        n_pods=1,
        leaves_per_pod=n_groups * gpn,
        aggs_per_pod=n_spines,
        cores_per_plane=0,
        leaf_of_host=_readonly(leaf_of_host),
    )
    names = [
        f"group{g}.node{n}.gpu{r}" for g in range(n_groups) for n in range(npg) for r in range(gpn)
    ]
    names += [f"group{g}.rail{r}" for g in range(n_groups) for r in range(gpn)]
    names += [f"spine{s}" for s in range(n_spines)]
    return _compile(
        kind=kind,
        params={
            "gpus_per_node": gpn,
            "nodes_per_group": npg,
            "groups": n_groups,
            "spines": n_spines,
            "oversubscription": over,
            "link_gbps": gbps,
            "prop_delay_us": delay,
            "buffer_bytes": buf,
            "mtu_bytes": mtu,
        },
        layout=layout,
        host_gbps=gbps,
        leaf_agg_gbps=npg * gbps / (over * n_spines),
        agg_core_gbps=0.0,
        prop_delay_us=delay,
        buffer_bytes=buf,
        mtu_bytes=mtu,
        tier_names=("gpu-rail", "rail-spine"),
        node_tier_names=("gpu", "rail", "spine"),
        node_names=names,
        hosts_per_node=gpn,
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
) -> Topology:
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
        The compiled topology.
    """
    kind = "meta_ai_zone"
    gpn = _count(kind, "gpus_per_node", gpus_per_node, MAX_GPUS_PER_NODE)
    npr = _count(kind, "nodes_per_rack", nodes_per_rack)
    rpp = _count(kind, "racks_per_pod", racks_per_pod)
    n_pods = _count(kind, "pods", pods)
    n_ctsw = _count(kind, "ctsw_per_pod", ctsw_per_pod)
    n_atsw = _count(kind, "atsw_per_plane", atsw_per_plane)
    over = _oversubscription(kind, oversubscription)
    gbps, delay, buf, mtu = _common(kind, link_gbps, prop_delay_us, buffer_bytes, mtu_bytes)
    _check_size(
        kind,
        gpus_per_node=gpn,
        nodes_per_rack=npr,
        racks_per_pod=rpp,
        pods=n_pods,
        ctsw_per_pod=n_ctsw,
        atsw_per_plane=n_atsw,
    )
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
        leaf_of_host=_readonly(hosts // gpus_per_rack),
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
    return _compile(
        kind=kind,
        params={
            "gpus_per_node": gpn,
            "nodes_per_rack": npr,
            "racks_per_pod": rpp,
            "pods": n_pods,
            "ctsw_per_pod": n_ctsw,
            "atsw_per_plane": n_atsw,
            "oversubscription": over,
            "link_gbps": gbps,
            "prop_delay_us": delay,
            "buffer_bytes": buf,
            "mtu_bytes": mtu,
        },
        layout=layout,
        host_gbps=gbps,
        leaf_agg_gbps=gpus_per_rack * gbps / n_ctsw,
        agg_core_gbps=pod_gpus * gbps / (over * n_ctsw * n_atsw),
        prop_delay_us=delay,
        buffer_bytes=buf,
        mtu_bytes=mtu,
        tier_names=("gpu-rtsw", "rtsw-ctsw", "ctsw-atsw"),
        node_tier_names=("gpu", "rtsw", "ctsw", "atsw"),
        node_names=names,
        hosts_per_node=gpn,
    )


TOPOLOGIES: dict[str, Callable[..., Topology]] = {
    "leaf_spine": leaf_spine,
    "fat_tree": fat_tree,
    "rail_optimized": rail_optimized,
    "meta_ai_zone": meta_ai_zone,
}
"""Topology builders by the scenario's ``topology.kind``."""


def build_topology(kind: str, *, check: bool = False, **params: Any) -> Topology:
    """Build and compile a topology of a registered kind.

    Args:
        kind: A key of :data:`TOPOLOGIES`.
        check: Also run :func:`check_topology` (networkx). The test suite
            checks every builder this way; runs skip it, as networkx alone
            takes longer to import than most fabric runs take.
        **params: Parameters of the kind's builder.

    Returns:
        The compiled topology.

    Raises:
        ValueError: Unknown kind (the message lists the valid ones), unknown
            parameter, a bad parameter value, or a topology too big to build
            (the message names the parameter, and the sizes).
    """
    if kind not in TOPOLOGIES:
        raise ValueError(
            f"unknown topology kind {kind!r}; valid kinds: {', '.join(sorted(TOPOLOGIES))}"
        )
    builder = TOPOLOGIES[kind]
    accepted = inspect.signature(builder).parameters
    for name in sorted(params):
        if name not in accepted:
            raise ValueError(
                f"{kind}: unknown parameter '{name}'; valid parameters: {', '.join(accepted)}"
            )
    topology = builder(**params)
    if check:
        check_topology(topology)
    return topology
