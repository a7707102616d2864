"""The largest fabric and traffic Surplus accepts, and how a topology's size is estimated.

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
* a fabric run (``surplus fabric``): estimated from its flows before anything
  is routed, in :mod:`sim.fabric.run_size`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
    "MAX_START_US",
    "MAX_SWITCH_PORTS",
    "MIN_LINK_GBPS",
    "MIN_OVERSUBSCRIPTION",
    "TopologySize",
    "format_bytes",
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
            f"{_n(self.n_links)} links (~{format_bytes(self.memory_bytes)}); at most {MAX_HOSTS:,} "
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


def format_bytes(n: float) -> str:
    """``n`` bytes as a short decimal figure: ``"1.2 GB"``."""
    if n >= 1e15:
        return f"{n:.2g} B"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"
