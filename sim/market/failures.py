"""Failures: how often a GPU's node fails, from what cause, and what the failure takes down.

Every GPU fails at a constant rate (a Poisson process), split over causes. A
failure hits one GPU slot of one node and, by the cause's scope, does one of:

- ``node``: a hardware fault (the GPU, its memory, the NIC, a cable, the host):
  every job on the node stops and restarts from its last checkpoint, and the
  node is out of service until it is repaired. A spare node, if the cluster
  keeps any, takes its place at once; the repaired node becomes a spare.
- ``job``: a software fault (a bug, an NCCL watchdog timeout): the job on that
  GPU stops and restarts from its last checkpoint; the node stays up.
- ``planned``: maintenance that interrupts the job on that GPU after it has
  saved a checkpoint: it loses no work, only its restart.

The default rates are Meta's record of pre-training Llama 3 405B on 16,384 H100
GPUs over 54 days ("The Llama 3 Herd of Models", 2024, Table 5): 466 job
interruptions, 47 planned and 419 unexpected, by root cause below. Dividing
each count by the 16,384 × 54 × 24 GPU-hours observed gives a rate per GPU-hour
(unexpected: one interruption every 3.1 hours for the whole job). The paper's
minor causes (SSD, power supply, server chassis, IO expansion board, CPU,
system memory, dependencies) are pooled as ``other_hardware``: the 16 the
listed causes leave of the 419.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCOPES = ("node", "job", "planned")
"""What a failure takes down: the node, the job on the GPU, or the job after a checkpoint."""


@dataclass(frozen=True)
class FailureCause:
    """One root cause of interruptions and how many Meta's record counts."""

    name: str
    interruptions: int
    scope: str


LLAMA3_GPU_HOURS = 16_384 * 54 * 24
"""GPU-hours over which Meta counted the Llama 3 interruptions."""

LLAMA3_CAUSES = (
    FailureCause("faulty_gpu", 148, "node"),
    FailureCause("gpu_hbm3_memory", 72, "node"),
    FailureCause("software_bug", 54, "job"),
    FailureCause("network_switch_or_cable", 35, "node"),
    FailureCause("host_maintenance", 32, "node"),
    FailureCause("gpu_sram_memory", 19, "node"),
    FailureCause("gpu_system_processor", 17, "node"),
    FailureCause("nic", 7, "node"),
    FailureCause("nccl_watchdog_timeout", 7, "job"),
    FailureCause("silent_data_corruption", 6, "node"),
    FailureCause("gpu_thermal_interface_or_sensor", 6, "node"),
    FailureCause("other_hardware", 16, "node"),
    FailureCause("planned_maintenance", 47, "planned"),
)
"""Meta's Llama 3 interruptions by root cause (419 unexpected, 47 planned)."""


class FailureModel:
    """Failure rates per GPU-hour by cause, and draws of the next failure in a cluster.

    Args:
        causes: The causes and their counts over ``gpu_hours``.
        gpu_hours: The exposure the counts were observed over.
        rate_scale: Multiplies every rate (2.0: twice as many failures).
        repair_hours: How long a node is out of service after a ``node`` failure.
    """

    def __init__(
        self,
        causes: tuple[FailureCause, ...] = LLAMA3_CAUSES,
        gpu_hours: float = LLAMA3_GPU_HOURS,
        rate_scale: float = 1.0,
        repair_hours: float = 0.0,
    ):
        if not causes:
            raise ValueError("a failure model needs at least one cause")
        for cause in causes:
            if cause.scope not in SCOPES:
                raise ValueError(f"cause {cause.name!r}: scope {cause.scope!r} not in {SCOPES}")
            if cause.interruptions < 0:
                raise ValueError(f"cause {cause.name!r}: negative count")
        if not (gpu_hours > 0 and rate_scale >= 0 and repair_hours >= 0):
            raise ValueError("gpu_hours must be > 0; rate_scale and repair_hours >= 0")
        self.causes = causes
        self.rate_per_gpu_hour = (
            np.array([c.interruptions for c in causes], dtype=float) * rate_scale / gpu_hours
        )
        self.repair_hours = float(repair_hours)
        total = self.rate_per_gpu_hour.sum()
        self.total_per_gpu_hour = float(total)
        self._cumulative = np.cumsum(self.rate_per_gpu_hour) / total if total > 0 else None

    def mtbf_hours(self, gpus: int, scopes: tuple[str, ...] = SCOPES) -> float:
        """Mean time between failures of ``scopes`` among ``gpus`` GPUs."""
        rate = sum(
            r for r, c in zip(self.rate_per_gpu_hour, self.causes, strict=True) if c.scope in scopes
        )
        return 1.0 / (rate * gpus) if rate > 0 else float("inf")

    def next_gap_hours(self, gpus: int, rng: np.random.Generator) -> float:
        """Hours to the next failure among ``gpus`` GPUs (infinite if none ever fails)."""
        rate = self.total_per_gpu_hour * gpus
        return float(rng.exponential(1.0 / rate)) if rate > 0 else float("inf")

    def draw(
        self, nodes: int, gpus_per_node: int, rng: np.random.Generator
    ) -> tuple[int, int, int]:
        """Where the next failure strikes: ``(node, slot, cause index)``, uniform over GPUs."""
        gpu = int(rng.integers(nodes * gpus_per_node))
        cause = int(np.searchsorted(self._cumulative, rng.random(), side="right"))
        return gpu // gpus_per_node, gpu % gpus_per_node, min(cause, len(self.causes) - 1)
