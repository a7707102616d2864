"""Per-message latency: what one message meets on its way through the fabric.

A *message* is ``message_bytes`` of a flow (one MTU unless set otherwise).
Its one-way latency, from its first bit leaving the sender to its last bit
reaching the receiver, is the sum of four parts, each taken from the state of
the fabric in the epoch the message is sent:

- **propagation**: the propagation delays of the links on its path;
- **serialisation**: the message clocked out at the first hop, then one
  packet (at most an MTU) at every further hop: switches store and forward
  packets, so a multi-packet message is pipelined;
- **queueing**: at every port on the path, the bytes queued ahead of it over
  the rate the port drains them. The transport says how long queues are: at
  the DCQCN fixed point, or where that is unstable at a random instant of
  its limit cycle (drawn in proportion to what arrives at each instant), at
  the PFC or credit threshold of every input
  feeding a port held full by back-pressure, a full buffer at a lossy
  drop-tail port, or, right after a burst of new flows, the queue the DCQCN
  fluid model traces from their line-rate start, up to what the port can
  hold (its buffer, or with PFC the Xoff threshold of each input);
- **pause waits**: a link paused by back-pressure a fraction ``φ`` of the
  time stops a message with probability ``φ``, which then waits out the rest
  of the pause (uniform over one pause episode); a flow stalled behind a
  burst's PFC pause waits until the pause lifts; and the backlog a burst
  builds beyond what a lossless port holds waits upstream, paused.

A message dropped at a lossy port is sent again once the receiver's NAK gets
back (go-back-N's first retransmission; repeated losses are not followed),
so it pays its own latency twice plus the path's return trip. At a lossy
port overflowing after a burst, the share dropped is what arrives beyond the
port's rate.

Flows sprayed over several paths (adaptive routing, the ideal fabric) cross
each link with the share of their traffic routed over it; a message's
latency takes every part at that share, the mean over its paths.

Messages are too many to follow one by one, so latency is *sampled*: a
fixed number of messages is drawn by systematic sampling over every
sub-flow's share of the bits sent in every epoch, which keeps the sample in
proportion to traffic, and each drawn message gets a send time spread evenly
over its epoch. The distribution's quantiles (P50, P99, P99.9) come from
that sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = [
    "LATENCY_COLUMNS",
    "MessageSampler",
    "PortState",
    "expected_waits",
    "latency_cdf",
    "latency_quantiles",
    "path_delays",
    "sample_latencies",
]

LATENCY_COLUMNS = (
    "latency_us",
    "propagation_us",
    "serialisation_us",
    "queueing_us",
    "pause_us",
)
"""The parts of a message's latency, total first, as the sampled table holds them."""


@dataclass(frozen=True)
class PortState:
    """The congestion one epoch leaves at the ports, as messages see it.

    Attributes:
        queue_us: Per link, the queueing delay ahead of a message all epoch long.
        pause_fraction: Per link, the fraction of time it is paused by
            back-pressure from downstream (steady pauses).
        pause_episode_us: Per link, how long one such pause lasts.
        transients: Links whose queue moves within the epoch, after a burst:
            link -> ``(time_us, queue_us, overload)``, time from the epoch's
            start, the backlog's drain time and arrivals over the port's
            rate; past the trace's end, ``queue_us`` of the link holds.
        queue_cap_us: Per link, the most a port holds (as drain time): a
            transient's backlog beyond it waits paused upstream (lossless) or
            is dropped (lossy).
        lossless: Whether ports pause upstream instead of dropping.
        cycles: Links whose queue oscillates (an unstable DCQCN port), all
            epoch long or from the end of its transient: link ->
            ``(queue_us, weight)``, the queue over whole periods and the share
            of arriving bytes that meets each sample; a message meets one
            sample, drawn by weight, instead of ``queue_us`` (the mean) of the
            link.
        stall_until_us: Per sub-flow of the epoch, the absolute time until
            which it is held behind a pause (``-inf`` for none).
        drop_probability: Per sub-flow of the epoch, the chance that a
            message is dropped on its path (lossy transport).
        queue_growth: Per link, how fast its queue grows (or shrinks) through
            the epoch, in microseconds of drain time per microsecond, up to
            ``queue_cap_us``: a lossless port whose inputs' buffers fill
            before they pause anyone (None: every queue holds all epoch long).
    """

    queue_us: np.ndarray
    pause_fraction: np.ndarray
    pause_episode_us: np.ndarray
    stall_until_us: np.ndarray
    drop_probability: np.ndarray
    transients: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    queue_cap_us: np.ndarray | None = None
    lossless: bool = True
    cycles: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    queue_growth: np.ndarray | None = None

    def queues_at(
        self,
        paths: sp.csr_matrix,
        rows: np.ndarray,
        offset_us: np.ndarray,
        cap_us: np.ndarray | None = None,
    ) -> np.ndarray:
        """The queueing a packet on each of ``rows`` of ``paths`` meets, sent ``offset_us`` in.

        Args:
            paths: Rows × links, each entry the share of the row's packet
                routed over the link.
            rows: The packets' rows.
            offset_us: Per packet, when it is sent, from the epoch's start.
            cap_us: Per link, the most a packet waits there (none if omitted).
        """
        if self.queue_growth is None:
            queue_us = self.queue_us if cap_us is None else np.minimum(self.queue_us, cap_us)
            # Products over every row are cheaper than gathering a few rows of a sparse matrix.
            return np.asarray(paths @ queue_us).ravel()[rows]
        crossing = paths[rows].tocoo()
        at = self.queue_us[crossing.col] + self.queue_growth[crossing.col] * np.maximum(
            offset_us[crossing.row], 0.0
        )
        at = np.maximum(at, 0.0)
        if self.queue_cap_us is not None:
            at = np.minimum(at, self.queue_cap_us[crossing.col])
        if cap_us is not None:
            at = np.minimum(at, cap_us[crossing.col])
        return np.bincount(crossing.row, weights=crossing.data * at, minlength=rows.size)


def path_delays(
    incidence: sp.csr_matrix,
    prop_delay_us: np.ndarray,
    capacity_gbps: np.ndarray,
    stage: np.ndarray,
    message_bytes: int,
    mtu_bytes: int,
    local_gbps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Propagation and serialisation of one message on every sub-flow's path.

    Args:
        incidence: Sub-flows × links, each entry the share of the sub-flow
            routed over the link.
        prop_delay_us: Per link propagation delay.
        capacity_gbps: Per link capacity.
        stage: Per link path stage (the first hop has the lowest stage).
        message_bytes: Size of one message.
        mtu_bytes: Largest packet; a message is pipelined in packets.
        local_gbps: Rate of a sub-flow that crosses no link (inside a server).

    Returns:
        ``(propagation_us, serialisation_us)`` per sub-flow.
    """
    incidence = incidence.tocsr()
    propagation = np.asarray(incidence @ prop_delay_us).ravel()
    packet_bits = min(message_bytes, mtu_bytes) * 8.0
    per_hop = np.asarray(incidence @ (packet_bits / (capacity_gbps * 1e3))).ravel()
    # The first hop (the sender's own link) clocks out the whole message.
    first = _first_hop(incidence, stage)
    serialisation = per_hop.copy()
    crossing = first >= 0
    first_rate = capacity_gbps[first[crossing]] * 1e3
    serialisation[crossing] += (message_bytes * 8.0 - packet_bits) / first_rate
    serialisation[~crossing] = message_bytes * 8.0 / (local_gbps * 1e3)
    return propagation, serialisation


def _first_hop(binary: sp.csr_matrix, stage: np.ndarray) -> np.ndarray:
    """Per row, the crossed link of lowest stage (-1 for a row with no link)."""
    out = np.full(binary.shape[0], -1, dtype=np.int64)
    counts = np.diff(binary.indptr)
    rows = np.flatnonzero(counts)
    if rows.size:
        row_of = np.repeat(np.arange(binary.shape[0]), counts)
        order = np.lexsort((stage[binary.indices], row_of))
        out[rows] = binary.indices[order[binary.indptr[rows]]]
    return out


class MessageSampler:
    """Systematic sampling of messages, one epoch at a time.

    The messages of a whole run lie end to end on a line, epoch after epoch
    and sub-flow after sub-flow; a sample is every ``step``-th point on it from
    a random start. Each epoch's draws depend only on the messages before it,
    so epochs can be sampled as they are simulated, without storing them.

    Args:
        total_messages: Messages the whole run sends (bits over message bits).
        samples: How many to draw; all of them if there are fewer, and at
            least one.
        rng: The random stream (start point, send times, pause draws).
    """

    def __init__(self, total_messages: float, samples: int, rng: np.random.Generator):
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        # At least one message is drawn, and none more often than it is sent.
        count = max(1, min(samples, round(total_messages)))
        self.step = total_messages / count if total_messages > 0 else 1.0
        self.rng = rng
        self._next = float(rng.uniform(0.0, self.step))
        self._seen = 0.0

    def draw(self, messages: np.ndarray) -> np.ndarray:
        """Which entries the sample hits in this epoch (an entry may repeat).

        Args:
            messages: Messages sent by each entry (sub-flow) in this epoch.

        Returns:
            Entry indices, one per sampled message, in entry order.
        """
        ends = self._seen + np.cumsum(messages)
        total = float(ends[-1]) if ends.size else self._seen
        if total <= self._next:
            self._seen = total
            return np.zeros(0, dtype=np.int64)
        count = int(np.floor((total - self._next) / self.step)) + 1
        points = self._next + self.step * np.arange(count)
        points = points[points < total]
        self._next = float(points[-1] + self.step) if points.size else self._next
        self._seen = total
        return np.searchsorted(ends, points, side="right").astype(np.int64)


def sample_latencies(
    paths: sp.csr_matrix,
    entries: np.ndarray,
    propagation_us: np.ndarray,
    serialisation_us: np.ndarray,
    state: PortState,
    epoch_start_us: float,
    epoch_us: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Latencies of sampled messages sent during one epoch.

    Args:
        paths: The epoch's sub-flows × links.
        entries: Sampled messages, as rows of ``paths`` (see :meth:`MessageSampler.draw`).
        propagation_us: Per row of ``paths``, the path's propagation delay.
        serialisation_us: Per row, the message's serialisation along the path.
        state: The ports' state in this epoch.
        epoch_start_us: When the epoch begins.
        epoch_us: How long it lasts.
        rng: Random stream for send times, pauses and drops.

    Returns:
        Arrays per sampled message: ``sent_us`` and the columns of
        :data:`LATENCY_COLUMNS`, plus ``retransmitted`` (bool).
    """
    n = entries.size
    offset = rng.uniform(0.0, epoch_us, size=n) if epoch_us > 0 else np.zeros(n)
    queueing = state.queues_at(paths, entries, offset)
    pause = np.zeros(n)
    drop = state.drop_probability[entries].astype(np.float64)
    columns = (
        paths.tocsc() if state.transients or state.cycles or state.pause_fraction.any() else None
    )
    for cycle_link in sorted(state.cycles):
        samples, weights = state.cycles[cycle_link]
        begin, end = columns.indptr[cycle_link], columns.indptr[cycle_link + 1]
        share = np.zeros(paths.shape[0])
        share[columns.indices[begin:end]] = columns.data[begin:end]
        # A port hit by a burst is on its cycle once the burst's trace ends.
        trace = state.transients.get(cycle_link)
        after = -np.inf if trace is None else trace[0][-1]
        hit = np.flatnonzero((share[entries] > 0) & (offset > after))
        met = samples[rng.choice(samples.size, size=hit.size, p=weights)]
        queueing[hit] += share[entries[hit]] * (met - state.queue_us[cycle_link])
    for trace_link, hit, weight, backlog, held in _transient_hits(columns, entries, offset, state):
        queueing[hit] += weight * (held - state.queue_us[trace_link])
        if state.lossless:
            pause[hit] += weight * (backlog - held)
        else:
            times, _, overload = state.transients[trace_link]
            cap = state.queue_cap_us[trace_link] if state.queue_cap_us is not None else np.inf
            ratio = np.interp(offset[hit], times, overload)
            with np.errstate(divide="ignore"):  # nothing arriving: nothing dropped
                dropped = np.where(backlog >= cap, np.clip(1.0 - 1.0 / ratio, 0.0, 1.0), 0.0)
            drop[hit] = 1.0 - (1.0 - drop[hit]) * (1.0 - weight * dropped)
    paused_links = np.flatnonzero(state.pause_fraction > 0)
    if paused_links.size:
        crossing = columns[:, paused_links].tocsr()[entries].tocoo()
        sample, link, share = crossing.row, paused_links[crossing.col], crossing.data
        meets = rng.uniform(size=sample.size) < share * state.pause_fraction[link]
        wait = meets * rng.uniform(size=sample.size) * state.pause_episode_us[link]
        pause += np.bincount(sample, weights=wait, minlength=n)
    sent = epoch_start_us + offset
    pause += np.maximum(state.stall_until_us[entries] - sent, 0.0)
    one_way = propagation_us[entries] + serialisation_us[entries] + queueing + pause
    retransmitted = rng.uniform(size=n) < drop
    # Lost once: the NAK comes back over the path, then the message goes again.
    extra = np.where(retransmitted, propagation_us[entries] + one_way, 0.0)
    return {
        "sent_us": sent,
        "latency_us": one_way + extra,
        "propagation_us": propagation_us[entries] * np.where(retransmitted, 3.0, 1.0),
        "serialisation_us": serialisation_us[entries] * np.where(retransmitted, 2.0, 1.0),
        "queueing_us": queueing * np.where(retransmitted, 2.0, 1.0),
        "pause_us": pause * np.where(retransmitted, 2.0, 1.0),
        "retransmitted": retransmitted,
    }


def _transient_hits(
    columns: sp.csc_matrix | None, entries: np.ndarray, offset_us: np.ndarray, state: PortState
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The packets that meet a port's queue traced after a burst, port by port.

    Args:
        columns: The epoch's paths (rows × links) as CSC; None when there is
            no transient.
        entries: The packets, as rows of the paths.
        offset_us: When each packet is sent, from the epoch's start.
        state: The ports' state.

    Yields:
        ``(link, hit, weight, backlog_us, held_us)`` per traced port: which
        packets (indices into ``entries``) cross it while the trace runs, the
        share of their path over it, the backlog they meet (as drain time)
        and the part of it the port holds (the rest waits upstream or is lost).
    """
    for trace_link in sorted(state.transients):
        times, queue, _ = state.transients[trace_link]
        share = np.zeros(columns.shape[0])
        begin, end = columns.indptr[trace_link], columns.indptr[trace_link + 1]
        share[columns.indices[begin:end]] = columns.data[begin:end]
        hit = np.flatnonzero((share[entries] > 0) & (offset_us <= times[-1]))
        backlog = np.interp(offset_us[hit], times, queue)
        cap = state.queue_cap_us[trace_link] if state.queue_cap_us is not None else np.inf
        yield trace_link, hit, share[entries[hit]], backlog, np.minimum(backlog, cap)


def expected_waits(
    paths: sp.csr_matrix,
    offset_us: np.ndarray,
    state: PortState,
    link_paused_us: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    wait_cap_us: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The mean queueing and pause waits of one packet per path, sent in one epoch.

    The packet meets what a sampled message meets (see
    :func:`sample_latencies`), but as expected values rather than draws: the
    queue at every port (over a whole cycle where it oscillates, its mean,
    which ``queue_us`` holds); a burst's traced queue at the time it passes, the
    backlog beyond what the port holds waiting paused upstream (lossless) or
    not at all (lossy: the packet's own loss is not followed); and on a link
    paused a fraction ``φ`` of the time in episodes of ``D``, a wait of
    ``φ·D/2`` (a pause met with probability ``φ``, its rest uniform over one
    episode). A link paused once from the epoch's start (``link_paused_us``)
    holds the packet until the pause lifts, unless the packet also meets the
    traced queue behind that pause, whose backlog has the wait already.

    Args:
        paths: Rows × links, each entry the share of the row's packet routed
            over the link.
        offset_us: Per row, when the packet is sent, from the epoch's start.
        state: The ports' state in the epoch (its per-sub-flow fields are not
            used: the rows need not be the epoch's sub-flows).
        link_paused_us: Per link, a one-off pause from the epoch's start
            (none if omitted).
        rows: Which rows of ``paths`` the packets take, one packet each (every
            row if omitted); ``offset_us`` is then per entry of ``rows``.
        wait_cap_us: Per link, the most a packet can wait there in the steady
            state (queue and pause together): how long the port takes to carry
            all its flows have left to send, whose packets are all a queue ahead
            of it can hold (none if omitted).

    Returns:
        ``(queueing_us, pause_us)`` per packet.
    """
    paths = paths.tocsr()
    rows = np.arange(paths.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    offset_us = np.asarray(offset_us, dtype=np.float64)
    queue_us = state.queue_us
    steady = state.pause_fraction * state.pause_episode_us / 2.0
    if wait_cap_us is not None:
        queue_us = np.minimum(queue_us, wait_cap_us)
        steady = np.minimum(steady, wait_cap_us - queue_us)
    queueing = state.queues_at(paths, rows, offset_us, wait_cap_us)
    pause = np.asarray(paths @ steady).ravel()[rows]
    one_off = link_paused_us is not None and link_paused_us.any()
    if not (state.transients or one_off):
        return queueing, pause
    # Bursts are rare: work on the packets' own rows.
    paths = paths[rows]
    rows = np.arange(rows.size)
    columns = paths.tocsc() if state.transients else None
    traced = np.zeros(rows.size, dtype=bool)
    for trace_link, hit, weight, backlog, held in _transient_hits(columns, rows, offset_us, state):
        queueing[hit] += weight * (held - queue_us[trace_link])
        if state.lossless:
            pause[hit] += weight * (backlog - held)
        traced[hit] = True
    if one_off:
        crossing = paths[:, np.flatnonzero(link_paused_us > 0)].tocoo()
        left = link_paused_us[link_paused_us > 0][crossing.col] - offset_us[crossing.row]
        held_back = np.zeros(rows.size)
        np.maximum.at(held_back, crossing.row, np.maximum(left, 0.0))
        pause += np.where(traced, 0.0, held_back)
    return queueing, pause


def latency_quantiles(latency_us: np.ndarray) -> dict[str, float | None]:
    """P50, P99 and P99.9 of sampled message latencies (None for no sample)."""
    if latency_us.size == 0:
        return {
            "message_latency_us_p50": None,
            "message_latency_us_p99": None,
            "message_latency_us_p999": None,
        }
    p50, p99, p999 = np.quantile(latency_us, [0.5, 0.99, 0.999])
    return {
        "message_latency_us_p50": float(p50),
        "message_latency_us_p99": float(p99),
        "message_latency_us_p999": float(p999),
    }


def latency_cdf(latency_us: np.ndarray) -> dict[str, np.ndarray]:
    """The sampled latency distribution as a quantile table, fine in the tail.

    Levels run every 0.1 % up to 99 %, then every 0.01 % to 99.9 %, then
    every 0.001 % to the maximum, so a CDF or a CCDF on log axes can be drawn
    from it down to the sample's resolution.

    Returns:
        Columns ``quantile`` and ``latency_us`` (empty for no sample).
    """
    levels = np.unique(
        np.round(
            np.concatenate(
                [
                    np.linspace(0.0, 0.99, 991),
                    np.linspace(0.99, 0.999, 91),
                    np.linspace(0.999, 1.0, 101),
                ]
            ),
            6,
        )
    )
    if latency_us.size == 0:
        return {"quantile": np.zeros(0), "latency_us": np.zeros(0)}
    return {"quantile": levels, "latency_us": np.quantile(latency_us, levels)}
