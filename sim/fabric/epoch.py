"""What a transport answers for one epoch: rates, and what the ports hold meanwhile.

An :class:`Epoch` is built by keyword only: its per-link and per-sub-flow arrays
share a type and are easily swapped. :class:`sim.fabric.transport.Transport`
builds one per solve; the flow simulator (:mod:`sim.fabric.flows`) and the
marketplace's fabric (:mod:`sim.fabric.network`) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.fabric.backpressure import Filling


@dataclass(kw_only=True)
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
        marked_share: Fraction of the epoch's bits that are ECN-marked in
            its steady state (ports hit by a burst mark as their trace does
            first: see :meth:`marked_fraction`).
        drop_gbps: Rate at which bits are dropped (lossy mode).
        marking: Per link, the ECN marking probability (None without ECN).
        cycles: Ports whose DCQCN fixed point is unstable: link ->
            ``(queue_us, weight)``, the queue over the oscillation's periods
            (as drain time) and the share of the arriving bytes that meets
            each sample; ``queue_us`` of the link holds its mean.
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
    cycles: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    filling: Filling | None = None
    """Lossless back-pressure: how the ingress buffers fill and drain (see
    :class:`~sim.fabric.backpressure.Filling`); None for other transports."""
    burst_marking: tuple[tuple[float, np.ndarray, np.ndarray, float], ...] = ()
    """Per port hit by a burst: its load, its trace's times, the marking integrated
    over them (see :class:`~sim.fabric.dcqcn_ports.BurstTransient`) and its steady
    marking after the trace."""
    carried_gbps: float = 0.0
    """What the sub-flows send in all, the weight of ``marked_share``."""

    def marked_fraction(self, epoch_us: float) -> float:
        """Fraction of the bits sent in the first ``epoch_us`` of the epoch that are marked.

        A port hit by a burst marks as its traced queue does while the trace
        lasts, then as in the steady state; every other port marks at its
        steady rate all along.
        """
        if not self.burst_marking or epoch_us <= 0 or self.carried_gbps <= 0:
            return self.marked_share
        extra = 0.0
        for load_gbps, times_us, marked_us, steady in self.burst_marking:
            span = min(epoch_us, float(times_us[-1]))
            extra += load_gbps * (float(np.interp(span, times_us, marked_us)) - steady * span)
        return self.marked_share + extra / (self.carried_gbps * epoch_us)
