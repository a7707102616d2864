"""How a transport shares a fabric: rates, queues and pauses for a set of flows.

Given the sub-flows crossing a fabric (their routes as a sparse incidence
matrix), a transport answers with one :class:`Epoch`: the rate of every
sub-flow and what the ports hold meanwhile (queues, pauses, drops, ECN
marks). The answer depends on the transport:

- ``ideal`` and RoCE with DCQCN: the max-min fair allocation, which end-to-end
  rate control converges to (see :mod:`sim.fabric.dcqcn`). At every port the
  allocation saturates, DCQCN holds the queue at its fluid fixed point and
  marks with its probability. Flows that start at line rate overload a port
  before DCQCN reacts; the fluid model traces that queue and how long it
  stays above the PFC Xoff threshold. With PFC on, the links feeding the port
  are paused that long and flows that cross them but not the port itself
  (*victims*) stall. With PFC off, the overflow is dropped instead.
- RoCE without congestion control and PFC on, and InfiniBand (credit-based
  flow control): lossless back-pressure. Senders push at line rate; a port
  offered more than it can drain keeps its ingress queues full and pauses
  the upstream links that feed it, a fraction of the time equal to one minus
  what it serves over what they offer. A pause stops every flow on that link
  (head-of-line blocking), so victims slow down, and the pause spreads hop by
  hop towards the senders.
- RoCE without congestion control and PFC off: lossy drop-tail. Senders push
  at line rate; each overloaded port forwards its inputs in proportion and
  drops the rest, so upstream links still carry the doomed traffic.

Pure numpy and scipy.sparse: the flow simulator (:mod:`sim.fabric.flows`) and
the marketplace's fabric (:mod:`sim.fabric.network`) both call it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

from sim.fabric.dcqcn import DcqcnParams, fixed_point, marking_probability, simulate
from sim.fabric.solver import MaxMinProblem, max_min_rates
from sim.fabric.topology import Topology
from sim.fabric.trunks import Trunked

__all__ = [
    "NVLINK_GBPS",
    "BackPressure",
    "Epoch",
    "Transport",
    "backpressure_rates",
    "line_rate_arrivals",
    "link_stage",
    "routing_args",
]

NVLINK_GBPS = 3600.0
"""Per-direction NVLink bandwidth of an H100 SXM (NVLink 4: 900 GB/s both ways)."""

_TRANSIENT_US = 2000.0
"""How long the DCQCN transient after a burst of new flows is simulated."""


# --------------------------------------------------------------------------- topology helpers


def link_stage(topology: Topology) -> np.ndarray:
    """Position of each link along any path: up links by tier, then down links.

    In a three-tier fabric a path crosses stages 0 (host up), 1, 2, 3, 4, 5
    (down to the host); a link's upstream neighbours are one stage earlier.
    """
    tiers = len(topology.tier_names)
    tier = topology.link_tier.astype(np.int64)
    return np.where(topology.link_is_up, tier, 2 * tiers - 1 - tier)


def routing_args(transport: Any, topology: Topology, sizes: np.ndarray) -> dict[str, Any]:
    kind = transport.kind
    if kind == "roce":
        return {
            "mode": "ecmp",
            "qps_per_connection": transport.qps_per_connection,
            "hash_seed": transport.hash_seed,
        }
    if kind == "infiniband":
        if transport.adaptive_routing:
            return {
                "mode": "adaptive",
                "adaptive_chunks": transport.adaptive_chunks,
                "load_weight": sizes.astype(np.float64),
            }
        return {"mode": "dmodk"}
    return {"mode": "spray"}


# --------------------------------------------------------------------------- allocations


def _pattern(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The matrix with every stored entry set to 1 (which links each flow crosses)."""
    binary = matrix.copy()
    binary.data[:] = 1.0
    return binary


def _previous_links(incidence: sp.csr_matrix, stage: np.ndarray) -> np.ndarray:
    """Per sub-flow and path stage, the link the sub-flow crosses just before that stage.

    ``out[f, k]`` is the last link of sub-flow ``f``'s path at a stage below
    ``k`` (-1 if none). Where a sub-flow splits over several links of a stage
    (spraying), any one of them stands for the stage.
    """
    n_stages = int(stage.max()) + 1 if stage.size else 0
    at_stage = np.full((incidence.shape[0], n_stages + 1), -1, dtype=np.int64)
    coo = incidence.tocoo()
    at_stage[coo.row, stage[coo.col] + 1] = coo.col
    # Carry the last link seen forward along the stages.
    index = np.where(at_stage >= 0, np.arange(n_stages + 1), 0)
    np.maximum.accumulate(index, axis=1, out=index)
    filled = np.take_along_axis(at_stage, index, axis=1)
    return filled[:, :n_stages]


def line_rate_arrivals(
    incidence: sp.csr_matrix | Trunked,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What line-rate senders push into each stage when ports forward in proportion.

    Stages are visited in path order; an overloaded port forwards each input
    in proportion to what arrives, up to its capacity.

    Returns:
        ``(arriving, forwarded, offered)``: ``arriving[k, f]`` is sub-flow
        ``f``'s rate arriving at path stage ``k``, ``forwarded`` its rate past
        the last stage, and ``offered[l]`` what arrives at link ``l``.
    """
    paths = Trunked.of(incidence)
    stages = int(stage.max()) + 1 if stage.size else 0
    arriving = np.zeros((stages, demand_gbps.size))
    offered = np.zeros(capacity_gbps.shape)
    rates = demand_gbps.astype(np.float64).copy()
    crossed = paths.crossed
    for k in range(stages):
        arriving[k] = rates
        links = np.flatnonzero(crossed & (stage == k))
        row, column, share, trunk, trunk_column, trunk_share = paths.link_entries(links)
        load = np.bincount(column, weights=share * rates[row], minlength=links.size)
        if trunk.size:
            per_trunk = paths.trunk_sum(rates)[trunk]
            load = load + np.bincount(
                trunk_column, weights=trunk_share * per_trunk, minlength=links.size
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(load > capacity_gbps[links], capacity_gbps[links] / load, 1.0)
        offered[links] = load
        rates *= paths.row_min(row, scale[column], trunk, scale[trunk_column], initial=1.0)
    return arriving, rates, offered


@dataclass
class BackPressure:
    """The steady state of lossless hop-by-hop back-pressure.

    Attributes:
        rates_gbps: Rate of every sub-flow.
        pause_fraction: Per link, the fraction of time it is paused by its
            downstream neighbour.
        drain_gbps: Per paused link, the slowest rate at which the port that
            pauses it drains what the link feeds it (0 for links never paused).
        effective_gbps: Per link, what it can carry while paused part of the time.
        full: Per link, whether its queues stay full: it carries all it can
            and is offered more.
        inputs: Per link, how many upstream links feed it flows.
    """

    rates_gbps: np.ndarray
    pause_fraction: np.ndarray
    drain_gbps: np.ndarray
    effective_gbps: np.ndarray
    full: np.ndarray
    inputs: np.ndarray


@dataclass(frozen=True)
class _Chains:
    """Which sub-flow (or trunk) crosses which adjacent link pair.

    Attributes:
        flow: Per crossing, the sub-flow.
        pair: Per crossing, its pair's index in ``(pair_u, pair_l)``.
        stage_u: Per crossing, the path stage of the pair's upstream link.
        pair_u: Per pair, the upstream link (pairs sorted by ``(l, u)``).
        pair_l: Per pair, the downstream link.
        trunk, trunk_pair, trunk_stage_u: The same for pairs inside a trunk,
            crossed by every member of the trunk.
    """

    flow: np.ndarray
    pair: np.ndarray
    stage_u: np.ndarray
    pair_u: np.ndarray
    pair_l: np.ndarray
    trunk: np.ndarray
    trunk_pair: np.ndarray
    trunk_stage_u: np.ndarray

    @property
    def n_pairs(self) -> int:
        """Number of distinct link pairs."""
        return self.pair_u.size

    def carried(self, per_flow: np.ndarray, per_trunk: np.ndarray | None) -> np.ndarray:
        """Per pair, the sum of ``per_flow`` over the sub-flows crossing both links.

        ``per_trunk`` is the sum of ``per_flow`` over each trunk's members.
        """
        out = np.bincount(self.pair, weights=per_flow[self.flow], minlength=self.n_pairs)
        if self.trunk.size:
            out = out + np.bincount(
                self.trunk_pair, weights=per_trunk[self.trunk], minlength=self.n_pairs
            )
        return out

    def offered(self, arriving: np.ndarray, arriving_by_trunk: np.ndarray | None) -> np.ndarray:
        """Per pair, what its sub-flows offer the upstream link (``arriving[stage, flow]``).

        ``arriving_by_trunk[stage, trunk]`` sums ``arriving`` over each trunk's members.
        """
        out = np.bincount(
            self.pair, weights=arriving[self.stage_u, self.flow], minlength=self.n_pairs
        )
        if self.trunk.size:
            out = out + np.bincount(
                self.trunk_pair,
                weights=arriving_by_trunk[self.trunk_stage_u, self.trunk],
                minlength=self.n_pairs,
            )
        return out


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
    """

    flow: np.ndarray
    upstream: np.ndarray
    pair: np.ndarray
    numbers: np.ndarray
    trunk: np.ndarray
    trunk_upstream: np.ndarray
    trunk_pair: np.ndarray

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
    down = np.repeat(np.arange(down_link.size), count)
    offset = np.arange(down.size) - np.repeat(np.cumsum(count) - count, count)
    up = by_end[np.repeat(first, count) + offset]
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
    up, down = _meet(flow, link, flow, link, topology)
    flows, us, ls = [flow[down]], [link[up]], [link[down]]
    trunk_u = trunk_l = trunk_of = np.zeros(0, dtype=np.int64)
    if paths.n_trunks:
        member = np.flatnonzero(paths.trunk_of[flow] >= 0)  # own entries of trunk members
        owner = paths.trunk_of[flow[member]]
        # Into the trunk (a NIC link feeding the trunk's first links) and out of it.
        up, down = _meet(owner, link[member], trunk, trunk_link, topology)
        flows.append(flow[member[up]])
        us.append(link[member[up]])
        ls.append(trunk_link[down])
        up, down = _meet(trunk, trunk_link, owner, link[member], topology)
        flows.append(flow[member[down]])
        us.append(trunk_link[up])
        ls.append(link[member[down]])
        up, down = _meet(trunk, trunk_link, trunk, trunk_link, topology)
        trunk_of, trunk_u, trunk_l = trunk[down], trunk_link[up], trunk_link[down]
    u = np.concatenate([*us, trunk_u])
    l_ = np.concatenate([*ls, trunk_l])
    _, _, in_position, pair_base, possible = _pair_numbers(topology)
    numbered = pair_base[l_] + in_position[u]
    if numbered.size * 16 < possible:  # few crossings: sorting them beats a pass over all pairs
        numbers, pair = np.unique(numbered, return_inverse=True)
    else:
        crossed = np.bincount(numbered, minlength=possible) > 0
        pair = (np.cumsum(crossed) - 1)[numbered]
        numbers = np.flatnonzero(crossed)
    pair = pair.astype(np.int64)
    n_own = u.size - trunk_u.size
    return Crossings(
        np.concatenate(flows),
        u[:n_own],
        pair[:n_own],
        numbers,
        trunk_of,
        trunk_u,
        pair[n_own:],
    )


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


def upstream_chains(
    incidence: sp.csr_matrix | Trunked,
    stage: np.ndarray,
    topology: Topology,
    crossings: Crossings | None = None,
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
        stage[crossings.upstream],
        pair_u,
        pair_l,
        crossings.trunk,
        crossings.trunk_pair,
        stage[crossings.trunk_upstream],
    )


def backpressure_rates(
    incidence: sp.csr_matrix | Trunked,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
    topology: Topology,
    crossings: Crossings | None = None,
) -> BackPressure:
    """Rates under lossless hop-by-hop back-pressure (PFC without rate control).

    Senders push at line rate. A port offered more than it serves keeps its
    ingress queues full and pauses each link ``u`` feeding it a fraction
    ``1 - served / offered`` of the time (over the flows crossing both). The
    queue a paused link feeds is one FIFO, so every flow crossing the link,
    victims included, keeps only ``1 - pause`` of its offered rate, and the
    pause spreads on towards the senders.

    Args:
        incidence: Active sub-flows × links, or its factoring into own links
            and trunks (:class:`~sim.fabric.trunks.Trunked`).
        capacity_gbps: Link capacities.
        demand_gbps: What each sub-flow would send at line rate.
        stage: Path stage of every link (see :func:`link_stage`).
        topology: The topology (which link feeds which).
        crossings: The sub-flows' adjacent link pairs, if the caller kept
            them (see :func:`link_crossings`); found here otherwise.

    Returns:
        The rates, the pauses and which ports hold full queues.
    """
    # Pairs (u, l): link u feeds link l directly and some sub-flow crosses both.
    paths = Trunked.of(incidence)
    chains = upstream_chains(paths, stage, topology, crossings)
    # Work on the links the sub-flows cross only, numbered from 0.
    crossed = paths.crossed
    used = np.flatnonzero(crossed)
    number = np.cumsum(crossed) - 1
    local = paths.with_columns(number, used.size)
    chains = dataclasses.replace(chains, pair_u=number[chains.pair_u], pair_l=number[chains.pair_l])
    state = _lossless_fixed_point(local, capacity_gbps[used], demand_gbps, stage[used], chains)

    def spread(values: np.ndarray, elsewhere: np.ndarray | float) -> np.ndarray:
        out = np.zeros(capacity_gbps.shape, dtype=values.dtype)
        out[:] = elsewhere
        out[used] = values
        return out

    return BackPressure(
        rates_gbps=state.rates_gbps,
        pause_fraction=spread(state.pause_fraction, 0.0),
        drain_gbps=spread(state.drain_gbps, 0.0),
        effective_gbps=spread(state.effective_gbps, capacity_gbps),
        full=spread(state.full, False),
        inputs=spread(state.inputs, 0),
    )


def _lossless_fixed_point(
    paths: Trunked,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
    chains: _Chains,
) -> BackPressure:
    """:func:`backpressure_rates` on the links the sub-flows cross, numbered from 0."""
    pair_u, pair_l = chains.pair_u, chains.pair_l
    pause = np.zeros(capacity_gbps.shape)
    drain = np.full(capacity_gbps.shape, np.inf)
    effective = capacity_gbps.astype(np.float64).copy()
    problem = MaxMinProblem(paths)
    arriving, _, offered_link = line_rate_arrivals(paths, capacity_gbps, demand_gbps, stage)
    by_trunk = np.stack([paths.trunk_sum(rates) for rates in arriving]) if paths.n_trunks else None
    offered_pair = chains.offered(arriving, by_trunk)
    # What each sub-flow keeps of its line rate: 1 - pause on its most paused link.
    kept = np.ones(paths.shape[0])
    rates = problem.solve(effective, demand_gbps=demand_gbps)
    # Pauses spread one hop per round, and a path has at most ``stages`` hops:
    # ``stages + 2`` rounds carry a pause from the last hop back to the senders
    # and settle it once more. Later rounds move pauses by about 1e-2 (rates
    # by 1e-3 on average) at cluster scale, at the price of a max-min solve each.
    for _ in range(int(stage.max()) + 3 if stage.size else 3):
        load = paths.link_sum(rates)
        overflowing = (load >= effective * (1 - 1e-6)) & (offered_link > load * (1 + 1e-6))
        keep = overflowing[pair_l]
        if not keep.any():
            break
        u = pair_u[keep]
        per_trunk = paths.trunk_sum(rates) if paths.n_trunks else None
        served = chains.carried(rates, per_trunk)[keep]
        offered = offered_pair[keep]
        with np.errstate(divide="ignore", invalid="ignore"):
            paused = np.clip(np.where(offered > 0, 1.0 - served / offered, 0.0), 0.0, 1.0)
        new_pause = pause.copy()
        np.maximum.at(new_pause, u, paused)
        drain = np.full(capacity_gbps.shape, np.inf)
        np.minimum.at(drain, u[paused > 0], served[paused > 0])
        if np.allclose(new_pause, pause, atol=1e-6):
            break
        # Pauses only grow, so only the sub-flows on links paused more lose more.
        grown = np.flatnonzero(new_pause > pause)
        row, column, _, trunk, trunk_column, _ = paths.link_entries(grown)
        left = 1.0 - new_pause[grown]
        np.minimum(
            kept,
            paths.row_min(row, left[column], trunk, left[trunk_column], initial=1.0),
            out=kept,
        )
        pause = new_pause
        # A paused link's ingress queue is one FIFO: while it waits for the
        # congested port, every flow in it waits too (head-of-line blocking),
        # so each flow crossing the link keeps only 1 - pause of what it offers.
        floor = np.zeros_like(effective)
        np.maximum.at(floor, u, served)
        effective = np.maximum(capacity_gbps * (1.0 - pause), floor)
        rates = problem.solve(capacity_gbps, demand_gbps=demand_gbps * kept)
    load = paths.link_sum(rates)
    full = (load >= effective * (1 - 1e-6)) & (offered_link > load * (1 + 1e-6))
    return BackPressure(
        rates_gbps=rates,
        pause_fraction=pause,
        drain_gbps=np.where(np.isfinite(drain) & (pause > 0), drain, 0.0),
        effective_gbps=effective,
        full=full,
        inputs=np.bincount(pair_l, minlength=capacity_gbps.size),
    )


# --------------------------------------------------------------------------- DCQCN transient


@dataclass(frozen=True)
class BurstTransient:
    """A port's queue after new flows start at line rate, from the DCQCN fluid model.

    Attributes:
        above_xoff_us: Time the queue spends above the PFC Xoff threshold.
        mean_marking: Mean ECN marking probability over the trace.
        time_us: Sample times of the queue trace, from the burst.
        queue_kb: The queue at those times (1 KB = 1000 bytes).
        arrival_gbps: What the senders push into the port at those times.
    """

    above_xoff_us: float
    mean_marking: float
    time_us: np.ndarray
    queue_kb: np.ndarray
    arrival_gbps: np.ndarray


@lru_cache(maxsize=256)
def _burst_transient(
    n_new: int, old_rates: tuple[float, ...], params: DcqcnParams, xoff_kb: float
) -> BurstTransient:
    """The queue at a port after ``n_new`` flows start at line rate beside ``old_rates``.

    Simulated for :data:`_TRANSIENT_US` microseconds; the result is cached, so
    treat its arrays as read-only.
    """
    starts = np.array([params.capacity_gbps] * n_new + list(old_rates))
    # 1 us steps resolve the default periods (50 us); shorter periods need a tenth of them.
    dt_us = min(1.0, min(params.tau_us, params.tau_prime_us, params.timer_us) / 10.0)
    trace = simulate(
        len(starts), params, duration_us=_TRANSIENT_US, dt_us=dt_us, initial_rates_gbps=starts
    )
    dt = np.diff(trace.time_us, append=trace.time_us[-1] + (trace.time_us[1] - trace.time_us[0]))
    above = float(dt[trace.queue_kb >= xoff_kb].sum())
    mean_p = float(np.average(trace.marking_probability, weights=dt))
    return BurstTransient(
        above,
        mean_p,
        trace.time_us.copy(),
        trace.queue_kb.copy(),
        trace.rate_current_gbps.sum(axis=1),
    )


@lru_cache(maxsize=1024)
def _steady_queue(n_flows: int, params: DcqcnParams) -> tuple[float, float]:
    """Queue (KB) and ECN marking probability at the DCQCN fixed point of ``n_flows``."""
    point = fixed_point(n_flows, params)
    queue_kb = float(point.queue_kb_exact)
    return queue_kb, float(marking_probability(queue_kb, params))


def _queue_us(queue_kb: np.ndarray | float, capacity_gbps: np.ndarray | float) -> np.ndarray:
    """Time to drain a queue of ``queue_kb`` (1 KB = 1000 bytes) at ``capacity_gbps``."""
    with np.errstate(divide="ignore"):  # a link left no capacity: an unbounded wait
        return np.asarray(queue_kb) * 8.0 / np.asarray(capacity_gbps)


@dataclass
class Epoch:
    """The transport's answer for one epoch.

    Attributes:
        rates_gbps: Rate of every active sub-flow.
        pause_fraction: Per link, the fraction of the epoch it is paused.
        stall_us: Per active sub-flow, a one-off stall at the epoch's start.
        paused_us: Per link, the one-off pause behind those stalls.
        queue_us: Per link, the queueing delay ahead of a message.
        pause_episode_us: Per link, how long one steady pause lasts.
        transients: Queue traces of ports hit by a burst, and
        queue_cap_us: what those ports can hold (see
            :class:`sim.fabric.latency.PortState`).
        drop_probability: Per active sub-flow, the share of its bits dropped.
        marked_share: Fraction of the epoch's bits that are ECN-marked.
        drop_gbps: Rate at which bits are dropped (lossy mode).
        marking: Per link, the ECN marking probability (None without ECN).
    """

    rates_gbps: np.ndarray
    pause_fraction: np.ndarray
    stall_us: np.ndarray
    paused_us: np.ndarray
    queue_us: np.ndarray
    pause_episode_us: np.ndarray
    transients: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    queue_cap_us: np.ndarray | None = None
    drop_probability: np.ndarray | None = None
    marked_share: float = 0.0
    drop_gbps: float = 0.0
    marking: np.ndarray | None = None


class Transport:
    """A transport on a compiled topology: allocates rates and port state per epoch.

    Args:
        transport: The ``transport`` section of a fabric (see
            :mod:`sim.fabric.config`): ``roce``, ``infiniband`` or ``ideal``.
        topology: The compiled topology.
    """

    def __init__(self, transport: Any, topology: Topology):
        self.transport = transport
        self.topology = topology
        self.stage = link_stage(topology)
        self.capacity = topology.capacity_gbps.astype(np.float64)
        nic = topology.capacity_gbps[topology.link_is_up & (topology.link_src < topology.n_hosts)]
        self.nic_gbps = float(nic.max()) if nic.size else float(topology.capacity_gbps.max())
        self._dcqcn_params: dict[float, DcqcnParams] = {}
        self.has_pfc = transport.kind == "roce" and transport.pfc
        """Whether ports pause their upstream neighbours (PFC); InfiniBand credits are not PFC."""
        self.has_ecn = transport.kind == "roce" and transport.cc == "dcqcn"
        """Whether ports mark ECN for DCQCN."""
        self.backpressure = transport.kind == "infiniband" or (
            transport.kind == "roce" and transport.cc == "none" and transport.pfc
        )
        """Whether rates come from lossless back-pressure (credits, or PFC without DCQCN)."""

    def _params(self, capacity_gbps: float) -> DcqcnParams:
        """DCQCN parameters for a port of this capacity (built once per capacity)."""
        params = self._dcqcn_params.get(capacity_gbps)
        if params is None:
            params = self.transport.dcqcn_params(capacity_gbps)
            self._dcqcn_params[capacity_gbps] = params
        return params

    def demand(self, incidence: sp.csr_matrix | Trunked) -> np.ndarray:
        """Line-rate demand of each sub-flow: its NIC, or NVLink inside a server."""
        local = Trunked.of(incidence).crosses_nothing()
        return np.where(local, NVLINK_GBPS, self.nic_gbps)

    def allocate(
        self,
        incidence: sp.csr_matrix | Trunked,
        demand: np.ndarray | None = None,
        fresh: np.ndarray | None = None,
        crossings: Crossings | None = None,
        capacity_gbps: np.ndarray | None = None,
    ) -> Epoch:
        """The transport's rates and congestion state for a set of sub-flows.

        Args:
            incidence: Sub-flows × links (CSR), each entry the share of the
                sub-flow routed over the link, or its factoring into own links
                and trunks (:class:`~sim.fabric.trunks.Trunked`).
            demand: Line-rate demand per sub-flow (default :meth:`demand`).
            fresh: Which sub-flows start now at line rate (a burst); none if
                omitted, i.e. the steady state.
            crossings: The sub-flows' adjacent link pairs, if the caller kept
                them (used by back-pressure; see :func:`link_crossings`).
            capacity_gbps: Link capacities, if not the topology's (a NIC shaped
                below its line rate, for instance).
        """
        capacity = self.capacity if capacity_gbps is None else capacity_gbps
        demand = self.demand(incidence) if demand is None else demand
        fresh = np.zeros(incidence.shape[0], dtype=bool) if fresh is None else fresh
        zero_links = np.zeros(capacity.size)
        zero_flows = np.zeros(incidence.shape[0])
        transport = self.transport
        kind = transport.kind
        if kind == "ideal":
            if isinstance(incidence, Trunked):
                rates = MaxMinProblem(incidence).solve(capacity, demand_gbps=demand)
            else:
                rates = max_min_rates(incidence, capacity, demand_gbps=demand)
            return Epoch(rates, zero_links, zero_flows, zero_links, zero_links, zero_links)
        if self.backpressure:
            return self._backpressure(incidence, demand, crossings, capacity)
        if isinstance(incidence, Trunked):
            incidence = incidence.tocsr()
        if transport.cc == "none":
            _, rates, offered = line_rate_arrivals(incidence, capacity, demand, self.stage)
            # Drop-tail: an overloaded port's buffer stays full.
            full = offered > capacity * (1 + 1e-9)
            buffer_kb = self.topology.buffer_bytes / 1000.0
            queue = np.where(full, _queue_us(buffer_kb, capacity), 0.0)
            lost = float((demand - rates).sum())
            return Epoch(
                rates,
                zero_links,
                zero_flows,
                zero_links,
                queue,
                zero_links,
                drop_probability=np.clip(1.0 - rates / demand, 0.0, 1.0),
                drop_gbps=lost,
            )
        return self._dcqcn(incidence, demand, fresh, capacity)

    def _backpressure(
        self,
        incidence: sp.csr_matrix | Trunked,
        demand: np.ndarray,
        crossings: Crossings | None,
        capacity: np.ndarray,
    ) -> Epoch:
        """Lossless back-pressure: PFC without rate control, or InfiniBand credits.

        A port held full keeps every input that feeds it at the threshold (PFC
        Xoff, or the credit buffer), so a message waits behind all of them,
        drained at what the port can carry. A link paused part of the time
        stays paused for one episode: until the paused input drains from Xoff
        to Xon (PFC) or frees one MTU of credit (InfiniBand).
        """
        transport = self.transport
        topo = self.topology
        state = backpressure_rates(
            incidence, capacity, demand, self.stage, self.topology, crossings
        )
        if transport.kind == "infiniband":
            threshold_kb = transport.credit_buffer_kb
            hysteresis_kb = topo.mtu_bytes / 1000.0
        else:
            threshold_kb = transport.pfc_xoff_kb
            hysteresis_kb = transport.pfc_xoff_kb - transport.pfc_xon_kb
        held_kb = np.minimum(np.maximum(state.inputs, 1) * threshold_kb, topo.buffer_bytes / 1000.0)
        # A sender's own backlog waits in its NIC, before the message leaves:
        # only switch ports count as queues; a paused NIC link is a pause wait.
        switch_port = topo.link_src >= topo.n_hosts
        queue = np.where(state.full & switch_port, _queue_us(held_kb, state.effective_gbps), 0.0)
        with np.errstate(divide="ignore"):
            episode = np.where(
                state.drain_gbps > 0, _queue_us(hysteresis_kb, state.drain_gbps), 0.0
            )
        return Epoch(
            state.rates_gbps,
            state.pause_fraction,
            np.zeros(incidence.shape[0]),
            np.zeros(capacity.size),
            queue,
            episode,
        )

    def _dcqcn(
        self, incidence: sp.csr_matrix, demand: np.ndarray, fresh: np.ndarray, capacity: np.ndarray
    ) -> Epoch:
        """Max-min rates, plus the transient of flows that start at line rate.

        At every port the max-min solution saturates, DCQCN holds the queue at
        its fixed point and marks with its probability. Where new flows start
        at line rate and overload the port, the DCQCN fluid model from that
        start traces the queue, and gives how long it stays above Xoff: with
        PFC on, the links feeding the port are paused that long and sub-flows
        that cross them but not the port itself stall.
        """
        transport = self.transport
        rates = max_min_rates(incidence, capacity, demand_gbps=demand)
        load = incidence.T @ rates
        binary = _pattern(incidence)
        csc = binary.tocsc()
        flows_per_link = np.diff(csc.indptr)
        is_new = fresh
        saturated = (capacity > 0) & (load >= capacity * (1 - 1e-6)) & (flows_per_link >= 2)
        burst = binary.T @ np.where(is_new, demand, rates)
        fresh_per_link = binary.T @ is_new.astype(np.float64)
        bursting = saturated & (fresh_per_link > 0) & (burst > capacity * (1 + 1e-9))
        queue = np.zeros(capacity.size)
        marking = np.zeros(capacity.size)
        for speed in np.unique(capacity[saturated]):
            links = np.flatnonzero(saturated & (capacity == speed))
            counts, which = np.unique(flows_per_link[links], return_inverse=True)
            params = self._params(float(speed))
            steady = np.array([_steady_queue(int(n), params) for n in counts])
            queue[links] = _queue_us(steady[which, 0], speed)
            marking[links] = steady[which, 1]
        marked = float((load * marking)[saturated & ~bursting].sum())
        paused_us = np.zeros(capacity.size)
        stall = np.zeros(incidence.shape[0])
        transients: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        queue_cap = np.full(capacity.size, np.inf)
        topo = self.topology
        buffer_kb = topo.buffer_bytes / 1000.0
        previous = None
        for link in np.flatnonzero(bursting):
            speed = float(capacity[link])
            rows = csc.indices[csc.indptr[link] : csc.indptr[link + 1]]
            fresh = is_new[rows]
            old = tuple(sorted(round(float(r), 6) for r in rates[rows][~fresh]))
            burst_state = _burst_transient(
                int(fresh.sum()), old, self._params(speed), transport.pfc_xoff_kb
            )
            transients[int(link)] = (
                burst_state.time_us,
                _queue_us(burst_state.queue_kb, speed),
                burst_state.arrival_gbps / speed,
            )
            marked += load[link] * burst_state.mean_marking
            marking[link] = burst_state.mean_marking
            if previous is None:
                previous = _previous_links(incidence, self.stage)
            before = previous[rows, self.stage[link]]
            carried = np.unique(before[before >= 0])
            held_kb = buffer_kb[link]
            if transport.pfc:
                held_kb = min(held_kb, max(carried.size, 1) * transport.pfc_xoff_kb)
            queue_cap[link] = _queue_us(held_kb, speed)
            above_us = burst_state.above_xoff_us
            if not (transport.pfc and above_us > 0):
                continue
            paused_us[carried] = np.maximum(paused_us[carried], above_us)
            # Sub-flows on a paused link that do not cross this port stall.
            on_paused = np.zeros(incidence.shape[0], dtype=bool)
            for c in carried:
                on_paused[csc.indices[csc.indptr[c] : csc.indptr[c + 1]]] = True
            on_paused[rows] = False
            stall[on_paused] = np.maximum(stall[on_paused], above_us)
        total = float(load.sum())
        return Epoch(
            rates,
            np.zeros(capacity.size),
            stall,
            paused_us,
            queue,
            np.zeros(capacity.size),
            transients=transients,
            queue_cap_us=queue_cap,
            marked_share=marked / total if total > 0 else 0.0,
            marking=marking,
        )
