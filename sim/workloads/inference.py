"""Inference serving: replica physics, an M/M/c queue over batch slots, latency distributions.

A served model runs as ``replicas`` copies, each on ``tp`` accelerators (tensor parallel),
each decoding up to ``max_batch`` requests at once with continuous batching. The module turns
the model's shape and the accelerator's figures into the service time of one request, then
treats the fleet as an M/M/c queue whose servers are the batch slots, like a restaurant whose
tables are seats: a request waits only when every seat of every replica is taken, and a fuller
table eats more slowly. Everything is pure numpy / scipy, solved once per fabric epoch; no
request is ever a SimPy event.

Replica physics (``Pa`` active parameters, ``P`` all parameters, MoE experts included; ``B``
bytes per parameter; ``L`` layers, ``h`` hidden size; ``p`` prompt tokens, ``o`` output
tokens; ``F`` the accelerator's dense TFLOP/s, ``H`` its memory TB/s; ``mfu`` and ``eff`` the
compute and bandwidth efficiencies)
    - prefill of one request: ``2 Pa p / (tp F 1e12 mfu)`` seconds;
    - KV cache per token: ``2 L h B r`` bytes (keys and values of every layer; ``r`` is
      ``kv_heads_ratio``, KV heads over attention heads: 1 ignores grouped-query attention and
      is a conservative upper bound, Llama 3 70B has ``8 / 64``);
    - KV read per decode step at batch ``b``: ``b (p + o / 2) 2 L h B r`` bytes (each request
      holds its prompt and, on average, half its output);
    - decode step at batch ``b``, the slower of memory and compute, each split over ``tp``:
      ``max((P B + KV(b)) / tp / (H 1e12 eff), 2 Pa b / (tp F 1e12 mfu))``;
    - service of one request at batch ``b``: ``prefill + o * step(b)``.

    Small batches are memory-bound (every step streams all the weights); large ones become
    compute-bound once ``2 Pa`` FLOPs per request outweigh its KV read.

The queue
    ``c = replicas * max_batch`` servers, Poisson arrivals at ``lambda`` per second, service
    exponential with mean ``S`` (M/M/c). ``S`` is the service time at the mean batch
    occupancy ``b = min(max_batch, lambda S / replicas)``, evaluated at ``max(b, 1)``: a fixed
    point, unique because a replica's throughput ``b / S(b)`` grows with ``b``. Utilisation
    is ``lambda S / c``; the probability of waiting is Erlang C, ``C(c, lambda S)``; the wait
    ``W`` is 0 with probability ``1 - C`` and otherwise exponential with rate
    ``c / S - lambda``, independent of the request's own service. When even full batches
    cannot keep up (``lambda >= c / S(max_batch)``) the point is reported with utilisation
    ``>= 1`` and ``wait_probability = 1``; :func:`sample_latency_s` then models a fluid
    backlog growing from empty over the period.

Times are in seconds, except :class:`LatencyHistogram`, which holds milliseconds; rates are
per second; bandwidths TB/s (1e12 bytes/s); throughputs TFLOP/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from sim.workloads.training import ModelShape

__all__ = [
    "LatencyHistogram",
    "ServicePoint",
    "ServingNetwork",
    "ServingSpec",
    "erlang_c",
    "latency_quantile_s",
    "mean_wait_s",
    "sample_latency_s",
    "service_point",
    "serving_network",
    "wait_quantile_s",
]


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _real(value: float) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _positive_float(name: str, value: float) -> None:
    if not (_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def _non_negative_float(name: str, value: float) -> None:
    if not (_real(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def _fraction(name: str, value: float) -> None:
    if not (_real(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


def _probability(name: str, value: float) -> None:
    if not (_real(value) and 0 <= value <= 1):
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


@dataclass(frozen=True)
class ServingSpec:
    """How a model is served: its replicas' shape and the requests they serve.

    Attributes:
        model: The model served.
        tp: Accelerators per replica (tensor parallel degree).
        max_batch: Requests a replica decodes at once (continuous batching).
        prompt_tokens: Prompt tokens per request.
        output_tokens: Mean output tokens per request.
        mfu: Compute efficiency of prefill and of a compute-bound decode step, in (0, 1].
        bandwidth_efficiency: Share of peak memory bandwidth a decode step achieves, in (0, 1].
        bytes_per_param: Bytes per weight and per KV cache value (2 for bf16).
        kv_heads_ratio: KV heads over attention heads, in (0, 1] (1: no grouped-query
            attention, a conservative upper bound on the KV cache).
    """

    model: ModelShape
    tp: int
    max_batch: int
    prompt_tokens: int
    output_tokens: int
    mfu: float = 0.5
    bandwidth_efficiency: float = 0.7
    bytes_per_param: float = 2.0
    kv_heads_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelShape):
            raise ValueError(f"model must be a ModelShape, got {type(self.model).__name__}")
        for name in ("tp", "max_batch", "prompt_tokens", "output_tokens"):
            _positive_int(name, getattr(self, name))
        _fraction("mfu", self.mfu)
        _fraction("bandwidth_efficiency", self.bandwidth_efficiency)
        _positive_float("bytes_per_param", self.bytes_per_param)
        _fraction("kv_heads_ratio", self.kv_heads_ratio)

    @property
    def weight_bytes(self) -> float:
        """Bytes of all the weights (every expert of a mixture of experts)."""
        return 1e9 * self.model.params_billion * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> float:
        """KV cache bytes per token: ``2 * layers * hidden * bytes_per_param * kv_heads_ratio``."""
        return (
            2.0 * self.model.layers * self.model.hidden * self.bytes_per_param * self.kv_heads_ratio
        )

    def prefill_s(self, tflops: float) -> float:
        """Prefill time of one request (s).

        Args:
            tflops: The accelerator's dense TFLOP/s.
        """
        _positive_float("tflops", tflops)
        flops = 2.0 * self.model.active_params * self.prompt_tokens
        return flops / (self.tp * tflops * 1e12 * self.mfu)

    def decode_step_s(self, batch: float, tflops: float, hbm_tbps: float) -> float:
        """Time of one decode step of a replica with ``batch`` requests in flight (s).

        Args:
            batch: Requests decoded together (may be a fractional mean, > 0).
            tflops: The accelerator's dense TFLOP/s.
            hbm_tbps: The accelerator's memory bandwidth, TB/s.
        """
        _positive_float("batch", batch)
        _positive_float("tflops", tflops)
        _positive_float("hbm_tbps", hbm_tbps)
        kv_tokens = self.prompt_tokens + self.output_tokens / 2.0
        read_bytes = self.weight_bytes + batch * kv_tokens * self.kv_bytes_per_token
        memory_s = read_bytes / self.tp / (hbm_tbps * 1e12 * self.bandwidth_efficiency)
        compute_s = 2.0 * self.model.active_params * batch / (self.tp * tflops * 1e12 * self.mfu)
        return max(memory_s, compute_s)

    def service_s(self, batch: float, tflops: float, hbm_tbps: float) -> float:
        """Service time of one request at batch ``batch``: prefill plus its decode steps (s).

        Args:
            batch: Requests decoded together (may be a fractional mean, > 0).
            tflops: The accelerator's dense TFLOP/s.
            hbm_tbps: The accelerator's memory bandwidth, TB/s.
        """
        step = self.decode_step_s(batch, tflops, hbm_tbps)
        return self.prefill_s(tflops) + self.output_tokens * step


@dataclass(frozen=True)
class ServingNetwork:
    """What a replica's tensor-parallel all-reduces add to a request, from its links.

    Every layer all-reduces its activations twice (after attention and after
    the MLP) over the replica's ``tp`` GPUs, in a ring: ``2 (k-1)/k * S / r``
    of transfer and ``2 (k-1)`` steps of latency for ``S`` bytes on the
    slowest hop's rate ``r`` (NVLink inside a node, the fabric between
    nodes). A decode step moves ``S = batch * hidden * bytes`` per all-reduce,
    a prefill ``S = prompt_tokens * hidden * bytes``.

    Attributes:
        step_fixed_s: Per decode step, the part that does not grow with the
            batch: ``2 L * 2 (k-1)`` step latencies (hop latency plus the
            mean wait in queues and pauses of the hops' ports).
        step_per_request_s: Per decode step and request in the batch: its
            share of the bytes over the slowest hop's rate.
        prefill_s: Per request, the all-reduces of its prefill.
    """

    step_fixed_s: float = 0.0
    step_per_request_s: float = 0.0
    prefill_s: float = 0.0

    def request_s(self, batch: float, output_tokens: int) -> float:
        """Network time of one request at mean batch ``batch`` (s)."""
        return self.prefill_s + output_tokens * (
            self.step_fixed_s + self.step_per_request_s * batch
        )


def serving_network(spec: ServingSpec, rate_gbps: float, step_latency_s: float) -> ServingNetwork:
    """The all-reduce times of one replica, given its slowest hop.

    Args:
        spec: How the model is served (``tp`` ranks per all-reduce).
        rate_gbps: Rate of the replica's slowest all-reduce hop, Gb/s.
        step_latency_s: Latency of one ring step on the slowest hop, s (0
            inside a node; over the fabric, propagation, store-and-forward and
            the mean wait in queues and pauses).
    """
    k = spec.tp
    if k == 1:
        return ServingNetwork()
    _positive_float("rate_gbps", rate_gbps)
    calls = 2.0 * spec.model.layers
    factor = 2.0 * (k - 1) / k
    value_bytes = spec.model.hidden * spec.bytes_per_param
    per_byte_s = factor * 8.0 / (rate_gbps * 1e9)
    latency_s = 2.0 * (k - 1) * step_latency_s
    return ServingNetwork(
        step_fixed_s=calls * latency_s,
        step_per_request_s=calls * value_bytes * per_byte_s,
        prefill_s=calls * (spec.prompt_tokens * value_bytes * per_byte_s + latency_s),
    )


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
    _positive_int("servers", servers)
    _non_negative_float("offered_erlangs", offered_erlangs)
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
    _positive_int("servers", servers)
    _non_negative_float("arrivals_per_s", arrivals_per_s)
    _positive_float("service_s", service_s)
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
    _probability("q", q)
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
    _probability("q", q)
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


@dataclass(frozen=True)
class ServicePoint:
    """A serving fleet's operating point under a given arrival rate.

    Attributes:
        step_s: Decode step time at the mean batch, s.
        service_s: ``S``: mean service time of one request (prefill plus decode), s.
        servers: ``c = replicas * max_batch`` batch slots.
        arrivals_per_s: ``lambda``: Poisson arrivals per second.
        utilisation: ``lambda S / c``; ``>= 1`` when the fleet cannot keep up.
        wait_probability: Erlang C, ``C(c, lambda S)``: probability that a request waits for
            a slot (1.0 when overloaded).
        busy_per_replica: Mean requests in service per replica,
            ``min(max_batch, lambda S / replicas)`` (``max_batch`` when overloaded); the step
            is evaluated at ``max(1, busy_per_replica)``.
        network_s: The part of ``S`` spent in tensor-parallel all-reduces.
        prefill_s: The part of ``S`` every request takes whatever its length:
            its prefill and the prefill's all-reduces.
    """

    step_s: float
    service_s: float
    servers: int
    arrivals_per_s: float
    utilisation: float
    wait_probability: float
    busy_per_replica: float
    network_s: float = 0.0
    prefill_s: float = 0.0

    @property
    def overloaded(self) -> bool:
        """Whether arrivals outrun the fleet even at full batches (utilisation >= 1)."""
        return self.utilisation >= 1.0


def service_point(
    spec: ServingSpec,
    replicas: int,
    arrivals_per_s: float,
    tflops: float,
    hbm_tbps: float,
    network: ServingNetwork | None = None,
) -> ServicePoint:
    """Solve the batch occupancy and queue of ``replicas`` replicas under ``arrivals_per_s``.

    The mean occupancy ``b`` solves ``b = min(max_batch, lambda S(max(b, 1)) / replicas)``.
    A replica's throughput ``b / S(b)`` increases with ``b``, so ``lambda S(b) / replicas - b``
    changes sign at most once on ``[1, max_batch]``: if it is <= 0 at ``b = 1`` the load is
    light (``b = lambda S(1) / replicas``), if it is >= 0 at ``max_batch`` the fleet is
    overloaded, and otherwise Brent's method finds the root to 1e-12 relative.

    Args:
        spec: How the model is served.
        replicas: Number of replicas (each on ``spec.tp`` accelerators).
        arrivals_per_s: Poisson request arrivals per second (>= 0).
        tflops: The accelerator's dense TFLOP/s.
        hbm_tbps: The accelerator's memory bandwidth, TB/s.
        network: The replicas' all-reduce times, part of every request's
            service (default: none).

    Returns:
        The operating point; never raises for overload (utilisation >= 1 reports it).
    """
    if not isinstance(spec, ServingSpec):
        raise ValueError(f"spec must be a ServingSpec, got {type(spec).__name__}")
    _positive_int("replicas", replicas)
    _non_negative_float("arrivals_per_s", arrivals_per_s)
    _positive_float("tflops", tflops)
    _positive_float("hbm_tbps", hbm_tbps)
    per_replica = arrivals_per_s / replicas
    top = float(spec.max_batch)
    network = network or ServingNetwork()

    def service_s(batch: float) -> float:
        return spec.service_s(batch, tflops, hbm_tbps) + network.request_s(
            batch, spec.output_tokens
        )

    def excess(batch: float) -> float:
        return per_replica * service_s(batch) - batch

    overloaded = False
    if excess(1.0) <= 0.0:
        batch = 1.0
        busy = per_replica * service_s(1.0)
    elif excess(top) >= 0.0:
        batch = busy = top
        overloaded = True
    else:
        batch = busy = float(optimize.brentq(excess, 1.0, top, xtol=1e-12, rtol=1e-12))
    service = service_s(batch)
    servers = replicas * spec.max_batch
    offered = arrivals_per_s * service
    utilisation = offered / servers
    if overloaded:  # whatever the rounding of lambda S / c
        utilisation = max(utilisation, 1.0)
    return ServicePoint(
        step_s=spec.decode_step_s(batch, tflops, hbm_tbps),
        service_s=service,
        servers=servers,
        arrivals_per_s=float(arrivals_per_s),
        utilisation=utilisation,
        wait_probability=1.0 if overloaded else erlang_c(servers, offered),
        busy_per_replica=busy,
        network_s=network.request_s(batch, spec.output_tokens),
        prefill_s=spec.prefill_s(tflops) + network.prefill_s,
    )


def _stratified_tails(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` stratified draws of ``1 - U`` in (0, 1]: one per stratum ``[i/n, (i+1)/n)``, shuffled.

    Computed as ``((n - 1 - i) + (1 - U_i)) / n`` so the tail never rounds to 0.
    """
    tails = (np.arange(n - 1, -1, -1, dtype=np.float64) + (1.0 - rng.random(n))) / n
    return rng.permutation(tails)


def sample_latency_s(
    rng: np.random.Generator, n: int, point: ServicePoint, period_s: float
) -> np.ndarray:
    """Draw ``n`` request latencies (wait plus service, s) at an operating point.

    Wait and service are drawn by inverse CDF from two independent sets of stratified
    uniforms (one per stratum ``[i/n, (i+1)/n)``, shuffled so that the pairing is random),
    which removes most sampling noise from the quantiles. The service has mean ``S``: the
    point's prefill, which every request takes, plus an exponential decode (output lengths
    are exponential). With no prefill (``prefill_s = 0``) it is exponential, as in M/M/c;
    the wait is M/M/c's either way, a prefill being a small part of ``S``.

    Stable queue (utilisation < 1): the wait is 0 with probability ``1 - C`` and
    Exp(``c / S - lambda``) otherwise.

    Overloaded (utilisation >= 1): no steady state exists. The backlog is modelled as a
    fluid growing from empty at ``lambda - c / S`` requests per second over the period, drained
    at ``c / S``; a request arriving at ``t``, uniform in ``[0, period_s)``, waits
    ``(lambda - c / S) t / (c / S)`` and is then served.

    Args:
        rng: The caller's random stream (never global state).
        n: Number of latencies (>= 0).
        point: The operating point (from :func:`service_point`).
        period_s: Length of the period the samples stand for, s (used when overloaded).

    Returns:
        ``n`` latencies in seconds, float64, all finite and >= 0.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    _non_negative_float("period_s", period_s)
    n = int(n)
    wait_tail = _stratified_tails(rng, n)
    # The prefill is the same for every request; the decode, as long as the
    # request's output, is exponential, so the mean service stays S.
    decode_s = point.service_s - point.prefill_s
    service = point.prefill_s - decode_s * np.log(_stratified_tails(rng, n))
    drain_per_s = point.servers / point.service_s
    excess_per_s = point.arrivals_per_s - drain_per_s
    if point.utilisation >= 1.0:
        arrival_s = (1.0 - wait_tail) * period_s
        wait = max(excess_per_s, 0.0) * arrival_s / drain_per_s
    else:
        c = point.wait_probability
        waits = wait_tail < c
        wait = np.zeros(n)
        wait[waits] = np.log(c / wait_tail[waits]) / (-excess_per_s)
    return wait + service


def log_interpolate(low: float, high: float, fraction: float) -> float:
    """The point ``fraction`` of the way from ``low`` to ``high`` on a log scale (linear if
    ``low`` is not positive or the bin is empty): where a quantile falls inside a log bin."""
    if low <= 0.0 or high <= low:
        return low + (high - low) * fraction
    log_low = math.log(low)
    return math.exp(log_low + (math.log(high) - log_low) * fraction)


class LatencyHistogram:
    """A weighted latency distribution on fixed log-spaced bins, mergeable across epochs.

    Bins are 1,000 per decade from 0.001 ms to 1e7 ms (edges ``10 ** (k / 1000 - 3)`` ms,
    each 0.23 % wider than its lower edge), so every histogram has the same bins and merging
    is an addition. Values outside the range go to the end bins; the exact minimum and maximum
    are tracked and bound every answer. Quantiles interpolate log-linearly inside a bin, so
    their relative error is under one bin width (0.23 %).

    Each :meth:`add` spreads a weight (how many real requests a sample stands for) evenly over
    its values, so samples of different sizes from epochs of different lengths combine
    correctly.
    """

    BINS_PER_DECADE = 1000
    LOW_MS = 1e-3
    HIGH_MS = 1e7
    _DECADES = 10
    N_BINS = BINS_PER_DECADE * _DECADES
    EDGES_MS = LOW_MS * 10.0 ** (np.arange(N_BINS + 1) / BINS_PER_DECADE)
    """Bin edges, ms (``N_BINS + 1`` values)."""

    def __init__(self) -> None:
        self._weights = np.zeros(self.N_BINS)
        self._total = 0.0
        self._min = math.inf
        self._max = -math.inf

    @property
    def total(self) -> float:
        """Total weight added (number of requests represented)."""
        return self._total

    @property
    def min_ms(self) -> float | None:
        """Smallest value added (ms); None when empty."""
        return self._min if self._total > 0 else None

    @property
    def max_ms(self) -> float | None:
        """Largest value added (ms); None when empty."""
        return self._max if self._total > 0 else None

    @property
    def bin_weights(self) -> np.ndarray:
        """Weight in each bin (a copy), indexed like the intervals of :attr:`EDGES_MS`."""
        return self._weights.copy()

    def add(self, values_ms: np.ndarray, weight: float | None = None) -> None:
        """Add latencies standing for ``weight`` requests in all.

        Args:
            values_ms: Latencies, ms (finite, >= 0).
            weight: Requests the values stand for, spread evenly over them (default: one
                request per value). Must be 0 if ``values_ms`` is empty.

        Raises:
            ValueError: If a value is negative or not finite, the weight is negative or not
                finite, or a positive weight comes with no values.
        """
        values = np.asarray(values_ms, dtype=np.float64).ravel()
        if weight is None:
            weight = float(values.size)
        _non_negative_float("weight", weight)
        if values.size == 0:
            if weight > 0:
                raise ValueError(f"weight {weight!r} given with no values to spread it over")
            return
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("values_ms must be finite and >= 0")
        if weight == 0:
            return
        with np.errstate(divide="ignore"):
            position = (np.log10(values) + 3.0) * self.BINS_PER_DECADE
        index = np.clip(np.floor(position), 0, self.N_BINS - 1).astype(np.int64)
        self._weights += np.bincount(
            index, weights=np.full(values.size, weight / values.size), minlength=self.N_BINS
        )
        self._total += float(weight)
        self._min = min(self._min, float(values.min()))
        self._max = max(self._max, float(values.max()))

    def merge(self, other: LatencyHistogram) -> None:
        """Add every weight of ``other`` to this histogram (``other`` is unchanged)."""
        if not isinstance(other, LatencyHistogram):
            raise ValueError(f"can only merge a LatencyHistogram, got {type(other).__name__}")
        if other._total == 0:
            return
        self._weights += other._weights
        self._total += other._total
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def __iadd__(self, other: LatencyHistogram) -> LatencyHistogram:
        self.merge(other)
        return self

    def _bin_bounds(self, index: int) -> tuple[float, float]:
        """The part of bin ``index`` that lies within [min, max]."""
        low = max(float(self.EDGES_MS[index]), self._min) if index > 0 else self._min
        high = (
            min(float(self.EDGES_MS[index + 1]), self._max)
            if index < self.N_BINS - 1
            else self._max
        )
        return low, max(low, high)

    def quantile(self, q: float) -> float | None:
        """Quantile ``q`` of the weighted latencies (ms); None when empty.

        Args:
            q: In [0, 1]; 0 gives the minimum, 1 the maximum.
        """
        _probability("q", q)
        if self._total <= 0:
            return None
        if q == 0.0:
            return self._min
        if q == 1.0:
            return self._max
        cumulative = np.cumsum(self._weights)
        target = q * cumulative[-1]
        index = min(int(np.searchsorted(cumulative, target, side="left")), self.N_BINS - 1)
        before = float(cumulative[index - 1]) if index > 0 else 0.0
        inside = float(self._weights[index])
        fraction = min(1.0, max(0.0, (target - before) / inside)) if inside > 0 else 1.0
        low, high = self._bin_bounds(index)
        return min(self._max, max(self._min, log_interpolate(low, high, fraction)))

    def fraction_at_most(self, x_ms: float) -> float:
        """Share of the weight at or below ``x_ms`` (log-linear inside a bin); nan when empty.

        Args:
            x_ms: A latency, ms.
        """
        if not (_real(x_ms) and not math.isnan(x_ms)):
            raise ValueError(f"x_ms must be a number, got {x_ms!r}")
        if self._total <= 0:
            return math.nan
        if x_ms >= self._max:
            return 1.0
        if x_ms < self._min:
            return 0.0
        if x_ms > 0:
            position = math.floor((math.log10(x_ms) + 3.0) * self.BINS_PER_DECADE)
            index = min(max(position, 0), self.N_BINS - 1)
        else:
            index = 0
        below = float(self._weights[:index].sum())
        low, high = self._bin_bounds(index)
        if high <= low:
            share = 1.0
        elif low > 0:
            share = (math.log(x_ms) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            share = (x_ms - low) / (high - low)
        share = min(1.0, max(0.0, share))
        return min(1.0, (below + share * float(self._weights[index])) / float(self._weights.sum()))


LatencyHistogram.EDGES_MS.setflags(write=False)
