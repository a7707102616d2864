"""Flow completion times on a fabric: a fluid simulation, one rate solve per epoch.

Flows (src, dst, start, size) are routed once, then simulated as fluid: the
set of active flows changes only when a flow starts or finishes, and between
two such instants every flow moves at the rate the transport's allocation
gives it. Each instant is one *epoch*: one vectorised solve for all active
flows together, never a packet or a round trip.

Rates come from the transport (:mod:`sim.fabric.transport` describes each):
max-min fair shares with DCQCN's queues and burst pauses, lossless
back-pressure with its pause trees, or lossy drop-tail.

A flow is sent as packets of the topology's MTU of payload, each with the
transport's header bytes on the wire (:func:`wire_bytes`); the fluid moves
those wire bytes. Its completion time ends, as a packet-level simulator's
does, when the sender holds the ACK of its last byte: the fluid transfer
until the last bit leaves the sender, the last packet's store-and-forward at
every further hop and the path's propagation, then the ACK (a header-only
packet) back over the reverse route (hashed like any packet from the
receiver to the sender), with its propagation and serialisation and the
mean queueing and pause waits it meets at the reverse path's ports in the
epoch it is sent (:func:`sim.fabric.latency.expected_waits`). The ideal
completion time is the same flow alone on an empty fabric at its NIC's line
rate, with the same packets and the same ACK, so a flow alone has slowdown 1.

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

from sim.fabric.backpressure import Filling
from sim.fabric.epoch import Epoch
from sim.fabric.latency import (
    LATENCY_COLUMNS,
    MessageSampler,
    PortState,
    expected_waits,
    latency_quantiles,
    path_delays,
    sample_latencies,
)
from sim.fabric.routing import Routes, route
from sim.fabric.run_size import RunEstimate, estimate_run
from sim.fabric.transport import NVLINK_GBPS, Transport
from sim.rng import Streams
from sim.scenario.fabric import FabricConfig
from sim.scenario.yaml_input import ScenarioError

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

BUFFER_WINDOW_US = 1.0
"""Ingress buffers due to fill (or drain) this soon after another one do it with it.

Where many inputs fill at once, as in a permutation, their pauses come a few
tenths of a microsecond apart; taken together they cost one epoch, not one
each, and start at most this early (about the time of one 9 KB packet at 100 Gb/s).
"""


COMPILED_AFTER_MS = 1000.0
"""Work after which a run takes the compiled loops (``Transport.compile_after``).

Counted as the milliseconds the numpy back-pressure rounds and Python DCQCN
traces are estimated to have taken: about what numba's start-up costs with its
cache warm. A long run pays that once and then saves it on every problem,
however small (:data:`sim.fabric.backpressure_passes.COMPILED_FROM` picks by one
problem's size); a short run never imports numba. The two agree to about
1e-13. On a k = 8 fat tree, 300 web-search flows at half load take 4.6 s
instead of 6.5 s with PFC alone and 4.7 s instead of 13.3 s with DCQCN; a
k = 16 permutation with PFC alone 4.9 s instead of 7.4 s (a 15-flow incast with
PFC alone, 0.8 s in numpy, never switches).
"""


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


def wire_bytes(
    size_bytes: np.ndarray, mtu_bytes: int, header_bytes: int, whole_packets: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Bytes a flow puts on the wire, and those of its last packet.

    A flow of ``s`` bytes is ``n = ceil(s / mtu)`` packets (at least one),
    each carrying ``header_bytes`` beyond its payload: ``s + n * header`` on
    the wire, or ``n * (mtu + header)`` when every packet is sent whole (the
    last one padded).

    Args:
        size_bytes: Payload per flow.
        mtu_bytes: Most payload one packet carries.
        header_bytes: Wire bytes per packet beyond its payload.
        whole_packets: Pad the last packet to a full MTU.

    Returns:
        ``(wire_bytes, last_packet_bytes)`` per flow.
    """
    size = np.asarray(size_bytes, dtype=np.int64)
    packets = np.maximum(-(-size // mtu_bytes), 1)
    if whole_packets:
        return packets * (mtu_bytes + header_bytes), np.full(size.shape, mtu_bytes + header_bytes)
    last = size - (packets - 1) * mtu_bytes
    return size + packets * header_bytes, last + header_bytes


class _Run:
    """State of one fluid simulation."""

    def __init__(self, config: FabricConfig, flows: Mapping[str, Any]):
        self.config = config
        self.transport = config.transport
        self.topology = config.build_topology()
        topo = self.topology
        self.src = np.asarray(flows["src"], dtype=np.int64)
        self.dst = np.asarray(flows["dst"], dtype=np.int64)
        self.start_us = np.asarray(flows["start_us"], dtype=np.float64)
        self.size_bytes = np.asarray(flows["size_bytes"], dtype=np.int64)
        self.routes: Routes = route(
            topo,
            self.src,
            self.dst,
            **self.transport.routing_args(self.size_bytes),
            pinned_path=_pinned(flows, "path_index"),
        )
        routes = self.routes
        self.incidence = routes.incidence.tocsr()
        self.sub_flow = routes.flow_of_subflow
        self.sub_start = self.start_us[self.sub_flow]
        self.model = Transport(self.transport, topo)
        self.model.compile_after = COMPILED_AFTER_MS
        self.nic_gbps = self.model.nic_gbps
        self.local = np.diff(self.incidence.indptr) == 0
        self.stage = self.model.stage
        self.capacity = self.model.capacity
        # Packets on the wire: a flow inside a server (NVLink) carries no network headers.
        self.wire_bytes, last_packet_bytes = wire_bytes(
            self.size_bytes,
            topo.mtu_bytes,
            self.transport.header_bytes,
            self.transport.whole_packets,
        )
        self.wire_bytes = np.where(self._flow_local(), self.size_bytes, self.wire_bytes)
        self.sub_bits = self.wire_bytes[self.sub_flow] * 8.0 * routes.share
        # The ACKs come back from the receiver, routed as its packets to the sender are.
        self.ack_incidence = route(
            topo,
            self.dst,
            self.src,
            **self.transport.routing_args(self.size_bytes),
            pinned_path=_pinned(flows, "ack_path_index"),
        ).incidence.tocsr()
        self.sub_forward_us, self.sub_back_us = self._path_latency_us(last_packet_bytes)
        self.sub_path_us = self.sub_forward_us + self.sub_back_us
        self.sub_ack_wait_us = np.zeros(self.sub_flow.size)
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
        self.buffers: _Buffers | None = None
        """A lossless fabric's ingress buffers while it runs (see :class:`_Buffers`)."""

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
        # Until a congestion notification can reach it, a new flow sends at line rate.
        notified = self.sub_start + self.model.notification_us(self.sub_propagation_us)
        # Sub-flows just finished: their last ACK meets the next epoch's ports (an empty
        # fabric if nothing is left), without the queues of the flows that ended with them.
        acking = np.zeros(0, dtype=np.int64)
        buffers = self.buffers = _Buffers.of(self.model)  # fresh for every run
        while next_start < n_sub or active.size:
            starting = order[next_start:]
            new = starting[self.sub_start[starting] <= now + 1e-12]
            next_start += new.size
            active = np.union1d(active, new)
            upcoming = self.sub_start[order[next_start]] if next_start < n_sub else np.inf
            if active.size == 0:
                acking = acking[:0]
                now = float(upcoming)
                continue
            incidence = self.incidence[active]
            is_new[new] = True
            epoch = self.model.allocate(
                incidence,
                fresh=is_new[active],
                remaining_bits=remaining[active],
                line_rate_us=np.maximum(notified[active] - now, 0.0),
                buffer_full=None if buffers is None else buffers.full,
            )
            is_new[new] = False
            epochs += 1
            rates = epoch.rates_gbps
            stall_until[active] = np.maximum(stall_until[active], now + epoch.stall_us)
            if buffers is not None:
                buffers.meet(epoch.filling)
            self._ack_waits(
                epoch,
                active,
                incidence,
                remaining[active],
                acking,
                finish[acking] - now,
                stall_until,
            )
            acking = acking[:0]
            begin = np.maximum(now, stall_until[active])
            with np.errstate(divide="ignore"):
                done_at = begin + remaining[active] / (rates * 1e3)
            t_next = min(float(done_at.min()), float(upcoming))
            if buffers is not None:
                crossing_us = buffers.crossing_us(epoch.filling)
                t_next = min(t_next, now + float(crossing_us.min(initial=np.inf)))
            if not np.isfinite(t_next):
                # Every active rate is 0 and nothing else starts: the transport's answer
                # admits no progress, which a finite fabric cannot mean.
                raise RuntimeError("no flow can make progress: every active flow has rate 0")
            dt = t_next - now
            if buffers is not None:
                window_us = max(BUFFER_WINDOW_US, 4.0 * float(np.spacing(t_next)))
                buffers.advance(epoch.filling, dt, crossing_us <= (dt + window_us) * (1 + 1e-9))
            sent = np.minimum(remaining[active], rates * 1e3 * np.clip(t_next - begin, 0.0, None))
            remaining[active] -= sent
            self.link_bits += incidence.T @ sent
            self.link_busy_us += (incidence.T @ rates > 0) * dt
            self.link_paused_us += epoch.pause_fraction * dt + np.minimum(epoch.paused_us, dt)
            self.marked_bits += epoch.marked_fraction(dt) * float(sent.sum())
            self.dropped_bits += epoch.drop_gbps * 1e3 * dt
            self._sample(epoch, active, incidence, sent, now, dt, stall_until[active])
            # A sub-flow whose end time is reached is done, even if rounding left a few
            # bits: at late times (a start near one day) ``now + dt`` can round to ``now``,
            # and without this no bit would move and the loop would never end.
            finished = (remaining[active] <= self.sub_bits[active] * _RTOL) | (done_at <= t_next)
            finish[active[finished]] = np.minimum(done_at[finished], t_next)
            acking = active[finished]
            remaining[active[finished]] = 0.0
            active = active[~finished]
            if buffers is not None and finished.any():
                crossed = np.zeros(self.topology.n_links, dtype=bool)
                crossed[self.incidence[active].indices] = True
                buffers.forget(crossed)
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
        state = self._port_state(epoch, active, stall_until)
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

    def _port_state(self, epoch: Epoch, active: np.ndarray, stall_until: np.ndarray) -> PortState:
        """The congestion this epoch leaves at the ports, as packets sent in it meet it."""
        # Ports held full carry no separate pause wait: their drain rate has it.
        steady_pause = np.where(epoch.queue_us > 0, 0.0, epoch.pause_fraction)
        queue_us, growth, cap_us = epoch.queue_us, None, epoch.queue_cap_us
        if epoch.filling is not None:
            # Elsewhere the backlog of inputs still filling their buffers.
            filling_us, filling_growth, cap_us = self.buffers.port_queues
            growth = np.where(queue_us > 0, 0.0, filling_growth)
            queue_us = np.where(queue_us > 0, queue_us, filling_us)
        return PortState(
            queue_us=queue_us,
            pause_fraction=steady_pause,
            pause_episode_us=epoch.pause_episode_us,
            stall_until_us=stall_until,
            drop_probability=epoch.drop_probability
            if epoch.drop_probability is not None
            else np.zeros(active.size),
            transients=epoch.transients,
            queue_cap_us=cap_us,
            lossless=self.transport.lossless,
            cycles=epoch.cycles,
            queue_growth=growth,
        )

    def _ack_waits(
        self,
        epoch: Epoch,
        active: np.ndarray,
        incidence: sp.csr_matrix,
        remaining_bits: np.ndarray,
        done: np.ndarray,
        offset_us: np.ndarray,
        stall_until: np.ndarray,
    ) -> None:
        """Record the waits the last ACKs of sub-flows just finished meet in this epoch.

        A queue holds packets of the flows that cross its port, so an ACK waits
        at a port at most as long as the port takes to carry what those flows
        have left to send (a few small flows cannot build the queue a port
        held full by long ones keeps).

        Args:
            epoch: The epoch's transport state.
            active: The epoch's sub-flows.
            incidence: Their rows of the incidence matrix.
            remaining_bits: What each of them has left to send.
            done: Sub-flows that finished as the epoch began.
            offset_us: When each one's last bit left its sender, from the epoch's
                start (at most 0); its ACK leaves the receiver one forward path later.
            stall_until: Per sub-flow, until when it is held.
        """
        if done.size == 0:
            return
        state = self._port_state(epoch, active, stall_until[active])
        left_bits = incidence.T @ remaining_bits
        load_gbps = incidence.T @ epoch.rates_gbps
        with np.errstate(divide="ignore", invalid="ignore"):
            cap_us = np.where(load_gbps > 0, left_bits / (load_gbps * 1e3), 0.0)
        sent_us = offset_us + self.sub_forward_us[done]
        queueing, pause = expected_waits(
            self.ack_incidence, sent_us, state, epoch.paused_us, rows=done, wait_cap_us=cap_us
        )
        self.sub_ack_wait_us[done] = queueing + pause

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
        # The sender holds the last ACK: the last bit out, its path, the ACK's return.
        acked = np.full(n_flows, -np.inf)
        np.maximum.at(acked, self.sub_flow, sub_finish + self.sub_path_us + self.sub_ack_wait_us)
        # Alone, every queue pair ends together at the NIC's line rate; the longest path counts.
        path_us = np.full(n_flows, -np.inf)
        np.maximum.at(path_us, self.sub_flow, self.sub_path_us)
        line = np.where(self._flow_local(), NVLINK_GBPS, self.nic_gbps)
        ideal = self.wire_bytes * 8.0 / (line * 1e3) + path_us
        fct = acked - self.start_us
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
        credits = self.model.backpressure and not has_pfc  # InfiniBand's back-pressure
        messages = self.messages()
        summary = {
            "flows": int(n_flows),
            "fct_slowdown_p50": float(np.quantile(slowdown, 0.5)),
            "fct_slowdown_p99": float(np.quantile(slowdown, 0.99)),
            "max_fct_us": float(fct.max()),
            "makespan_us": float(acked.max() - self.start_us.min()),
            "pfc_pause_fraction": pause_fraction if has_pfc else None,
            "ecn_mark_fraction": (self.marked_bits / total_bits if total_bits else 0.0)
            if has_ecn
            else None,
            "credit_stall_fraction": pause_fraction if credits else None,
            "drop_fraction": self.dropped_bits / (self.dropped_bits + total_bits)
            if not transport.lossless
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

    def _path_latency_us(self, last_packet_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """From a sub-flow's last bit leaving its sender to the sender holding its ACK, unloaded.

        The last packet is stored and forwarded at every switch (every link
        after the sender's own, which the fluid transfer covers) and
        propagates over every link; the ACK, a packet of the transport's
        header bytes, is serialised and propagates over every link of the
        reverse route. Waits at loaded ports come on top
        (:meth:`_ack_waits`).

        Args:
            last_packet_bytes: Per flow, the wire bytes of its last packet.

        Returns:
            ``(forward_us, back_us)`` per sub-flow: the last packet's way to the
            receiver and the ACK's way back.
        """
        topo = self.topology
        link_us = 8.0 / (topo.capacity_gbps * 1e3)  # per byte
        after_first = np.where(self.stage > 0, link_us, 0.0)
        forward = np.asarray(self.incidence @ after_first).ravel()
        forward = forward * last_packet_bytes[self.sub_flow]
        forward += np.asarray(self.incidence @ topo.prop_delay_us).ravel()
        ack_per_link = topo.prop_delay_us + self.transport.header_bytes * link_us
        back = np.asarray(self.ack_incidence @ ack_per_link).ravel()
        return forward, back


class _Buffers:
    """The ingress buffers of a lossless fabric, which fill before they pause anyone.

    A switch keeps, per input port, what the input brought that its output
    ports have not passed on yet. A port can pause the link into an input
    only once that buffer holds the pause threshold (PFC Xoff, or the
    credit buffer); until then the buffer takes what the ports do not pass
    on, the link runs at what it is offered, and packets behind the backlog
    wait its drain time. A buffer that drains to the resume threshold (Xon,
    or one MTU of credit) lets its link run again. The fill is fluid, like
    the rates: per epoch, per link pair, at the rate the back-pressure state
    gives (:class:`~sim.fabric.backpressure.Filling`). Pairs no active flow
    crosses hold nothing: the flows whose packets they held are delivered.
    """

    def __init__(self, pause_kbit: np.ndarray, resume_kbit: np.ndarray, port_kbit: np.ndarray):
        self.pause_kbit = pause_kbit
        self.resume_kbit = resume_kbit
        self.port_kbit = port_kbit
        """Per link, the buffer of its egress port."""
        n_links = pause_kbit.size
        self.full = np.zeros(n_links, dtype=bool)
        """Per link, whether the buffer it feeds holds the pause threshold."""
        self.pair = np.zeros(0, dtype=np.int64)
        """The link pairs whose flows may hold something, by topology-wide number."""
        self.upstream = np.zeros(0, dtype=np.int64)
        self.downstream = np.zeros(0, dtype=np.int64)
        self.held_kbit = np.zeros(0)
        """Per pair, what its upstream link's ingress buffer holds for its downstream one."""
        self.port_queues: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        """The epoch's port backlogs, their growth and caps (see :meth:`_port_queues`)."""

    @staticmethod
    def of(model: Transport) -> _Buffers | None:
        """Empty buffers for a lossless back-pressure model, None for other transports."""
        if not model.backpressure:
            return None
        pause_kbit, resume_kbit = model.buffer_thresholds_kbit()
        return _Buffers(pause_kbit, resume_kbit, model.topology.buffer_bytes * 8.0 / 1000.0)

    def meet(self, filling: Filling) -> None:
        """Take the epoch's pairs: what pairs no flow crosses any more held is delivered."""
        kept = np.zeros(filling.pair.size)
        if self.pair.size:
            place = np.minimum(np.searchsorted(self.pair, filling.pair), self.pair.size - 1)
            found = self.pair[place] == filling.pair
            kept[found] = self.held_kbit[place[found]]
        self.pair, self.held_kbit = filling.pair, kept
        self.upstream, self.downstream = filling.upstream, filling.downstream
        self._settle()
        self.port_queues = self._port_queues(filling)

    def forget(self, crossed: np.ndarray) -> None:
        """Drop the pairs of links no active flow crosses (``crossed`` per link)."""
        keep = crossed[self.upstream] & crossed[self.downstream]
        self.pair, self.held_kbit = self.pair[keep], self.held_kbit[keep]
        self.upstream, self.downstream = self.upstream[keep], self.downstream[keep]
        self._settle()

    def _settle(self) -> None:
        """Mark full what holds its pause threshold and free what holds less than resume."""
        held = np.bincount(self.upstream, weights=self.held_kbit, minlength=self.full.size)
        self.full = np.where(
            self.full,
            held > self.resume_kbit * (1 + 1e-9),
            held >= self.pause_kbit * (1 - 1e-9),
        )

    def _sums(self, filling: Filling, link: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per link (``link`` per pair), what the pairs hold and how fast that changes."""
        n_links = self.full.size
        moving = (filling.gbps > 0) | (self.held_kbit > 0)
        held = np.bincount(link, weights=self.held_kbit, minlength=n_links)
        rate = np.bincount(link, weights=np.where(moving, filling.gbps, 0.0), minlength=n_links)
        return held, rate

    def crossing_us(self, filling: Filling) -> np.ndarray:
        """Per link, how long until its buffer fills to pause or drains to resume (inf: never)."""
        held, rate = self._sums(filling, self.upstream)
        with np.errstate(divide="ignore", invalid="ignore"):
            fills = np.where(~self.full & (rate > 0), (self.pause_kbit - held) / rate, np.inf)
            drains = np.where(self.full & (rate < 0), (held - self.resume_kbit) / -rate, np.inf)
        return np.maximum(np.minimum(fills, drains), 0.0)

    def advance(self, filling: Filling, dt_us: float, crossing: np.ndarray) -> None:
        """Fill and drain every buffer for ``dt_us`` (Gb/s is kbit per microsecond).

        ``crossing`` says, per link, which buffers cross their threshold now:
        those due within the epoch, and those due a moment later (see
        :data:`BUFFER_WINDOW_US`).
        """
        self.held_kbit = np.maximum(self.held_kbit + filling.gbps * dt_us, 0.0)
        self.full = self.full ^ crossing
        self._settle()

    def _port_queues(self, filling: Filling) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per link, the backlog waiting for its port, how fast it grows, and the most it holds.

        All as drain time. A port holds at most its buffer: beyond it the
        backlog's growth stops (its inputs then hold their thresholds: see
        :meth:`Transport.allocate`).
        """
        held, rate = self._sums(filling, self.downstream)
        with np.errstate(divide="ignore", invalid="ignore"):
            drain = np.where(filling.effective_gbps > 0, filling.effective_gbps, np.inf)
        cap_us = self.port_kbit / drain
        return np.minimum(held / drain, cap_us), rate / drain, cap_us


def check_run(
    config: FabricConfig, flows: Mapping[str, Any], source: str = "<traffic>"
) -> RunEstimate:
    """Estimate a run's memory and time from its flows, and refuse one that is too big.

    Nothing is routed: see :func:`sim.fabric.run_size.estimate_run`.

    Args:
        config: A :class:`sim.scenario.fabric.FabricConfig`.
        flows: Columns ``src, dst, start_us, size_bytes``.
        source: The traffic's name in the message (usually the file).

    Returns:
        The estimate.

    Raises:
        ScenarioError: If there are no flows, or the run would need more than
            :data:`sim.fabric.run_size.MAX_RUN_BYTES` of memory or take more than
            :data:`sim.fabric.run_size.MAX_RUN_SECONDS`; the message gives the
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


def _pinned(flows: Mapping[str, Any], column: str) -> np.ndarray | None:
    """A path column of the traffic (-1: not pinned), or None if it has none."""
    return np.asarray(flows[column], dtype=np.int64) if column in flows else None


def simulate_flows(
    config: FabricConfig,
    flows: Mapping[str, Any],
    *,
    progress: Callable[[int, int], None] | None = None,
    source: str = "<traffic>",
) -> FabricResult:
    """Simulate a traffic file on a fabric.

    Args:
        config: A :class:`sim.scenario.fabric.FabricConfig` (topology and transport).
        flows: Columns ``src, dst, start_us, size_bytes`` (a DataFrame or a
            mapping of arrays), hosts numbered in topology order, and
            optionally ``path_index`` and ``ack_path_index``, the equal-cost
            paths flows and their ACKs are pinned to (-1: routed as usual;
            :mod:`sim.fabric.traffic`).
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
