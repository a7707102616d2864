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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sim.fabric.dcqcn import DcqcnParams, fixed_point, marking_probability, simulate
from sim.fabric.routing import Routes, route
from sim.fabric.solver import max_min_rates
from sim.fabric.topology import Topology

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

    Attributes:
        flows: One row per flow: the contract columns of ``flows.csv`` first.
        summary: Figures for ``summary.json``.
        links: Per directed link: bytes carried, paused and busy time.
    """

    flows: pd.DataFrame
    summary: dict[str, Any]
    links: pd.DataFrame


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


def backpressure_rates(
    incidence: sp.csr_matrix,
    capacity_gbps: np.ndarray,
    demand_gbps: np.ndarray,
    stage: np.ndarray,
    upstream: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
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
        ``(rates_gbps, pause_fraction)``: the rate of every sub-flow and the
        fraction of time every link is paused by its downstream neighbour.
    """
    pair_u, pair_l = upstream
    pause = np.zeros(capacity_gbps.shape)
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
        if np.allclose(new_pause, pause, atol=1e-9):
            break
        pause = new_pause
        # A paused link transmits only while unpaused, but always at least what
        # the congested flows crossing it are served downstream.
        floor = np.zeros_like(effective)
        np.maximum.at(floor, u, served)
        effective = np.maximum(capacity_gbps * (1.0 - pause), floor)
        rates = max_min_rates(incidence, effective, demand_gbps=demand_gbps)
    return rates, pause


# --------------------------------------------------------------------------- DCQCN transient


@lru_cache(maxsize=256)
def _burst_transient(
    n_new: int, old_rates: tuple[float, ...], params: DcqcnParams, xoff_kb: float
) -> tuple[float, float]:
    """Queue above Xoff and ECN marking after ``n_new`` flows start at line rate.

    Returns:
        ``(time_above_xoff_us, mean_marking_probability)`` over the first
        :data:`_TRANSIENT_US` microseconds.
    """
    starts = np.array([params.capacity_gbps] * n_new + list(old_rates))
    trace = simulate(
        len(starts), params, duration_us=_TRANSIENT_US, dt_us=1.0, initial_rates_gbps=starts
    )
    dt = np.diff(trace.time_us, append=trace.time_us[-1] + (trace.time_us[1] - trace.time_us[0]))
    above = float(dt[trace.queue_kb >= xoff_kb].sum())
    return above, float(np.average(trace.marking_probability, weights=dt))


@lru_cache(maxsize=1024)
def _steady_marking(n_flows: int, params: DcqcnParams) -> float:
    """ECN marking probability at the DCQCN fixed point of ``n_flows`` at one port."""
    point = fixed_point(n_flows, params)
    return float(marking_probability(point.queue_kb_exact, params))


# --------------------------------------------------------------------------- the simulation


@dataclass
class Epoch:
    """The transport's answer for one epoch.

    Attributes:
        rates_gbps: Rate of every active sub-flow.
        pause_fraction: Per link, the fraction of the epoch it is paused.
        stall_us: Per active sub-flow, a one-off stall at the epoch's start.
        paused_us: Per link, the one-off pause behind those stalls.
        marked_share: Fraction of the epoch's bits that are ECN-marked.
        drop_gbps: Rate at which bits are dropped (lossy mode).
    """

    rates_gbps: np.ndarray
    pause_fraction: np.ndarray
    stall_us: np.ndarray
    paused_us: np.ndarray
    marked_share: float = 0.0
    drop_gbps: float = 0.0


class _Run:
    """State of one fluid simulation."""

    def __init__(self, config: Any, flows: pd.DataFrame):
        self.config = config
        self.transport = config.transport
        self.topology = config.build_topology()
        topo = self.topology
        self.src = flows["src"].to_numpy(np.int64)
        self.dst = flows["dst"].to_numpy(np.int64)
        self.start_us = flows["start_us"].to_numpy(np.float64)
        self.size_bytes = flows["size_bytes"].to_numpy(np.int64)
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
        self.capacity = topo.capacity_gbps.astype(np.float64)
        n_links = topo.n_links
        self.link_bits = np.zeros(n_links)
        self.link_paused_us = np.zeros(n_links)
        self.link_busy_us = np.zeros(n_links)
        self.marked_bits = 0.0
        self.dropped_bits = 0.0
        self._dcqcn_params: dict[float, DcqcnParams] = {}

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
        none_links = np.zeros(self.capacity.size)
        none_flows = np.zeros(active.size)
        transport = self.transport
        kind = transport.kind
        if kind == "ideal":
            rates = max_min_rates(incidence, self.capacity, demand_gbps=demand)
            return Epoch(rates, none_links, none_flows, none_links)
        if kind == "infiniband" or (transport.cc == "none" and transport.pfc):
            rates, pause = backpressure_rates(
                incidence,
                self.capacity,
                demand,
                self.stage,
                self.upstream_pairs(_pattern(incidence)),
            )
            return Epoch(rates, pause, none_flows, none_links)
        if transport.cc == "none":
            _, rates = line_rate_arrivals(incidence, self.capacity, demand, self.stage)
            lost = float((demand - rates).sum())
            return Epoch(rates, none_links, none_flows, none_links, drop_gbps=lost)
        return self._dcqcn(active, new, incidence, demand)

    def _dcqcn(
        self, active: np.ndarray, new: np.ndarray, incidence: sp.csr_matrix, demand: np.ndarray
    ) -> Epoch:
        """Max-min rates, plus the transient of flows that start at line rate.

        At every port the max-min solution saturates, DCQCN holds the queue at
        its fixed point and marks with its probability. Where new flows start
        at line rate and overload the port, the DCQCN fluid model from that
        start gives how long the queue stays above Xoff: with PFC on, the links
        feeding the port are paused that long and sub-flows that cross them
        but not the port itself stall.
        """
        transport = self.transport
        rates = max_min_rates(incidence, self.capacity, demand_gbps=demand)
        load = incidence.T @ rates
        binary = _pattern(incidence)
        csc = binary.tocsc()
        flows_per_link = np.diff(csc.indptr)
        is_new = np.isin(active, new)
        saturated = (load >= self.capacity * (1 - 1e-6)) & (flows_per_link >= 2)
        burst = binary.T @ np.where(is_new, demand, rates)
        fresh_per_link = binary.T @ is_new.astype(np.float64)
        bursting = saturated & (fresh_per_link > 0) & (burst > self.capacity * (1 + 1e-9))
        steady = saturated & ~bursting
        marked = float(
            sum(
                load[steady & (flows_per_link == n) & (self.capacity == c)].sum()
                * _steady_marking(int(n), self._params(float(c)))
                for n, c in sorted(
                    set(zip(flows_per_link[steady], self.capacity[steady], strict=True))
                )
            )
        )
        paused_us = np.zeros(self.capacity.size)
        stall = np.zeros(active.size)
        topo = self.topology
        for link in np.flatnonzero(bursting):
            params = self._params(float(self.capacity[link]))
            rows = csc.indices[csc.indptr[link] : csc.indptr[link + 1]]
            fresh = is_new[rows]
            old = tuple(sorted(round(float(r), 6) for r in rates[rows][~fresh]))
            above_us, mean_p = _burst_transient(
                int(fresh.sum()), old, params, transport.pfc_xoff_kb
            )
            marked += load[link] * mean_p
            if not (transport.pfc and above_us > 0):
                continue
            feeding = np.flatnonzero(
                (topo.link_dst == topo.link_src[link]) & (topo.reverse_link != link)
            )
            carried = feeding[np.asarray(binary[rows][:, feeding].sum(axis=0)).ravel() > 0]
            paused_us[carried] = np.maximum(paused_us[carried], above_us)
            # Sub-flows on a paused link that do not cross this port stall.
            on_paused = np.asarray(binary[:, carried].sum(axis=1)).ravel() > 0
            on_paused[rows] = False
            stall[on_paused] = np.maximum(stall[on_paused], above_us)
        total = float(load.sum())
        return Epoch(
            rates,
            np.zeros(self.capacity.size),
            stall,
            paused_us,
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
            finished = remaining[active] <= self.sub_bits[active] * _RTOL
            finish[active[finished]] = np.minimum(done_at[finished], t_next)
            remaining[active[finished]] = 0.0
            active = active[~finished]
            now = t_next
        return self._result(finish, epochs)

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
        frame = pd.DataFrame(
            {
                "flow_id": np.arange(n_flows, dtype=np.int64),
                "src": self.src,
                "dst": self.dst,
                "size_bytes": self.size_bytes,
                "start_us": self.start_us,
                "fct_us": fct,
                "ideal_fct_us": ideal,
                "slowdown": slowdown,
            },
            columns=list(FLOW_COLUMNS),
        )
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
            "epochs": epochs,
            "hosts": int(topo.n_hosts),
            "transport": transport.kind,
            "routing": self.routes.mode,
        }
        links = pd.DataFrame(
            {
                "link": np.arange(topo.n_links),
                "src": [topo.node_names[i] for i in topo.link_src],
                "dst": [topo.node_names[i] for i in topo.link_dst],
                "tier": [topo.tier_names[i] for i in topo.link_tier],
                "bytes": self.link_bits / 8.0,
                "busy_us": busy,
                "paused_us": self.link_paused_us,
            }
        )
        return FabricResult(frame, summary, links)

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


def simulate_flows(config: Any, flows: pd.DataFrame) -> FabricResult:
    """Simulate a traffic file on a fabric.

    Args:
        config: A :class:`sim.fabric.config.FabricConfig` (topology and transport).
        flows: Columns ``src, dst, start_us, size_bytes``, hosts numbered in
            topology order.

    Returns:
        Per-flow completion times, the summary and per-link figures.
    """
    return _Run(config, flows.reset_index(drop=True)).run()
