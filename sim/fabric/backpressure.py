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

The link pairs the sub-flows cross are :mod:`sim.fabric.link_pairs`'s; the
problem and its forward and backward passes are :mod:`sim.fabric.backpressure_passes`'s
(numpy passes, compiled ones for large problems in
:mod:`sim.fabric.backpressure_kernels`, the numpy passes their reference);
this module holds the fixed point and its answer. No SimPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sim.fabric.backpressure_passes import TOLERANCE, problem_network, water_levels
from sim.fabric.link_pairs import Chains, Crossings, upstream_chains
from sim.fabric.topology import Topology
from sim.fabric.trunks import Trunked

__all__ = ["BackPressure", "Filling", "backpressure_rates"]

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
        pair: Per pair, its topology-wide number (see
            :class:`~sim.fabric.link_pairs.Crossings`), sorted.
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
            them (see :func:`sim.fabric.link_pairs.link_crossings`); found here otherwise.
        buffer_full: Per link, whether the ingress buffer it feeds downstream
            has filled to its pause threshold: only then can the ports behind
            it pause the link (until then the buffer takes what they do not
            pass on). None: every buffer is full, the steady state of flows
            that last.
        compiled: Solve with the compiled passes (True, where numba is
            installed) or the numpy ones (False); None: compiled from
            :data:`~sim.fabric.backpressure_passes.COMPILED_FROM` crossings. The
            two agree to about 1e-13.
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
    chains: Chains,
    pausable: np.ndarray | None = None,
    compiled: bool | None = None,
) -> BackPressure:
    """:func:`backpressure_rates` on the links the sub-flows cross, numbered from 0.

    ``pausable`` (per local link, None for all) says which links their
    downstream ports may pause; ``compiled`` chooses the passes.
    """
    network = problem_network(paths, stage, chains, demand_gbps.astype(np.float64), compiled)
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


def _filling_gbps(
    chains: Chains, offered: np.ndarray, effective: np.ndarray, scale: np.ndarray
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
