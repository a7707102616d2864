"""DCQCN fluid model: N rate-controlled flows sharing one ECN-marking bottleneck port.

Think of a single switch egress port as a bathtub with a drain of fixed width (the port
capacity C).  Every flow pours in at its current rate R_C.  When the water rises past the
Kmin line the switch starts tagging packets with ECN marks, more often the higher it gets;
the senders hear about those marks a little later (the feedback delay τ*) and cut their
taps, then slowly open them again.  The model here tracks the water level (queue) and every
tap (rate) as continuous quantities.

This module implements the DCQCN fluid model of

    Y. Zhu, M. Ghobadi, V. Misra, J. Padhye, "ECN or Delay: Lessons Learnt from Analysis of
    DCQCN and TIMELY", ACM CoNEXT 2016,

exactly as transcribed in ``DESIGN.md``.  With the marking probability
``p(q) = 0`` for ``q <= Kmin``, ``Pmax·(q − Kmin)/(Kmax − Kmin)`` for ``Kmin < q <= Kmax``
and ``1`` above ``Kmax``, and writing ``p`` and ``R̃`` for the marking probability and the
flow's own rate seen one feedback delay ago (``p(q(t − τ*))`` and ``R_C(t − τ*)``)::

    dq/dt   = Σ R_C − C                                   (q >= 0)
    dα/dt   = (g/τ′)·[(1 − (1 − p)^(τ′·R̃)) − α]
    dR_T/dt = −(R_T − R_C)/τ · a + R_AI·R̃·(c + e)
    dR_C/dt = −R_C·α/(2τ) · a + (R_T − R_C)/2 · R̃·(b + d)

    a = 1 − (1 − p)^(τ·R̃)           b = p / ((1 − p)^(−B) − 1)      c = (1 − p)^(F·B)·b
    d = p / ((1 − p)^(−T·R̃) − 1)    e = (1 − p)^(F·T·R̃)·d

Terms that describe feedback *arriving* at the sender (CNPs, byte-counter and timer events)
use the delayed quantities; the states they act on (``R_C``, ``R_T``, ``α``) are current.
Like the authors' reference scripts, rates are capped at line rate ``C`` (a NIC cannot send
faster than its port) and the queue is reflected at zero; rates are also held above
``1e-12·C`` (a rate limiter's minimum), which keeps the trace finite where the step is too
coarse for the dynamics.

Units.  The model counts in packets, because marking is a per-packet coin flip; one packet is
1 KB = 1000 bytes (decimal, matching the decimal Gb/s of link rates).  Internally queues and
thresholds are in KB (= packets), time in µs and rates in KB/µs (= packets/µs); 1 KB/µs is
8 Gb/s, so 40 Gb/s is 5 packets/µs and R_AI = 40 Mb/s is 0.005 packets/µs.  B = 10 MB is
10 000 packets.  Public results are reported in Gb/s, KB and µs, as the field names say.
The fixed-point expressions only involve the dimensionless products ``τ′·C``, ``T·C``,
``R_AI/C`` and the packet counts ``B``, ``Kmin``, ``Kmax``, so they do not depend on the time
unit, only on the packet size.

Feedback delay.  The paper evaluates the model with a small control-loop delay τ* of a few
microseconds (the authors' published MATLAB scripts use ``taustar = 4e-6`` s, and also
explore 85 µs to show instability).  ``feedback_delay_us`` defaults to 4 µs.  Before t = 0
the history is an empty queue (no marks) with every flow at its initial rate.

Fixed point.  At equilibrium every flow gets ``R* = C/N``.  Setting the derivatives to zero
gives ``α* = 1 − (1 − p*)^(τ′R*)``, ``R_T* − R* = τ·R_AI·R*·(c + e)/a`` and the scalar
equation ``α*·a² = τ²·R_AI·R*·(c + e)(b + d)`` for ``p*``, solved here by
bisection on ``log p``.  Linearising for small ``p`` (``a ≈ τR*p``, ``α ≈ τ′R*p``,
``b ≈ c ≈ 1/B``, ``d ≈ e ≈ 1/(T·R*)``) yields DESIGN.md's closed form
``p* ≈ ∛[R_AI·N²/(τ′·C²) · (1/B + N/(T·C))²]``.  Both are reported.  The closed form
overestimates p*, mostly because ``e = (1 − p)^(F·T·R*)·d`` is far from ``d`` once
``F·T·R*·p`` nears 1: with the defaults q* is 23.0 KB against the exact 20.2 KB for N = 2,
and 158 KB against 122.6 KB for N = 10.  From N = 15 on (defaults) the exact p* exceeds
Pmax: the ramp cannot supply that much marking, the fluid queue is pinned at the Kmax
discontinuity and in simulation oscillates around Kmax, with a time-averaged marking
probability above p*.

Stability and limit cycle.  :func:`stability` linearises the delay system about the
exact fixed point and finds the rightmost roots of its characteristic equation; where
one has a positive real part (or the fixed point is pinned at Kmax), :func:`limit_cycle`
simulates the oscillation the port settles into and averages it over whole periods:
the share of the port the flows get, the queue, and the marks, as the bytes crossing the
port meet them.  The fabric's epochs (:mod:`sim.fabric.transport`) take those in place of
the fixed point's figures.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "PACKET_BYTES",
    "DcqcnCycle",
    "DcqcnFixedPoint",
    "DcqcnParams",
    "DcqcnPortTrace",
    "DcqcnStability",
    "DcqcnSteadyState",
    "DcqcnTrace",
    "approximate_marking_probability",
    "fixed_point",
    "limit_cycle",
    "marking_probability",
    "port_trace",
    "simulate",
    "stability",
    "steady_state",
]

PACKET_BYTES = 1000
"""Size of one fluid-model packet (1 KB, decimal): the unit of queues, thresholds and B."""

_LOG_P_APPROX_MAX = 700.0
"""Largest log of the closed-form p*: a probability that large (1e304) only says "far above 1"."""

_P_NEGLIGIBLE = 1e-200
"""Marking probabilities below this use the p -> 0 limit forms (avoids 0/0 in b and d)."""

_RATE_FLOOR = 1e-12
"""Rates are held at or above this fraction of line rate in :func:`simulate`.

A NIC's rate limiter has a minimum rate, and the floor keeps the explicit step
finite where it cannot resolve the dynamics: on a port whose byte counter
fires many times per step (a bundle of thousands of NICs modelled as one
link), Euler steps overshoot, and without the floor a rate would go negative
and the trace diverge. Rates this low are never reached otherwise: a cut
halves a rate at most once per τ."""

_GBPS_PER_KB_PER_US = PACKET_BYTES * 8 * 1e6 / 1e9
"""1 packet/µs expressed in Gb/s (= 8)."""


def _gbps_to_kb_per_us(rate_gbps: float | np.ndarray) -> float | np.ndarray:
    return rate_gbps / _GBPS_PER_KB_PER_US


def _kb_per_us_to_gbps(rate_kb_per_us: float | np.ndarray) -> float | np.ndarray:
    return rate_kb_per_us * _GBPS_PER_KB_PER_US


@dataclass(frozen=True)
class DcqcnParams:
    """Parameters of the DCQCN fluid model for one bottleneck port.

    Defaults are the values used by Zhu et al. (CoNEXT 2016) and listed in DESIGN.md.

    Attributes:
        capacity_gbps: Bottleneck (and NIC line) rate C, Gb/s.
        kmin_kb: ECN marking starts above this queue length, KB.
        kmax_kb: Marking probability reaches ``pmax`` here and jumps to 1 above, KB.
        pmax: Marking probability at ``kmax_kb``, in (0, 1].
        g: EWMA gain of the α estimate, in (0, 1].
        tau_us: CNP generation interval τ (rate-cut period), µs.
        tau_prime_us: α update interval τ′, µs.
        timer_us: Rate-increase timer T, µs.
        byte_counter_mb: Rate-increase byte counter B, MB (1 MB = 1000 packets of 1 KB).
        fast_recovery_steps: Number F of fast-recovery steps before additive increase.
        rate_ai_mbps: Additive-increase step R_AI, Mb/s.
        feedback_delay_us: Control-loop delay τ* between marking and the sender's reaction,
            µs.  Rounded to a whole number of integration steps in :func:`simulate`.
    """

    capacity_gbps: float = 40.0
    kmin_kb: float = 5.0
    kmax_kb: float = 200.0
    pmax: float = 0.01
    g: float = 1.0 / 256.0
    tau_us: float = 50.0
    tau_prime_us: float = 55.0
    timer_us: float = 55.0
    byte_counter_mb: float = 10.0
    fast_recovery_steps: int = 5
    rate_ai_mbps: float = 40.0
    feedback_delay_us: float = 4.0

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_real(f"DcqcnParams.{f.name}", getattr(self, f.name))
        positive = (
            "capacity_gbps",
            "tau_us",
            "tau_prime_us",
            "timer_us",
            "byte_counter_mb",
            "rate_ai_mbps",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"DcqcnParams.{name} must be > 0, got {getattr(self, name)!r}")
        if self.kmin_kb < 0:
            raise ValueError(f"DcqcnParams.kmin_kb must be >= 0, got {self.kmin_kb!r}")
        if self.kmax_kb <= self.kmin_kb:
            raise ValueError(
                f"DcqcnParams.kmax_kb must be greater than kmin_kb ({self.kmin_kb!r}), "
                f"got {self.kmax_kb!r}"
            )
        if not 0 < self.pmax <= 1:
            raise ValueError(f"DcqcnParams.pmax must be in (0, 1], got {self.pmax!r}")
        if not 0 < self.g <= 1:
            raise ValueError(f"DcqcnParams.g must be in (0, 1], got {self.g!r}")
        if (
            self.fast_recovery_steps < 0
            or int(self.fast_recovery_steps) != self.fast_recovery_steps
        ):
            raise ValueError(
                "DcqcnParams.fast_recovery_steps must be a non-negative integer, "
                f"got {self.fast_recovery_steps!r}"
            )
        if self.feedback_delay_us < 0:
            raise ValueError(
                f"DcqcnParams.feedback_delay_us must be >= 0, got {self.feedback_delay_us!r}"
            )

    @property
    def capacity_kb_per_us(self) -> float:
        """Capacity C in packets (KB) per µs."""
        return float(_gbps_to_kb_per_us(self.capacity_gbps))

    @property
    def rate_ai_kb_per_us(self) -> float:
        """Additive-increase step R_AI in packets (KB) per µs."""
        return float(_gbps_to_kb_per_us(self.rate_ai_mbps / 1000.0))

    @property
    def byte_counter_kb(self) -> float:
        """Byte counter B in packets (KB)."""
        return self.byte_counter_mb * 1000.0


def marking_probability(queue_kb: float | np.ndarray, params: DcqcnParams) -> float | np.ndarray:
    """ECN (RED-style) marking probability p(q) of the switch.

    Args:
        queue_kb: Queue length(s), KB.
        params: Model parameters (uses ``kmin_kb``, ``kmax_kb``, ``pmax``).

    Returns:
        0 for ``q <= kmin_kb``, ``pmax·(q − kmin)/(kmax − kmin)`` for ``kmin < q <= kmax``
        and 1 above ``kmax_kb``; a float for scalar input, else an array of the same shape.
    """
    q = np.asarray(queue_kb, dtype=float)
    ramp = params.pmax * (q - params.kmin_kb) / (params.kmax_kb - params.kmin_kb)
    p = np.where(q <= params.kmin_kb, 0.0, np.where(q <= params.kmax_kb, ramp, 1.0))
    if p.ndim == 0:
        return float(p)
    return p


def _queue_for_probability(p: float, params: DcqcnParams) -> float:
    """Queue (KB) at which the marking ramp gives ``p``; ``kmax_kb`` if ``p > pmax``."""
    if p > params.pmax:
        return params.kmax_kb
    return params.kmin_kb + (p / params.pmax) * (params.kmax_kb - params.kmin_kb)


def _log_terms(p: float, rate_kb_per_us: float, params: DcqcnParams) -> dict[str, float]:
    """Logarithms of a, α-target, b, c, d, e for ``p`` in (0, 1) and one rate (packets/µs).

    Written so that nothing overflows even as p -> 1, where ``(1 − p)^(−B)`` is astronomically
    large: ``p/((1 − p)^(−n) − 1) = p·(1 − p)^n / (1 − (1 − p)^n)``.
    """
    log1m = math.log1p(-p)
    log_p = math.log(p)
    r = rate_kb_per_us
    n_b = params.byte_counter_kb
    n_t = params.timer_us * r
    f = params.fast_recovery_steps
    log_b = log_p + n_b * log1m - math.log(-math.expm1(n_b * log1m))
    log_d = log_p + n_t * log1m - math.log(-math.expm1(n_t * log1m))
    return {
        "a": math.log(-math.expm1(params.tau_us * r * log1m)),
        "alpha": math.log(-math.expm1(params.tau_prime_us * r * log1m)),
        "b": log_b,
        "c": f * n_b * log1m + log_b,
        "d": log_d,
        "e": f * n_t * log1m + log_d,
    }


def approximate_marking_probability(n_flows: int, params: DcqcnParams) -> float:
    """DESIGN.md's closed-form fixed-point marking probability.

    ``p* ≈ ∛[R_AI·N²/(τ′·C²) · (1/B + N/(T·C))²]`` with rates in packets/µs, times in µs
    and B in packets (only dimensionless products and packet counts appear).

    Args:
        n_flows: Number N of flows sharing the port.
        params: Model parameters.

    Returns:
        The approximate equilibrium marking probability p*; far above 1 where the
        linearisation breaks down, and at most ``exp(700)`` (~1e304).
    """
    _check_n_flows(n_flows)
    log_cap = math.log(params.capacity_kb_per_us)
    log_n = math.log(n_flows)
    # In logs: C² underflows, and N/(T·C) overflows, on ports of extreme speed.
    log_sum = float(
        np.logaddexp(-math.log(params.byte_counter_kb), log_n - math.log(params.timer_us) - log_cap)
    )
    log_inner = (
        math.log(params.rate_ai_kb_per_us)
        + 2.0 * log_n
        - math.log(params.tau_prime_us)
        - 2.0 * log_cap
        + 2.0 * log_sum
    )
    return math.exp(min(log_inner / 3.0, _LOG_P_APPROX_MAX))


@dataclass(frozen=True)
class DcqcnFixedPoint:
    """Equilibrium of the DCQCN fluid model for N identical long flows.

    Attributes:
        n_flows: Number of flows N.
        rate_gbps: Per-flow equilibrium rate R* = C/N, Gb/s.
        p_approx: Closed-form p* from DESIGN.md.
        queue_kb_approx: ``Kmin + (p_approx/Pmax)(Kmax − Kmin)``, KB (``kmax_kb`` if
            ``p_approx > pmax``).
        p_exact: p* solving the stationary equations without linearisation.
        queue_kb_exact: Queue giving ``p_exact`` on the marking ramp, KB.
        alpha_exact: Equilibrium α*.
        target_rate_gbps_exact: Equilibrium target rate R_T*, Gb/s (capped at C).
        queue_pinned_at_kmax: True when ``p_exact > pmax``: the ramp cannot supply the
            needed marking, so the fluid queue sits at the Kmax discontinuity.
    """

    n_flows: int
    rate_gbps: float
    p_approx: float
    queue_kb_approx: float
    p_exact: float
    queue_kb_exact: float
    alpha_exact: float
    target_rate_gbps_exact: float
    queue_pinned_at_kmax: bool


def _root_in_log(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of an increasing ``f`` on ``(lo, hi)`` by bisection on ``log p``.

    Marking probabilities span many decades, so the interval is halved in
    log space; 64 halvings take ``ln(hi/lo)`` (35 for the fixed point's
    bracket) below 1e-17, a relative precision in ``p`` past double's.
    """
    log_lo, log_hi = math.log(lo), math.log(hi)
    for _ in range(64):
        mid = 0.5 * (log_lo + log_hi)
        if f(math.exp(mid)) < 0.0:
            log_lo = mid
        else:
            log_hi = mid
    return math.exp(0.5 * (log_lo + log_hi))


_P_LOW, _P_HIGH = 1e-15, 1.0 - 1e-12
"""The bracket of the exact fixed point's marking probability."""


def _clamped_root(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of an increasing ``f`` on ``[lo, hi]``, or the end it is pinned to.

    ``f(lo) >= 0``: even the least marking in the bracket holds the rates (a
    port whose additive increase is negligible against its capacity), so the
    fixed point is at ``lo``, the queue at Kmin. ``f(hi) <= 0``: no marking
    probability below 1 holds them (additive increase outruns every cut, as on
    a port far slower than R_AI times the flows), so the queue is pinned at
    the top of the ramp, ``hi``.
    """
    if f(lo) >= 0.0:
        return lo
    if f(hi) <= 0.0:
        return hi
    return _root_in_log(f, lo, hi)


def fixed_point(n_flows: int, params: DcqcnParams | None = None) -> DcqcnFixedPoint:
    """Approximate (closed-form) and exact (numerical) equilibrium of the fluid model.

    The exact p* solves ``α(p)·a(p)² = τ²·R_AI·R*·(c(p) + e(p))·(b(p) + d(p))`` with
    ``R* = C/N`` by bisection on ``log p`` over (0, 1).  If the resulting target rate would
    exceed line rate (N = 1, or e.g. no fast recovery with a very large R_AI), the target is
    capped at C as in :func:`simulate` and the rate equation alone,
    ``α·a = τ·(C − R*)·(b + d)``, is solved instead; for N = 1 that gives ``p* = 0`` and an
    empty queue: a lone flow at line rate never congests its own port.

    Args:
        n_flows: Number N of flows sharing the port.
        params: Model parameters; defaults to :class:`DcqcnParams` ().

    Returns:
        The fixed point: closed-form approximation and exact solution.

    Where the stationary equation has no root in (1e-15, 1 − 1e-12) the solution is
    pinned to the end of that bracket it points to (see :func:`_clamped_root`): at 1e-15
    (the queue at Kmin) when the rates hold with almost no marking, at 1 − 1e-12 (the
    queue pinned at Kmax) when no marking below 1 holds them, as on a port much slower
    than ``N·R_AI``.

    Raises:
        ValueError: If ``n_flows`` is not an integer >= 1.
    """
    params = params if params is not None else DcqcnParams()
    _check_n_flows(n_flows)
    cap = params.capacity_kb_per_us
    rate = cap / n_flows
    tau = params.tau_us
    rai = params.rate_ai_kb_per_us

    p_approx = approximate_marking_probability(n_flows, params)
    queue_approx = _queue_for_probability(p_approx, params)

    log_tau_rai_rate = math.log(tau * rai * rate)

    def uncapped(p: float) -> float:
        # log of α·a² − log of τ²·R_AI·R*·(c + e)(b + d): increasing in p, root = p*.
        t = _log_terms(p, rate, params)
        return (
            t["alpha"]
            + 2.0 * t["a"]
            - log_tau_rai_rate
            - math.log(tau)
            - np.logaddexp(t["c"], t["e"])
            - np.logaddexp(t["b"], t["d"])
        )

    def capped(p: float) -> float:
        # R_T pinned at C: log of α·a − log of τ·(C − R*)·(b + d).
        t = _log_terms(p, rate, params)
        return t["alpha"] + t["a"] - math.log(tau * (cap - rate)) - np.logaddexp(t["b"], t["d"])

    lo, hi = _P_LOW, _P_HIGH
    p_exact = _clamped_root(uncapped, lo, hi)
    t = _log_terms(p_exact, rate, params)
    alpha = math.exp(t["alpha"])
    # R_T* − R* = τ·R_AI·R*·(c + e)/a, compared with C − R* in logs (it overflows as a -> 0).
    log_extra = log_tau_rai_rate + float(np.logaddexp(t["c"], t["e"])) - t["a"]
    if n_flows == 1 or log_extra > math.log(cap - rate):
        target = cap
        if n_flows == 1:
            p_exact, alpha = 0.0, 0.0
        else:
            p_exact = _clamped_root(capped, lo, hi)
            alpha = math.exp(_log_terms(p_exact, rate, params)["alpha"])
    else:
        target = rate + math.exp(log_extra)
    queue_exact = 0.0 if p_exact == 0.0 else _queue_for_probability(p_exact, params)
    return DcqcnFixedPoint(
        n_flows=n_flows,
        rate_gbps=float(_kb_per_us_to_gbps(rate)),
        p_approx=p_approx,
        queue_kb_approx=queue_approx,
        p_exact=p_exact,
        queue_kb_exact=queue_exact,
        alpha_exact=alpha,
        target_rate_gbps_exact=float(_kb_per_us_to_gbps(target)),
        queue_pinned_at_kmax=p_exact > params.pmax,
    )


@dataclass(frozen=True)
class DcqcnSteadyState:
    """Steady-state congestion figures of one DCQCN-controlled port.

    Attributes:
        ecn_mark_fraction: Fraction of packets leaving the port with an ECN mark (p*).
        queue_kb: Equilibrium queue q*, KB.
        queueing_delay_us: Queueing delay q*/C seen by every packet, µs.
    """

    ecn_mark_fraction: float
    queue_kb: float
    queueing_delay_us: float


def steady_state(
    n_flows: int, params: DcqcnParams | None = None, *, exact: bool = True
) -> DcqcnSteadyState:
    """Steady-state ECN marking fraction and queueing delay for N long flows on one port.

    Args:
        n_flows: Number N of flows sharing the port.
        params: Model parameters; defaults to :class:`DcqcnParams` ().
        exact: Use the numerically solved fixed point (default) rather than DESIGN.md's
            closed-form approximation.

    Returns:
        Marking fraction p*, queue q* (KB) and queueing delay q*/C (µs).
    """
    params = params if params is not None else DcqcnParams()
    fp = fixed_point(n_flows, params)
    if exact:
        p, q = fp.p_exact, fp.queue_kb_exact
    else:
        p, q = fp.p_approx, fp.queue_kb_approx
    return DcqcnSteadyState(
        ecn_mark_fraction=min(p, 1.0),
        queue_kb=q,
        queueing_delay_us=q / params.capacity_kb_per_us,
    )


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
    more slowly than that (N = 2 with an 85 µs delay, see :func:`stability`) creeps up
    in the trace instead of dying out.

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
        rate_current_gbps=np.asarray(_kb_per_us_to_gbps(out_rc[:, per_flow])),
        rate_target_gbps=np.asarray(_kb_per_us_to_gbps(out_rt[:, per_flow])),
        alpha=out_alpha[:, per_flow],
        arrival_gbps=np.asarray(_kb_per_us_to_gbps(out_arrival)),
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
        out_t, out_q, out_p, np.asarray(_kb_per_us_to_gbps(out_arrival), dtype=float)
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
    _check_n_flows(n_flows)
    _check_real("duration_us", duration_us)
    _check_real("dt_us", dt_us)
    _check_real("sample_interval_us", sample_interval_us)
    _check_real("initial_alpha", initial_alpha)
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

    _check_real("initial_queue_kb", initial_queue_kb)
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
    return np.asarray(_gbps_to_kb_per_us(rates), dtype=float).copy()


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
        cap * _RATE_FLOOR,
        _P_NEGLIGIBLE,
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
        if p < _P_NEGLIGIBLE:
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


# --------------------------------------------------------------------------- stability


@dataclass(frozen=True)
class DcqcnStability:
    """Local stability of the fluid model's fixed point for N identical flows.

    Attributes:
        n_flows: Number of flows N.
        stable: True when the fixed point attracts what starts near it: it lies on the
            marking ramp and every root of the linearised system's characteristic
            equation has a negative real part.
        growth_per_ms: Real part of the rightmost characteristic root, 1/ms: a small
            perturbation grows (> 0) or dies out (< 0) like ``exp(growth·t)``; ``-inf``
            for a lone flow (no queue, nothing to perturb), NaN when pinned.
        period_us: ``2π`` over that root's imaginary part, µs (``inf`` for a real root):
            the period the oscillation starts with.
        pinned_at_kmax: The fixed point is pinned at the Kmax discontinuity (the ramp
            cannot supply the marking the rates need): no equilibrium of the smooth
            dynamics exists, and the queue oscillates about Kmax.
    """

    n_flows: int
    stable: bool
    growth_per_ms: float
    period_us: float
    pinned_at_kmax: bool


_COLLOCATION_NODES = 16
"""Chebyshev intervals over the delay in :func:`_characteristic_roots` (17 nodes).

The rightmost roots converge spectrally in the node count: with the defaults and 4 to
85 µs of delay, 16 and 32 intervals agree to 1e-9 of the root; 17 nodes times 4 states
keeps the eigenvalue problem at 68 × 68, below where LAPACK starts threads."""


def stability(n_flows: int, params: DcqcnParams | None = None) -> DcqcnStability:
    """Whether the fixed point of N flows is stable, from the linearised delay system.

    The fluid model is linearised about the exact fixed point (:func:`fixed_point`):
    with ``x = (q, α, R_T, R_C)`` of N identical flows, ``dx/dt = A0·x(t) + A1·x(t − τ*)``,
    where ``A1`` holds the terms of the delayed queue (through ``p``) and the delayed
    rate.  Its characteristic equation ``det(λI − A0 − A1·exp(−λτ*)) = 0`` has infinitely
    many roots; the rightmost ones are found as eigenvalues of a Chebyshev collocation of
    the system's generator over one delay (Breda, Maset and Vermiglio, SIAM J. Sci.
    Comput. 2005) and refined by Newton's method on the equation itself.  Perturbations
    that keep the flows identical move the queue (the 4-state system above); those that
    move flows apart with their sum fixed leave the queue alone (the 3-state system of
    one flow with ``p`` held); the fixed point is stable when both decay.  Zhu et al.
    (CoNEXT 2016) reach the same verdicts from the loop's phase margin.

    With the defaults, N = 10 is stable at the default 4 µs of feedback delay and
    unstable from about 62 µs on (at 85 µs a perturbation grows by ``e`` every 13 ms
    and settles into the limit cycle of :func:`limit_cycle`); N = 2 is still stable at
    85 µs, if barely (it dies out by ``e`` every 175 ms).  The verdict is local: a
    stable fixed point can have a large cycle beside it that a big enough jolt reaches
    (see :func:`limit_cycle`); flows that start at line rate settle on the fixed point
    where it is stable in the cases checked (N = 10 at 4, 40 and 60 µs).

    Args:
        n_flows: Number N of flows sharing the port.
        params: Model parameters; defaults to :class:`DcqcnParams` ().

    Returns:
        The verdict, with the rightmost root.

    Raises:
        ValueError: If ``n_flows`` is not an integer >= 1.
    """
    params = params if params is not None else DcqcnParams()
    point = fixed_point(n_flows, params)
    if n_flows == 1:
        return DcqcnStability(1, True, -math.inf, math.inf, False)
    if point.queue_pinned_at_kmax:
        return DcqcnStability(n_flows, False, math.nan, math.nan, True)
    a0, a1 = _linearised(n_flows, params, point)
    delay = params.feedback_delay_us
    symmetric = _rightmost_root(a0, a1, delay)
    # Flows moving apart, their sum (and so the queue) fixed: drop the queue's row and column.
    spread = _rightmost_root(a0[1:, 1:], a1[1:, 1:], delay)
    root = symmetric if symmetric.real >= spread.real else spread
    growth_per_ms = float(root.real * 1e3)
    period = 2.0 * math.pi / abs(root.imag) if root.imag != 0 else math.inf
    return DcqcnStability(n_flows, bool(growth_per_ms < 0), growth_per_ms, period, False)


def _flow_derivatives(
    alpha: float, rt: float, rc: float, p: float, rd: float, params: DcqcnParams
) -> np.ndarray:
    """dα/dt, dR_T/dt and dR_C/dt of one flow, given the delayed ``p`` and rate ``rd``."""
    log1m = math.log1p(-p)
    x = rd * log1m
    n_b = params.byte_counter_kb * log1m
    y = params.timer_us * x
    f = float(params.fast_recovery_steps)
    a = -math.expm1(params.tau_us * x)
    b = p * math.exp(n_b) / -math.expm1(n_b)
    c = math.exp(f * n_b) * b
    d = p * math.exp(y) / -math.expm1(y)
    e = math.exp(f * y) * d
    return np.array(
        [
            params.g / params.tau_prime_us * (-math.expm1(params.tau_prime_us * x) - alpha),
            -(rt - rc) / params.tau_us * a + params.rate_ai_kb_per_us * rd * (c + e),
            -rc * alpha / (2.0 * params.tau_us) * a + (rt - rc) / 2.0 * rd * (b + d),
        ]
    )


def _linearised(
    n_flows: int, params: DcqcnParams, point: DcqcnFixedPoint
) -> tuple[np.ndarray, np.ndarray]:
    """``A0`` and ``A1`` of the fluid model linearised about a fixed point on the ramp.

    States ``(q, α, R_T, R_C)`` in KB and packets/µs.  Derivatives are central
    differences, in ``p`` rather than ``q`` (``dp/dq`` is the ramp's slope), so a
    fixed point just above Kmin is differentiated without leaving the ramp.  A target
    rate held at line rate stays there under a small perturbation: it is left out of the
    state, which is then ``(q, α, R_C)``.
    """
    cap = params.capacity_kb_per_us
    alpha, rc = point.alpha_exact, cap / n_flows
    rt = float(_gbps_to_kb_per_us(point.target_rate_gbps_exact))
    p = point.p_exact
    slope = params.pmax / (params.kmax_kb - params.kmin_kb)
    a0 = np.zeros((4, 4))
    a1 = np.zeros((4, 4))
    a0[0, 3] = n_flows  # dq/dt = N·R_C − C
    base = np.array([alpha, rt, rc, p, rc])
    steps = np.array([1e-6 * max(alpha, 1e-6), 1e-7 * cap, 1e-7 * cap, 1e-4 * p, 1e-7 * cap])
    columns = []
    for j in range(5):
        up, down = base.copy(), base.copy()
        up[j] += steps[j]
        down[j] -= steps[j]
        columns.append(
            (_flow_derivatives(*up, params=params) - _flow_derivatives(*down, params=params))
            / (2.0 * steps[j])
        )
    a0[1:, 1] = columns[0]
    a0[1:, 2] = columns[1]
    a0[1:, 3] = columns[2]
    a1[1:, 0] = columns[3] * slope
    a1[1:, 3] = columns[4]
    if rt >= cap * (1.0 - 1e-12):
        # Held at line rate, R_T is no state of the linear system (a frozen state would
        # bring an eigenvalue 0 of its own): drop its row and column.
        keep = [0, 1, 3]
        return a0[np.ix_(keep, keep)], a1[np.ix_(keep, keep)]
    return a0, a1


def _rightmost_root(a0: np.ndarray, a1: np.ndarray, delay_us: float) -> complex:
    """The characteristic root of ``dx/dt = A0·x(t) + A1·x(t − delay)`` of largest real part."""
    if delay_us == 0:
        return complex(max(np.linalg.eigvals(a0 + a1), key=lambda z: z.real))
    guesses = sorted(_characteristic_roots(a0, a1, delay_us), key=lambda z: -z.real)[:4]
    refined = [_newton_root(a0, a1, delay_us, z) for z in guesses]
    return max(refined, key=lambda z: z.real)


def _characteristic_roots(a0: np.ndarray, a1: np.ndarray, delay_us: float) -> np.ndarray:
    """Approximate characteristic roots: eigenvalues of the collocated generator.

    The state over one delay, ``x(t + θ)`` for θ in [−τ*, 0], is held at Chebyshev
    nodes; the generator differentiates it in θ at every node but θ = 0, where the
    system's own equation gives the derivative.
    """
    n = a0.shape[0]
    m = _COLLOCATION_NODES
    nodes = np.cos(np.pi * np.arange(m + 1) / m)
    weight = np.r_[2.0, np.ones(m - 1), 2.0] * (-1.0) ** np.arange(m + 1)
    gap = nodes[:, None] - nodes[None, :] + np.eye(m + 1)
    diff = np.outer(weight, 1.0 / weight) / gap
    diff -= np.diag(diff.sum(axis=1))
    # θ = (τ*/2)(x − 1) maps [−1, 1] onto [−τ*, 0]; node 0 is θ = 0, node m is θ = −τ*.
    generator = np.kron(diff * (2.0 / delay_us), np.eye(n))
    generator[:n] = 0.0
    generator[:n, :n] = a0
    generator[:n, -n:] = a1
    return np.linalg.eigvals(generator)


def _newton_root(a0: np.ndarray, a1: np.ndarray, delay_us: float, guess: complex) -> complex:
    """Newton's method on ``det(λI − A0 − A1·e^(−λτ*))``, from ``guess``.

    The step is ``1/tr(M⁻¹·M′)`` with ``M = λI − A0 − A1·e^(−λτ*)`` and
    ``M′ = I + τ*·A1·e^(−λτ*)`` (Jacobi's formula); the guess is returned if the
    iteration does not settle.
    """
    eye = np.eye(a0.shape[0])
    lam = complex(guess)
    for _ in range(20):
        shift = np.exp(-lam * delay_us)
        matrix = lam * eye - a0 - a1 * shift
        try:
            ratio = np.trace(np.linalg.solve(matrix, eye + delay_us * a1 * shift))
        except np.linalg.LinAlgError:
            return lam
        if ratio == 0:
            return lam
        step = 1.0 / ratio
        lam -= step
        if abs(step) <= 1e-12 * max(abs(lam), 1e-9):
            return lam
    return complex(guess)


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
        arrival_weights: What arrives at those times, normalised to sum to 1.
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

    Where the fixed point is unstable (see :func:`stability`), what a port carries,
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
        rt=np.array([float(_gbps_to_kb_per_us(point.target_rate_gbps_exact))]),
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
        rate_gbps=float(_kb_per_us_to_gbps(utilisation * cap / n_flows)),
        queue_kb=float(queue.mean()),
        queue_std_kb=float(queue.std()),
        queue_seen_kb=float(np.dot(weights, queue)),
        ecn_mark_fraction=float(np.dot(weights, marking)),
        sample_us=dt * keep,
        queue_samples_kb=queue[::keep].copy(),
        arrival_weights=kept / kept.sum(),
    )


def _check_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _check_n_flows(n_flows: int) -> None:
    if isinstance(n_flows, bool) or not isinstance(n_flows, (int, np.integer)) or n_flows < 1:
        raise ValueError(f"n_flows must be an integer >= 1, got {n_flows!r}")
