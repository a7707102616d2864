"""How a transport shares a fabric: rates, queues and pauses for a set of flows.

Given the sub-flows crossing a fabric (their routes as a sparse incidence
matrix), a transport answers with one :class:`~sim.fabric.epoch.Epoch`: the rate of every
sub-flow and what the ports hold meanwhile (queues, pauses, drops, ECN
marks). The answer depends on the transport:

- ``ideal`` and RoCE with DCQCN: the max-min fair allocation, which end-to-end
  rate control converges to (see :mod:`sim.fabric.dcqcn`). At every port the
  allocation saturates, DCQCN holds the queue at its fluid fixed point and
  marks with its probability, where that fixed point is stable (the
  linearised delay model's verdict, per flow count and port speed); where it
  is not, the port carries, queues and marks what the model's limit cycle
  does on average (it runs empty part of each period, so the flows it limits
  get less), and messages meet the queue at a random instant of the cycle.
  Flows that start at line rate overload a port before DCQCN reacts; the
  fluid model traces that queue, each new flow sending only the bytes it
  has, and how long it stays above the PFC Xoff threshold. With PFC on, the
  links feeding the port are paused that long and flows that cross them but
  not the port itself (*victims*) stall. With PFC off, the overflow is
  dropped instead. A new flow that is done before any congestion
  notification can reach it gets what the ports forward of its line rate.
- RoCE without congestion control and PFC on, and InfiniBand (credit-based
  flow control): lossless back-pressure (see :mod:`sim.fabric.backpressure`).
  Senders push at line rate; a congested port serves its input ports in
  turn, and a port that cannot drain an input as fast as it arrives pauses
  the upstream link. A pause stops every flow on that link (head-of-line
  blocking), so victims slow down, and the pause spreads hop by hop towards
  the senders (a pause tree).
- RoCE without congestion control and PFC off: lossy drop-tail. Senders push
  at line rate; each overloaded port forwards its inputs in proportion and
  drops the rest, so upstream links still carry the doomed traffic.

Pure numpy and scipy.sparse: the flow simulator (:mod:`sim.fabric.flows`) and
the marketplace's fabric (:mod:`sim.fabric.network`) both call it. What DCQCN
holds at one port (steady state, burst transient) is :mod:`sim.fabric.dcqcn_ports`;
the answer's fields are :mod:`sim.fabric.epoch`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from sim.fabric.backpressure import backpressure_rates
from sim.fabric.dcqcn import DcqcnParams
from sim.fabric.dcqcn_ports import SteadyLinks, burst_transient, bytes_left_kb, steady_port
from sim.fabric.epoch import Epoch
from sim.fabric.link_pairs import Crossings
from sim.fabric.solver import MaxMinProblem, max_min_rates
from sim.fabric.topology import Topology, readonly
from sim.fabric.trunks import Trunked

if TYPE_CHECKING:
    from sim.scenario.fabric import TransportConfig

__all__ = [
    "NVLINK_GBPS",
    "Transport",
    "line_rate_arrivals",
    "link_stage",
]

NVLINK_GBPS = 3600.0
"""Per-direction NVLink bandwidth of an H100 SXM (NVLink 4: 900 GB/s both ways)."""

_NUMPY_ROUND_MS, _NUMPY_ROW_MS = 1.5, 0.0025
"""A numpy back-pressure round's cost, for ``Transport.compile_after``: 1.5 ms plus 2.5 us a
sub-flow (measured: 40 sub-flows about 1.6 ms a round, 1,024 about 4 ms)."""

_PYTHON_TRACE_MS = 55.0
"""A burst's DCQCN trace in the Python loop (2,000 steps), for ``Transport.compile_after``."""


# --------------------------------------------------------------------------- topology helpers


def link_stage(topology: Topology) -> np.ndarray:
    """Position of each link along any path: up links by tier, then down links.

    In a three-tier fabric a path crosses stages 0 (host up), 1, 2, 3, 4, 5
    (down to the host); a link's upstream neighbours are one stage earlier.
    """
    tiers = len(topology.tier_names)
    tier = topology.link_tier.astype(np.int64)
    return np.where(topology.link_is_up, tier, 2 * tiers - 1 - tier)


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


def _copies(incidence: sp.csr_matrix) -> np.ndarray:
    """How many queue pairs each row stands for: its largest entry.

    A row is one queue pair (entries its shares of the links, 1 on a single
    path and on the first hop of a sprayed one) or several on one single path
    (entries their count); a row that crosses no link counts 0.
    """
    out = np.zeros(incidence.shape[0])
    crossing = np.diff(incidence.indptr) > 0
    if crossing.any():
        out[crossing] = np.maximum.reduceat(incidence.data, incidence.indptr[:-1][crossing])
    return out


def _marked_share(
    binary: sp.csr_matrix, rates: np.ndarray, copies: np.ndarray, marking: np.ndarray
) -> float:
    """Share of the bits sent over the fabric that some port on their path marks.

    A bit crossing ports that mark with probabilities ``p_l`` is marked with
    ``1 − Π(1 − p_l)``, about ``Σ p_l`` (taken, capped at 1) when marks are
    rare, as they are where DCQCN holds them.
    """
    sent = rates * copies
    total = float(sent.sum())
    if total <= 0:
        return 0.0
    per_row = np.minimum(np.asarray(binary @ marking).ravel(), 1.0)
    return float(sent @ per_row) / total


def _queue_us(queue_kb: np.ndarray | float, capacity_gbps: np.ndarray | float) -> np.ndarray:
    """Time to drain a queue of ``queue_kb`` (1 KB = 1000 bytes) at ``capacity_gbps``."""
    with np.errstate(divide="ignore"):  # a link left no capacity: an unbounded wait
        return np.asarray(queue_kb) * 8.0 / np.asarray(capacity_gbps)


_STABILITY_ROUNDS = 8
"""Most max-min solves one DCQCN epoch makes while under-used ports turn up (see
:meth:`Transport._dcqcn_rates`)."""


class Transport:
    """A transport on a compiled topology: allocates rates and port state per epoch.

    Args:
        transport: The ``transport`` section of a fabric (see
            :mod:`sim.scenario.fabric`): ``roce``, ``infiniband`` or ``ideal``.
        topology: The compiled topology.
    """

    def __init__(self, transport: TransportConfig, topology: Topology):
        self.transport = transport
        self.topology = topology
        self.stage = readonly(link_stage(topology))
        """Per link, its position along any path (read-only; see :func:`link_stage`)."""
        self.capacity = readonly(topology.capacity_gbps.astype(np.float64))
        """Per link, its capacity in Gb/s (read-only: copy it to shape it)."""
        nic = topology.capacity_gbps[topology.link_is_up & (topology.link_src < topology.n_hosts)]
        self.nic_gbps = float(nic.max()) if nic.size else float(topology.capacity_gbps.max())
        self._dcqcn_params: dict[float, DcqcnParams] = {}
        self.rate_model = transport.rate_model
        """How rates are found: ``dcqcn``, ``backpressure``, ``lossy`` or ``ideal``."""
        self.has_pfc = transport.pauses
        """Whether ports pause their upstream neighbours (PFC); InfiniBand credits are not PFC."""
        self.has_ecn = transport.marks_ecn
        """Whether ports mark ECN for DCQCN."""
        self.backpressure = self.rate_model == "backpressure"
        """Whether rates come from lossless back-pressure (credits, or PFC without DCQCN)."""
        self.compiled_passes: bool | None = None
        """The fabric's hot loops (back-pressure's passes, DCQCN burst traces):
        compiled (True, where numba is installed), Python and numpy (False), or
        chosen by each problem's size (None: back-pressure from
        :data:`sim.fabric.backpressure_passes.COMPILED_FROM`, traces never)."""
        self.compile_after: float | None = None
        """Work after which ``compiled_passes`` turns True by itself (None: never): the
        milliseconds the numpy and Python loops are estimated to have taken so far in
        this transport (:data:`_NUMPY_ROUND_MS` and :data:`_PYTHON_TRACE_MS`)."""
        self._work = 0.0
        self._traced: set[tuple[Any, ...]] = set()

    def _counting(self) -> bool:
        """Whether work still counts towards ``compile_after`` (not yet switched, nor fixed)."""
        return self.compiled_passes is None and self.compile_after is not None

    def _add_work(self, work: float) -> None:
        """Count work towards ``compile_after``; switch to the compiled loops once there."""
        if self._counting():
            self._work += work
            if self._work >= self.compile_after:
                self.compiled_passes = True

    def buffer_thresholds_kbit(self) -> tuple[np.ndarray, np.ndarray]:
        """Lossless back-pressure: where an ingress buffer pauses its link, and resumes it.

        PFC pauses at Xoff and resumes at Xon; InfiniBand credits stop a link
        when its credit buffer is full and free it one MTU later. Neither is
        above the switch's buffer.

        Returns:
            ``(pause_kbit, resume_kbit)``, per link (the buffer it feeds).
        """
        pause_kb, resume_kb = self._pause_resume_kb()
        cap_kb = self.topology.buffer_bytes / 1000.0
        pause = np.minimum(pause_kb, cap_kb)
        return 8.0 * pause, 8.0 * np.clip(np.minimum(resume_kb, cap_kb), 0.0, pause)

    def _pause_resume_kb(self) -> tuple[float, float]:
        """Where an input's buffer pauses its link, and where it resumes it, in KB.

        PFC: Xoff and Xon. InfiniBand: the credit buffer, and one MTU less.
        """
        transport = self.transport
        if self.has_pfc:
            return transport.pfc_xoff_kb, transport.pfc_xon_kb
        return (
            transport.credit_buffer_kb,
            transport.credit_buffer_kb - self.topology.mtu_bytes / 1e3,
        )

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
        remaining_bits: np.ndarray | None = None,
        line_rate_us: np.ndarray | None = None,
        buffer_full: np.ndarray | None = None,
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
                them (used by back-pressure; see
                :func:`~sim.fabric.link_pairs.link_crossings`).
            capacity_gbps: Link capacities, if not the topology's (a NIC shaped
                below its line rate, for instance).
            remaining_bits: What each sub-flow has left to send, if known: a
                burst of new flows under DCQCN lasts only as long as their
                bytes (unbounded if omitted).
            line_rate_us: Per sub-flow, how much longer no congestion
                notification can reach it (see :meth:`notification_us`): under
                DCQCN it sends at line rate until then. None if omitted: every
                sub-flow is under rate control.
            buffer_full: Lossless fabrics only: per link, whether the ingress
                buffer it feeds has filled to the pause threshold, so that the
                port behind it may pause it (see :func:`backpressure_rates`).
                None if omitted: every buffer full, the steady state.
        """
        capacity = self.capacity if capacity_gbps is None else capacity_gbps
        demand = self.demand(incidence) if demand is None else demand
        fresh = np.zeros(incidence.shape[0], dtype=bool) if fresh is None else fresh
        zero_links = np.zeros(capacity.size)
        zero_flows = np.zeros(incidence.shape[0])
        if self.rate_model == "ideal":
            if isinstance(incidence, Trunked):
                rates = MaxMinProblem(incidence).solve(capacity, demand_gbps=demand)
            else:
                rates = max_min_rates(incidence, capacity, demand_gbps=demand)
            return Epoch(
                rates_gbps=rates,
                pause_fraction=zero_links,
                stall_us=zero_flows,
                paused_us=zero_links,
                queue_us=zero_links,
                pause_episode_us=zero_links,
            )
        if self.backpressure:
            return self._backpressure(incidence, demand, crossings, capacity, buffer_full)
        if isinstance(incidence, Trunked):
            incidence = incidence.tocsr()
        if self.rate_model == "lossy":
            _, rates, offered = line_rate_arrivals(incidence, capacity, demand, self.stage)
            # Drop-tail: an overloaded port's buffer stays full.
            full = offered > capacity * (1 + 1e-9)
            buffer_kb = self.topology.buffer_bytes / 1000.0
            queue = np.where(full, _queue_us(buffer_kb, capacity), 0.0)
            lost = float((demand - rates).sum())
            return Epoch(
                rates_gbps=rates,
                pause_fraction=zero_links,
                stall_us=zero_flows,
                paused_us=zero_links,
                queue_us=queue,
                pause_episode_us=zero_links,
                drop_probability=np.clip(1.0 - rates / demand, 0.0, 1.0),
                drop_gbps=lost,
            )
        return self._dcqcn(incidence, demand, fresh, capacity, remaining_bits, line_rate_us)

    def notification_us(self, propagation_us: np.ndarray) -> np.ndarray:
        """How long a new flow sends at line rate before a congestion notification can reach it.

        Under DCQCN a sender cuts its rate only when a CNP comes back: not
        before the fluid model's feedback delay τ*, nor before a round trip of
        its path (the marked packet out, the CNP back). Other transports have
        no such phase: zero.

        Args:
            propagation_us: Per sub-flow, its path's one-way propagation delay.

        Returns:
            Per sub-flow, in microseconds.
        """
        propagation_us = np.asarray(propagation_us, dtype=np.float64)
        if self.rate_model != "dcqcn":
            return np.zeros(propagation_us.shape)
        return np.maximum(self.transport.dcqcn.feedback_delay_us, 2.0 * propagation_us)

    def _backpressure(
        self,
        incidence: sp.csr_matrix | Trunked,
        demand: np.ndarray,
        crossings: Crossings | None,
        capacity: np.ndarray,
        buffer_full: np.ndarray | None = None,
    ) -> Epoch:
        """Lossless back-pressure: PFC without rate control, or InfiniBand credits.

        A port held full keeps every input that feeds it at its threshold, so a
        message waits behind all of them, drained at what the port can carry.
        Under PFC an input fills to Xoff, is paused, drains to Xon and resumes,
        a sawtooth whose mean is ``(Xon + Xoff) / 2`` (csg-htsim's held inputs
        average 24-25 packets at Xon 20 and Xoff 30); under InfiniBand credits
        it holds the credit buffer. A link paused part of the time
        stays paused for one episode: until the paused input drains from Xoff
        to Xon (PFC) or frees one MTU of credit (InfiniBand).
        """
        topo = self.topology
        state = backpressure_rates(
            incidence,
            capacity,
            demand,
            self.stage,
            self.topology,
            crossings,
            buffer_full,
            compiled=self.compiled_passes,
        )
        self._add_work(state.rounds * (_NUMPY_ROUND_MS + _NUMPY_ROW_MS * incidence.shape[0]))
        pause_kb, resume_kb = self._pause_resume_kb()
        # PFC's sawtooth between Xon and Xoff; a credit buffer stays full.
        threshold_kb = (pause_kb + resume_kb) / 2 if self.has_pfc else pause_kb
        hysteresis_kb = pause_kb - resume_kb
        # Only crossed links hold queues or pause: work on those (a group's own links).
        links = state.links if state.links is not None else np.arange(topo.n_links)
        held_kb = np.minimum(
            np.maximum(state.inputs[links], 1) * threshold_kb, topo.buffer_bytes[links] / 1000.0
        )
        # A sender's own backlog waits in its NIC, before the message leaves:
        # only switch ports count as queues; a paused NIC link is a pause wait.
        switch_port = topo.link_src[links] >= topo.n_hosts
        queue = np.zeros(topo.n_links)
        queue[links] = np.where(
            state.full[links] & switch_port, _queue_us(held_kb, state.effective_gbps[links]), 0.0
        )
        episode = np.zeros(topo.n_links)
        drain = state.drain_gbps[links]
        with np.errstate(divide="ignore"):
            episode[links] = np.where(drain > 0, _queue_us(hysteresis_kb, drain), 0.0)
        return Epoch(
            rates_gbps=state.rates_gbps,
            pause_fraction=state.pause_fraction,
            stall_us=np.zeros(incidence.shape[0]),
            paused_us=np.zeros(capacity.size),
            queue_us=queue,
            pause_episode_us=episode,
            filling=state.filling,
        )

    def _dcqcn(
        self,
        incidence: sp.csr_matrix,
        demand: np.ndarray,
        fresh: np.ndarray,
        capacity: np.ndarray,
        remaining_bits: np.ndarray | None = None,
        line_rate_us: np.ndarray | None = None,
    ) -> Epoch:
        """Max-min rates, plus the transient of flows that start at line rate.

        At every port the max-min solution saturates, DCQCN holds the queue at
        its fixed point and marks with its probability, where that fixed point
        is stable; where it is not, the port carries, queues and marks what
        its limit cycle does on average (:meth:`_dcqcn_rates`). Where new
        flows start at line rate and overload the port, the DCQCN fluid model
        from that start traces the queue, each new flow sending only the bytes
        it has, and gives how long the queue stays above Xoff: with PFC on,
        the links feeding the port are paused that long and sub-flows that
        cross them but not the port itself stall.

        Until a congestion notification can reach them (``line_rate_us``),
        new flows still send at line rate: a flow that is done before then
        gets what the ports forward of its line rate, not a fair share
        (:meth:`_before_notification`); the ports' state is the same.
        """
        transport = self.transport
        binary = _pattern(incidence)
        csc = binary.tocsc()
        copies = _copies(incidence)
        # Flows per port: queue pairs, a row counting as the ones it stands for.
        flows_per_link = np.rint(np.asarray(binary.T @ copies).ravel()).astype(np.int64)
        rates, load, saturated, steady = self._dcqcn_rates(
            incidence, demand, capacity, flows_per_link
        )
        is_new = fresh
        burst = binary.T @ np.where(is_new, demand, rates)
        fresh_per_link = binary.T @ is_new.astype(np.float64)
        bursting = saturated & (fresh_per_link > 0) & (burst > capacity * (1 + 1e-9))
        queue = np.where(saturated, _queue_us(steady.queue_kb, capacity), 0.0)
        marking = np.where(saturated, steady.marking, 0.0)
        steady_marking = marking.copy()
        burst_marking: list[tuple[float, np.ndarray, np.ndarray, float]] = []
        paused_us = np.zeros(capacity.size)
        pause_fraction = np.zeros(capacity.size)
        pause_episode = np.zeros(capacity.size)
        stall = np.zeros(incidence.shape[0])
        transients: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        cycles: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        queue_cap = np.full(capacity.size, np.inf)
        topo = self.topology
        buffer_kb = topo.buffer_bytes / 1000.0
        previous = None
        for link, cycle in steady.cycles.items():
            speed = float(capacity[link])
            # After a burst's trace, the port is on its cycle too.
            cycles[int(link)] = (_queue_us(cycle.queue_samples_kb, speed), cycle.arrival_weights)
            if bursting[link] or not self.has_pfc:
                continue
            # An oscillation that passes what the port's inputs hold below Xoff pauses them.
            if previous is None:
                previous = _previous_links(incidence, self.stage)
            rows = csc.indices[csc.indptr[link] : csc.indptr[link + 1]]
            before = previous[rows, self.stage[link]]
            carried = np.unique(before[before >= 0])
            held_kb = min(buffer_kb[link], max(carried.size, 1) * transport.pfc_xoff_kb)
            share, episode_us = cycle.above(held_kb)
            if share > 0:
                pause_fraction[carried] = np.maximum(pause_fraction[carried], share)
                pause_episode[carried] = np.maximum(pause_episode[carried], episode_us)
        for link in np.flatnonzero(bursting):
            speed = float(capacity[link])
            rows = csc.indices[csc.indptr[link] : csc.indptr[link + 1]]
            fresh = is_new[rows]
            old = tuple(sorted(round(float(r), 6) for r in rates[rows][~fresh]))
            params = self._params(speed)
            left = (
                np.full(int(fresh.sum()), np.inf)
                if remaining_bits is None
                else remaining_bits[rows][fresh]
            )
            key = (bytes_left_kb(left, params), old, params, transport.pfc_xoff_kb)
            if self._counting() and key not in self._traced:
                self._traced.add(key)
                self._add_work(_PYTHON_TRACE_MS)
            burst_state = burst_transient(*key, compiled=bool(self.compiled_passes))
            transients[int(link)] = (
                burst_state.time_us,
                _queue_us(burst_state.queue_kb, speed),
                burst_state.arrival_gbps / speed,
            )
            burst_marking.append(
                (float(load[link]), burst_state.time_us, burst_state.marked_us, marking[link])
            )
            marking[link] = burst_state.mean_marking
            if previous is None:
                previous = _previous_links(incidence, self.stage)
            before = previous[rows, self.stage[link]]
            carried = np.unique(before[before >= 0])
            held_kb = buffer_kb[link]
            if self.has_pfc:
                held_kb = min(held_kb, max(carried.size, 1) * transport.pfc_xoff_kb)
            queue_cap[link] = _queue_us(held_kb, speed)
            above_us = burst_state.above_xoff_us
            if not (self.has_pfc and above_us > 0):
                continue
            paused_us[carried] = np.maximum(paused_us[carried], above_us)
            # Sub-flows on a paused link that do not cross this port stall.
            on_paused = np.zeros(incidence.shape[0], dtype=bool)
            for c in carried:
                on_paused[csc.indices[csc.indptr[c] : csc.indptr[c + 1]]] = True
            on_paused[rows] = False
            stall[on_paused] = np.maximum(stall[on_paused], above_us)
        if line_rate_us is not None and remaining_bits is not None and line_rate_us.any():
            rates = self._before_notification(
                incidence,
                demand,
                capacity * steady.utilisation,
                rates,
                remaining_bits,
                line_rate_us,
            )
        return Epoch(
            rates_gbps=rates,
            pause_fraction=pause_fraction,
            stall_us=stall,
            paused_us=paused_us,
            queue_us=queue,
            pause_episode_us=pause_episode,
            transients=transients,
            queue_cap_us=queue_cap,
            marked_share=_marked_share(binary, rates, copies, steady_marking),
            marking=marking,
            cycles=cycles,
            burst_marking=tuple(burst_marking),
            carried_gbps=float(rates @ copies),
        )

    def _before_notification(
        self,
        incidence: sp.csr_matrix,
        demand: np.ndarray,
        capacity: np.ndarray,
        rates: np.ndarray,
        remaining_bits: np.ndarray,
        line_rate_us: np.ndarray,
    ) -> np.ndarray:
        """Rates while some flows send at line rate, before any notification reaches them.

        The flows already under rate control keep the max-min rates they had
        without the new ones (their rate limiters have heard of nothing yet);
        the new ones push their line rate. A port offered more than it
        carries forwards each input in proportion to what arrives, as a FIFO
        queue does (what it cannot forward waits in the burst's traced queue
        or, lossy, is dropped). A new flow whose bytes are all through at that
        rate before a notification can reach it (one packet, say) is sent so:
        at line rate, or at its share of a port that line-rate traffic
        overloads, not at a fair share it never converges to. The other flows
        share what those leave by max-min, as DCQCN converges to (their first
        round trip at line rate is left out: it changes a long flow's
        completion by a fraction of one round trip, and following it would
        split the epochs at every finish).

        Args:
            incidence: Sub-flows × links.
            demand: Line-rate demand per sub-flow.
            capacity: What each link carries under DCQCN.
            rates: The DCQCN (max-min) rates of every sub-flow.
            remaining_bits: What each sub-flow has left to send.
            line_rate_us: How much longer each sends at line rate.
        """
        new = line_rate_us > 0
        sending = np.where(new, demand, rates).astype(np.float64)
        controlled = np.flatnonzero(~new)
        if controlled.size:
            sending[controlled] = max_min_rates(
                incidence[controlled], capacity, demand_gbps=demand[controlled]
            )
        _, forwarded, _ = line_rate_arrivals(incidence, capacity, sending, self.stage)
        short = new & (remaining_bits <= forwarded * 1e3 * line_rate_us)
        if not short.any():
            return rates
        out = forwarded.copy()
        rest = np.flatnonzero(~short)
        if rest.size:
            left = np.maximum(capacity - incidence[np.flatnonzero(short)].T @ forwarded[short], 0.0)
            out[rest] = max_min_rates(incidence[rest], left, demand_gbps=demand[rest])
        return out

    def _dcqcn_rates(
        self,
        incidence: sp.csr_matrix,
        demand: np.ndarray,
        capacity: np.ndarray,
        flows_per_link: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, SteadyLinks]:
        """Max-min rates on what each saturated port carries under DCQCN.

        A port whose fixed point is stable carries its capacity; one whose
        fixed point is unstable carries only its limit cycle's share of it
        (the queue runs empty part of each period). The flows a port limits
        are then held to that share: max-min is solved again with the port's
        capacity scaled down, until no newly saturated port is under-used (at
        most :data:`_STABILITY_ROUNDS` solves; stable fabrics solve once).

        Returns:
            ``(rates, load, saturated, steady)``: the sub-flows' rates, the
            load per link, which links are saturated (at least two flows, at
            what they carry) and the steady state of the saturated ports.
        """
        steady = SteadyLinks.empty(capacity.size)
        effective = capacity
        for _ in range(_STABILITY_ROUNDS):
            rates = max_min_rates(incidence, effective, demand_gbps=demand)
            load = incidence.T @ rates
            saturated = (capacity > 0) & (load >= effective * (1 - 1e-6)) & (flows_per_link >= 2)
            self._fill_steady(steady, saturated & ~steady.known, capacity, flows_per_link)
            under_used = saturated & (steady.utilisation < 1.0) & (effective == capacity)
            if not under_used.any():
                break
            effective = np.where(under_used, capacity * steady.utilisation, effective)
        steady.cycles = {
            link: cycle for link, cycle in sorted(steady.cycles.items()) if saturated[link]
        }
        return rates, load, saturated, steady

    def _fill_steady(
        self,
        steady: SteadyLinks,
        links: np.ndarray,
        capacity: np.ndarray,
        flows_per_link: np.ndarray,
    ) -> None:
        """Each of these links' :func:`steady_port`, found by flow count and speed."""
        for speed in np.unique(capacity[links]):
            at = np.flatnonzero(links & (capacity == speed))
            params = self._params(float(speed))
            counts, which = np.unique(flows_per_link[at], return_inverse=True)
            ports = [steady_port(int(n), params) for n in counts]
            which = np.asarray(which).ravel()
            steady.queue_kb[at] = np.array([port.queue_kb for port in ports])[which]
            steady.marking[at] = np.array([port.marking for port in ports])[which]
            steady.utilisation[at] = np.array([port.utilisation for port in ports])[which]
            for k in np.flatnonzero([port.cycle is not None for port in ports]):
                for link in at[which == k].tolist():
                    steady.cycles[link] = ports[k].cycle
        steady.known |= links
