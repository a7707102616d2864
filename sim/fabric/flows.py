"""Flow completion times on a fabric: a fluid simulation, one rate solve per epoch.

Flows (src, dst, start, size) are routed once, then simulated as fluid: the
set of active flows changes only when a flow starts or finishes, and between
two such instants every flow moves at the rate the transport's allocation
gives it. Each instant is one *epoch*: one vectorised solve for all active
flows together, never a packet or a round trip.

How rates are allocated depends on the transport:

- ``ideal`` and RoCE with DCQCN: the max-min fair allocation, which end-to-end
  rate control converges to (see :mod:`sim.fabric.dcqcn`). Flows start at
  line rate, so when new flows overload a port the queue builds before DCQCN
  reacts; its fluid model gives how long the queue stays above the PFC Xoff
  threshold. With PFC on, the links feeding that port are paused that long:
  flows that cross those links but not the congested port (*victims*) stall.
  With PFC off, the overflow is dropped instead and victims are untouched.
- RoCE without congestion control and PFC on, and InfiniBand (credit-based
  flow control): lossless back-pressure. Senders push at line rate; a port
  that is offered more than it can drain keeps its ingress queues full and
  pauses the upstream links that feed it, a fraction of the time equal to
  one minus what it serves over what they offer. A pause stops every flow on
  that link (head-of-line blocking), so victims slow down, and the pause
  spreads hop by hop towards the senders.
- RoCE without congestion control and PFC off: lossy drop-tail. Senders push
  at line rate; each overloaded port forwards its inputs in proportion and
  drops the rest, so upstream links still carry the doomed traffic.

A flow's completion time is its fluid transfer time plus its path's
propagation and per-hop store-and-forward of one MTU; the ideal completion
time is the same flow alone on an empty fabric at its NIC's line rate.

Every epoch also leaves queues and pauses at the ports: the DCQCN fixed-point
queue, a burst's traced queue, the thresholds back-pressure holds, a full
drop-tail buffer. Messages sent in the epoch are sampled and meet them (see
:mod:`sim.fabric.latency`), which gives the per-message latency distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from sim.fabric.dcqcn import DcqcnParams, fixed_point, marking_probability, simulate
from sim.fabric.latency import (
    LATENCY_COLUMNS,
    MessageSampler,
    PortState,
    latency_quantiles,
    path_delays,
    sample_latencies,
)
from sim.fabric.routing import Routes, route
from sim.fabric.solver import max_min_rates
from sim.fabric.topology import Topology
from sim.rng import Streams

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

NVLINK_GBPS = 3600.0
"""Per-direction NVLink bandwidth of an H100 SXM (NVLink 4: 900 GB/s both ways)."""

FLOW_COLUMNS = (
    "flow_id",
    "src",
    "dst",
    "size_bytes",
    "start_us",
    "fct_us",
    "ideal_fct_us",
    "slowdown",
)

_RTOL = 1e-9
_TRANSIENT_US = 2000.0
"""How long the DCQCN transient after a burst of new flows is simulated."""


@dataclass
class FabricResult:
    """What a fabric run produces.

    Tables are columns of numpy arrays; the properties give them as
    DataFrames (pandas is imported only then: it is slow to import).

    Attributes:
        flow_table: One entry per flow: the columns of ``flows.csv``.
        summary: Figures for ``summary.json``.
        link_table: Per directed link: bytes carried, paused and busy time.
        message_table: Sampled messages, by send time: flow, send time,
            latency and its parts (see :mod:`sim.fabric.latency`).
    """

    flow_table: dict[str, np.ndarray]
    summary: dict[str, Any]
    link_table: dict[str, np.ndarray]
    message_table: dict[str, np.ndarray]

    @property
    def flows(self) -> pd.DataFrame:
        """:attr:`flow_table` as a DataFrame."""
        return _frame(self.flow_table)

    @property
    def links(self) -> pd.DataFrame:
        """:attr:`link_table` as a DataFrame."""
        return _frame(self.link_table)

    @property
    def messages(self) -> pd.DataFrame:
        """:attr:`message_table` as a DataFrame."""
        return _frame(self.message_table)


def _frame(table: dict[str, np.ndarray]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(table)


# --------------------------------------------------------------------------- topology helpers


def link_stage(topology: Topology) -> np.ndarray:
    """Position of each link along any path: up links by tier, then down links.

    In a three-tier fabric a path crosses stages 0 (host up), 1, 2, 3, 4, 5
    (down to the host); a link's upstream neighbours are one stage earlier.
    """
    tiers = len(topology.tier_names)
    tier = topology.link_tier.astype(np.int64)
    return np.where(topology.link_is_up, tier, 2 * tiers - 1 - tier)


def _routing_args(transport: Any, topology: Topology, sizes: np.ndarray) -> dict[str, Any]:
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


def _row_min(matrix: sp.csr_matrix, per_column: np.ndarray, empty: float) -> np.ndarray:
    """Per row, the minimum of ``per_column`` over the row's nonzero columns."""
    out = np.full(matrix.shape[0], empty)
    counts = np.diff(matrix.indptr)
    rows = np.flatnonzero(counts)
    if rows.size:
        values = per_column[matrix.indices]
        out[rows] = np.minimum.reduceat(values, matrix.indptr[rows])
    return out


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
    incidence: sp.csr_matrix,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """What line-rate senders push into each stage when ports forward in proportion.

    Stages are visited in path order; an overloaded port forwards each input
    in proportion to what arrives, up to its capacity.

    Returns:
        ``(arriving, forwarded)``: ``arriving[k, f]`` is sub-flow ``f``'s rate
        arriving at path stage ``k``; ``forwarded`` its rate past the last stage.
    """
    stages = int(stage.max()) + 1 if stage.size else 0
    arriving = np.zeros((stages, demand_gbps.size))
    rates = demand_gbps.astype(np.float64).copy()
    csc = incidence.tocsc()
    for k in range(stages):
        arriving[k] = rates
        links = np.flatnonzero(stage == k)
        sub = csc[:, links]
        load = sub.T @ rates
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(load > capacity_gbps[links], capacity_gbps[links] / load, 1.0)
        rates = rates * _row_min(sub.tocsr(), scale, 1.0)
    return arriving, rates


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


def backpressure_rates(
    incidence: sp.csr_matrix,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
    upstream: tuple[np.ndarray, np.ndarray],
) -> BackPressure:
    """Rates under lossless hop-by-hop back-pressure (PFC without rate control).

    Senders push at line rate. A port offered more than it serves keeps its
    ingress queues full and pauses each link ``u`` feeding it a fraction
    ``1 - served / offered`` of the time (over the flows crossing both); a
    paused link carries nothing while paused, so every flow on it slows,
    victims included, and the pause spreads on towards the senders.

    Args:
        incidence: Active sub-flows × links.
        capacity_gbps: Link capacities.
        demand_gbps: What each sub-flow would send at line rate.
        stage: Path stage of every link (see :func:`link_stage`).
        upstream: Pairs ``(u, l)``: link ``u`` feeds link ``l`` directly and
            some active sub-flow crosses both.

    Returns:
        The rates, the pauses and which ports hold full queues.
    """
    pair_u, pair_l = upstream
    pause = np.zeros(capacity_gbps.shape)
    drain = np.full(capacity_gbps.shape, np.inf)
    effective = capacity_gbps.astype(np.float64).copy()
    binary = _pattern(incidence)
    arriving, _ = line_rate_arrivals(incidence, capacity_gbps, demand_gbps, stage)
    offered_link = np.zeros(capacity_gbps.shape)
    for k in range(arriving.shape[0]):
        links = np.flatnonzero(stage == k)
        offered_link[links] = incidence[:, links].T @ arriving[k]
    rates = max_min_rates(incidence, effective, demand_gbps=demand_gbps)
    for _ in range(2 * len(np.unique(pair_l)) + 1):
        load = incidence.T @ rates
        overflowing = (load >= effective * (1 - 1e-6)) & (offered_link > load * (1 + 1e-6))
        keep = overflowing[pair_l]
        if not keep.any():
            break
        u, l_ = pair_u[keep], pair_l[keep]
        both = binary[:, u].multiply(binary[:, l_])
        served = np.asarray(both.T @ rates).ravel()
        offered = np.zeros(u.size)
        for k in np.unique(stage[u]):
            cols = np.flatnonzero(stage[u] == k)
            offered[cols] = both[:, cols].T @ arriving[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            paused = np.clip(np.where(offered > 0, 1.0 - served / offered, 0.0), 0.0, 1.0)
        new_pause = pause.copy()
        np.maximum.at(new_pause, u, paused)
        drain = np.full(capacity_gbps.shape, np.inf)
        np.minimum.at(drain, u[paused > 0], served[paused > 0])
        if np.allclose(new_pause, pause, atol=1e-9):
            break
        pause = new_pause
        # A paused link transmits only while unpaused, but always at least what
        # the congested flows crossing it are served downstream.
        floor = np.zeros_like(effective)
        np.maximum.at(floor, u, served)
        effective = np.maximum(capacity_gbps * (1.0 - pause), floor)
        rates = max_min_rates(incidence, effective, demand_gbps=demand_gbps)
    load = incidence.T @ rates
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
    trace = simulate(
        len(starts), params, duration_us=_TRANSIENT_US, dt_us=1.0, initial_rates_gbps=starts
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
    return np.asarray(queue_kb) * 8.0 / np.asarray(capacity_gbps)


# --------------------------------------------------------------------------- the simulation


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


class _Run:
    """State of one fluid simulation."""

    def __init__(self, config: Any, flows: Mapping[str, Any]):
        self.config = config
        self.transport = config.transport
        self.topology = config.build_topology()
        topo = self.topology
        self.src = np.asarray(flows["src"], dtype=np.int64)
        self.dst = np.asarray(flows["dst"], dtype=np.int64)
        self.start_us = np.asarray(flows["start_us"], dtype=np.float64)
        self.size_bytes = np.asarray(flows["size_bytes"], dtype=np.int64)
        self.routes: Routes = route(
            topo, self.src, self.dst, **_routing_args(self.transport, topo, self.size_bytes)
        )
        routes = self.routes
        self.incidence = routes.incidence.tocsr()
        self.sub_flow = routes.flow_of_subflow
        self.sub_start = self.start_us[self.sub_flow]
        self.sub_bits = self.size_bytes[self.sub_flow] * 8.0 * routes.share
        nic = topo.capacity_gbps[topo.link_is_up & (topo.link_src < topo.n_hosts)]
        self.nic_gbps = float(nic.max()) if nic.size else float(topo.capacity_gbps.max())
        self.local = np.diff(self.incidence.indptr) == 0
        self.stage = link_stage(topo)
        self.previous_link = _previous_links(self.incidence, self.stage)
        self.capacity = topo.capacity_gbps.astype(np.float64)
        n_links = topo.n_links
        self.link_bits = np.zeros(n_links)
        self.link_paused_us = np.zeros(n_links)
        self.link_busy_us = np.zeros(n_links)
        self.marked_bits = 0.0
        self.dropped_bits = 0.0
        self._dcqcn_params: dict[float, DcqcnParams] = {}
        self.message_bytes = config.message_bytes or topo.mtu_bytes
        self.sub_propagation_us, self.sub_serialisation_us = path_delays(
            self.incidence,
            topo.prop_delay_us,
            self.capacity,
            self.stage,
            self.message_bytes,
            topo.mtu_bytes,
            NVLINK_GBPS,
        )
        rng = Streams(config.seed).get("fabric/latency")
        self.rng = rng
        self.sampler = MessageSampler(
            float(self.sub_bits.sum()) / (self.message_bytes * 8.0), config.latency_samples, rng
        )
        self.samples: list[dict[str, np.ndarray]] = []

    def _params(self, capacity_gbps: float) -> DcqcnParams:
        """DCQCN parameters for a port of this capacity (built once per capacity)."""
        params = self._dcqcn_params.get(capacity_gbps)
        if params is None:
            params = self.transport.dcqcn_params(capacity_gbps)
            self._dcqcn_params[capacity_gbps] = params
        return params

    def demand(self, active: np.ndarray) -> np.ndarray:
        """Line-rate demand of each active sub-flow (NVLink inside a server)."""
        return np.where(self.local[active], NVLINK_GBPS, self.nic_gbps)

    def upstream_pairs(self, binary: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Adjacent link pairs (u feeds l) that some active sub-flow crosses both.

        Args:
            binary: The active sub-flows' link pattern (see :func:`_pattern`).
        """
        both = (binary.T @ binary).tocoo()
        u, l_ = both.row, both.col
        topo = self.topology
        keep = (topo.link_dst[u] == topo.link_src[l_]) & (topo.reverse_link[u] != l_)
        order = np.lexsort((l_[keep], u[keep]))
        return u[keep][order].astype(np.int64), l_[keep][order].astype(np.int64)

    def allocate(self, active: np.ndarray, new: np.ndarray, incidence: sp.csr_matrix) -> Epoch:
        """The transport's rates and congestion state for the active sub-flows.

        Args:
            active: Active sub-flows.
            new: Sub-flows that start now (a subset of ``active``).
            incidence: ``self.incidence[active]``.
        """
        demand = self.demand(active)
        zero_links = np.zeros(self.capacity.size)
        zero_flows = np.zeros(active.size)
        transport = self.transport
        kind = transport.kind
        if kind == "ideal":
            rates = max_min_rates(incidence, self.capacity, demand_gbps=demand)
            return Epoch(rates, zero_links, zero_flows, zero_links, zero_links, zero_links)
        if kind == "infiniband" or (transport.cc == "none" and transport.pfc):
            return self._backpressure(incidence, demand)
        if transport.cc == "none":
            arriving, rates = line_rate_arrivals(incidence, self.capacity, demand, self.stage)
            offered = np.zeros(self.capacity.size)
            for k in range(arriving.shape[0]):
                links = np.flatnonzero(self.stage == k)
                offered[links] = incidence[:, links].T @ arriving[k]
            # Drop-tail: an overloaded port's buffer stays full.
            full = offered > self.capacity * (1 + 1e-9)
            buffer_kb = self.topology.buffer_bytes / 1000.0
            queue = np.where(full, _queue_us(buffer_kb, self.capacity), 0.0)
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
        return self._dcqcn(active, new, incidence, demand)

    def _backpressure(self, incidence: sp.csr_matrix, demand: np.ndarray) -> Epoch:
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
            incidence, self.capacity, demand, self.stage, self.upstream_pairs(_pattern(incidence))
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
            np.zeros(self.capacity.size),
            queue,
            episode,
        )

    def _dcqcn(
        self, active: np.ndarray, new: np.ndarray, incidence: sp.csr_matrix, demand: np.ndarray
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
        rates = max_min_rates(incidence, self.capacity, demand_gbps=demand)
        load = incidence.T @ rates
        binary = _pattern(incidence)
        csc = binary.tocsc()
        flows_per_link = np.diff(csc.indptr)
        is_new = np.zeros(self.sub_flow.size, dtype=bool)
        is_new[new] = True
        is_new = is_new[active]
        saturated = (load >= self.capacity * (1 - 1e-6)) & (flows_per_link >= 2)
        burst = binary.T @ np.where(is_new, demand, rates)
        fresh_per_link = binary.T @ is_new.astype(np.float64)
        bursting = saturated & (fresh_per_link > 0) & (burst > self.capacity * (1 + 1e-9))
        queue = np.zeros(self.capacity.size)
        marking = np.zeros(self.capacity.size)
        for capacity in np.unique(self.capacity[saturated]):
            links = np.flatnonzero(saturated & (self.capacity == capacity))
            counts, which = np.unique(flows_per_link[links], return_inverse=True)
            params = self._params(float(capacity))
            steady = np.array([_steady_queue(int(n), params) for n in counts])
            queue[links] = _queue_us(steady[which, 0], capacity)
            marking[links] = steady[which, 1]
        marked = float((load * marking)[saturated & ~bursting].sum())
        paused_us = np.zeros(self.capacity.size)
        stall = np.zeros(active.size)
        transients: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        queue_cap = np.full(self.capacity.size, np.inf)
        topo = self.topology
        buffer_kb = topo.buffer_bytes / 1000.0
        for link in np.flatnonzero(bursting):
            capacity = float(self.capacity[link])
            rows = csc.indices[csc.indptr[link] : csc.indptr[link + 1]]
            fresh = is_new[rows]
            old = tuple(sorted(round(float(r), 6) for r in rates[rows][~fresh]))
            burst_state = _burst_transient(
                int(fresh.sum()), old, self._params(capacity), transport.pfc_xoff_kb
            )
            transients[int(link)] = (
                burst_state.time_us,
                _queue_us(burst_state.queue_kb, capacity),
                burst_state.arrival_gbps / capacity,
            )
            marked += load[link] * burst_state.mean_marking
            before = self.previous_link[active[rows], self.stage[link]]
            carried = np.unique(before[before >= 0])
            held_kb = buffer_kb[link]
            if transport.pfc:
                held_kb = min(held_kb, max(carried.size, 1) * transport.pfc_xoff_kb)
            queue_cap[link] = _queue_us(held_kb, capacity)
            above_us = burst_state.above_xoff_us
            if not (transport.pfc and above_us > 0):
                continue
            paused_us[carried] = np.maximum(paused_us[carried], above_us)
            # Sub-flows on a paused link that do not cross this port stall.
            on_paused = np.zeros(active.size, dtype=bool)
            for c in carried:
                on_paused[csc.indices[csc.indptr[c] : csc.indptr[c + 1]]] = True
            on_paused[rows] = False
            stall[on_paused] = np.maximum(stall[on_paused], above_us)
        total = float(load.sum())
        return Epoch(
            rates,
            np.zeros(self.capacity.size),
            stall,
            paused_us,
            queue,
            np.zeros(self.capacity.size),
            transients=transients,
            queue_cap_us=queue_cap,
            marked_share=marked / total if total > 0 else 0.0,
        )

    def run(self) -> FabricResult:
        """Simulate every flow to completion."""
        n_sub = self.sub_flow.size
        remaining = self.sub_bits.copy()
        finish = np.full(n_sub, np.nan)
        order = np.argsort(self.sub_start, kind="stable")
        next_start = 0
        active = np.zeros(0, dtype=np.int64)
        now = float(self.sub_start[order[0]])
        epochs = 0
        stall_until = np.full(n_sub, -np.inf)
        while next_start < n_sub or active.size:
            starting = order[next_start:]
            new = starting[self.sub_start[starting] <= now + 1e-12]
            next_start += new.size
            active = np.union1d(active, new)
            upcoming = self.sub_start[order[next_start]] if next_start < n_sub else np.inf
            if active.size == 0:
                now = float(upcoming)
                continue
            incidence = self.incidence[active]
            epoch = self.allocate(active, new, incidence)
            epochs += 1
            rates = epoch.rates_gbps
            stall_until[active] = np.maximum(stall_until[active], now + epoch.stall_us)
            begin = np.maximum(now, stall_until[active])
            with np.errstate(divide="ignore"):
                done_at = begin + remaining[active] / (rates * 1e3)
            t_next = min(float(done_at.min()), float(upcoming))
            if not np.isfinite(t_next):
                raise RuntimeError("no flow can make progress: every active flow has rate 0")
            dt = t_next - now
            sent = np.minimum(remaining[active], rates * 1e3 * np.clip(t_next - begin, 0.0, None))
            remaining[active] -= sent
            self.link_bits += incidence.T @ sent
            self.link_busy_us += (incidence.T @ rates > 0) * dt
            self.link_paused_us += epoch.pause_fraction * dt + np.minimum(epoch.paused_us, dt)
            self.marked_bits += epoch.marked_share * float(sent.sum())
            self.dropped_bits += epoch.drop_gbps * 1e3 * dt
            self._sample(epoch, active, incidence, sent, now, dt, stall_until[active])
            finished = remaining[active] <= self.sub_bits[active] * _RTOL
            finish[active[finished]] = np.minimum(done_at[finished], t_next)
            remaining[active[finished]] = 0.0
            active = active[~finished]
            now = t_next
        return self._result(finish, epochs)

    def _sample(
        self,
        epoch: Epoch,
        active: np.ndarray,
        incidence: sp.csr_matrix,
        sent_bits: np.ndarray,
        now: float,
        dt: float,
        stall_until: np.ndarray,
    ) -> None:
        """Sample the latency of messages sent in this epoch."""
        entries = self.sampler.draw(sent_bits / (self.message_bytes * 8.0))
        if entries.size == 0:
            return
        # Ports held full carry no separate pause wait: their drain rate has it.
        steady_pause = np.where(epoch.queue_us > 0, 0.0, epoch.pause_fraction)
        state = PortState(
            queue_us=epoch.queue_us,
            pause_fraction=steady_pause,
            pause_episode_us=epoch.pause_episode_us,
            stall_until_us=stall_until,
            drop_probability=epoch.drop_probability
            if epoch.drop_probability is not None
            else np.zeros(active.size),
            transients=epoch.transients,
            queue_cap_us=epoch.queue_cap_us,
            lossless=self.transport.kind != "roce" or self.transport.pfc,
        )
        drawn = sample_latencies(
            incidence,
            entries,
            self.sub_propagation_us[active],
            self.sub_serialisation_us[active],
            state,
            now,
            dt,
            self.rng,
        )
        drawn["flow_id"] = self.sub_flow[active[entries]]
        self.samples.append(drawn)

    def messages(self) -> dict[str, np.ndarray]:
        """The sampled messages, by send time: flow, send time, latency and its parts."""
        columns = ["flow_id", "sent_us", *LATENCY_COLUMNS, "retransmitted"]
        if not self.samples:
            return {c: np.zeros(0) for c in columns}
        table = {c: np.concatenate([d[c] for d in self.samples]) for c in columns}
        order = np.lexsort((table["flow_id"], table["sent_us"]))
        return {c: v[order] for c, v in table.items()}

    def _result(self, sub_finish: np.ndarray, epochs: int) -> FabricResult:
        topo = self.topology
        n_flows = self.src.size
        flow_finish = np.full(n_flows, -np.inf)
        np.maximum.at(flow_finish, self.sub_flow, sub_finish)
        base_us = self._path_latency_us()
        line = np.where(self._flow_local(), NVLINK_GBPS, self.nic_gbps)
        ideal = self.size_bytes * 8.0 / (line * 1e3) + base_us
        fct = flow_finish - self.start_us + base_us
        slowdown = np.maximum(fct / ideal, 1.0)
        flow_table = {
            "flow_id": np.arange(n_flows, dtype=np.int64),
            "src": self.src,
            "dst": self.dst,
            "size_bytes": self.size_bytes,
            "start_us": self.start_us,
            "fct_us": fct,
            "ideal_fct_us": ideal,
            "slowdown": slowdown,
        }
        busy = self.link_busy_us
        carried = busy > 0
        pause_fraction = (
            float(self.link_paused_us[carried].sum() / busy[carried].sum())
            if carried.any()
            else 0.0
        )
        total_bits = float(self.sub_bits.sum())
        transport = self.transport
        has_ecn = transport.kind == "roce" and transport.cc == "dcqcn"
        has_pfc = transport.kind == "roce" and transport.pfc
        messages = self.messages()
        summary = {
            "flows": int(n_flows),
            "fct_slowdown_p50": float(np.quantile(slowdown, 0.5)),
            "fct_slowdown_p99": float(np.quantile(slowdown, 0.99)),
            "max_fct_us": float(fct.max()),
            "makespan_us": float(flow_finish.max() - self.start_us.min()),
            "pfc_pause_fraction": pause_fraction if has_pfc else None,
            "ecn_mark_fraction": (self.marked_bits / total_bits if total_bits else 0.0)
            if has_ecn
            else None,
            "credit_stall_fraction": pause_fraction if transport.kind == "infiniband" else None,
            "drop_fraction": self.dropped_bits / (self.dropped_bits + total_bits)
            if transport.kind == "roce" and not transport.pfc
            else None,
            **latency_quantiles(messages["latency_us"]),
            "message_bytes": int(self.message_bytes),
            "latency_samples": int(messages["latency_us"].size),
            "epochs": epochs,
            "hosts": int(topo.n_hosts),
            "transport": transport.kind,
            "routing": self.routes.mode,
        }
        names = np.asarray(topo.node_names, dtype=object)
        links = {
            "link": np.arange(topo.n_links),
            "src": names[topo.link_src],
            "dst": names[topo.link_dst],
            "tier": np.asarray(topo.tier_names, dtype=object)[topo.link_tier],
            "bytes": self.link_bits / 8.0,
            "busy_us": busy,
            "paused_us": self.link_paused_us,
        }
        return FabricResult(flow_table, summary, links, messages)

    def _flow_local(self) -> np.ndarray:
        local = np.ones(self.src.size, dtype=bool)
        np.logical_and.at(local, self.sub_flow, self.local)
        return local

    def _path_latency_us(self) -> np.ndarray:
        """Propagation plus one-MTU store-and-forward per hop, per flow (first QP's path)."""
        topo = self.topology
        per_link = topo.prop_delay_us + topo.mtu_bytes * 8.0 / (topo.capacity_gbps * 1e3)
        latency = np.asarray(self.incidence @ per_link).ravel()
        first = np.zeros(self.src.size, dtype=np.int64)
        first[self.sub_flow[::-1]] = np.arange(self.sub_flow.size)[::-1]
        return latency[first]


def simulate_flows(config: Any, flows: Mapping[str, Any]) -> FabricResult:
    """Simulate a traffic file on a fabric.

    Args:
        config: A :class:`sim.fabric.config.FabricConfig` (topology and transport).
        flows: Columns ``src, dst, start_us, size_bytes`` (a DataFrame or a
            mapping of arrays), hosts numbered in topology order.

    Returns:
        Per-flow completion times, sampled message latencies, the summary and
        per-link figures.
    """
    return _Run(config, flows).run()
