"""The M/M/c queue: Erlang C, waiting-time and latency quantiles, in closed form.

``c`` servers, Poisson arrivals at ``lambda`` per second, service exponential
with mean ``S`` (``mu = 1 / S``). The probability of waiting is Erlang C,
``C(c, lambda S)``; the wait ``W`` is 0 with probability ``1 - C`` and otherwise
exponential with rate ``theta = c / S - lambda``, independent of the request's
own service. A served model's fleet is such a queue whose servers are its batch
slots (see :mod:`sim.workloads.inference`). Times are in seconds, rates per second.
"""

from __future__ import annotations

import math

from scipy import optimize, special

from sim.workloads.arguments import (
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
    check_probability,
)

__all__ = ["erlang_c", "latency_quantile_s", "mean_wait_s", "wait_quantile_s"]


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C).

    Computed in closed form from Erlang B, ``B = pmf(c; a) / cdf(c; a)`` of a Poisson law
    with mean ``a`` (log-space pmf, ``scipy.special.pdtr`` cdf), then
    ``C = c B / (c - a (1 - B))``: stable and O(1) for any number of servers.

    Args:
        servers: ``c``, the number of servers (>= 1).
        offered_erlangs: ``a = lambda / mu``, the offered load (>= 0).

    Returns:
        ``C(c, a)`` in [0, 1]; 1.0 when ``a >= c`` (the queue is unstable), 0.0 when ``a = 0``.
    """
    check_positive_int("servers", servers)
    check_non_negative_float("offered_erlangs", offered_erlangs)
    c = int(servers)
    a = float(offered_erlangs)
    if a >= c:
        return 1.0
    if a == 0.0:
        return 0.0
    log_pmf = c * math.log(a) - a - special.gammaln(c + 1.0)
    blocking = math.exp(log_pmf - math.log(special.pdtr(c, a)))
    return min(1.0, c * blocking / (c - a * (1.0 - blocking)))


def _queue(servers: int, arrivals_per_s: float, service_s: float) -> tuple[float, float]:
    """Erlang C and the exponential rate ``c / S - lambda`` of a positive wait (0 if unstable)."""
    check_positive_int("servers", servers)
    check_non_negative_float("arrivals_per_s", arrivals_per_s)
    check_positive_float("service_s", service_s)
    wait_probability = erlang_c(servers, arrivals_per_s * service_s)
    return wait_probability, max(0.0, servers / service_s - arrivals_per_s)


def mean_wait_s(servers: int, arrivals_per_s: float, service_s: float) -> float:
    """Mean waiting time in M/M/c: ``C / (c / S - lambda)`` (s); ``inf`` if unstable.

    Args:
        servers: ``c``, the number of servers.
        arrivals_per_s: ``lambda``, Poisson arrivals per second.
        service_s: ``S``, the mean (exponential) service time, s.
    """
    wait_probability, rate = _queue(servers, arrivals_per_s, service_s)
    if rate <= 0:
        return math.inf
    return wait_probability / rate


def wait_quantile_s(servers: int, arrivals_per_s: float, service_s: float, q: float) -> float:
    """Quantile ``q`` of the waiting time in M/M/c (s).

    ``P(W > t) = C exp(-(c / S - lambda) t)``, so the quantile is 0 for ``q <= 1 - C`` and
    ``ln(C / (1 - q)) / (c / S - lambda)`` above.

    Args:
        servers: ``c``, the number of servers.
        arrivals_per_s: ``lambda``, Poisson arrivals per second.
        service_s: ``S``, the mean (exponential) service time, s.
        q: The quantile, in [0, 1].

    Returns:
        The quantile; ``inf`` for ``q = 1`` or, when the queue is unstable, any ``q > 0``.
    """
    check_probability("q", q)
    wait_probability, rate = _queue(servers, arrivals_per_s, service_s)
    if q <= 1.0 - wait_probability:
        return 0.0
    if q >= 1.0 or rate <= 0:
        return math.inf
    return math.log(wait_probability / (1.0 - q)) / rate


def _latency_survival(t: float, wait_probability: float, rate: float, mu: float) -> float:
    """``P(W + X > t)``, W the M/M/c wait and X ~ Exp(mu) the service, independent.

    The tail of Exp(rate) + Exp(mu) is symmetric in the two rates; with ``lo <= hi`` and
    ``x = (hi - lo) t`` it is ``e^(-lo t) (1 + lo t (1 - e^(-x)) / x)``, free of cancellation
    when the rates are close.
    """
    low, high = min(rate, mu), max(rate, mu)
    x = (high - low) * t
    spread = -math.expm1(-x) / x if x > 0 else 1.0
    both = math.exp(-low * t) * (1.0 + low * t * spread)
    return (1.0 - wait_probability) * math.exp(-mu * t) + wait_probability * both


def latency_quantile_s(servers: int, arrivals_per_s: float, service_s: float, q: float) -> float:
    """Quantile ``q`` of the latency (wait plus own service) in M/M/c (s).

    With ``mu = 1 / S`` and ``theta = c / S - lambda``, the wait is 0 with probability
    ``1 - C`` and Exp(``theta``) otherwise, the service Exp(``mu``), independent, so
    ``P(W + X > t) = (1 - C) e^(-mu t) + C (theta e^(-mu t) - mu e^(-theta t)) / (theta - mu)``
    (``(1 + mu t) e^(-mu t)`` in place of the fraction when ``theta = mu``); solved for ``t``
    by Brent's method.

    Args:
        servers: ``c``, the number of servers.
        arrivals_per_s: ``lambda``, Poisson arrivals per second.
        service_s: ``S``, the mean (exponential) service time, s.
        q: The quantile, in [0, 1].

    Returns:
        The quantile; ``inf`` for ``q = 1`` or when the queue is unstable.
    """
    check_probability("q", q)
    wait_probability, rate = _queue(servers, arrivals_per_s, service_s)
    if q == 0.0:
        return 0.0
    if q >= 1.0 or rate <= 0:
        return math.inf
    mu = 1.0 / service_s
    tail = 1.0 - q
    high = service_s  # doubled until it brackets the quantile
    while _latency_survival(high, wait_probability, rate, mu) > tail:
        high *= 2.0
    return float(
        optimize.brentq(
            lambda t: _latency_survival(t, wait_probability, rate, mu) - tail,
            0.0,
            high,
            xtol=1e-15,
            rtol=1e-12,
        )
    )
