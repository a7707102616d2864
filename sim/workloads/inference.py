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
    ``c / S - lambda``, independent of the request's own service (the queue's mathematics
    is in :mod:`sim.workloads.mmc_queue`). When even full batches
    cannot keep up (``lambda >= c / S(max_batch)``) the point is reported with utilisation
    ``>= 1`` and ``wait_probability = 1``; :func:`sample_latency_s` then models a fluid
    backlog growing from empty over the period.

Times are in seconds (the latency histograms of :mod:`sim.workloads.latency_histogram`
hold milliseconds); rates are per second; bandwidths TB/s (1e12 bytes/s); throughputs
TFLOP/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from sim.workloads.arguments import (
    check_fraction,
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
)
from sim.workloads.mmc_queue import erlang_c
from sim.workloads.training import ModelShape

__all__ = [
    "ServicePoint",
    "ServingNetwork",
    "ServingSpec",
    "sample_latency_s",
    "service_point",
    "serving_network",
]


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
            check_positive_int(name, getattr(self, name))
        check_fraction("mfu", self.mfu)
        check_fraction("bandwidth_efficiency", self.bandwidth_efficiency)
        check_positive_float("bytes_per_param", self.bytes_per_param)
        check_fraction("kv_heads_ratio", self.kv_heads_ratio)

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
        check_positive_float("tflops", tflops)
        flops = 2.0 * self.model.active_params * self.prompt_tokens
        return flops / (self.tp * tflops * 1e12 * self.mfu)

    def decode_step_s(self, batch: float, tflops: float, hbm_tbps: float) -> float:
        """Time of one decode step of a replica with ``batch`` requests in flight (s).

        Args:
            batch: Requests decoded together (may be a fractional mean, > 0).
            tflops: The accelerator's dense TFLOP/s.
            hbm_tbps: The accelerator's memory bandwidth, TB/s.
        """
        check_positive_float("batch", batch)
        check_positive_float("tflops", tflops)
        check_positive_float("hbm_tbps", hbm_tbps)
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
    check_positive_float("rate_gbps", rate_gbps)
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
    check_positive_int("replicas", replicas)
    check_non_negative_float("arrivals_per_s", arrivals_per_s)
    check_positive_float("tflops", tflops)
    check_positive_float("hbm_tbps", hbm_tbps)
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
    check_non_negative_float("period_s", period_s)
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
