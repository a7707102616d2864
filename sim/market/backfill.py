"""EASY backfilling's shadow: when the blocked head of a queue could start at the latest.

The head of a queue that cannot start gets a reservation in time, its *shadow*:
the earliest moment enough running jobs will have ended, by their expected ends,
to give it its GPUs, where that is, and how many GPUs will be left over then.
Later jobs may start now only if they end before the shadow, or fit in the GPUs
left over (see :meth:`sim.market.marketplace.Marketplace._schedule_pool`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from sim.market.inventory import Inventory
from sim.workloads.jobs import Job

Shadow = tuple[int | None, float, int]
"""``(cluster, shadow_hours, extra_gpus)``."""


def expected_end(job: Job, now: float) -> float:
    """When a running job is expected to end: its finish at its speed now, or its notice."""
    end = job.finish_time(now)
    return min(end, job.notice_until) if job.notice_until is not None else end


def shadow(
    head: Job,
    pool: int,
    inventory: Inventory,
    running: Iterable[Job],
    masks: list[np.ndarray | None],
    now: float,
) -> Shadow:
    """When the blocked ``head`` could start at the latest, where, and the GPUs to spare then.

    Args:
        head: The blocked job.
        pool: Its pool (shared, or a reservation's).
        inventory: The provider's nodes.
        running: The running jobs.
        masks: Nodes the head must keep off, once per node type it may take
            (:func:`sim.market.node_types.keep_offs`; ``[None]``: none). GPUs there
            do not count, nor jobs that hold any.
        now: The time, in hours.

    Returns:
        ``(cluster, shadow_hours, extra_gpus)``; ``(None, now, 0)`` if no running
        job's end frees enough (then nothing may backfill).
    """
    jobs = list(running)
    best: Shadow = (None, now, 0)
    best_hours = math.inf
    for excluded in masks:
        for index in head.clusters:
            cluster = inventory.clusters[index]
            if excluded is None:
                available = inventory.free_gpus(cluster, pool)
            else:
                available = inventory.shared_free_gpus(cluster, excluded)
            ends = sorted(
                (expected_end(j, now), j.job_id, j.gpus)
                for j in jobs
                if j.cluster == index
                and j.pool == pool
                and (excluded is None or not excluded[j.nodes].any())
            )
            for end_hours, _, gpus in ends:
                available += gpus
                if available >= head.gpus:
                    if end_hours < best_hours:
                        best_hours = end_hours
                        best = (index, end_hours, available - head.gpus)
                    break
    return best
