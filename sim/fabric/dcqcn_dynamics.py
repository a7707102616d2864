"""The DCQCN fluid model in time: traces from a given start, and a port's limit cycle.

:func:`simulate` integrates the delay equations of :mod:`sim.fabric.dcqcn` by explicit
Euler steps (flows that start alike are one group, and a group runs on Python floats);
:func:`port_trace` keeps only what the port sees, so a burst of thousands of flows can be
sampled every step. The time loop also runs compiled (:mod:`sim.fabric.dcqcn_kernels`,
imported only where asked for, where numba is installed).

:func:`limit_cycle` follows a port whose fixed point is unstable
(:func:`sim.fabric.dcqcn_stability.stability`) into the oscillation it settles into and
averages it over whole periods, as the bytes crossing the port meet it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.fabric.dcqcn import (
    P_NEGLIGIBLE,
    RATE_FLOOR,
    DcqcnParams,
    check_n_flows,
    check_real,
    fixed_point,
    gbps_to_kb_per_us,
    kb_per_us_to_gbps,
)
from sim.fabric.dcqcn_stability import stability
from sim.fabric.topology import readonly

__all__ = [
    "DcqcnCycle",
    "DcqcnPortTrace",
    "DcqcnTrace",
    "limit_cycle",
    "port_trace",
    "simulate",
]


@dataclass(frozen=True)
class DcqcnTrace:
    """Down-sampled time series of one :func:`simulate` run.

    Samples are instantaneous values taken every ``sample_interval_us``; per-flow arrays
    have shape (n_samples, n_flows), so column ``i`` is flow ``i``.

    Attributes:
        params: Parameters of the run.
        n_flows: Number of flows.
        dt_us: Integration step, µs.
        feedback_delay_steps: τ* rounded to a whole number of steps.
        time_us: Sample times, µs, shape (n_samples,).
        queue_kb: Queue length, KB, shape (n_samples,).
        marking_probability: p(q) at the switch (undelayed), shape (n_samples,).
        rate_current_gbps: Current rates R_C, Gb/s, shape (n_samples, n_flows).
        rate_target_gbps: Target rates R_T, Gb/s, shape (n_samples, n_flows).
        alpha: α estimates, shape (n_samples, n_flows).
        arrival_gbps: What the flows still sending push into the port, Gb/s, shape
            (n_samples,): ``Σ R_C`` while no flow has run out of bytes.
    """

    params: DcqcnParams
    n_flows: int
    dt_us: float
    feedback_delay_steps: int
    time_us: np.ndarray
    queue_kb: np.ndarray
    marking_probability: np.ndarray
    rate_current_gbps: np.ndarray
    rate_target_gbps: np.ndarray
    alpha: np.ndarray
    arrival_gbps: np.ndarray

    @property
    def effective_feedback_delay_us(self) -> float:
        """The feedback delay actually simulated, µs."""
        return self.feedback_delay_steps * self.dt_us

    def _tail(self, from_us: float) -> np.ndarray:
        mask = self.time_us >= from_us
        if not mask.any():
            raise ValueError(
                f"from_us={from_us!r} is after the last sample ({self.time_us[-1]!r} µs)"
            )
        return mask

    def mean_queue_kb(self, from_us: float = 0.0) -> float:
        """Time-average queue (KB) over samples at or after ``from_us``."""
        return float(self.queue_kb[self._tail(from_us)].mean())

    def mean_rate_gbps(self, from_us: float = 0.0) -> np.ndarray:
        """Per-flow time-average R_C (Gb/s) over samples at or after ``from_us``."""
        return self.rate_current_gbps[self._tail(from_us)].mean(axis=0)

    def mean_marking_probability(self, from_us: float = 0.0) -> float:
        """Time-average switch marking probability over samples at or after ``from_us``."""
        return float(self.marking_probability[self._tail(from_us)].mean())


def simulate(
    n_flows: int,
    params: DcqcnParams | None = None,
    duration_us: float = 100_000.0,
    dt_us: float = 1.0,
    *,
    initial_rates_gbps: Sequence[float] | np.ndarray | None = None,
    initial_alpha: float = 1.0,
    sample_interval_us: float = 10.0,
    initial_target_rates_gbps: Sequence[float] | np.ndarray | None = None,
    initial_queue_kb: float = 0.0,
    sizes_kb: Sequence[float] | np.ndarray | None = None,
) -> DcqcnTrace:
    """Integrate the DCQCN delay-differential system for N flows on one port.

    Fixed-step explicit Euler, vectorised over flows; the delayed queue and rates are read
    from a ring buffer ``round(feedback_delay_us/dt_us)`` steps deep.  Each step the rates
    are capped at line rate C (and held above 1e-12·C) and the queue is reflected at zero.
    Target rates start at line rate (DCQCN's initial R_T) unless given, α at
    ``initial_alpha`` (DCQCN initialises it to 1) and the queue at ``initial_queue_kb``
    (empty by default); the history before t = 0 is that initial state.

    A flow given a size in ``sizes_kb`` stops sending once it has sent that much (its
    last step sends only what is left); its rate limiter's state goes on evolving, but
    it adds nothing to the queue.  ``arrival_gbps`` in the trace is what the flows still
    sending push into the port.

    Flows with identical initial state (and size) stay identical, so they are integrated
    once; with the default (every flow at line rate) the loop runs on Python floats and
    100 ms of simulated time takes a fraction of a second.  Distinct initial states use
    numpy arrays over the distinct values, costing a few tens of µs per step whatever N is.

    Explicit Euler slightly amplifies an oscillation of angular frequency ω, by
    ``exp(ω²·dt/2)`` per µs (the modulus of ``1 + iω·dt``): at the default step that is
    about 0.009 per ms for a period of 1.5 ms, so a mode that the continuous model damps
    more slowly than that (N = 2 with an 85 µs delay, see
    :func:`~sim.fabric.dcqcn_stability.stability`) creeps up in the trace instead of
    dying out.

    Args:
        n_flows: Number N of flows.
        params: Model parameters; defaults to :class:`DcqcnParams` ().
        duration_us: Simulated time, µs.
        dt_us: Integration step, µs; at most a tenth of min(τ, τ′, T).  The default 1 µs
            resolves the default 4 µs feedback delay in 4 steps; against 0.25 µs steps it
            changes tail averages by < 0.01 % and the initial incast peak queue by ~1 %.
        initial_rates_gbps: Per-flow initial R_C, Gb/s, each in (0, C]; default line rate.
        initial_alpha: Initial α of every flow, in [0, 1].
        sample_interval_us: Spacing of the returned samples, µs (rounded to whole steps).
        initial_target_rates_gbps: Per-flow initial R_T, Gb/s, each in (0, C]; default
            line rate.
        initial_queue_kb: Queue at t = 0 (and before), KB, >= 0.
        sizes_kb: Per-flow bytes to send, KB (1 KB = 1000 bytes), each > 0 or ``inf``
            for a flow that never ends; default: none ends.

    Returns:
        The down-sampled trace, first sample at t = 0.

    Raises:
        ValueError: On a bad argument, naming it.
    """
    params = params if params is not None else DcqcnParams()
    flow_group, delay_steps, samples = _run(
        n_flows,
        params,
        duration_us,
        dt_us,
        initial_rates_gbps=initial_rates_gbps,
        initial_alpha=initial_alpha,
        sample_interval_us=sample_interval_us,
        initial_target_rates_gbps=initial_target_rates_gbps,
        initial_queue_kb=initial_queue_kb,
        sizes_kb=sizes_kb,
    )
    out_t, out_q, out_p, out_rc, out_rt, out_alpha, out_arrival = samples
    per_flow = np.asarray(flow_group).reshape(-1)
    return DcqcnTrace(
        params=params,
        n_flows=n_flows,
        dt_us=float(dt_us),
        feedback_delay_steps=delay_steps,
        time_us=out_t,
        queue_kb=out_q,
        marking_probability=out_p,
        rate_current_gbps=np.asarray(kb_per_us_to_gbps(out_rc[:, per_flow])),
        rate_target_gbps=np.asarray(kb_per_us_to_gbps(out_rt[:, per_flow])),
        alpha=out_alpha[:, per_flow],
        arrival_gbps=np.asarray(kb_per_us_to_gbps(out_arrival)),
    )


@dataclass(frozen=True)
class DcqcnPortTrace:
    """What the port sees of a :func:`port_trace` run: no per-flow series.

    Attributes:
        time_us: Sample times, µs.
        queue_kb: Queue length, KB.
        marking_probability: p(q) at the switch.
        arrival_gbps: What the flows still sending push into the port, Gb/s.
    """

    time_us: np.ndarray
    queue_kb: np.ndarray
    marking_probability: np.ndarray
    arrival_gbps: np.ndarray


def port_trace(
    n_flows: int,
    params: DcqcnParams | None = None,
    duration_us: float = 100_000.0,
    dt_us: float = 1.0,
    *,
    compiled: bool = False,
    **start: Any,
) -> DcqcnPortTrace:
    """:func:`simulate` without the per-flow series: the port's queue, marking and arrivals.

    Its memory does not grow with the number of flows (only with their distinct initial
    states), so a burst of thousands of flows can be sampled every step.

    Args:
        n_flows: Number N of flows.
        params: Model parameters; defaults to :class:`DcqcnParams` ().
        duration_us: Simulated time, µs.
        dt_us: Integration step, µs (as in :func:`simulate`).
        compiled: Run the time loop compiled (:mod:`sim.fabric.dcqcn_kernels`,
            where numba is installed); it agrees with the Python loop to rounding.
        **start: :func:`simulate`'s keyword-only arguments (initial state, sizes,
            ``sample_interval_us``).

    Returns:
        The down-sampled port trace, first sample at t = 0.

    Raises:
        ValueError: On a bad argument, naming it.
    """
    params = params if params is not None else DcqcnParams()
    _, _, samples = _run(n_flows, params, duration_us, dt_us, compiled=compiled, **start)
    out_t, out_q, out_p, _, _, _, out_arrival = samples
    return DcqcnPortTrace(
        out_t, out_q, out_p, np.asarray(kb_per_us_to_gbps(out_arrival), dtype=float)
    )


def _run(
    n_flows: int,
    params: DcqcnParams,
    duration_us: float,
    dt_us: float,
    *,
    initial_rates_gbps: Sequence[float] | np.ndarray | None = None,
    initial_alpha: float = 1.0,
    sample_interval_us: float = 10.0,
    initial_target_rates_gbps: Sequence[float] | np.ndarray | None = None,
    initial_queue_kb: float = 0.0,
    sizes_kb: Sequence[float] | np.ndarray | None = None,
    compiled: bool = False,
) -> tuple[np.ndarray, int, tuple[np.ndarray, ...]]:
    """Check :func:`simulate`'s arguments, group the flows and integrate.

    Returns:
        Each flow's group, the delay in steps and the samples of :func:`_integrate`.
    """
    check_n_flows(n_flows)
    check_real("duration_us", duration_us)
    check_real("dt_us", dt_us)
    check_real("sample_interval_us", sample_interval_us)
    check_real("initial_alpha", initial_alpha)
    if duration_us <= 0:
        raise ValueError(f"duration_us must be > 0, got {duration_us!r}")
    max_dt = min(params.tau_us, params.tau_prime_us, params.timer_us) / 10.0
    if not 0 < dt_us <= max_dt:
        raise ValueError(f"dt_us must be in (0, {max_dt!r}] (min(τ, τ′, T)/10), got {dt_us!r}")
    if sample_interval_us < dt_us:
        raise ValueError(
            f"sample_interval_us must be >= dt_us ({dt_us!r}), got {sample_interval_us!r}"
        )
    if not 0.0 <= initial_alpha <= 1.0:
        raise ValueError(f"initial_alpha must be in [0, 1], got {initial_alpha!r}")

    check_real("initial_queue_kb", initial_queue_kb)
    if initial_queue_kb < 0:
        raise ValueError(f"initial_queue_kb must be >= 0, got {initial_queue_kb!r}")

    rc = _initial_rates("initial_rates_gbps", initial_rates_gbps, n_flows, params)
    rt = _initial_rates("initial_target_rates_gbps", initial_target_rates_gbps, n_flows, params)
    if sizes_kb is None:
        sizes = np.full(n_flows, np.inf)
    else:
        sizes = np.asarray(sizes_kb, dtype=float)
        if sizes.shape != (n_flows,):
            raise ValueError(f"sizes_kb must have shape ({n_flows},), got {sizes.shape}")
        if np.any(np.isnan(sizes)) or np.any(sizes <= 0):
            raise ValueError(f"sizes_kb must all be > 0 (or inf), got {sizes!r}")
    # Flows with the same initial state follow the same trajectory (the system is symmetric
    # under permutation of flows), so each distinct initial state is integrated once and
    # weighted by its multiplicity in the queue equation.  With one group the hot loop runs
    # on Python floats, which is several times faster than numpy on tiny arrays.
    groups, flow_group, multiplicity = np.unique(
        np.column_stack([rc, rt, sizes]), axis=0, return_inverse=True, return_counts=True
    )
    n_steps = max(1, round(duration_us / dt_us))
    sample_every = max(1, round(sample_interval_us / dt_us))
    delay_steps = round(params.feedback_delay_us / dt_us)
    start = _Start(
        rc=groups[:, 0],
        rt=groups[:, 1],
        alpha=float(initial_alpha),
        queue_kb=float(initial_queue_kb),
        weights=multiplicity.astype(float),
        sizes_kb=groups[:, 2] if np.isfinite(groups[:, 2]).any() else None,
    )
    integrate = _integrate_compiled if compiled else _integrate
    samples = integrate(params, start, n_steps, float(dt_us), delay_steps, sample_every)
    return flow_group, delay_steps, samples


def _initial_rates(
    name: str, rates_gbps: Sequence[float] | np.ndarray | None, n_flows: int, params: DcqcnParams
) -> np.ndarray:
    """Per-flow initial rates in packets/µs: line rate if None, else checked and converted."""
    if rates_gbps is None:
        return np.full(n_flows, params.capacity_kb_per_us)
    rates = np.asarray(rates_gbps, dtype=float)
    if rates.shape != (n_flows,):
        raise ValueError(f"{name} must have shape ({n_flows},), got {rates.shape}")
    if not np.all(np.isfinite(rates)) or np.any(rates <= 0) or np.any(rates > params.capacity_gbps):
        raise ValueError(f"{name} must all be in (0, {params.capacity_gbps!r}], got {rates!r}")
    return np.asarray(gbps_to_kb_per_us(rates), dtype=float).copy()


@dataclass(frozen=True)
class _Start:
    """Initial state of the distinct flow groups (rates in packets/µs, sizes in KB)."""

    rc: np.ndarray
    rt: np.ndarray
    alpha: float
    queue_kb: float
    weights: np.ndarray
    sizes_kb: np.ndarray | None


@dataclass(frozen=True)
class _Ops:
    """Elementwise functions for the integrator: math on floats or numpy on arrays."""

    expm1: Callable[[Any], Any]
    exp: Callable[[Any], Any]
    minimum: Callable[[Any, float], Any]
    maximum: Callable[[Any, float], Any]
    weighted_sum: Callable[[Any, Any], float]


_SCALAR_OPS = _Ops(
    expm1=math.expm1,
    exp=math.exp,
    minimum=min,
    maximum=max,
    weighted_sum=lambda rates, weights: rates * weights,
)
_ARRAY_OPS = _Ops(
    expm1=np.expm1,
    exp=np.exp,
    minimum=np.minimum,
    maximum=np.maximum,
    weighted_sum=lambda rates, weights: float(np.dot(rates, weights)),
)


def _loop_constants(params: DcqcnParams, h: float) -> tuple[float, ...]:
    """The time loop's constants, in the order :func:`sim.fabric.dcqcn_kernels.integrate` reads.

    Step, capacity, Kmin, Kmax, ramp slope, τ, τ′, T, B, F, then 1/B, 1/T and the
    per-step factors h/2τ, h/τ, h·g/τ′, h/2, h·R_AI, h·C, the rate floor and the
    marking probability below which the p -> 0 limits are used.
    """
    cap = params.capacity_kb_per_us
    kmin, kmax = params.kmin_kb, params.kmax_kb
    tau, tau_p, big_t = params.tau_us, params.tau_prime_us, params.timer_us
    big_b = params.byte_counter_kb
    return (
        h,
        cap,
        kmin,
        kmax,
        params.pmax / (kmax - kmin),
        tau,
        tau_p,
        big_t,
        big_b,
        float(params.fast_recovery_steps),
        1.0 / big_b,
        1.0 / big_t,
        h / (2.0 * tau),
        h / tau,
        h * params.g / tau_p,
        0.5 * h,
        h * params.rate_ai_kb_per_us,
        h * cap,
        cap * RATE_FLOOR,
        P_NEGLIGIBLE,
    )


def _integrate_compiled(
    params: DcqcnParams,
    start: _Start,
    n_steps: int,
    h: float,
    delay_steps: int,
    sample_every: int,
) -> tuple[np.ndarray, ...]:
    """:func:`_integrate` by the compiled loop, where numba is installed (else the Python one)."""
    try:
        from sim.fabric import dcqcn_kernels
    except ImportError:
        return _integrate(params, start, n_steps, h, delay_steps, sample_every)
    constants = np.array(_loop_constants(params, h))
    has_left = start.sizes_kb is not None
    left = start.sizes_kb if has_left else np.full(start.rc.size, np.inf)
    return dcqcn_kernels.integrate(
        constants,
        start.rc.astype(np.float64),
        start.rt.astype(np.float64),
        float(start.alpha),
        float(start.queue_kb),
        start.weights.astype(np.float64),
        np.asarray(left, dtype=np.float64),
        has_left,
        int(n_steps),
        int(delay_steps),
        int(sample_every),
    )


def _integrate(
    params: DcqcnParams,
    start: _Start,
    n_steps: int,
    h: float,
    delay_steps: int,
    sample_every: int,
) -> tuple[np.ndarray, ...]:
    """Explicit-Euler loop over time for the flow groups (one group runs on Python floats).

    Rates are in packets/µs, queue in packets (KB), time in µs.  ``start`` holds each
    group's initial state and the number of flows in it.

    Returns:
        Sample times, queue, switch marking probability, per-group R_C, R_T and α with
        per-group arrays shaped (n_samples, n_groups), and what the flows still sending
        push into the port.
    """
    cap = params.capacity_kb_per_us
    n_groups = start.rc.size
    # One group: Python floats, several times faster than numpy on tiny arrays.
    rc: float | np.ndarray
    rt: float | np.ndarray
    alpha: float | np.ndarray
    weights: float | np.ndarray
    left: float | np.ndarray | None
    if n_groups == 1:
        ops = _SCALAR_OPS
        rc, rt, alpha = float(start.rc[0]), float(start.rt[0]), start.alpha
        weights = float(start.weights[0])
        left = None if start.sizes_kb is None else float(start.sizes_kb[0])
    else:
        ops = _ARRAY_OPS
        rc, rt = start.rc.astype(float), start.rt.astype(float)
        alpha, weights = np.full(n_groups, start.alpha), start.weights
        left = None if start.sizes_kb is None else start.sizes_kb.astype(float)
    q = start.queue_kb

    n_samples = n_steps // sample_every + 1
    out_t = np.empty(n_samples)
    out_q = np.empty(n_samples)
    out_p = np.empty(n_samples)
    out_rc = np.empty((n_samples, n_groups))
    out_rt = np.empty((n_samples, n_groups))
    out_alpha = np.empty((n_samples, n_groups))
    out_arrival = np.empty(n_samples)

    # Ring buffers of the queue and rates τ* ago; slot k % depth holds step k − depth.
    # History before t = 0: the initial state.  Stored rates are never mutated in place
    # (every update builds a new float or array), so keeping references is safe.
    depth = max(delay_steps, 1)
    hist_q = [q] * depth
    hist_rc = [rc] * depth

    # Constants bound to locals for the hot loop.
    constants = _loop_constants(params, h)
    _, _, kmin, kmax, ramp, tau, tau_p, big_t, big_b, big_f = constants[:10]
    inv_b, inv_t, h_cut, h_tau, h_g, h_half, h_rai, h_cap, floor, _ = constants[10:]
    expm1, exp, minimum, weighted_sum = ops.expm1, ops.exp, ops.minimum, ops.weighted_sum
    maximum = ops.maximum
    log1p, m_expm1, m_exp = math.log1p, math.expm1, math.exp

    def p_of(queue: float) -> float:
        if queue <= kmin:
            return 0.0
        if queue <= kmax:
            return ramp * (queue - kmin)
        return 1.0

    s = 0
    for k in range(n_steps + 1):
        if k % sample_every == 0:
            out_t[s] = k * h
            out_q[s] = q
            out_p[s] = p_of(q)
            out_rc[s] = rc
            out_rt[s] = rt
            out_alpha[s] = alpha
            sending = rc if left is None else minimum(rc, maximum(left, 0.0) / h)
            out_arrival[s] = weighted_sum(sending, weights)
            s += 1
        if k == n_steps:
            break

        if delay_steps == 0:
            qd, rd = q, rc
        else:
            slot = k % depth
            qd, rd = hist_q[slot], hist_rc[slot]
            hist_q[slot] = q
            hist_rc[slot] = rc
        p = p_of(qd)

        gap = rt - rc
        if p < P_NEGLIGIBLE:
            # Limits as p -> 0: a = 0, α target 0, b = c = 1/B, d = e = 1/(T·R̃).
            inc = inv_b * rd + inv_t
            d_rc = h_half * gap * inc
            d_rt = h_rai * inc
            alpha = alpha - h_g * alpha
        elif p >= 1.0:
            # Every packet marked: a = 1, α target 1, no rate-increase events.
            d_rc = -h_cut * rc * alpha
            d_rt = -h_tau * gap
            alpha = alpha + h_g * (1.0 - alpha)
        else:
            log1m = log1p(-p)
            x = rd * log1m
            neg_a = expm1(tau * x)  # −a
            # p/((1 − p)^(−n) − 1) written as p·(1 − p)^n / (1 − (1 − p)^n): no overflow.
            b = p * m_exp(big_b * log1m) / -m_expm1(big_b * log1m)
            c = m_exp(big_f * big_b * log1m) * b
            y = big_t * x
            d = p * exp(y) / -expm1(y)
            e = exp(big_f * y) * d
            d_rc = h_half * gap * rd * (b + d) + h_cut * rc * alpha * neg_a
            d_rt = h_rai * rd * (c + e) + h_tau * gap * neg_a
            alpha = alpha - h_g * (expm1(tau_p * x) + alpha)

        if left is None:
            q = q + h * weighted_sum(rc, weights) - h_cap
        else:
            # A flow with a size sends what it has left, at most its rate.
            sent = minimum(h * rc, maximum(left, 0.0))
            left = left - sent
            q = q + weighted_sum(sent, weights) - h_cap
        if q < 0.0:
            q = 0.0
        rc = minimum(maximum(rc + d_rc, floor), cap)
        rt = minimum(maximum(rt + d_rt, floor), cap)

    return out_t, out_q, out_p, out_rc, out_rt, out_alpha, out_arrival


# --------------------------------------------------------------------------- limit cycle


_CYCLE_SETTLE_US = 30_000.0
"""Simulated time :func:`limit_cycle` lets the oscillation settle before measuring it.

From the fixed point with an empty queue, the delay-unstable cases of the defaults
(N = 5 to 14 at 65 to 85 µs) are on their cycle within 10 ms; pinned ports with
hundreds of flows take 20 to 30 ms."""

_CYCLE_MEASURE_US = 30_000.0
"""Simulated time over which :func:`limit_cycle` averages (whole periods of it)."""

_CYCLE_SAMPLES = 1024
"""At most this many evenly spaced queue samples are kept of the measured periods."""


@dataclass(frozen=True)
class DcqcnCycle:
    """Time averages of the oscillation the fluid model settles into for N flows.

    Averages are over whole periods (between the first and the last upward crossing of
    the mean queue in the measured window).  "Seen" figures weight each instant by what
    arrives at the port then, as the bytes (and so the messages) that cross the port do.

    Attributes:
        n_flows: Number of flows N.
        period_us: Period of the oscillation, µs (NaN if the queue never crossed its mean).
        utilisation: Mean rate the port forwards over its capacity (the mean of
            ``Σ R_C`` over whole periods, since nothing is lost): below 1 when the
            queue runs empty part of the time.
        rate_gbps: Mean rate of each flow, Gb/s (``utilisation · C/N``).
        queue_kb: Time-average queue, KB.
        queue_std_kb: Standard deviation of the queue over time, KB.
        queue_seen_kb: Queue met by the mean arriving byte, KB.
        ecn_mark_fraction: Share of arriving bytes marked, ``p(q)`` weighted by arrivals.
        sample_us: Spacing of ``queue_samples_kb``, µs.
        queue_samples_kb: The queue over the measured periods at evenly spaced times
            (read-only: the result is cached).
        arrival_weights: What arrives at those times, normalised to sum to 1
            (read-only).
    """

    n_flows: int
    period_us: float
    utilisation: float
    rate_gbps: float
    queue_kb: float
    queue_std_kb: float
    queue_seen_kb: float
    ecn_mark_fraction: float
    sample_us: float
    queue_samples_kb: np.ndarray
    arrival_weights: np.ndarray

    def above(self, threshold_kb: float) -> tuple[float, float]:
        """How long the queue stays at or above a threshold (a PFC Xoff, say).

        Args:
            threshold_kb: The threshold, KB.

        Returns:
            ``(fraction, episode_us)``: the fraction of time at or above it, and the
            mean length of one such episode (0 if none).
        """
        over = self.queue_samples_kb >= threshold_kb
        if not over.any():
            return 0.0, 0.0
        starts = int(np.count_nonzero(over[1:] & ~over[:-1])) + int(over[0])
        return float(over.mean()), float(over.sum() * self.sample_us / starts)


def limit_cycle(n_flows: int, params: DcqcnParams | None = None) -> DcqcnCycle:
    """The oscillation N identical flows settle into, and its time averages.

    Where the fixed point is unstable (see :func:`~sim.fabric.dcqcn_stability.stability`),
    what a port carries,
    queues and marks over time is the limit cycle's average, not the fixed point's.
    The cycle is found by simulation (:func:`simulate`'s integrator, one group of N
    flows): from the fixed point's rates, target rate and α with the queue emptied (a
    perturbation the size of the equilibrium queue itself, so that even a slowly
    growing instability is on its cycle at once), :data:`_CYCLE_SETTLE_US` of settling,
    then :data:`_CYCLE_MEASURE_US` measured, both at least eight linear periods.

    Meant for unstable fixed points.  A stable one may still have a large cycle beside
    it: with the defaults, N = 10 at 40 to 60 µs of delay settles on the fixed point from
    a line-rate start, but an emptied queue throws it onto a cycle of about 75 KB of
    standard deviation, so the start used here would report that cycle.

    With the defaults and an 85 µs feedback delay, N = 10 oscillates with a period of
    2.3 ms, a queue of 55 ± 79 KB that runs empty almost half the time, 95 % of the
    port used and 10 % of the bytes marked (Zhu et al., CoNEXT 2016: a standard
    deviation of about 70 KB and an under-used link).

    Args:
        n_flows: Number N of flows sharing the port.
        params: Model parameters; defaults to :class:`DcqcnParams` ().

    Returns:
        The cycle's averages and samples.

    Raises:
        ValueError: If ``n_flows`` is not an integer >= 1.
    """
    params = params if params is not None else DcqcnParams()
    point = fixed_point(n_flows, params)
    verdict = stability(n_flows, params)
    dt = min(1.0, min(params.tau_us, params.tau_prime_us, params.timer_us) / 10.0)
    period = verdict.period_us if math.isfinite(verdict.period_us) else 1000.0
    settle = max(_CYCLE_SETTLE_US, 8.0 * period)
    measure = max(_CYCLE_MEASURE_US, 8.0 * period)
    cap = params.capacity_kb_per_us
    start = _Start(
        rc=np.array([cap / n_flows]),
        rt=np.array([float(gbps_to_kb_per_us(point.target_rate_gbps_exact))]),
        alpha=point.alpha_exact,
        queue_kb=0.0,
        weights=np.array([float(n_flows)]),
        sizes_kb=None,
    )
    n_steps = round((settle + measure) / dt)
    out_t, out_q, out_p, _, _, _, out_arrival = _integrate(
        params, start, n_steps, dt, round(params.feedback_delay_us / dt), 1
    )
    window = out_t >= settle
    queue, marking, arrival = out_q[window], out_p[window], out_arrival[window]
    level = queue.mean()
    ups = np.flatnonzero((queue[:-1] < level) & (queue[1:] >= level)) + 1
    period_us = math.nan
    if ups.size >= 2:
        period_us = float((ups[-1] - ups[0]) * dt / (ups.size - 1))
        queue, marking, arrival = (x[ups[0] : ups[-1]] for x in (queue, marking, arrival))
    weights = arrival / arrival.sum()
    utilisation = float(arrival.mean() / cap)
    keep = max(1, math.ceil(queue.size / _CYCLE_SAMPLES))
    kept = weights[::keep]
    return DcqcnCycle(
        n_flows=n_flows,
        period_us=period_us,
        utilisation=utilisation,
        rate_gbps=float(kb_per_us_to_gbps(utilisation * cap / n_flows)),
        queue_kb=float(queue.mean()),
        queue_std_kb=float(queue.std()),
        queue_seen_kb=float(np.dot(weights, queue)),
        ecn_mark_fraction=float(np.dot(weights, marking)),
        sample_us=dt * keep,
        queue_samples_kb=readonly(queue[::keep].copy()),
        arrival_weights=readonly(kept / kept.sum()),
    )
