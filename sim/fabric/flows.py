"""Flow completion times on a fabric: a fluid simulation, one rate solve per epoch.

Flows (src, dst, start, size) are routed once, then simulated as fluid: the
set of active flows changes only when a flow starts or finishes, and between
two such instants every flow moves at the rate the transport's allocation
gives it. Each instant is one *epoch*: one vectorised solve for all active
flows together, never a packet or a round trip.

Rates come from the transport (:mod:`sim.fabric.transport` describes each):
max-min fair shares with DCQCN's queues and burst pauses, lossless
back-pressure with its pause trees, or lossy drop-tail.

A flow's completion time is its fluid transfer time plus its path's
propagation and per-hop store-and-forward of one MTU; the ideal completion
time is the same flow alone on an empty fabric at its NIC's line rate.

Every epoch also leaves queues and pauses at the ports: the DCQCN fixed-point
queue, a burst's traced queue, the thresholds back-pressure holds, a full
drop-tail buffer. Messages sent in the epoch are sampled and meet them (see
:mod:`sim.fabric.latency`), which gives the per-message latency distribution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from sim.fabric.latency import (
    LATENCY_COLUMNS,
    MessageSampler,
    PortState,
    latency_quantiles,
    path_delays,
    sample_latencies,
)
from sim.fabric.limits import RunEstimate, estimate_run
from sim.fabric.routing import Routes, route
from sim.fabric.transport import NVLINK_GBPS, Epoch, Transport, routing_args
from sim.rng import Streams
from sim.scenario.loader import ScenarioError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

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

_PROGRESS_EVERY_S = 0.1
"""Least wall time between two progress reports."""


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
            topo, self.src, self.dst, **routing_args(self.transport, topo, self.size_bytes)
        )
        routes = self.routes
        self.incidence = routes.incidence.tocsr()
        self.sub_flow = routes.flow_of_subflow
        self.sub_start = self.start_us[self.sub_flow]
        self.sub_bits = self.size_bytes[self.sub_flow] * 8.0 * routes.share
        self.model = Transport(self.transport, topo)
        self.nic_gbps = self.model.nic_gbps
        self.local = np.diff(self.incidence.indptr) == 0
        self.stage = self.model.stage
        self.capacity = self.model.capacity
        n_links = topo.n_links
        self.link_bits = np.zeros(n_links)
        self.link_paused_us = np.zeros(n_links)
        self.link_busy_us = np.zeros(n_links)
        self.marked_bits = 0.0
        self.dropped_bits = 0.0
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

    def run(self, progress: Callable[[int, int], None] | None = None) -> FabricResult:
        """Simulate every flow to completion.

        Args:
            progress: Called now and then (at most every
                :data:`_PROGRESS_EVERY_S` seconds, and at the end) with the
                sub-flows finished and the total.
        """
        n_sub = self.sub_flow.size
        done = 0
        reported = time.monotonic()
        if progress is not None:
            progress(0, n_sub)
        remaining = self.sub_bits.copy()
        finish = np.full(n_sub, np.nan)
        order = np.argsort(self.sub_start, kind="stable")
        next_start = 0
        active = np.zeros(0, dtype=np.int64)
        now = float(self.sub_start[order[0]])
        epochs = 0
        stall_until = np.full(n_sub, -np.inf)
        is_new = np.zeros(n_sub, dtype=bool)
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
            is_new[new] = True
            epoch = self.model.allocate(incidence, fresh=is_new[active])
            is_new[new] = False
            epochs += 1
            rates = epoch.rates_gbps
            stall_until[active] = np.maximum(stall_until[active], now + epoch.stall_us)
            begin = np.maximum(now, stall_until[active])
            with np.errstate(divide="ignore"):
                done_at = begin + remaining[active] / (rates * 1e3)
            t_next = min(float(done_at.min()), float(upcoming))
            if not np.isfinite(t_next):
                # Every active rate is 0 and nothing else starts: the transport's answer
                # admits no progress, which a finite fabric cannot mean.
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
            # A sub-flow whose end time is reached is done, even if rounding left a few
            # bits: at late times (a start near one day) ``now + dt`` can round to ``now``,
            # and without this no bit would move and the loop would never end.
            finished = (remaining[active] <= self.sub_bits[active] * _RTOL) | (done_at <= t_next)
            finish[active[finished]] = np.minimum(done_at[finished], t_next)
            remaining[active[finished]] = 0.0
            active = active[~finished]
            now = t_next
            done += int(finished.sum())
            if progress is not None and time.monotonic() - reported >= _PROGRESS_EVERY_S:
                progress(done, n_sub)
                reported = time.monotonic()
        if progress is not None:
            progress(n_sub, n_sub)
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
        has_ecn, has_pfc = self.model.has_ecn, self.model.has_pfc
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


def check_run(config: Any, flows: Mapping[str, Any], source: str = "<traffic>") -> RunEstimate:
    """Estimate a run's memory and time from its flows, and refuse one that is too big.

    Nothing is routed: see :func:`sim.fabric.limits.estimate_run`.

    Args:
        config: A :class:`sim.fabric.config.FabricConfig`.
        flows: Columns ``src, dst, start_us, size_bytes``.
        source: The traffic's name in the message (usually the file).

    Returns:
        The estimate.

    Raises:
        ScenarioError: If there are no flows, or the run would need more than
            :data:`sim.fabric.limits.MAX_RUN_BYTES` of memory or take more than
            :data:`sim.fabric.limits.MAX_RUN_SECONDS`; the message gives the
            estimate.
    """
    if np.size(flows["src"]) == 0:
        raise ScenarioError([f"{source}: no flows"])
    estimate = estimate_run(
        config.build_topology(),
        config.transport,
        np.asarray(flows["src"], dtype=np.int64),
        np.asarray(flows["dst"], dtype=np.int64),
        np.asarray(flows["start_us"], dtype=np.float64),
        np.asarray(flows["size_bytes"], dtype=np.int64),
    )
    problem = estimate.problem()
    if problem is not None:
        raise ScenarioError([f"{source}: {problem}"])
    return estimate


def simulate_flows(
    config: Any,
    flows: Mapping[str, Any],
    *,
    progress: Callable[[int, int], None] | None = None,
    source: str = "<traffic>",
) -> FabricResult:
    """Simulate a traffic file on a fabric.

    Args:
        config: A :class:`sim.fabric.config.FabricConfig` (topology and transport).
        flows: Columns ``src, dst, start_us, size_bytes`` (a DataFrame or a
            mapping of arrays), hosts numbered in topology order.
        progress: Called now and then with ``(sub-flows finished, total)``,
            e.g. to drive a progress bar.
        source: The traffic's name in messages (usually the file).

    Returns:
        Per-flow completion times, sampled message latencies, the summary and
        per-link figures.

    Raises:
        ScenarioError: If the run is estimated too big to fit in memory or
            finish in reasonable time (:func:`check_run`), before anything is
            routed.
    """
    check_run(config, flows, source)
    return _Run(config, flows).run(progress)
