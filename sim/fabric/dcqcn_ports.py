"""DCQCN at one port of the fabric: its steady state, and its transient after a burst.

:func:`steady_port` is what DCQCN holds at a saturated port with N flows: the fluid
model's fixed point where it is stable, else the average of its limit cycle
(:mod:`sim.fabric.dcqcn_stability`, :mod:`sim.fabric.dcqcn_dynamics`).
:func:`burst_transient` traces the port's queue after new flows start at line rate
beside flows already under rate control. Both are cached by their arguments (flow
counts, rounded rates and bytes, parameters) and hand out read-only arrays;
:class:`sim.fabric.transport.Transport` asks them per saturated port and epoch, and
keeps the figures of a solve's ports in :class:`SteadyLinks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.fabric.dcqcn import DcqcnParams, fixed_point, marking_probability
from sim.fabric.dcqcn_dynamics import DcqcnCycle, limit_cycle, port_trace
from sim.fabric.dcqcn_stability import stability
from sim.fabric.topology import readonly

TRANSIENT_US = 2000.0
"""How long the DCQCN transient after a burst of new flows is simulated."""


@dataclass(frozen=True)
class BurstTransient:
    """A port's queue after new flows start at line rate, from the DCQCN fluid model.

    Attributes:
        above_xoff_us: Time the queue spends above the PFC Xoff threshold.
        mean_marking: Mean ECN marking probability over the trace.
        time_us: Sample times of the queue trace, from the burst.
        marked_us: The marking probability integrated over time up to
            each sample (trapezoids), µs.
        queue_kb: The queue at those times (1 KB = 1000 bytes).
        arrival_gbps: What the senders push into the port at those times.
    """

    above_xoff_us: float
    mean_marking: float
    time_us: np.ndarray
    marked_us: np.ndarray
    queue_kb: np.ndarray
    arrival_gbps: np.ndarray


@lru_cache(maxsize=256)
def burst_transient(
    new_kb: tuple[float, ...],
    old_rates: tuple[float, ...],
    params: DcqcnParams,
    xoff_kb: float,
    *,
    compiled: bool = False,
) -> BurstTransient:
    """The queue at a port after new flows start at line rate beside ``old_rates``.

    Each new flow has ``new_kb`` left to send (``inf``: more than the trace
    can carry) and stops once it is sent: a flow that fits in what a sender
    pushes before any congestion notification reaches it is a pulse at line
    rate, not a sender that keeps the port overloaded. Simulated for
    :data:`TRANSIENT_US` microseconds, sampled every step (by the compiled
    loop where ``compiled``); the result is cached, its arrays read-only.
    """
    starts = np.array([params.capacity_gbps] * len(new_kb) + list(old_rates))
    sizes = np.array(list(new_kb) + [np.inf] * len(old_rates))
    # 1 us steps resolve the default periods (50 us); shorter periods need a tenth of them.
    dt_us = min(1.0, min(params.tau_us, params.tau_prime_us, params.timer_us) / 10.0)
    trace = port_trace(
        len(starts),
        params,
        TRANSIENT_US,
        dt_us,
        initial_rates_gbps=starts,
        sizes_kb=sizes,
        sample_interval_us=dt_us,
        compiled=compiled,
    )
    dt = np.diff(trace.time_us, append=trace.time_us[-1] + (trace.time_us[1] - trace.time_us[0]))
    above = float(dt[trace.queue_kb >= xoff_kb].sum())
    mean_p = float(np.average(trace.marking_probability, weights=dt))
    p = trace.marking_probability
    marked_us = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(trace.time_us))])
    return BurstTransient(
        above_xoff_us=above,
        mean_marking=mean_p,
        time_us=readonly(trace.time_us),
        marked_us=readonly(marked_us),
        queue_kb=readonly(trace.queue_kb),
        arrival_gbps=readonly(trace.arrival_gbps),
    )


def bytes_left_kb(bits: np.ndarray, params: DcqcnParams) -> tuple[float, ...]:
    """What new flows have left to send, in KB to 0.1 KB (a cache key), sorted.

    A flow with more than line rate carries over :data:`TRANSIENT_US` never
    runs out within the trace: ``inf``, so that the key does not depend on it.
    """
    kb = np.round(np.asarray(bits, dtype=np.float64) / 8000.0, 1)
    kb = np.where(kb >= params.capacity_kb_per_us * TRANSIENT_US, np.inf, np.maximum(kb, 0.1))
    return tuple(sorted(float(x) for x in kb))


@dataclass(frozen=True)
class PortSteady:
    """What DCQCN holds at a saturated port once the burst is over.

    Attributes:
        queue_kb: Queue the mean arriving byte meets (1 KB = 1000 bytes).
        marking: Share of the bytes marked.
        utilisation: Share of the port's capacity the flows get: 1 at a
            stable fixed point, less where the queue oscillates and runs empty.
        cycle: The oscillation, where the fixed point is unstable (None where
            it is stable).
    """

    queue_kb: float
    marking: float
    utilisation: float
    cycle: DcqcnCycle | None


@lru_cache(maxsize=1024)
def steady_port(n_flows: int, params: DcqcnParams) -> PortSteady:
    """A port's steady state under DCQCN: the fixed point where stable, else its limit cycle.

    The verdict is the linearised model's (:func:`sim.fabric.dcqcn_stability.stability`);
    an unstable port (or one pinned at Kmax, where no smooth equilibrium
    exists) carries, queues and marks what the oscillation does on average
    (:func:`sim.fabric.dcqcn_dynamics.limit_cycle`). Cached by flow count and
    parameters, as the fixed points are.
    """
    if stability(n_flows, params).stable:
        queue_kb = float(fixed_point(n_flows, params).queue_kb_exact)
        return PortSteady(queue_kb, float(marking_probability(queue_kb, params)), 1.0, None)
    cycle = limit_cycle(n_flows, params)
    utilisation = min(cycle.utilisation, 1.0)
    return PortSteady(cycle.queue_seen_kb, cycle.ecn_mark_fraction, utilisation, cycle)


@dataclass
class SteadyLinks:
    """Per link, the :class:`PortSteady` figures of the saturated ports found so far.

    Attributes:
        known: Which links have their figures.
        queue_kb: Queue the mean arriving byte meets.
        marking: Share of bytes marked.
        utilisation: Share of capacity carried (1 where stable).
        cycles: The oscillation of each unstable port.
    """

    known: np.ndarray
    queue_kb: np.ndarray
    marking: np.ndarray
    utilisation: np.ndarray
    cycles: dict[int, DcqcnCycle]

    @classmethod
    def empty(cls, n_links: int) -> SteadyLinks:
        """No link known yet: nothing queued or marked, every port fully used."""
        return cls(
            np.zeros(n_links, dtype=bool),
            np.zeros(n_links),
            np.zeros(n_links),
            np.ones(n_links),
            {},
        )
