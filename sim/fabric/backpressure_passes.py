"""The back-pressure problem and its passes: what every port lets through, stage by stage.

:func:`problem_network` builds one solve's problem from the sub-flows' routes
and their link pairs (:mod:`sim.fabric.link_pairs`): the links of each path
stage, the pairs into and out of them, the NICs' own flows and the relays
through which a link's inputs reach it. Its :meth:`~_Network.forward` pass
shares every link's effective capacity among its inputs in path order
(:func:`water_levels`: max-min over the input ports, each input's flows in
proportion); its :meth:`~_Network.backward` pass caps each paused link at
what its downstream ports accept. :func:`sim.fabric.backpressure.backpressure_rates`
alternates them to a fixed point.

These numpy passes are the reference; large problems run the same passes
compiled (:class:`_CompiledNetwork` over :mod:`sim.fabric.backpressure_kernels`,
imported only then, where numba is installed; a test checks they agree).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.fabric.link_pairs import Chains, distinct, spans
from sim.fabric.trunks import Trunked, link_entries

TOLERANCE = 1e-9
"""Relative change of every effective capacity below which the fixed point is reached."""

COMPILED_FROM = 20_000
"""Crossings (sub-flow or trunk, link pair) from which the compiled passes solve a problem.

Smaller problems use the numpy passes and never import numba; so do all
problems when numba is not installed.
"""


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

    def __init__(self, paths: Trunked, stage: np.ndarray, chains: Chains, demand: np.ndarray):
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
        self.into_pairs, self.into_ptr = grouped(chains.pair_l, self.n_links)
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


def _expanded(link: np.ndarray, order: np.ndarray, ptr: np.ndarray):
    """Per pair, the entries ``order[ptr[x]:ptr[x + 1]]`` of its link ``x``, listed pair by pair.

    Returns:
        ``(run, entry)``: per listed entry, the pair's index and the entry.
    """
    run, at = spans(ptr[link], ptr[link + 1] - ptr[link])
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
        order_e, ptr = grouped(network.nic_link, network.n_links)
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
        keys, relay = distinct(key, n_pairs * radix)
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
        self, paths: Trunked, stage: np.ndarray, chains: Chains, demand: np.ndarray, kernels: Any
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


def grouped(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices sorted by ``key`` (stably) and where each key's run starts (``n_keys + 1``)."""
    order = np.argsort(key, kind="stable").astype(np.int64)
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=n_keys), out=ptr[1:])
    return order, ptr


def problem_network(
    paths: Trunked,
    stage: np.ndarray,
    chains: Chains,
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
