"""The DCQCN fluid model's time loop compiled (numba), for long runs.

:func:`integrate` is :func:`sim.fabric.dcqcn_dynamics._integrate` (explicit Euler over the
flow groups with the feedback delay's ring buffer) written as loops over the
groups, compiled once and cached on disk (:mod:`sim.fabric.numba_setup`). It
computes what the Python loop computes, term by term in the same order, so the
two agree to rounding (the tests compare them); the Python loop stays the
reference and serves short runs, which never import this module or numba.
"""

from __future__ import annotations

import math

import numpy as np

from sim.fabric.numba_setup import numba

__all__ = ["integrate"]


@numba.njit(cache=True, nogil=True)
def integrate(
    constants: np.ndarray,
    rc0: np.ndarray,
    rt0: np.ndarray,
    alpha0: float,
    queue0: float,
    weights: np.ndarray,
    left0: np.ndarray,
    has_left: bool,
    n_steps: int,
    delay_steps: int,
    sample_every: int,
) -> tuple[np.ndarray, ...]:
    """The time loop; ``constants`` packs the loop's parameters (see the caller).

    Returns:
        Sample times, queue, marking probability, per-group R_C, R_T and α
        (n_samples x n_groups) and the arrival rate into the port.
    """
    (h, cap, kmin, kmax, ramp, tau, tau_p, big_t, big_b, big_f) = constants[:10]
    (inv_b, inv_t, h_cut, h_tau, h_g, h_half, h_rai, h_cap, floor, p_negligible) = constants[10:20]
    n_groups = rc0.size
    rc = rc0.copy()
    rt = rt0.copy()
    alpha = np.full(n_groups, alpha0)
    left = left0.copy()
    q = queue0
    n_samples = n_steps // sample_every + 1
    out_t = np.empty(n_samples)
    out_q = np.empty(n_samples)
    out_p = np.empty(n_samples)
    out_rc = np.empty((n_samples, n_groups))
    out_rt = np.empty((n_samples, n_groups))
    out_alpha = np.empty((n_samples, n_groups))
    out_arrival = np.empty(n_samples)
    depth = max(delay_steps, 1)
    hist_q = np.full(depth, q)
    hist_rc = np.empty((depth, n_groups))
    for slot in range(depth):
        hist_rc[slot] = rc
    rd = np.empty(n_groups)
    d_rc = np.empty(n_groups)
    d_rt = np.empty(n_groups)
    s = 0
    for k in range(n_steps + 1):
        if k % sample_every == 0:
            out_t[s] = k * h
            out_q[s] = q
            out_p[s] = _p_of(q, kmin, kmax, ramp)
            arrival = 0.0
            for g in range(n_groups):
                out_rc[s, g] = rc[g]
                out_rt[s, g] = rt[g]
                out_alpha[s, g] = alpha[g]
                sending = rc[g]
                if has_left:
                    sending = min(rc[g], max(left[g], 0.0) / h)
                arrival += sending * weights[g]
            out_arrival[s] = arrival
            s += 1
        if k == n_steps:
            break
        if delay_steps == 0:
            qd = q
            rd[:] = rc
        else:
            slot = k % depth
            qd = hist_q[slot]
            rd[:] = hist_rc[slot]
            hist_q[slot] = q
            hist_rc[slot] = rc
        p = _p_of(qd, kmin, kmax, ramp)
        if p < p_negligible:
            for g in range(n_groups):
                inc = inv_b * rd[g] + inv_t
                d_rc[g] = h_half * (rt[g] - rc[g]) * inc
                d_rt[g] = h_rai * inc
                alpha[g] = alpha[g] - h_g * alpha[g]
        elif p >= 1.0:
            for g in range(n_groups):
                d_rc[g] = -h_cut * rc[g] * alpha[g]
                d_rt[g] = -h_tau * (rt[g] - rc[g])
                alpha[g] = alpha[g] + h_g * (1.0 - alpha[g])
        else:
            log1m = math.log1p(-p)
            b = p * math.exp(big_b * log1m) / -math.expm1(big_b * log1m)
            c = math.exp(big_f * big_b * log1m) * b
            for g in range(n_groups):
                gap = rt[g] - rc[g]
                x = rd[g] * log1m
                neg_a = math.expm1(tau * x)
                y = big_t * x
                d = p * math.exp(y) / -math.expm1(y)
                e = math.exp(big_f * y) * d
                d_rc[g] = h_half * gap * rd[g] * (b + d) + h_cut * rc[g] * alpha[g] * neg_a
                d_rt[g] = h_rai * rd[g] * (c + e) + h_tau * gap * neg_a
                alpha[g] = alpha[g] - h_g * (math.expm1(tau_p * x) + alpha[g])
        pushed = 0.0
        if has_left:
            for g in range(n_groups):
                sent = min(h * rc[g], max(left[g], 0.0))
                left[g] = left[g] - sent
                pushed += sent * weights[g]
            q = q + pushed - h_cap
        else:
            for g in range(n_groups):
                pushed += rc[g] * weights[g]
            q = q + h * pushed - h_cap
        if q < 0.0:
            q = 0.0
        for g in range(n_groups):
            rc[g] = min(max(rc[g] + d_rc[g], floor), cap)
            rt[g] = min(max(rt[g] + d_rt[g], floor), cap)
    return out_t, out_q, out_p, out_rc, out_rt, out_alpha, out_arrival


@numba.njit(cache=True, nogil=True)
def _p_of(queue: float, kmin: float, kmax: float, ramp: float) -> float:
    if queue <= kmin:
        return 0.0
    if queue <= kmax:
        return ramp * (queue - kmin)
    return 1.0
