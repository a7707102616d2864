"""Adjacent link pairs the sub-flows cross: where lossless back-pressure acts.

A pair ``(u, l)`` is a link ``u`` feeding a link ``l`` at a switch; a
sub-flow crosses it when its route crosses both. Back-pressure
(:mod:`sim.fabric.backpressure`) holds queues and pauses per pair: the port
of ``l`` serves its inputs ``u`` in turn and pauses the ones it cannot
drain. The pairs depend on the routes alone, so :func:`link_crossings`
finds them once per route set (a caller may keep them per job) and numbers
them from the topology (:func:`pair_numbers`, built once per topology and
kept read-only), so that the crossings of several jobs merge without a
search (:meth:`Crossings.stack`). :func:`upstream_chains` adds each pair's
two links, the form the solver's passes take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from sim.fabric.topology import Topology, readonly
from sim.fabric.trunks import Trunked

__all__ = ["Chains", "Crossings", "link_crossings", "pair_numbers", "upstream_chains"]


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
            numbers (see :func:`pair_numbers`).
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
    down, at = spans(first, count)
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
    _, _, in_position, pair_base, possible = pair_numbers(topology)
    numbered = pair_base[l_] + in_position[u]
    numbers, pair = distinct(numbered, possible)
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


def distinct(key: np.ndarray, possible: int) -> tuple[np.ndarray, np.ndarray]:
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


def pair_numbers(topology: Topology) -> tuple[Any, ...]:
    """How the topology's possible link pairs are numbered (built once per topology, read-only).

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
    numbers = (
        readonly(in_order),
        readonly(in_first),
        readonly(in_position),
        readonly(pair_base),
        int(pairs_of_l.sum()),
    )
    if len(_PAIR_NUMBERS) >= 8:  # a few topologies at a time: keep the newest
        del _PAIR_NUMBERS[next(iter(_PAIR_NUMBERS))]
    _PAIR_NUMBERS[id(topology)] = (topology, numbers)
    return numbers


@dataclass(frozen=True)
class Chains:
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

    def renumbered(self, number: np.ndarray) -> Chains:
        """The same chains with every link ``x`` renamed ``number[x]``."""
        return Chains(
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
) -> Chains:
    """The crossings of :func:`link_crossings` with each pair's two links."""
    if crossings is None:
        crossings = link_crossings(incidence, topology)
    in_order, in_first, _, pair_base, _ = pair_numbers(topology)
    present = crossings.numbers
    pair_l = np.searchsorted(pair_base, present, side="right") - 1
    pair_u = in_order[in_first[topology.link_src[pair_l]] + present - pair_base[pair_l]]
    return Chains(
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


def spans(first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices ``first[i] .. first[i] + count[i] - 1`` of every span ``i``, span by span.

    Returns:
        ``(span, index)``: per listed index, its span and the index.
    """
    span = np.repeat(np.arange(first.size), count)
    offset = np.arange(span.size) - np.repeat(np.cumsum(count) - count, count)
    return span, np.repeat(first, count) + offset
