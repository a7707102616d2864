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

Stability and limit cycle.  :mod:`sim.fabric.dcqcn_stability` linearises the delay
system about the exact fixed point; where the fixed point is unstable (or pinned at Kmax),
:mod:`sim.fabric.dcqcn_dynamics` simulates the oscillation the port settles into and
averages it over whole periods: the share of the port the flows get, the queue, and the
marks, as the bytes crossing the port meet them.  The same module integrates the model in
time (:func:`~sim.fabric.dcqcn_dynamics.simulate`).  The fabric's epochs
(:mod:`sim.fabric.transport`) take those in place of the fixed point's figures.

This module holds the parameters, the marking ramp, the fixed point and the steady state
it gives.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

__all__ = [
    "PACKET_BYTES",
    "DcqcnFixedPoint",
    "DcqcnParams",
    "DcqcnSteadyState",
    "approximate_marking_probability",
    "fixed_point",
    "marking_probability",
    "steady_state",
]

PACKET_BYTES = 1000
"""Size of one fluid-model packet (1 KB, decimal): the unit of queues, thresholds and B."""

_LOG_P_APPROX_MAX = 700.0
"""Largest log of the closed-form p*: a probability that large (1e304) only says "far above 1"."""

P_NEGLIGIBLE = 1e-200
"""Marking probabilities below this use the p -> 0 limit forms (avoids 0/0 in b and d)."""

RATE_FLOOR = 1e-12
"""Rates are held at or above this fraction of line rate in
:func:`~sim.fabric.dcqcn_dynamics.simulate`.

A NIC's rate limiter has a minimum rate, and the floor keeps the explicit step
finite where it cannot resolve the dynamics: on a port whose byte counter
fires many times per step (a bundle of thousands of NICs modelled as one
link), Euler steps overshoot, and without the floor a rate would go negative
and the trace diverge. Rates this low are never reached otherwise: a cut
halves a rate at most once per τ."""

_GBPS_PER_KB_PER_US = PACKET_BYTES * 8 * 1e6 / 1e9
"""1 packet/µs expressed in Gb/s (= 8)."""


def gbps_to_kb_per_us(rate_gbps: float | np.ndarray) -> float | np.ndarray:
    return rate_gbps / _GBPS_PER_KB_PER_US


def kb_per_us_to_gbps(rate_kb_per_us: float | np.ndarray) -> float | np.ndarray:
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
            µs.  Rounded to a whole number of integration steps in
            :func:`~sim.fabric.dcqcn_dynamics.simulate`.
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
            check_real(f"DcqcnParams.{f.name}", getattr(self, f.name))
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
        return float(gbps_to_kb_per_us(self.capacity_gbps))

    @property
    def rate_ai_kb_per_us(self) -> float:
        """Additive-increase step R_AI in packets (KB) per µs."""
        return float(gbps_to_kb_per_us(self.rate_ai_mbps / 1000.0))

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
    check_n_flows(n_flows)
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
    capped at C as in :func:`~sim.fabric.dcqcn_dynamics.simulate` and the rate equation alone,
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
    check_n_flows(n_flows)
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
        rate_gbps=float(kb_per_us_to_gbps(rate)),
        p_approx=p_approx,
        queue_kb_approx=queue_approx,
        p_exact=p_exact,
        queue_kb_exact=queue_exact,
        alpha_exact=alpha,
        target_rate_gbps_exact=float(kb_per_us_to_gbps(target)),
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


def check_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def check_n_flows(n_flows: int) -> None:
    if isinstance(n_flows, bool) or not isinstance(n_flows, (int, np.integer)) or n_flows < 1:
        raise ValueError(f"n_flows must be an integer >= 1, got {n_flows!r}")
