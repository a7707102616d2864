"""Lossless hop-by-hop back-pressure: PFC without congestion control, and InfiniBand credits.

A fluid steady state, solved once per epoch, of what lossless switches do when
senders push at line rate:

- **Input ports served in turn.** A congested output port serves the input
  ports that feed it in turn (round robin): each input gets an equal share of
  what the port carries, and an input that brings less leaves the rest to the
  others (max-min over input ports, not over flows). The flows of one input
  are served in order (FIFO), so they share its part in proportion to what
  they bring. A host's NIC serves its own flows in turn.
- **Pause trees.** A port that drains an input more slowly than the input
  brings traffic holds that input's ingress queue at the threshold (PFC Xoff,
  or the credit buffer) and pauses the upstream link. A paused link stops
  every flow on it, whichever port they go to (head-of-line blocking), so it
  carries only what its most constrained output accepts of its mix of
  traffic; flows on it that never reach the congested port (*victims*) slow
  down as much. The port feeding a paused link is congested in turn and
  pauses its own inputs, hop by hop back to the senders.

The solver alternates a forward pass (stage by stage along the paths: every
link shares its effective capacity among its inputs, and each input's flows
keep their proportions) with an update of each link's effective capacity
from what its downstream ports accept, until neither changes. Every forward
pass respects every link's capacity, so the rates are feasible at any
iteration; at the fixed point no port sheds traffic (the network is
lossless).

A paused link ``u`` into a full pair ``(u, l)`` is capped at what makes it
bring ``l`` exactly ``l``'s level. Where ``u`` shares itself max-min among
feeders whose traffic into ``l`` is known (a NIC's own sub-flows; a switch
link's input ports, when each of the pair's sub-flows enters and leaves
``u`` on one path), the cap is found by inverting that sharing: the level
at which the feeders pass exactly the target, summed over all of ``u``'s
feeders. Elsewhere (sprayed sub-flows, trunks) it is the proportional rule
``level · capacity / offered``, which reaches the same point in more rounds.
Where many pause trees overlap, more than one set of held inputs can sustain
itself; the solver returns the one its rounds reach from line rate.

**Buffers filling.** The steady state holds every congested input's buffer
full. The flow simulator (:mod:`sim.fabric.flows`) follows the buffers as
they fill: given ``buffer_full``, only links whose ingress buffer holds its
pause threshold may be paused, and the answer says how fast each link
pair's part of a buffer fills or drains (:class:`Filling`).

Numpy passes, compiled ones for large problems
(:mod:`sim.fabric.backpressure_kernels`, the numpy passes their reference);
no SimPy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from sim.fabric.topology import Topology
from sim.fabric.trunks import Trunked, link_entries

__all__ = [
    "BackPressure",
    "Crossings",
    "Filling",
    "backpressure_rates",
    "link_crossings",
    "water_levels",
]

FREE_ROUNDS = 4
"""Forward passes per path stage in which pauses may both grow and shrink.

Pauses move one hop per pass, so a few passes per stage settle a fabric of a
few switches exactly. Where many tenants' pause trees overlap, the passes can
keep trading one bottleneck for another; after these, pauses only grow, which
settles in a few more passes and leaves every paused link paused by a port
that is full.
"""

MAX_ROUNDS = 96
"""Most forward passes of one fixed point."""

TOLERANCE = 1e-9
"""Relative change of every effective capacity below which the fixed point is reached."""

COMPILED_FROM = 20_000
"""Crossings (sub-flow or trunk, link pair) from which the compiled passes solve a problem.

Smaller problems use the numpy passes and never import numba; so do all
problems when numba is not installed.
"""


@dataclass
class BackPressure:
    """The steady state of lossless hop-by-hop back-pressure.

    Attributes:
        rates_gbps: Rate of every sub-flow.
        pause_fraction: Per link, the fraction of time it is paused by its
            downstream neighbour.
        drain_gbps: Per paused link, the rate at which the port that pauses it
            drains what the link feeds it (the link's share there; 0 for links
            never paused).
        effective_gbps: Per link, what it can carry while paused part of the time.
        full: Per link, whether its queues stay full: it carries all it can
            and its inputs bring more.
        inputs: Per link, how many upstream links feed it flows.
        filling: How the ingress buffers the crossed link pairs use fill
            and drain (see :class:`Filling`); None in the steady state (no
            ``buffer_full`` given).
        rounds: Forward passes the fixed point took.
        links: The links some sub-flow crosses (sorted ids): every other link
            is unpaused, not full, fed by nothing and at its capacity, so
            work per link can be done on these alone (None: all links).
    """

    rates_gbps: np.ndarray
    pause_fraction: np.ndarray
    drain_gbps: np.ndarray
    effective_gbps: np.ndarray
    full: np.ndarray
    inputs: np.ndarray
    filling: Filling | None
    rounds: int = 0
    links: np.ndarray | None = None


@dataclass(frozen=True)
class Filling:
    """How ingress buffers fill, per link pair ``(u, l)`` the sub-flows cross.

    What ``u`` brings the port of ``l`` beyond what that port passes on
    waits in the switch, in the ingress buffer of ``u`` (PFC counts a
    port's buffer per input). A pair whose port would pass more than ``u``
    brings drains what it holds at that headroom: ``u``'s level at a full
    port, or an even part of a port's spare capacity.

    Attributes:
        pair: Per pair, its topology-wide number (see :class:`Crossings`), sorted.
        upstream: Per pair, the link ``u``.
        downstream: Per pair, the link ``l``.
        gbps: Per pair, how fast its part of the buffer fills (negative:
            how fast it would drain).
        effective_gbps: Per link, what it carries at most (its capacity, or
            less while it is paused): the rate at which its port drains.
    """

    pair: np.ndarray
    upstream: np.ndarray
    downstream: np.ndarray
    gbps: np.ndarray
    effective_gbps: np.ndarray


@dataclass(frozen=True)
class Crossings:
    """Which sub-flow crosses which adjacent link pair, the pairs numbered by the topology.

    Pairs inside a trunk (see :mod:`sim.fabric.trunks`) are listed once per
    trunk, not once per member.

    Attributes:
        flow: Per crossing, the sub-flow (row of the incidence matrix).
        upstream: Per crossing, the link ``u``.
        pair: Per crossing, the index of its pair in ``numbers``.
        numbers: The distinct pairs crossed, as sorted topology-wide pair
            numbers (see :func:`_pair_numbers`).
        trunk, trunk_upstream, trunk_pair: The crossings inside trunks: the
            trunk, the link ``u`` and the pair's index in ``numbers``.
        weight, trunk_weight: Per crossing, the share of its sub-flow (or
            trunk) that goes from ``u`` into the pair's downstream link (see
            :func:`_crossing_weights`).
        feeder: Per crossing, the crossing of the same sub-flow into ``u``
            when the sub-flow enters ``u`` by that crossing alone and leaves
            it by this one alone (``-1`` otherwise, or where ``u`` belongs to
            a trunk).
    """

    flow: np.ndarray
    upstream: np.ndarray
    pair: np.ndarray
    numbers: np.ndarray
    trunk: np.ndarray
    trunk_upstream: np.ndarray
    trunk_pair: np.ndarray
    weight: np.ndarray
    trunk_weight: np.ndarray
    feeder: np.ndarray

    @staticmethod
    def stack(parts: list[Crossings], rows: list[int], trunks: list[int]) -> Crossings:
        """The crossings of incidence matrices stacked in order.

        Part ``i`` has ``rows[i]`` sub-flows and ``trunks[i]`` trunks. Each
        part's pairs are already numbered, so only the parts' distinct pairs
        are merged, not every crossing.
        """
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0, *rows[:-1]])
        trunk_offsets = np.cumsum([0, *trunks[:-1]])
        crossing_offsets = np.cumsum([0, *(p.flow.size for p in parts[:-1])])
        # Merge the parts' sorted numbers (a stable sort merges sorted runs).
        merged = np.sort(np.concatenate([p.numbers for p in parts]), kind="stable")
        numbers = merged[np.concatenate([[True], merged[1:] != merged[:-1]])]
        renumbered = [np.searchsorted(numbers, p.numbers) for p in parts]
        return Crossings(
            np.concatenate([p.flow + o for p, o in zip(parts, offsets, strict=True)]),
            np.concatenate([p.upstream for p in parts]),
            np.concatenate([r[p.pair] for p, r in zip(parts, renumbered, strict=True)]),
            numbers,
            np.concatenate([p.trunk + o for p, o in zip(parts, trunk_offsets, strict=True)]),
            np.concatenate([p.trunk_upstream for p in parts]),
            np.concatenate([r[p.trunk_pair] for p, r in zip(parts, renumbered, strict=True)]),
            np.concatenate([p.weight for p in parts]),
            np.concatenate([p.trunk_weight for p in parts]),
            np.concatenate(
                [
                    np.where(p.feeder >= 0, p.feeder + o, -1)
                    for p, o in zip(parts, crossing_offsets, strict=True)
                ]
            ),
        )


def _meet(
    up_owner: np.ndarray,
    up_link: np.ndarray,
    down_owner: np.ndarray,
    down_link: np.ndarray,
    topology: Topology,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of entries of one owner whose links meet: ``up`` enters the node ``down`` leaves.

    A join on (owner, node) without any link-by-link product; U-turns (a link
    and its reverse) are left out.

    Returns:
        ``(up, down)``: per pair found, the index of its upstream and of its
        downstream entry.
    """
    n_nodes = topology.n_nodes
    ends = up_owner * n_nodes + topology.link_dst[up_link]  # (owner, node a link enters)
    starts = down_owner * n_nodes + topology.link_src[down_link]  # (owner, node a link leaves)
    by_end = np.argsort(ends, kind="stable")
    sorted_ends = ends[by_end]
    first = np.searchsorted(sorted_ends, starts, side="left")
    count = np.searchsorted(sorted_ends, starts, side="right") - first
    down, at = _spans(first, count)
    up = by_end[at]
    keep = topology.reverse_link[up_link[up]] != down_link[down]
    return up[keep], down[keep]


def link_crossings(incidence: sp.csr_matrix | Trunked, topology: Topology) -> Crossings:
    """Every sub-flow's adjacent link pairs: ``u`` feeds ``l`` and the sub-flow crosses both.

    A sub-flow on one path crosses the consecutive links of its path; a
    sprayed one (adaptive routing) every pair of its links that meet at a
    switch. Found by joining each sub-flow's links on the node where one ends
    and the next begins, without forming any link-by-link product, and
    numbered from the topology. Pairs of a trunk's own links are found once
    per trunk; pairs joining a sub-flow's own links to its trunk's are its
    own. They depend on the routes alone, so a caller may keep them per job.
    """
    paths = Trunked.of(incidence)
    flow, link = paths.own_row, paths.own.indices.astype(np.int64)
    trunk, trunk_link = paths.trunk_row, paths.trunks.indices.astype(np.int64)
    share, trunk_share = paths.own.data, paths.trunks.data
    up, down = _meet(flow, link, flow, link, topology)
    entered_by, left_by = [down], [up]  # own entries each crossing enters and leaves
    flows, us, ls = [flow[down]], [link[up]], [link[down]]
    share_u, share_l = [share[up]], [share[down]]  # each entry's share of its sub-flow
    trunk_u = trunk_l = trunk_of = np.zeros(0, dtype=np.int64)
    trunk_share_u = trunk_share_l = np.zeros(0)
    if paths.n_trunks:
        member = np.flatnonzero(paths.trunk_of[flow] >= 0)  # own entries of trunk members
        owner = paths.trunk_of[flow[member]]
        # Into the trunk (a NIC link feeding the trunk's first links) and out of it.
        up, down = _meet(owner, link[member], trunk, trunk_link, topology)
        left_by.append(member[up])
        flows.append(flow[member[up]])
        us.append(link[member[up]])
        ls.append(trunk_link[down])
        share_u.append(share[member[up]])
        share_l.append(trunk_share[down])
        up, down = _meet(trunk, trunk_link, owner, link[member], topology)
        entered_by.append(member[down])
        flows.append(flow[member[down]])
        us.append(trunk_link[up])
        ls.append(link[member[down]])
        share_u.append(trunk_share[up])
        share_l.append(share[member[down]])
        up, down = _meet(trunk, trunk_link, trunk, trunk_link, topology)
        trunk_of, trunk_u, trunk_l = trunk[down], trunk_link[up], trunk_link[down]
        trunk_share_u, trunk_share_l = trunk_share[up], trunk_share[down]
    u = np.concatenate([*us, trunk_u])
    l_ = np.concatenate([*ls, trunk_l])
    _, _, in_position, pair_base, possible = _pair_numbers(topology)
    numbered = pair_base[l_] + in_position[u]
    numbers, pair = _distinct(numbered, possible)
    n_own = u.size - trunk_u.size
    flow_of = np.concatenate(flows)
    n_links = topology.n_links
    weight = _crossing_weights(
        flow_of, l_[:n_own], np.concatenate(share_u), np.concatenate(share_l), n_links
    )
    trunk_weight = _crossing_weights(trunk_of, trunk_l, trunk_share_u, trunk_share_l, n_links)
    feeder = _feeders(entered_by, left_by, link.size, n_own)
    return Crossings(
        flow_of,
        u[:n_own],
        pair[:n_own],
        numbers,
        trunk_of,
        trunk_u,
        pair[n_own:],
        weight,
        trunk_weight,
        feeder,
    )


def _distinct(key: np.ndarray, possible: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)`` for keys in ``[0, possible)``.

    Few keys are sorted; many are counted in one pass over all possible keys.
    """
    if key.size * 16 < possible:
        distinct, index = np.unique(key, return_inverse=True)
        return distinct, index.astype(np.int64)
    present = np.bincount(key, minlength=possible) > 0
    return np.flatnonzero(present), (np.cumsum(present) - 1)[key]


def _feeders(
    entered_by: list[np.ndarray], left_by: list[np.ndarray], n_entries: int, n_own: int
) -> np.ndarray:
    """Per own crossing, the one crossing into its upstream entry (see :class:`Crossings`).

    Args:
        entered_by: The own entries (sub-flow, link) that the crossings enter,
            in parts: the sub-flows' own crossings first, then those out of a
            trunk; crossings into a trunk enter none.
        left_by: Likewise the own entries they leave: own crossings, then those
            into a trunk; crossings out of a trunk leave none.
        n_entries: Own entries.
        n_own: Own crossings.
    """
    into, out_of = np.concatenate(entered_by), np.concatenate(left_by)
    n_into = np.bincount(into, minlength=n_entries)
    n_out = np.bincount(out_of, minlength=n_entries)
    crossing_into = np.full(n_entries, -1, dtype=np.int64)
    crossing_into[entered_by[0]] = np.arange(entered_by[0].size)
    feeder = np.full(n_own, -1, dtype=np.int64)
    leaves = left_by[0]
    alone = (n_into[leaves] == 1) & (n_out[leaves] == 1)
    feeder[: leaves.size] = np.where(alone, crossing_into[leaves], -1)
    return feeder


_PAIR_NUMBERS: dict[int, tuple[Topology, tuple[np.ndarray, ...]]] = {}


def _pair_numbers(topology: Topology) -> tuple[Any, ...]:
    """How the topology's possible link pairs are numbered (built once per topology).

    Pair ``(u, l)``, ``u`` one of the links into ``l``'s source, is number
    ``pair_base[l] + in_position[u]``.

    Returns:
        ``(in_order, in_first, in_position, pair_base, possible)``: the links
        sorted by the node they enter, where each node's in-links start in
        that order, each link's place among its node's in-links, the first
        number of each link's pairs as ``l``, and how many numbers there are.
    """
    kept = _PAIR_NUMBERS.get(id(topology))
    if kept is not None and kept[0] is topology:
        return kept[1]
    in_order = np.argsort(topology.link_dst, kind="stable")
    in_degree = np.bincount(topology.link_dst, minlength=topology.n_nodes)
    in_first = np.cumsum(in_degree) - in_degree
    in_position = np.empty(topology.n_links, dtype=np.int64)
    in_position[in_order] = np.arange(topology.n_links) - in_first[topology.link_dst[in_order]]
    pairs_of_l = in_degree[topology.link_src]
    pair_base = np.cumsum(pairs_of_l) - pairs_of_l
    numbers = (in_order, in_first, in_position, pair_base, int(pairs_of_l.sum()))
    if len(_PAIR_NUMBERS) >= 8:  # a few topologies at a time: keep the newest
        del _PAIR_NUMBERS[next(iter(_PAIR_NUMBERS))]
    _PAIR_NUMBERS[id(topology)] = (topology, numbers)
    return numbers


@dataclass(frozen=True)
class _Chains:
    """Which sub-flow (or trunk) crosses which adjacent link pair, with the pairs' links.

    Attributes:
        flow: Per crossing, the sub-flow.
        pair: Per crossing, its pair's index in ``(pair_u, pair_l)``.
        pair_u: Per pair, the upstream link.
        pair_l: Per pair, the downstream link.
        number: Per pair, its topology-wide number (sorted).
        trunk, trunk_pair: The same for pairs inside a trunk, crossed by
            every member of the trunk.
        weight, trunk_weight: Per crossing, the share of its sub-flow (or
            trunk) that crosses the pair.
        feeder: Per crossing, the sub-flow's one crossing into ``u`` (see
            :class:`Crossings`).
    """

    flow: np.ndarray
    pair: np.ndarray
    pair_u: np.ndarray
    pair_l: np.ndarray
    number: np.ndarray
    trunk: np.ndarray
    trunk_pair: np.ndarray
    weight: np.ndarray
    trunk_weight: np.ndarray
    feeder: np.ndarray

    @property
    def n_pairs(self) -> int:
        """Number of distinct link pairs."""
        return self.pair_u.size

    def renumbered(self, number: np.ndarray) -> _Chains:
        """The same chains with every link ``x`` renamed ``number[x]``."""
        return _Chains(
            self.flow,
            self.pair,
            number[self.pair_u],
            number[self.pair_l],
            self.number,
            self.trunk,
            self.trunk_pair,
            self.weight,
            self.trunk_weight,
            self.feeder,
        )


def upstream_chains(
    incidence: sp.csr_matrix | Trunked, topology: Topology, crossings: Crossings | None = None
) -> _Chains:
    """The crossings of :func:`link_crossings` with each pair's two links."""
    if crossings is None:
        crossings = link_crossings(incidence, topology)
    in_order, in_first, _, pair_base, _ = _pair_numbers(topology)
    present = crossings.numbers
    pair_l = np.searchsorted(pair_base, present, side="right") - 1
    pair_u = in_order[in_first[topology.link_src[pair_l]] + present - pair_base[pair_l]]
    return _Chains(
        crossings.flow,
        crossings.pair,
        pair_u,
        pair_l,
        present,
        crossings.trunk,
        crossings.trunk_pair,
        crossings.weight,
        crossings.trunk_weight,
        crossings.feeder,
    )


# --------------------------------------------------------------------------- sharing


def water_levels(group: np.ndarray, demand: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Per group, the max-min level at which its members' demands fill its capacity.

    Members of group ``g`` demanding ``d`` each get ``min(d, level[g])``, and
    those rates add up to ``capacity[g]``. A group whose demands do not fill
    its capacity has level ``inf`` (everyone gets what they ask).

    Args:
        group: Per member, its group (``0 <= group < capacity.size``).
        demand: Per member, what it asks (``>= 0``).
        capacity: Per group, what it shares.
    """
    n_groups = capacity.size
    level = np.full(n_groups, np.inf)
    if not group.size:
        return level
    order = np.lexsort((demand, group))
    g = group[order]
    d = demand[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    summed = np.concatenate([[0.0], np.cumsum(d)])
    position = np.arange(d.size)
    before = summed[position] - summed[starts[g]]
    remaining = counts[g] - (position - starts[g])
    candidate = (capacity[g] - before) / remaining
    # The first member (smallest demand first) that the level caps sets the level.
    capped = d >= candidate - TOLERANCE * np.maximum(capacity[g], 1.0)
    first = np.where(capped, position, d.size)
    # Only a group its members overfill has a level: one they fill exactly binds no one.
    total = np.bincount(g, weights=d, minlength=n_groups)
    overfilled = total > capacity * (1 + TOLERANCE) + TOLERANCE
    present = np.flatnonzero(counts)
    least = np.minimum.reduceat(first, starts[present])
    found = (least < d.size) & overfilled[present]
    level[present[found]] = np.maximum(candidate[least[found]], 0.0)
    return level


@dataclass(frozen=True)
class _Stage:
    """What one path stage holds, in the numbering of the local links.

    Attributes:
        links: The links at this stage.
        into: The pairs whose downstream link is at this stage.
        out: The pairs whose upstream link is at this stage.
        own: Own crossings (sub-flow, pair) into the ``into`` pairs.
        trunk: Trunk crossings into the ``into`` pairs.
    """

    links: np.ndarray
    into: np.ndarray
    out: np.ndarray
    own: np.ndarray
    trunk: np.ndarray


class _Network:
    """The links, pairs and crossings of one back-pressure problem (local numbering)."""

    def __init__(self, paths: Trunked, stage: np.ndarray, chains: _Chains, demand: np.ndarray):
        self.paths = paths
        self.chains = chains
        self.n_links = stage.size
        self.n_flows = paths.shape[0]
        pair_stage = stage[chains.pair_l]
        upstream_stage = stage[chains.pair_u]
        own_stage = pair_stage[chains.pair]
        trunk_stage = pair_stage[chains.trunk_pair]
        n_stages = int(stage.max()) + 1 if stage.size else 0
        self.stages = [
            _Stage(
                np.flatnonzero(stage == k),
                np.flatnonzero(pair_stage == k),
                np.flatnonzero(upstream_stage == k),
                np.flatnonzero(own_stage == k),
                np.flatnonzero(trunk_stage == k),
            )
            for k in range(n_stages)
        ]
        # Stage 0: NIC links, where a host serves its own sub-flows in turn.
        csc = paths.own_by_link
        first = np.flatnonzero(stage == 0)
        self.nic_flow, self.nic_link, self.nic_share = link_entries(csc, first)
        self.nic_link = first[self.nic_link]
        self.weight, self.trunk_weight = chains.weight, chains.trunk_weight
        # Per link, how many upstream links feed it flows, and their pairs.
        self.inputs = np.bincount(chains.pair_l, minlength=self.n_links)
        self.into_pairs, self.into_ptr = _grouped(chains.pair_l, self.n_links)
        self.heads = _NicHeads.of(self, demand)
        self.relays = _Relays.of(self, stage)
        self.link_stage = stage

    @functools.cached_property
    def relay_stages(self) -> list[_RelayStage]:
        """Per path stage, its output pairs' relays (the numpy backward pass's view)."""
        return self.relays.at_stages(self, self.link_stage)

    def forward(self, effective: np.ndarray, demand: np.ndarray) -> tuple[np.ndarray, ...]:
        """One pass along the paths: every link shares ``effective`` among its inputs.

        Returns:
            ``(rates, offered, relayed)``: each sub-flow's rate past its last
            link, what each pair's sub-flows bring its downstream link, and per
            relay (see :class:`_Relays`) what its input pair brings of the
            traffic that goes on into its output pair.
        """
        chains = self.chains
        n_flows = self.n_flows
        relays = self.relays
        relayed = np.zeros(relays.n_relays)
        rates = demand.astype(np.float64).copy()
        # NIC links: the host's sub-flows in turn.
        asked = rates[self.nic_flow] * self.nic_share
        level = water_levels(self.nic_link, asked, effective)[self.nic_link]
        with np.errstate(divide="ignore", invalid="ignore"):
            kept = np.where(asked > level, level / asked, 1.0)
        rates *= _weighted_mean(self.nic_flow, kept, self.nic_share, n_flows)
        offered = np.zeros(chains.n_pairs)
        for part in self.stages[1:]:
            if not part.into.size:
                continue
            own, trunk = part.own, part.trunk
            brought = self.weight[own] * rates[chains.flow[own]]
            relay = relays.of_crossing[own]
            passing = relay >= 0
            relayed += np.bincount(
                relay[passing], weights=brought[passing], minlength=relays.n_relays
            )
            pair_sum = np.bincount(
                chains.pair[own], weights=brought, minlength=chains.n_pairs
            ).astype(np.float64, copy=False)
            if trunk.size:
                per_trunk = self.paths.trunk_sum(rates)
                pair_sum += np.bincount(
                    chains.trunk_pair[trunk],
                    weights=self.trunk_weight[trunk] * per_trunk[chains.trunk[trunk]],
                    minlength=chains.n_pairs,
                )
            pairs = part.into
            offered[pairs] = pair_sum[pairs]
            links = chains.pair_l[pairs]
            at = water_levels(links, pair_sum[pairs], effective)
            share = np.ones(chains.n_pairs)
            with np.errstate(divide="ignore", invalid="ignore"):
                share[pairs] = np.where(
                    pair_sum[pairs] > at[links], at[links] / pair_sum[pairs], 1.0
                )
            factor = _weighted_mean(
                chains.flow[own], share[chains.pair[own]], self.weight[own], n_flows
            )
            if trunk.size:
                numerator = np.bincount(
                    chains.trunk[trunk],
                    weights=self.trunk_weight[trunk] * share[chains.trunk_pair[trunk]],
                    minlength=self.paths.n_trunks + 1,
                )
                denominator = np.bincount(
                    chains.trunk[trunk],
                    weights=self.trunk_weight[trunk],
                    minlength=self.paths.n_trunks + 1,
                )
                members = np.flatnonzero(denominator[self.paths.slot] > 0)
                slot = self.paths.slot[members]
                factor[members] = numerator[slot] / denominator[slot]
            rates *= factor
        return rates, offered, relayed

    def backward(
        self,
        offered: np.ndarray,
        relayed: np.ndarray,
        held: np.ndarray,
        capacity: np.ndarray,
        floor: np.ndarray | None,
        pausable: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """What each link may carry, from the last stage back to the senders.

        A link's downstream ports are settled before the link itself, so a
        pause found at the last hop reaches the senders in one sweep. At a
        full link ``l`` each input gets ``level[l]``; an input held back there
        (``held``: paused because of it) would bring more if it could, so it
        asks for the whole link, the others what they bring. A pair
        ``(u, l)`` then caps ``u`` at what ``u`` carries when it passes
        exactly ``level[l]`` into ``l``: found by inverting ``u``'s own
        sharing (its inputs max-min, each input's flows in proportion; a NIC's
        sub-flows max-min) where the pair's flows are known (see
        :class:`_Relays` and :class:`_NicHeads`), else at
        ``level[l] * T_u / offered(u, l)`` (``u``'s flows in the proportions
        they came, ``T_u`` in all).

        Args:
            offered: Per pair, what its flows bring the downstream link.
            relayed: Per relay, what its input brings of its output's traffic.
            held: Per pair, whether its upstream link is held back there.
            capacity: Link capacities.
            floor: If given, no link may carry more than this (pauses only grow).
            pausable: If given, only these links may be paused (capped).

        Returns:
            ``(effective, bound, per_pair, through)``: what each link may
            carry, the least cap its pairs set (``inf`` if none), the cap of
            each pair, and what each link carries on into its pairs.
        """
        chains = self.chains
        through = np.bincount(chains.pair_u, weights=offered, minlength=self.n_links)
        effective = capacity.copy()
        level = np.full(self.n_links, np.inf)
        bound = np.full(self.n_links, np.inf)
        per_pair = np.full(chains.n_pairs, np.inf)
        for k in range(len(self.stages) - 1, -1, -1):
            part = self.stages[k]
            links, into, out = part.links, part.into, part.out
            if out.size:
                cap = level[chains.pair_l[out]]
                with np.errstate(divide="ignore", invalid="ignore"):
                    per_pair[out] = np.where(
                        np.isfinite(cap) & (offered[out] > 0),
                        cap * through[chains.pair_u[out]] / offered[out],
                        np.inf,
                    )
                if k == 0 and self.heads is not None:
                    per_pair[self.heads.pair] = self.heads.caps(
                        level[chains.pair_l[self.heads.pair]]
                    )
                elif k > 0 and self.relay_stages[k].pairs.size:
                    at = self.relay_stages[k]
                    per_pair[at.pairs] = _inverted_caps(
                        at.start,
                        offered[at.input],
                        relayed[at.relays],
                        level[chains.pair_l[at.pairs]],
                        at.entry_run,
                        offered[at.entry_pair],
                    )
                if pausable is not None:
                    per_pair[out] = np.where(pausable[chains.pair_u[out]], per_pair[out], np.inf)
                np.minimum.at(bound, chains.pair_u[out], per_pair[out])
                effective[links] = np.minimum(capacity[links], bound[links])
                if floor is not None:
                    effective[links] = np.minimum(effective[links], floor[links])
            if into.size:
                target = chains.pair_l[into]
                asked = np.where(held[into], 2.0 * effective[target] + 1.0, offered[into])
                at = water_levels(target, asked, effective)
                level[links] = at[links]
        return effective, bound, per_pair, through


def _inverted_caps(
    start: np.ndarray,
    value: np.ndarray,
    carried: np.ndarray,
    target: np.ndarray,
    entry_run: np.ndarray,
    entry_value: np.ndarray,
) -> np.ndarray:
    """Per pair ``(u, l)``, what ``u`` carries when it passes exactly ``target`` into ``l``.

    ``u`` shares itself max-min among its feeders (its input ports, or a
    NIC's sub-flows): at level ``L`` a feeder bringing ``v`` passes
    ``min(v, L)``, and the part ``c / v`` of it that goes on into ``l`` keeps
    its proportion. The pair then brings ``sum(min(v, L) * c / v)`` over its
    feeders, a piecewise linear function of ``L``; the level ``L*`` at which
    it brings ``target`` is found by walking its breakpoints (the feeders
    sorted by ``v``), and ``u`` carries ``sum(min(v, L*))`` over all its
    feeders. Where even an unpaused ``u`` passes no more than ``target``,
    ``u`` may carry all it is brought, scaled by ``target / passed`` (the
    proportional rule, which holds a link paused exactly as much as it needs).

    Args:
        start: Where each pair's feeders start in ``value``/``carried``
            (``+ 1``; no pair without feeders).
        value: Per feeder of a pair, what it brings ``u``.
        carried: Per feeder of a pair, how much of that goes on into ``l``.
        target: Per pair, what ``l`` takes of it.
        entry_run, entry_value: All of ``u``'s feeders, listed once for each
            of ``u``'s pairs: the pair's index and what the feeder brings.
    """
    n_pairs = start.size - 1
    run = np.repeat(np.arange(n_pairs), np.diff(start))
    order = np.lexsort((value, run))
    value, carried = value[order], carried[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_unit = np.where(value > 0, carried / value, 0.0)
    first = start[:-1]
    before = np.cumsum(carried) - carried
    before -= before[first][run]
    passed = np.cumsum(per_unit) - per_unit
    passed -= passed[first][run]
    slope = np.add.reduceat(per_unit, first)[run] - passed
    reach = before + slope * value  # what the pair brings at level ``value``
    unpaused = np.add.reduceat(carried, first)  # what it brings while ``u`` passes all
    n = value.size
    cut = target < unpaused * (1 - TOLERANCE)
    at = np.minimum.reduceat(np.where(target[run] < reach, np.arange(n), n), first)
    at = np.minimum(at, n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(cut, (target - before[at]) / slope[at], np.inf)
    level = np.maximum(level, 0.0)
    carries = np.bincount(
        entry_run, weights=np.minimum(entry_value, level[entry_run]), minlength=n_pairs
    )
    # Where ``u`` need not cut, it may carry more in proportion (as the pair's
    # flows would): exactly what it brings where the pair brings ``target``.
    with np.errstate(divide="ignore", invalid="ignore"):
        more = np.where(unpaused > 0, carries * (target / unpaused), np.inf)
    return np.where(cut, carries, np.where(np.isfinite(more), more, np.inf))


def _spans(first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices ``first[i] .. first[i] + count[i] - 1`` of every span ``i``, span by span.

    Returns:
        ``(span, index)``: per listed index, its span and the index.
    """
    span = np.repeat(np.arange(first.size), count)
    offset = np.arange(span.size) - np.repeat(np.cumsum(count) - count, count)
    return span, np.repeat(first, count) + offset


def _expanded(link: np.ndarray, order: np.ndarray, ptr: np.ndarray):
    """Per pair, the entries ``order[ptr[x]:ptr[x + 1]]`` of its link ``x``, listed pair by pair.

    Returns:
        ``(run, entry)``: per listed entry, the pair's index and the entry.
    """
    run, at = _spans(ptr[link], ptr[link + 1] - ptr[link])
    return run, order[at]


@dataclass(frozen=True)
class _NicHeads:
    """The pairs leaving NIC links, for the exact pause cap there (:func:`_inverted_caps`).

    A NIC shares its link max-min among its sub-flows; each is a feeder that
    brings what it asks (its demand times its share of the link) and carries
    ``asked * weight / share`` of it into the pair. Both are fixed, so the
    feeders are listed once. (The proportional rule would lower ``u`` by
    ``level / offered`` a round, as the NIC cut its largest sub-flows first,
    for hundreds of rounds.)

    Attributes:
        pair: The pairs.
        start: Where each pair's feeders start (``+ 1``).
        asked, brought: Per feeder, what it asks at the NIC and brings the pair.
        entry_run, entry_asked: The NIC's entries of each pair's link, pair by
            pair: the pair's index and what the entry asks.
    """

    pair: np.ndarray
    start: np.ndarray
    asked: np.ndarray
    brought: np.ndarray
    entry_run: np.ndarray
    entry_asked: np.ndarray

    @staticmethod
    def of(network: _Network, demand: np.ndarray) -> _NicHeads | None:
        """The NIC pairs of a problem, or None where a sub-flow has several NIC entries."""
        if len(network.stages) < 2 or not network.nic_flow.size:
            return None
        entries = np.bincount(network.nic_flow, minlength=network.n_flows)
        crossings = network.stages[1].own
        chains = network.chains
        flow = chains.flow[crossings]
        if entries.max() > 1 or not crossings.size or np.any(entries[flow] == 0):
            return None
        entry_of_flow = np.full(network.n_flows, -1, dtype=np.int64)
        entry_of_flow[network.nic_flow] = np.arange(network.nic_flow.size)
        nic_asked = demand[network.nic_flow] * network.nic_share
        entry = entry_of_flow[flow]
        asked, share = nic_asked[entry], network.nic_share[entry]
        weight, pair = network.weight[crossings], chains.pair[crossings]
        order = np.lexsort((asked, pair))
        asked, share, weight, pair = asked[order], share[order], weight[order], pair[order]
        first = np.concatenate([[True], pair[1:] != pair[:-1]])
        pairs = pair[first]
        order_e, ptr = _grouped(network.nic_link, network.n_links)
        entry_run, entry = _expanded(chains.pair_u[pairs], order_e, ptr)
        return _NicHeads(
            pairs,
            np.append(np.flatnonzero(first), pair.size),
            asked,
            asked * weight / share,
            entry_run,
            nic_asked[entry],
        )

    def caps(self, target: np.ndarray) -> np.ndarray:
        """Per pair, the cap on its NIC link for the pair to bring ``target`` (``inf``: none)."""
        return _inverted_caps(
            self.start, self.asked, self.brought, target, self.entry_run, self.entry_asked
        )


@dataclass(frozen=True)
class _RelayStage:
    """The relays of the output pairs whose upstream link is at one path stage.

    Attributes:
        pairs: The output pairs ``(u, l)`` whose traffic is known input by input.
        start: Where each pair's relays start in ``relays`` (``+ 1``).
        relays: The pairs' relays, pair by pair.
        input: Per relay, its input pair (into ``u``).
        entry_run, entry_pair: Every input pair of each pair's ``u``, pair by
            pair: the pair's index in ``pairs`` and the input pair.
    """

    pairs: np.ndarray
    start: np.ndarray
    relays: np.ndarray
    input: np.ndarray
    entry_run: np.ndarray
    entry_pair: np.ndarray


@dataclass(frozen=True)
class _Relays:
    """How switch links pass their inputs' traffic on: per (input pair, output pair), a relay.

    A link ``u`` past the NIC shares itself max-min among its input ports and
    keeps each input's flows in proportion, so what an output pair ``(u, l)``
    gets is fixed by what each input brings ``u`` and how much of that goes on
    into ``l``: the relay ``(input, output)``, summed in the forward pass from
    the sub-flows that cross both. It is exact for an output pair whose every
    sub-flow has one path through ``u`` (one crossing in, one out, weight 1)
    and no trunk crosses it; the pause cap of the other pairs stays
    proportional.

    Attributes:
        of_crossing: Per own crossing, the relay it brings traffic into
            (``-1``: none), as the crossing into ``u``.
        output, input: Per relay, its output and input pair (sorted by output).
    """

    of_crossing: np.ndarray
    output: np.ndarray
    input: np.ndarray

    @property
    def n_relays(self) -> int:
        """Number of relays."""
        return self.output.size

    @staticmethod
    def of(network: _Network, stage: np.ndarray) -> _Relays:
        """The relays of a problem."""
        chains = network.chains
        n_pairs, pair, c_in = chains.n_pairs, chains.pair, chains.feeder
        weight = network.weight
        single = c_in >= 0
        single[single] = (weight[single] == 1.0) & (weight[c_in[single]] == 1.0)
        inside = stage[chains.pair_u[pair]] >= 1
        # An output pair is exact only if all its crossings are.
        spoiled = np.bincount(pair[inside & ~single], minlength=n_pairs) > 0
        spoiled[chains.trunk_pair] = True
        out = np.flatnonzero(inside & single & ~spoiled[pair])
        # A relay is (output pair, input pair): the input numbered by its place
        # among the pairs into u, so the keys stay dense.
        order_in, ptr_in = network.into_pairs, network.into_ptr
        place = np.empty(n_pairs, dtype=np.int64)
        place[order_in] = np.arange(n_pairs) - np.repeat(ptr_in[:-1], np.diff(ptr_in))
        radix = int(np.diff(ptr_in).max(initial=1))
        input_pair = pair[c_in[out]]
        key = pair[out].astype(np.int64) * radix + place[input_pair]
        keys, relay = _distinct(key, n_pairs * radix)
        of_crossing = np.full(pair.size, -1, dtype=np.int64)
        of_crossing[c_in[out]] = relay
        relay_output = keys // radix
        relay_input = np.empty(keys.size, dtype=np.int64)
        relay_input[relay] = input_pair
        return _Relays(of_crossing, relay_output, relay_input)

    def at_stages(self, network: _Network, stage: np.ndarray) -> list[_RelayStage]:
        """The relays split by the path stage of their output pairs' upstream link."""
        pair_u = network.chains.pair_u
        stages = []
        for k in range(len(network.stages)):
            mine = np.flatnonzero(stage[pair_u[self.output]] == k)  # sorted by output
            output = self.output[mine]
            head = np.concatenate([[True], output[1:] != output[:-1]]) if mine.size else mine
            pairs = output[head] if mine.size else np.zeros(0, dtype=np.int64)
            entry_run, entry_pair = _expanded(pair_u[pairs], network.into_pairs, network.into_ptr)
            stages.append(
                _RelayStage(
                    pairs,
                    np.append(np.flatnonzero(head), mine.size),
                    mine,
                    self.input[mine],
                    entry_run,
                    entry_pair,
                )
            )
        return stages


class _CompiledNetwork(_Network):
    """The same passes compiled (:mod:`sim.fabric.backpressure_kernels`), for large problems.

    Its arrays are built by a compiled pass too (``backpressure_kernels.build``,
    counting sorts in place of the numpy construction's sorts), equal array for
    array to those :class:`_Network` derives.
    """

    def __init__(  # builds its arrays itself: no super().__init__ (the numpy construction)
        self, paths: Trunked, stage: np.ndarray, chains: _Chains, demand: np.ndarray, kernels: Any
    ):
        self.paths = paths
        self.chains = chains
        self.kernels = kernels
        self.n_links = stage.size
        self.n_flows = paths.shape[0]
        own = paths.own
        (
            self.stage_links,
            self.stage_ptr,
            self.nic_ptr,
            nic_flow,
            nic_share,
            self.into_pairs,
            self.into_ptr,
            self.inputs,
            self.out_pairs,
            self.out_ptr,
            self.stage_has_out,
            self.own_ptr,
            self.own,
            self.relay_output,
            self.relay_input,
            self.relay_ptr,
            self.trunk_ptr,
            self.trunk,
            self.head_arrays,
        ) = kernels.build(
            np.asarray(stage, dtype=np.int64),
            own.indptr.astype(np.int64, copy=False),
            own.indices.astype(np.int64, copy=False),
            own.data.astype(np.float64, copy=False),
            *(
                np.asarray(a, dtype=np.int64)
                for a in (chains.flow, chains.pair, chains.pair_u, chains.pair_l)
            ),
            np.asarray(chains.weight, dtype=np.float64),
            np.asarray(chains.feeder, dtype=np.int64),
            np.asarray(chains.trunk, dtype=np.int64),
            np.asarray(chains.trunk_pair, dtype=np.int64),
            np.asarray(chains.trunk_weight, dtype=np.float64),
            demand,
        )
        self.nic_order = (nic_flow, nic_share)

    def forward(self, effective: np.ndarray, demand: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`_Network.forward`, compiled."""
        return self.kernels.forward(
            effective,
            demand.astype(np.float64),
            self.stage_ptr,
            self.stage_links,
            self.nic_ptr,
            *self.nic_order,
            self.into_ptr,
            self.into_pairs,
            self.own_ptr,
            *self.own,
            self.trunk_ptr,
            *self.trunk,
            self.paths.slot,
            self.paths.n_trunks,
            self.chains.n_pairs,
            self.relay_output.size,
        )

    def backward(
        self,
        offered: np.ndarray,
        relayed: np.ndarray,
        held: np.ndarray,
        capacity: np.ndarray,
        floor: np.ndarray | None,
        pausable: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """:meth:`_Network.backward`, compiled."""
        return self.kernels.backward(
            offered,
            held,
            capacity,
            capacity if floor is None else floor,
            floor is not None,
            np.ones(capacity.size, dtype=np.bool_) if pausable is None else pausable,
            self.stage_ptr,
            self.stage_links,
            self.into_ptr,
            self.into_pairs,
            self.out_ptr,
            self.out_pairs,
            self.stage_has_out,
            self.chains.pair_u,
            self.chains.pair_l,
            *self.head_arrays,
            relayed,
            self.relay_ptr,
            self.relay_input,
        )


def _filling_gbps(
    chains: _Chains, offered: np.ndarray, effective: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Per pair, how fast its part of ``u``'s ingress buffer fills (see :class:`Filling`)."""
    n_links = effective.size
    level = water_levels(chains.pair_l, offered, effective)[chains.pair_l]
    kept = np.maximum(offered - level, 0.0)
    arriving = np.bincount(chains.pair_l, weights=offered, minlength=n_links)
    spare = np.maximum(effective - arriving, 0.0) / np.maximum(
        np.bincount(chains.pair_l, minlength=n_links), 1
    )
    headroom = np.where(np.isfinite(level), np.maximum(level - offered, 0.0), spare[chains.pair_l])
    tolerance = 1e-9 * scale[chains.pair_l]
    return np.where(kept > tolerance, kept, np.where(headroom > tolerance, -headroom, 0.0))


def _grouped(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices sorted by ``key`` (stably) and where each key's run starts (``n_keys + 1``)."""
    order = np.argsort(key, kind="stable").astype(np.int64)
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=n_keys), out=ptr[1:])
    return order, ptr


def _network(
    paths: Trunked,
    stage: np.ndarray,
    chains: _Chains,
    demand: np.ndarray,
    compiled: bool | None = None,
) -> _Network:
    """The problem's passes: compiled where asked, or by default for a large problem,
    where numba is installed."""
    if compiled is None:
        compiled = chains.flow.size + chains.trunk.size >= COMPILED_FROM
    if compiled:
        try:
            from sim.fabric import backpressure_kernels
        except ImportError:
            pass
        else:
            return _CompiledNetwork(paths, stage, chains, demand, backpressure_kernels)
    return _Network(paths, stage, chains, demand)


def _weighted_mean(row: np.ndarray, value: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Per row, the ``weight``-weighted mean of ``value`` (1 for rows with no entries)."""
    numerator = np.bincount(row, weights=weight * value, minlength=n)
    denominator = np.bincount(row, weights=weight, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, 1.0)


def _crossing_weights(
    owner: np.ndarray, l_: np.ndarray, share_u: np.ndarray, share_l: np.ndarray, n_links: int
) -> np.ndarray:
    """Per crossing, the share of its sub-flow (or trunk) that goes from ``u`` into ``l``.

    A sub-flow on one path has weight 1 on each of its pairs. One split over
    several links (adaptive routing's chunks) enters a switch on some links
    and leaves on others, mixed: the part from ``u`` into ``l`` is
    ``share(u) * share(l) / share entering the switch``.

    Args:
        owner: Per crossing, its sub-flow (or trunk).
        l_: Per crossing, its downstream link.
        share_u, share_l: Per crossing, the owner's share on ``u`` and on ``l``.
        n_links: Links of the topology.
    """
    if np.all(share_u == 1.0) and np.all(share_l == 1.0):
        return np.ones(owner.size)
    key = owner.astype(np.int64) * np.int64(n_links) + l_
    _, group = np.unique(key, return_inverse=True)
    entering = np.bincount(group, weights=share_u)[group]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(entering > 0, share_u * share_l / entering, 0.0)


def backpressure_rates(
    incidence: sp.csr_matrix | Trunked,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
    topology: Topology,
    crossings: Crossings | None = None,
    buffer_full: np.ndarray | None = None,
    *,
    compiled: bool | None = None,
) -> BackPressure:
    """Rates, pauses and full queues under lossless hop-by-hop back-pressure.

    See the module's docstring for the model.

    Args:
        incidence: Active sub-flows × links, or its factoring into own links
            and trunks (:class:`~sim.fabric.trunks.Trunked`).
        capacity_gbps: Link capacities.
        demand_gbps: What each sub-flow would send at line rate.
        stage: Path stage of every link (see :func:`sim.fabric.transport.link_stage`).
        topology: The topology (which link feeds which).
        crossings: The sub-flows' adjacent link pairs, if the caller kept
            them (see :func:`link_crossings`); found here otherwise.
        buffer_full: Per link, whether the ingress buffer it feeds downstream
            has filled to its pause threshold: only then can the ports behind
            it pause the link (until then the buffer takes what they do not
            pass on). None: every buffer is full, the steady state of flows
            that last.
        compiled: Solve with the compiled passes (True, where numba is
            installed) or the numpy ones (False); None: compiled from
            :data:`COMPILED_FROM` crossings. The two agree to about 1e-13.
    """
    paths = Trunked.of(incidence)
    chains = upstream_chains(paths, topology, crossings)
    # Work on the links the sub-flows cross only, numbered from 0.
    used = np.flatnonzero(paths.crossed)
    number = np.full(paths.shape[1], -1, dtype=np.int64)
    number[used] = np.arange(used.size)
    local = paths.with_columns(number, used.size)
    chains = chains.renumbered(number)
    pausable = None if buffer_full is None else np.asarray(buffer_full, dtype=bool)[used]
    state = _fixed_point(
        local, capacity_gbps[used], demand_gbps, stage[used], chains, pausable, compiled
    )

    def spread(values: np.ndarray) -> np.ndarray:
        out = np.zeros(capacity_gbps.shape, dtype=values.dtype)  # zero pages: no pass
        out[used] = values
        return out

    effective = np.array(capacity_gbps, dtype=np.float64)
    effective[used] = state.effective_gbps
    return BackPressure(
        rates_gbps=state.rates_gbps,
        pause_fraction=spread(state.pause_fraction),
        drain_gbps=spread(state.drain_gbps),
        effective_gbps=effective,
        full=spread(state.full),
        inputs=spread(state.inputs),
        filling=None
        if state.filling is None
        else Filling(
            pair=state.filling.pair,
            upstream=used[state.filling.upstream],
            downstream=used[state.filling.downstream],
            gbps=state.filling.gbps,
            effective_gbps=effective,
        ),
        rounds=state.rounds,
        links=used,
    )


def _fixed_point(
    paths: Trunked,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
    chains: _Chains,
    pausable: np.ndarray | None = None,
    compiled: bool | None = None,
) -> BackPressure:
    """:func:`backpressure_rates` on the links the sub-flows cross, numbered from 0.

    ``pausable`` (per local link, None for all) says which links their
    downstream ports may pause; ``compiled`` chooses the passes.
    """
    network = _network(paths, stage, chains, demand_gbps.astype(np.float64), compiled)
    capacity = capacity_gbps.astype(np.float64)
    effective = capacity.copy()
    held = np.zeros(chains.n_pairs, dtype=bool)
    scale = np.maximum(capacity, 1e-12)
    n_stages = int(stage.max()) + 1 if stage.size else 1
    free_rounds = FREE_ROUNDS * n_stages
    changes: list[float] = []
    rounds = 0
    while True:
        rounds += 1
        rates, offered, relayed = network.forward(effective, demand_gbps)
        floor = effective if rounds > free_rounds else None
        updated, bound, per_pair, through = network.backward(
            offered, relayed, held, capacity, floor, pausable
        )
        # An input is held back at the pair that binds it, if it brings at least
        # what it may now carry: it is paused there.
        allowed = np.minimum(effective, updated)
        paused = (updated < capacity * (1 - 1e-9)) & (through >= allowed * (1 - 1e-9))
        binding = np.isfinite(per_pair) & (per_pair <= bound[chains.pair_u] * (1 + 1e-9))
        now_held = binding & paused[chains.pair_u]
        change = float(np.max(np.abs(updated - effective) / scale, initial=0.0))
        settled = change <= TOLERANCE
        if rounds >= MAX_ROUNDS or (
            settled and (rounds > free_rounds or np.array_equal(now_held, held))
        ):
            break
        changes.append(change)
        if rounds > n_stages and rounds <= free_rounds and change > 0.5 * changes[-3]:
            # Pauses that trade places instead of settling: from now on they only grow.
            free_rounds = rounds
        effective, held = updated, now_held
    load = paths.link_sum(rates)
    backlogged = load >= effective * (1 - 1e-6)
    pause = np.where(paused, np.clip(1.0 - load / np.where(capacity > 0, capacity, 1.0), 0, 1), 0.0)
    # The port that pauses a link drains it at the link's share where it binds.
    drain = np.full(network.n_links, np.inf)
    np.minimum.at(drain, chains.pair_u[now_held], offered[now_held])
    drain = np.where(paused & np.isfinite(drain), drain, 0.0)
    # A port's queues stay full when it holds back an input, or is paused itself.
    holds = np.zeros(network.n_links, dtype=bool)
    holds[chains.pair_l[now_held]] = True
    full = backlogged & (holds | paused)
    filling = (
        None
        if pausable is None
        else Filling(
            chains.number,
            chains.pair_u,
            chains.pair_l,
            _filling_gbps(chains, offered, effective, scale),
            effective,
        )
    )
    return BackPressure(
        rates_gbps=rates,
        pause_fraction=pause,
        drain_gbps=drain,
        effective_gbps=effective,
        full=full,
        inputs=network.inputs,
        filling=filling,
        rounds=rounds,
    )
