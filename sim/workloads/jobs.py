"""A job: a request for GPUs that runs for some work and leaves.

Work is measured in *ideal hours*: the run time the job would need if the
fabric never slowed it. While running, a job progresses at ``rate`` ideal
hours per hour (``1 / slowdown``, set by the fabric each epoch). Checkpoints
are taken every ``checkpoint_hours`` of work (every N iterations), so a
preemption loses exactly the work since the last multiple of that interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CONTRACT_CLASSES = ("internal", "reserved", "on_demand", "spot")
"""Who holds a GPU, in order of priority."""

OUTCOMES = ("done", "running", "queued", "rejected", "preempted", "expired")
"""How a job ended by the horizon. ``preempted``: preempted and then gave up
waiting; ``expired``: its reserved term ended first."""


@dataclass(eq=False)
class Job:
    """One job and its lifecycle (queued, running, done, preempted, rejected).

    ``traffic`` is what the job sends each iteration (a
    :class:`sim.workloads.training.TrainingSpec`, or None if not modelled);
    ``network_log`` holds the fabric's verdict on it, piece by piece: (hours,
    :class:`sim.fabric.model.JobNetwork`).
    """

    job_id: int
    tenant: str
    contract: str
    gpus: int
    work_hours: float
    submit_hours: float
    clusters: tuple[int, ...]
    pool: int = -1
    checkpoint_hours: float | None = None
    max_wait_hours: float | None = None
    spot_notice_hours: float = 0.0
    checkpoint_write_hours: float = 0.0
    restart_overhead_hours: float = 0.0
    speeds: dict[str, float] | None = field(default=None, repr=False)
    """Per accelerator type it may run on, in the order it takes them, its speed there
    relative to the type its work is measured on (None: any type, at speed 1)."""

    state: str = "queued"
    queued_since: float = 0.0
    first_start_hours: float | None = None
    end_hours: float | None = None
    cluster: int | None = None
    nodes: np.ndarray | None = None
    counts: np.ndarray | None = None
    slots: np.ndarray | None = None
    """While running, which GPUs of its nodes it holds (see :meth:`Inventory.allocate`)."""
    progress_hours: float = 0.0
    rate: float = 1.0
    slowdown: float = 1.0
    """While running, what its fabric does to its iteration time (1: nothing)."""
    rate_since: float = 0.0
    run_hours: float = 0.0
    run_since: float = 0.0
    done_work_hours: float = 0.0
    lost_hours: float = 0.0
    preemptions: int = 0
    failures: int = 0
    """Times a failure stopped it (see :mod:`sim.market.failures`)."""
    resume_hours: float = 0.0
    """After a restart, when it starts working again (it holds its GPUs until then)."""
    restarted: bool = False
    """Whether its next start is a restart (it pays ``restart_overhead_hours``)."""
    notice_until: float | None = None
    notice_serial: int = field(default=0, repr=False)
    traffic: Any = field(default=None, repr=False)
    serving: bool = False
    network: Any = field(default=None, repr=False)
    network_since: float = field(default=0.0, repr=False)
    network_log: list[tuple[float, Any]] = field(default_factory=list, repr=False)
    network_starts: list[float] = field(default_factory=list, repr=False)
    """When each piece of ``network_log`` began (hours)."""
    run_spans: list[tuple[float, float]] = field(default_factory=list, repr=False)
    """Each stretch it held its GPUs: (start, end) hours, up to the horizon."""
    span_since: float = field(default=0.0, repr=False)
    preempted_at: list[float] = field(default_factory=list, repr=False)
    """When each of its preemptions took its GPUs (hours)."""
    version: int = field(default=0, repr=False)

    def log_network(self, now: float, state: Any) -> None:
        """Close the current fabric piece at ``now`` and start ``state`` (None: none).

        Args:
            now: The time of the change.
            state: The job's :class:`sim.fabric.model.JobNetwork` from now on.
        """
        if self.network is not None and now > self.network_since:
            self.network_log.append((now - self.network_since, self.network))
            self.network_starts.append(self.network_since)
        self.network, self.network_since = state, now

    def progress_at(self, now: float) -> float:
        """Work done (ideal hours) at time ``now`` while running."""
        if self.state != "running":
            return self.progress_hours
        working = now - max(self.rate_since, self.resume_hours)
        return min(self.work_hours, self.progress_hours + self.rate * max(0.0, working))

    def fold(self, now: float) -> None:
        """Bring progress and run time up to ``now`` (before a rate change or stop)."""
        if self.state != "running":
            return
        progress = self.progress_at(now)
        self.done_work_hours += progress - self.progress_hours
        self.progress_hours = progress
        self.rate_since = now
        self.run_hours += now - self.run_since
        self.run_since = now

    def run_time_at(self, now: float) -> float:
        """Hours run so far, up to ``now``."""
        if self.state != "running":
            return self.run_hours
        return self.run_hours + (now - self.run_since)

    def finish_time(self, now: float) -> float:
        """When the job will finish at its current rate."""
        return self.finish_time_at(now, self.rate, self.resume_hours)

    def finish_time_at(self, now: float, rate: float, resume_hours: float) -> float:
        """When the job will finish working at ``rate`` from ``resume_hours`` (or ``now``) on:
        for a running job its :meth:`finish_time`, for a queued one its projected finish if it
        started now."""
        remaining = self.work_hours - self.progress_at(now)
        return max(now, resume_hours) + max(0.0, remaining) / rate

    @property
    def checkpoint_speed(self) -> float:
        """Share of its working time a job computes: the rest goes to writing checkpoints."""
        if self.checkpoint_hours is None or self.checkpoint_write_hours == 0:
            return 1.0
        return self.checkpoint_hours / (self.checkpoint_hours + self.checkpoint_write_hours)

    def checkpointed_hours(self) -> float:
        """Work safe in the last checkpoint (an inference replica has none to lose)."""
        if self.serving:
            return self.progress_hours
        if self.checkpoint_hours is None:
            return 0.0
        saved = math.floor(self.progress_hours / self.checkpoint_hours + 1e-9)
        return min(self.progress_hours, saved * self.checkpoint_hours)

    @property
    def wait_hours(self) -> float | None:
        """Time from submission to first start (None if it never started)."""
        if self.first_start_hours is None:
            return None
        return self.first_start_hours - self.submit_hours
