"""What a trace holds, as a planner looks at it first (``surplus trace inspect``).

Pure functions of a :class:`TraceJobs`: how many jobs, over what span, arriving
at what rate by hour of day, how many GPUs and how long, how many GPU-hours per
GPU model and per job type, and which rows were skipped and why. Percentiles
interpolate linearly between jobs (numpy's default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.traces.formats import JOB_TYPE_COLUMNS
from sim.traces.jobs import TraceJobs

__all__ = ["arrivals_by_hour_of_day", "trace_statistics"]

DAY_S = 86_400.0
HOUR_S = 3_600.0


def arrivals_by_hour_of_day(jobs: TraceJobs) -> list[float | None]:
    """Jobs submitted per hour, for each hour of the day (0-23) of the trace's clock.

    Each entry is the jobs submitted in that hour of the day divided by how many
    clock hours of that hour of the day the trace covers, counting whole clock hours
    from the hour of its first submission to the hour of its last. None for an hour
    of the day the trace does not cover (a trace shorter than a day).
    """
    if len(jobs) == 0:
        return [None] * 24
    clock = jobs.origin_s + jobs.submit_s
    hour_index = np.floor(clock / HOUR_S).astype(np.int64)  # hours since the clock's 0
    counts = np.bincount(hour_index % 24, minlength=24)
    covered = np.arange(hour_index.min(), hour_index.max() + 1) % 24
    slots = np.bincount(covered, minlength=24)
    return [float(counts[h] / slots[h]) if slots[h] else None for h in range(24)]


def _summary(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "median": None, "p99": None}
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "p99": float(np.percentile(values, 99)),
    }


def _sums_by(keys: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """``values`` summed per key, keys sorted (an empty key as ``(none)``)."""
    totals: dict[str, float] = {}
    for key, value in zip(keys.tolist(), values.tolist(), strict=True):
        label = str(key) or "(none)"
        totals[label] = totals.get(label, 0.0) + value
    return {key: totals[key] for key in sorted(totals)}


def trace_statistics(jobs: TraceJobs) -> dict[str, Any]:
    """The figures ``surplus trace inspect`` prints, as one JSON-ready mapping.

    Keys: ``source``, ``format``, ``jobs``, ``span_hours`` (first to last
    submission), ``end_hours`` (first submission to the last job's end),
    ``arrivals_per_hour_by_hour_of_day`` (24 entries, see
    :func:`arrivals_by_hour_of_day`), ``gpus_mean``/``_median``/``_p99``,
    ``duration_hours_mean``/``_median``/``_p99``, ``gpu_hours`` (the total),
    ``gpu_hours_by_model``, ``job_type_column`` and ``gpu_hours_by_job_type``
    and ``jobs_by_job_type`` (split by that column), ``skipped`` (reason -> rows)
    and ``skipped_total``.
    """
    gpu_hours = jobs.gpus * jobs.duration_s / HOUR_S
    gpus = _summary(jobs.gpus.astype(np.float64))
    hours = _summary(jobs.duration_s / HOUR_S)
    type_column = JOB_TYPE_COLUMNS.get(jobs.format)
    types = jobs.columns.get(type_column) if type_column else None
    empty = len(jobs) == 0
    return {
        "source": jobs.source,
        "format": jobs.format,
        "jobs": len(jobs),
        "span_hours": None if empty else float(jobs.submit_s.max() / HOUR_S),
        "end_hours": None if empty else float((jobs.submit_s + jobs.duration_s).max() / HOUR_S),
        "arrivals_per_hour_by_hour_of_day": arrivals_by_hour_of_day(jobs),
        "gpus_mean": gpus["mean"],
        "gpus_median": gpus["median"],
        "gpus_p99": gpus["p99"],
        "duration_hours_mean": hours["mean"],
        "duration_hours_median": hours["median"],
        "duration_hours_p99": hours["p99"],
        "gpu_hours": float(gpu_hours.sum()),
        "gpu_hours_by_model": _sums_by(jobs.gpu_model, gpu_hours),
        "job_type_column": type_column if types is not None else None,
        "gpu_hours_by_job_type": {} if types is None else _sums_by(types, gpu_hours),
        "jobs_by_job_type": (
            {}
            if types is None
            else {k: int(v) for k, v in _sums_by(types, np.ones(len(jobs))).items()}
        ),
        "skipped": dict(jobs.skipped),
        "skipped_total": int(sum(jobs.skipped.values())),
    }
