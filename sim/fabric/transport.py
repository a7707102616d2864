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
the marketplace's fabric (:mod:`sim.fabric.network`) both call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

from sim.fabric.backpressure import Crossings, backpressure_rates
from sim.fabric.dcqcn import DcqcnParams, fixed_point, marking_probability, simulate
from sim.fabric.solver import MaxMinProblem, max_min_rates
from sim.fabric.topology import Topology
from sim.fabric.trunks import Trunked

__all__ = [
    "NVLINK_GBPS",
    "Epoch",
    "Transport",
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
