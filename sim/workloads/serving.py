"""A served model over a run: its requests, their latency, the SLO and usable GPU-hours.

Requests are far too many to be events. The run looks at each served model
every ``step`` (a quarter hour by default): over the step just ended it knows
the replicas that were up at its start, each with the all-reduce times its
fabric gave it, and the GPU-hours its replicas held. The mean arrival rate
over the step (Poisson, with the day's cosine shape integrated exactly)
meets those replicas in the M/M/c queue of :mod:`sim.workloads.inference`;
a sample of request latencies (wait, service with its all-reduces, and the
client's front-end round trip) goes into the model's latency histogram,
weighted by the requests of the step. The share of the sample within the SLO
is the step's attainment; usable GPU-hours are the step's GPU-hours times
that share. With no replica up, the step's requests go unanswered and count
against the SLO.

Replicas whose GPUs sit in one node all-reduce over NVLink; replicas across
nodes get their times from the fabric's epoch solution, or, on an ideal
fabric, from the NIC rate with no latency.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.workloads.inference import (
    ServingNetwork,
    sample_latency_s,
    service_point,
    serving_network,
)
from sim.workloads.latency_histogram import LatencyHistogram

__all__ = ["ServingLog", "mean_diurnal_factor", "merged_histogram", "serving_figures"]

SAMPLES_PER_STEP = 1024
"""Request latencies drawn per served model and step."""


def mean_diurnal_factor(start_hours: float, end_hours: float, amplitude: float, peak_hour: float):
    """Mean of ``1 + amplitude * cos(2π (t − peak_hour) / 24)`` over ``[start, end]`` hours."""
    if end_hours <= start_hours:
        return 1.0 + amplitude * math.cos(2 * math.pi * (start_hours - peak_hour) / 24.0)
    w = 2 * math.pi / 24.0
    integral = (math.sin(w * (end_hours - peak_hour)) - math.sin(w * (start_hours - peak_hour))) / w
    return 1.0 + amplitude * integral / (end_hours - start_hours)


class ServingLog:
    """One served model's requests, latency histogram and SLO attainment over a run.

    Args:
        serving: The scenario's ``serving`` block (:class:`sim.scenario.workloads.Serving`).
        accelerator: The catalog entry of the replicas' accelerator.
        gpus_per_node: GPUs per node of the replicas' cluster.
        nvlink_gbps: NVLink rate per GPU, Gb/s.
        rng: The model's own random stream.
    """

    def __init__(
        self,
        serving: Any,
        accelerator: Any,
        gpus_per_node: int,
        nvlink_gbps: float,
        rng: np.random.Generator,
    ):
        self.serving = serving
        self.spec = serving.spec()
        self.tflops = accelerator.tflops_bf16_dense
        self.hbm_tbps = accelerator.hbm_tbps
        self.rng = rng
        inside_node = self.spec.tp <= gpus_per_node
        self.default_network = serving_network(
            self.spec, nvlink_gbps if inside_node else accelerator.nic_gbps, 0.0
        )
        self.histogram = LatencyHistogram()
        self.requests = 0.0
        self.within_slo = 0.0
        self.unanswered = 0.0
        self.gpu_hours = 0.0
        self.usable_gpu_hours = 0.0

    def arrivals_per_s(self, start_hours: float, end_hours: float) -> float:
        """Mean request rate over ``[start, end]`` hours."""
        requests = self.serving.requests
        factor = mean_diurnal_factor(start_hours, end_hours, requests.amplitude, requests.peak_hour)
        return requests.rate_per_second * factor

    def record(
        self,
        start_hours: float,
        end_hours: float,
        networks: list[ServingNetwork | None],
        gpu_hours: float,
    ) -> None:
        """Account for the requests of ``[start, end]``.

        Args:
            start_hours: Start of the step.
            end_hours: End of the step.
            networks: One entry per replica up at the start: its all-reduce
                times from the fabric, or None for the default (NVLink, or
                the NIC on an ideal fabric).
            gpu_hours: GPU-hours the replicas held over the step.
        """
        hours = end_hours - start_hours
        if hours <= 0:
            return
        rate = self.arrivals_per_s(start_hours, end_hours)
        requests = rate * hours * 3600.0
        self.requests += requests
        self.gpu_hours += gpu_hours
        if not networks:
            self.unanswered += requests
            return
        known = [n if n is not None else self.default_network for n in networks]
        network = ServingNetwork(
            step_fixed_s=float(np.mean([n.step_fixed_s for n in known])),
            step_per_request_s=float(np.mean([n.step_per_request_s for n in known])),
            prefill_s=float(np.mean([n.prefill_s for n in known])),
        )
        point = service_point(
            self.spec, len(known), rate, self.tflops, self.hbm_tbps, network=network
        )
        latency_s = sample_latency_s(self.rng, SAMPLES_PER_STEP, point, hours * 3600.0)
        latency_s = latency_s + self.serving.client_rtt * 3600.0
        if requests > 0:
            self.histogram.add(latency_s * 1e3, weight=requests)
        within = float(np.mean(latency_s <= self.serving.slo * 3600.0))
        self.within_slo += within * requests
        self.usable_gpu_hours += within * gpu_hours


def merged_histogram(logs: list[ServingLog]) -> LatencyHistogram:
    """One latency histogram over the requests of several served models."""
    histogram = LatencyHistogram()
    for log in logs:
        histogram.merge(log.histogram)
    return histogram


def serving_figures(logs: list[ServingLog]) -> dict[str, Any]:
    """Request latency quantiles and SLO attainment over served models, for ``summary.json``.

    The figures are null (and no requests) when nothing is served.
    """
    histogram = merged_histogram(logs)
    requests = sum((log.requests for log in logs), 0.0)
    return {
        "inference_latency_ms_p50": histogram.quantile(0.5),
        "inference_latency_ms_p99": histogram.quantile(0.99),
        "inference_latency_ms_p999": histogram.quantile(0.999),
        "inference_requests": requests,
        "inference_slo_attainment": sum(log.within_slo for log in logs) / requests
        if requests
        else None,
    }
