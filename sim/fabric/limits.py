"""The largest fabric and traffic Surplus accepts, and how their size is estimated.

Think of a removals firm quoting a job from the inventory before sending a lorry:
every number a user can type into FABRIC.yaml or FLOWS.csv has a range no real
fabric leaves, and beyond the ranges, a topology or a traffic file whose *size*
would not fit in memory or finish in reasonable time is refused from its
fields alone, before anything big is built.

Per-field ranges (the ``MAX_*`` and ``MIN_*`` constants) are those of the
hardware: switch radix, NIC speed, buffer sizes, DCQCN settings. The size rules
are:

* a topology: its hosts and directed links, computed arithmetically from the
  fields (:func:`topology_size`, the same formulas the builders use), at most
  :data:`MAX_HOSTS` and :data:`MAX_LINKS`. A build costs about
  :data:`BYTES_PER_LINK` per link and :data:`BYTES_PER_NODE` per node (names
  included), so the largest accepted topology takes a few hundred MB and a few
  seconds to compile;
* a fabric run (``surplus fabric``): its sub-flows, the entries of their
  routes' incidence matrix, and its *epochs* (one rate solve each time a flow
  starts or ends) times the sub-flows active in each (*flow-epochs*), from
  which :func:`estimate_run` predicts memory and time; at most
  :data:`MAX_RUN_BYTES` and :data:`MAX_RUN_SECONDS`.

The run estimate is a model, not a bound: see :func:`estimate_run` for how it
counts epochs and where it is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.fabric.paths import (
    CLASS_CROSS_POD,
    CLASS_LOCAL,
    CLASS_SAME_LEAF,
    CLASS_SAME_POD,
    flow_class,
)

__all__ = [
    "BYTES_PER_LINK",
    "BYTES_PER_NODE",
    "MAX_BUFFER_BYTES",
    "MAX_BUFFER_KB",
    "MAX_FAT_TREE_K",
    "MAX_FLOWS",
    "MAX_FLOWS_FILE_BYTES",
    "MAX_FLOW_BYTES",
    "MAX_GPUS_PER_NODE",
    "MAX_HEADER_BYTES",
    "MAX_HOSTS",
    "MAX_LATENCY_SAMPLES",
    "MAX_LINKS",
    "MAX_LINK_GBPS",
    "MAX_MTU_BYTES",
    "MAX_OVERSUBSCRIPTION",
    "MAX_PROP_DELAY_US",
    "MAX_RUN_BYTES",
    "MAX_RUN_SECONDS",
    "MAX_START_US",
    "MAX_SWITCH_PORTS",
    "MIN_LINK_GBPS",
    "MIN_OVERSUBSCRIPTION",
    "RunEstimate",
    "TopologySize",
    "estimate_run",
    "topology_size",
]

# --------------------------------------------------------------------------- per-field ranges

MAX_SWITCH_PORTS = 512
"""Most ports of one switch: a 51.2 Tb/s chip (Tomahawk 5 class, the largest shipping) split
into 100G ports. Bounds every count that is some switch's fan-out: hosts per leaf, leaves and
spines of a leaf-spine, racks, pods, CTSWs and ATSWs, rail groups."""

MAX_GPUS_PER_NODE = 576
"""Most GPUs behind one NVLink domain (a topology "node"): NVIDIA's announced Rubin Ultra
NVL576; shipping servers have 8 (HGX) to 72 (GB200 NVL72)."""

MAX_HOSTS = 262_144
"""Most hosts (NICs) of a topology: 2**18, twice Meta's 131K-GPU layout (43 pods of 3,072)
and above any single training fabric in the public record."""

MAX_LINKS = 2_097_152
"""Most directed links of a topology (2**21): about 120 MB of link arrays; Meta's 131K-GPU
layout has 533,888, a k = 100 fat tree 1,500,000."""

MAX_FAT_TREE_K = 100
"""Largest fat-tree radix within :data:`MAX_HOSTS`: k = 100 has 250,000 hosts (k**3/4)."""

MIN_LINK_GBPS = 1.0
"""Slowest link: 1 Gb/s Ethernet; AI fabrics run 100 to 800 Gb/s."""

MAX_LINK_GBPS = 3200.0
"""Fastest link: 3.2 Tb/s, the next Ethernet step after 1.6T; nothing faster exists."""

MIN_OVERSUBSCRIPTION = 0.01
"""Lowest oversubscription: uplinks a hundred times the downlinks (1 is non-blocking)."""

MAX_OVERSUBSCRIPTION = 64.0
"""Highest oversubscription: 64:1. Meta's ATSW layer is 7:1; past 64:1 a tier is no longer a
fabric but a bottleneck, and uplink speeds reach the precision floor of the rate solver."""

MAX_PROP_DELAY_US = 1000.0
"""Longest per-link propagation delay: 1 ms, 200 km of fibre at 5 us/km (a campus link is
a few us)."""

MAX_BUFFER_BYTES = 16_000_000_000
"""Largest per-port buffer: 16 GB, all the HBM of a deep-buffer (Jericho class) switch."""

MAX_BUFFER_KB = MAX_BUFFER_BYTES / 1000
"""The same in KB (1 KB = 1000 bytes): the bound of every queue threshold (PFC, ECN, credits)."""

MAX_MTU_BYTES = 65_535
"""Largest MTU: the largest IP packet; jumbo Ethernet frames top out at about 9,216 bytes."""

MAX_HEADER_BYTES = 1024
"""Most bytes a packet may carry on the wire beyond its payload: 1 KB, ten times a RoCEv2
packet's headers and framing (82 bytes) and more than any stack of tunnel headers."""

MAX_FLOW_BYTES = 1_000_000_000_000
"""Largest flow (one message of FLOWS.csv): 1 TB, 80 s alone on a 100 Gb/s link; a
training cluster's largest transfers (checkpoints) are split far finer."""

MAX_START_US = 86_400_000_000.0
"""Latest flow start: one day in microseconds. A fabric run covers microseconds to seconds
of traffic; a day keeps float64 time steps below 20 ps, finer than one packet at 3.2 Tb/s."""

MAX_FLOWS = 10_000_000
"""Most rows of FLOWS.csv (about 320 MB as arrays), as many as a generator writes."""

MAX_LATENCY_SAMPLES = 1_000_000
"""Most messages sampled for a latency distribution: a few hundred bytes each, ~100 MB;
P99.9 needs ~10,000."""

MAX_FLOWS_FILE_BYTES = 100 * MAX_FLOWS
"""Largest FLOWS.csv read: 100 bytes per row for :data:`MAX_FLOWS` rows (1 GB)."""

# --------------------------------------------------------------------------- topology size

BYTES_PER_LINK = 60
"""Memory of one directed link in a compiled topology (seven arrays), measured."""

BYTES_PER_NODE = 300
"""Memory of one node in a compiled topology, its name string included, measured."""


@dataclass(frozen=True)
class TopologySize:
    """How big a topology is, from its fields alone.

    Attributes:
        kind: The topology kind.
        n_hosts: Hosts (NICs).
        n_switches: Switches of all tiers.
        n_links: Directed links.
        hosts_formula: How ``n_hosts`` comes from the fields, e.g. ``"8 GPUs x 2 nodes"``.
    """

    kind: str
    n_hosts: int
    n_switches: int
    n_links: int
    hosts_formula: str

    @property
    def memory_bytes(self) -> int:
        """Estimated memory of the compiled topology."""
        return BYTES_PER_LINK * self.n_links + BYTES_PER_NODE * (self.n_hosts + self.n_switches)

    def problem(self) -> str | None:
        """Why this topology is too big to build, or ``None`` if it is not."""
        if self.n_hosts <= MAX_HOSTS and self.n_links <= MAX_LINKS:
            return None
        return (
            f"a {self.kind} of {self.hosts_formula}: {_n(self.n_hosts)} hosts, "
            f"{_n(self.n_links)} links (~{_bytes(self.memory_bytes)}); at most {MAX_HOSTS:,} "
            f"hosts, {MAX_LINKS:,} links"
        )


def _clos(
    kind: str,
    n_hosts: int,
    pods: int,
    leaves_per_pod: int,
    aggs_per_pod: int,
    cores_per_plane: int,
    formula: str,
) -> TopologySize:
    leaves = pods * leaves_per_pod
    aggs = pods * aggs_per_pod
    links = 2 * n_hosts + 2 * leaves * aggs_per_pod + 2 * aggs * cores_per_plane
    return TopologySize(
        kind, n_hosts, leaves + aggs + aggs_per_pod * cores_per_plane, links, formula
    )


def topology_size(kind: str, params: dict[str, Any]) -> TopologySize:
    """Hosts, switches and links of a topology, computed from its parameters, not built.

    Python integers do not overflow, so any counts give exact sizes.

    Args:
        kind: A topology kind (``leaf_spine``, ``fat_tree``, ``rail_optimized``,
            ``meta_ai_zone``).
        params: Its count parameters, as the builder takes them (defaults are
            not filled in here: pass every count).

    Returns:
        The sizes, and how the host count comes from the fields.

    Raises:
        ValueError: If the kind is unknown.
    """
    p = {name: int(value) for name, value in params.items() if _is_count(value)}
    if kind == "leaf_spine":
        hpl, leaves, spines = p["hosts_per_leaf"], p["leaves"], p["spines"]
        return _clos(
            kind, hpl * leaves, 1, leaves, spines, 0, f"{_n(hpl)} hosts x {_n(leaves)} leaves"
        )
    if kind == "fat_tree":
        k = p["k"]
        half = k // 2
        return _clos(kind, k * half * half, k, half, half, half, f"k={_n(k)}")
    if kind == "rail_optimized":
        gpn, npg, groups, spines = (
            p["gpus_per_node"],
            p["nodes_per_group"],
            p["groups"],
            p["spines"],
        )
        return _clos(
            kind,
            gpn * npg * groups,
            1,
            groups * gpn,
            spines,
            0,
            f"{_n(gpn)} GPUs x {_n(npg)} nodes x {_n(groups)} groups",
        )
    if kind == "meta_ai_zone":
        gpn, npr, rpp, pods = (
            p["gpus_per_node"],
            p["nodes_per_rack"],
            p["racks_per_pod"],
            p["pods"],
        )
        return _clos(
            kind,
            gpn * npr * rpp * pods,
            pods,
            rpp,
            p["ctsw_per_pod"],
            p["atsw_per_plane"],
            f"{_n(gpn)} GPUs x {_n(npr)} nodes x {_n(rpp)} racks x {_n(pods)} pods",
        )
    raise ValueError(f"unknown topology kind {kind!r}")


def _n(count: int) -> str:
    """A count for a message: ``262,144``, or ``2.5e+89`` past a quadrillion."""
    return f"{count:,}" if count < 10**15 else f"{float(count):.3g}"


def _is_count(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _bytes(n: float) -> str:
    """``n`` bytes as a short decimal figure: ``"1.2 GB"``."""
    if n >= 1e15:
        return f"{n:.2g} B"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


# --------------------------------------------------------------------------- run size

MAX_RUN_BYTES = 4e9
"""Most memory a fabric run may be estimated to need (4 GB)."""

MAX_RUN_SECONDS = 1800.0
"""Longest a fabric run may be estimated to take: 30 minutes on one core."""

_BYTES_PER_ENTRY = 200
"""Peak memory per incidence entry over a run (the matrix, its transposes and active
slices), measured at 80 to 160 bytes."""

_BYTES_PER_SUBFLOW = 400
"""Peak memory per sub-flow (some forty float64 and int64 per-sub-flow arrays)."""

_SECONDS_PER_EPOCH = {"ideal": 0.5e-3, "roce": 0.8e-3, "backpressure": 1.5e-3}
"""Fixed cost of one epoch on a small topology, measured (lower ends)."""

_SECONDS_PER_LINK_EPOCH = 3e-8
"""Cost of one epoch per directed link of the topology (per-link arrays), measured."""

_SECONDS_PER_FLOW_EPOCH = {"ideal": 2e-6, "roce": 2e-6, "backpressure": 7e-6}
"""Cost of one active sub-flow in one epoch, measured (lower ends)."""

_SECONDS_PER_BURST = 15e-3
"""Cost of the DCQCN transients traced where flows start at line rate, per start time."""

_SECONDS_PER_PATH_CHOICE = 5e-9
"""Cost of weighing one candidate path for one adaptive-routing chunk, measured (4 to 11 ns)."""


@dataclass(frozen=True)
class RunEstimate:
    """The predicted size of a fabric run.

    Attributes:
        flows: Flows of the traffic.
        sub_flows: Rows of the incidence matrix (flows times queue pairs).
        incidence_entries: Stored entries of the sub-flow x link incidence.
        epochs: Rate solves (each start or end of a flow at a new instant).
        flow_epochs: Sub-flows active summed over the epochs.
        memory_bytes: Estimated peak memory.
        seconds: Estimated run time on one core.
    """

    flows: int
    sub_flows: int
    incidence_entries: int
    epochs: int
    flow_epochs: int
    memory_bytes: float
    seconds: float

    def problem(self) -> str | None:
        """Why this run is too big, or ``None``."""
        if self.memory_bytes > MAX_RUN_BYTES:
            return (
                f"{self.flows:,} flows on this fabric need ~{_bytes(self.memory_bytes)} "
                f"({self.incidence_entries:,} route entries); at most "
                f"{_bytes(MAX_RUN_BYTES)} are supported: use fewer flows or queue pairs"
            )
        if self.seconds > MAX_RUN_SECONDS:
            return (
                f"{self.flows:,} flows on this fabric need ~{self.flow_epochs:.2g} flow-epochs "
                f"over ~{self.epochs:,} epochs (~{_duration(self.seconds)}); at most "
                f"~{_duration(MAX_RUN_SECONDS)} is supported: use fewer or less overlapping flows"
            )
        return None


def _duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:,.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _segmented_cummax(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` restarting where ``segment`` (non-decreasing) changes.

    Works on ranks, so it is exact for any floats: ranks offset by ``segment * n``
    never mix across segments.
    """
    n = values.size
    order = np.argsort(values, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    offset = segment.astype(np.int64) * n
    best = np.maximum.accumulate(offset + rank) - offset
    return values[order[best]]


def _fifo_finish_us(
    host: np.ndarray, peer: np.ndarray, start_us: np.ndarray, work_us: np.ndarray
) -> np.ndarray:
    """When each flow would end if its host's NIC served flows one group at a time.

    Flows of one host with the same peer, start and size form a group that ends
    together (fair sharing treats them alike); groups are served first come,
    first served at the NIC's line rate. Vectorised: one sort, segmented sums.
    """
    n = host.size
    order = np.lexsort((work_us, peer, start_us, host))
    h, o, s, w = host[order], peer[order], start_us[order], work_us[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (h[1:] != h[:-1]) | (s[1:] != s[:-1]) | (o[1:] != o[:-1]) | (w[1:] != w[:-1])
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    group_work = np.add.reduceat(w, first)
    group_start, group_host = s[first], h[first]
    new_host = np.ones(first.size, dtype=bool)
    new_host[1:] = group_host[1:] != group_host[:-1]
    segment = np.cumsum(new_host) - 1
    done = np.cumsum(group_work)
    done -= (done - group_work)[np.flatnonzero(new_host)][segment]  # restart at each host
    slack = group_start - (done - group_work)
    finish_sorted = (done + _segmented_cummax(slack, segment))[group]
    finish = np.empty(n)
    finish[order] = finish_sorted
    return finish


def _epoch_counts(
    src: np.ndarray, dst: np.ndarray, start_us: np.ndarray, work_us: np.ndarray
) -> tuple[int, int]:
    """Estimated epochs and flow-epochs: flows end when both their NICs have served them."""
    end_us = np.maximum(
        _fifo_finish_us(src, dst, start_us, work_us), _fifo_finish_us(dst, src, start_us, work_us)
    )
    events = np.unique(np.concatenate([start_us, end_us]))
    spans = np.searchsorted(events, end_us) - np.searchsorted(events, start_us)
    return int(events.size), int(np.maximum(spans, 1).sum())


def estimate_run(
    topology: Any,
    transport: Any,
    src: np.ndarray,
    dst: np.ndarray,
    start_us: np.ndarray,
    size_bytes: np.ndarray,
) -> RunEstimate:
    """Predict the memory and time of :func:`sim.fabric.flows.simulate_flows`, cheaply.

    Memory: every sub-flow's route entries are counted exactly from its flow
    class (same leaf, same pod, across pods) and the routing mode (one path,
    adaptive chunks, or spraying over every path), at :data:`_BYTES_PER_ENTRY`
    each; adaptive routing also holds a wave of candidate-path loads.

    Time: each epoch costs a fixed part (and a part per link of the
    topology) plus a part per active sub-flow, measured per transport at the
    lower end of what was seen, so that only clearly too big runs are
    refused; RoCE with DCQCN adds the burst transients traced at each start.
    If even every sub-flow active in every epoch (one epoch per start and per
    end) fits the budget, that upper bound is the estimate. Otherwise each
    flow's end is estimated as the time both its NICs have served everything
    queued before it, first come first served, flows with the same peer,
    start and size ending together, and epochs and flow-epochs are counted
    from those ends. Against measured runs on a k = 4 fat tree, flow-epochs
    come out exact for random traffic all at once and for random-size
    incasts, 0.6 to 0.9 of the measured count for Poisson and staggered
    arrivals on the ideal and InfiniBand transports, but only 0.13 for
    heavily overlapping staggered RoCE traffic and 0.3 for an equal-size
    permutation all at once (ECMP collisions keep flows active longer than
    their NICs alone would), and 8 times too many for an equal-size incast
    (fair sharing ends together flows that first come first served orders).
    Network contention is not modelled: the estimate refuses what cannot
    finish, it does not promise what will.

    Args:
        topology: The compiled topology.
        transport: The ``transport`` section of the fabric.
        src: Source host per flow.
        dst: Destination host per flow.
        start_us: Start time per flow.
        size_bytes: Size per flow.

    Returns:
        The estimate; :meth:`RunEstimate.problem` says whether it is too big.
    """
    n_flows = int(src.size)
    lay = topology.layout
    a_n, j_n = lay.aggs_per_pod, lay.cores_per_plane
    kind = transport.kind
    queue_pairs = int(transport.qps_per_connection) if kind == "roce" else 1
    chunks = 1
    if kind == "infiniband" and transport.adaptive_routing:
        chunks = int(transport.adaptive_chunks)
    rate_model = transport.rate_model
    mode = rate_model if rate_model in ("backpressure", "ideal") else "roce"
    classes = np.bincount(flow_class(topology, src, dst), minlength=4) * queue_pairs
    if kind == "ideal":
        per_class = {CLASS_SAME_POD: 2 + 2 * a_n, CLASS_CROSS_POD: 2 + 2 * a_n + 2 * a_n * j_n}
    else:
        per_class = {
            CLASS_SAME_POD: 2 + 2 * min(chunks, a_n),
            CLASS_CROSS_POD: 2 + 2 * min(chunks, a_n) + 2 * min(chunks, a_n * j_n),
        }
    per_class[CLASS_LOCAL], per_class[CLASS_SAME_LEAF] = 0, 2
    entries = int(sum(int(classes[c]) * per_class[c] for c in per_class))
    sub_flows = n_flows * queue_pairs
    memory = _BYTES_PER_ENTRY * entries + _BYTES_PER_SUBFLOW * sub_flows
    seconds = 0.0
    if chunks > 1:
        choosing = int(classes[CLASS_SAME_POD] + classes[CLASS_CROSS_POD]) * chunks
        paths = a_n * max(j_n, 1)
        wave = min(choosing, lay.n_leaves)
        memory += 3 * 8 * sub_flows * chunks * 6 + 6 * 8 * wave * paths
        seconds += _SECONDS_PER_PATH_CHOICE * choosing * paths

    starts = int(np.unique(start_us).size) if n_flows else 0
    per_epoch = _SECONDS_PER_EPOCH[mode] + _SECONDS_PER_LINK_EPOCH * topology.n_links
    per_flow_epoch = _SECONDS_PER_FLOW_EPOCH[mode]
    bursts = _SECONDS_PER_BURST * starts if rate_model == "dcqcn" else 0.0
    # Every sub-flow in every epoch: if even that fits, there is nothing to estimate.
    epochs = starts + sub_flows
    flow_epochs = sub_flows * epochs
    if seconds + bursts + epochs * per_epoch + flow_epochs * per_flow_epoch > MAX_RUN_SECONDS:
        nic_gbps = np.asarray(topology.nic_gbps, dtype=np.float64)
        work_us = np.asarray(size_bytes, dtype=np.float64) * 8.0 / (nic_gbps[src] * 1e3)
        epochs, flow_epochs = _epoch_counts(
            np.asarray(src), np.asarray(dst), np.asarray(start_us, dtype=np.float64), work_us
        )
        flow_epochs *= queue_pairs
    seconds += bursts + epochs * per_epoch + flow_epochs * per_flow_epoch
    return RunEstimate(
        n_flows, sub_flows, entries, int(epochs), int(flow_epochs), float(memory), seconds
    )
