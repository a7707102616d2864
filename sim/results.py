"""A run's results and files: the tables a run produces and the run directory they go to.

:class:`RunResult` holds everything a run produces; the ``*_frame`` functions
turn the marketplace's jobs and logs into tables; :func:`write_run` writes them
as a run directory, whole (see :mod:`sim.outputs` for how a directory is put in
place).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.fabric.model import EpochSolution
from sim.scenario.loader import dump_scenario
from sim.scenario.models import Scenario
from sim.workloads.jobs import Job

JOB_COLUMNS = (
    "job_id",
    "tenant",
    "contract",
    "cluster",
    "gpus",
    "submit_hours",
    "start_hours",
    "end_hours",
    "wait_hours",
    "work_hours",
    "done_work_hours",
    "run_hours",
    "lost_gpu_hours",
    "preemptions",
    "failures",
    "outcome",
    "workload",
)
"""The columns of ``jobs.parquet``, in order."""


@dataclass
class RunResult:
    """Everything a run produces."""

    scenario: Scenario
    summary: dict[str, Any]
    jobs: pd.DataFrame
    timeseries: pd.DataFrame
    inference_latency: pd.DataFrame | None = None
    power: pd.DataFrame | None = None
    pfc: pd.DataFrame | None = None
    credit: pd.DataFrame | None = None
    """InfiniBand's ``pfc``: the same table of credit stalls (``credit.parquet``)."""


def jobs_frame(jobs: Sequence[Job], cluster_names: Sequence[str]) -> pd.DataFrame:
    """One row per job: who, how big, when, how it ended.

    Args:
        jobs: Every job the marketplace saw, in submission order.
        cluster_names: Each cluster's name, by cluster index.
    """

    def column(values: list[Any], dtype: Any) -> np.ndarray:
        return np.array(values, dtype=dtype)

    data = {
        "job_id": column([j.job_id for j in jobs], np.int64),
        "tenant": [j.tenant for j in jobs],
        "contract": [j.contract for j in jobs],
        "cluster": [cluster_names[j.cluster] if j.cluster is not None else None for j in jobs],
        "gpus": column([j.gpus for j in jobs], np.int64),
        "submit_hours": column([j.submit_hours for j in jobs], float),
        "start_hours": column([_nan(j.first_start_hours) for j in jobs], float),
        "end_hours": column([_nan(j.end_hours) for j in jobs], float),
        "wait_hours": column([_nan(j.wait_hours) for j in jobs], float),
        "work_hours": column([j.work_hours for j in jobs], float),
        "done_work_hours": column([j.done_work_hours for j in jobs], float),
        "run_hours": column([j.run_hours for j in jobs], float),
        "lost_gpu_hours": column([j.lost_hours * j.gpus for j in jobs], float),
        "preemptions": column([j.preemptions for j in jobs], np.int64),
        "failures": column([j.failures for j in jobs], np.int64),
        "outcome": [j.state for j in jobs],
        "workload": ["inference" if j.serving else "batch" for j in jobs],
    }
    return pd.DataFrame(data, columns=list(JOB_COLUMNS))


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


NETWORK_FIGURES = (
    "pfc_pause_fraction",
    "ecn_mark_fraction",
    "flow_slowdown_p99",
    "credit_stall_fraction",
)
"""The congestion figures of a job's fabric piece (:class:`sim.fabric.model.JobNetwork`)."""


def network_frame(jobs: Sequence[Job]) -> pd.DataFrame:
    """What the fabric did to each job, piece by piece (one row per piece).

    Jobs whose traffic is not modelled run at their ideal speed: one piece
    at slowdown 1.0 over their run time, with no congestion figures.
    """
    rows: dict[str, list[Any]] = {
        "job_id": [], "tenant": [], "gpus": [], "hours": [], "slowdown": [],
        "pfc_pause_fraction": [], "ecn_mark_fraction": [], "flow_slowdown_p99": [],
        "credit_stall_fraction": [],
    }  # fmt: skip
    for job in jobs:
        if job.serving:  # replicas do not iterate: their figures are latencies
            continue
        pieces = job.network_log
        if not pieces and job.run_hours > 0:
            pieces = [(job.run_hours, None)]
        for hours, state in pieces:
            rows["job_id"].append(job.job_id)
            rows["tenant"].append(job.tenant)
            rows["gpus"].append(job.gpus)
            rows["hours"].append(hours)
            rows["slowdown"].append(1.0 if state is None else state.slowdown)
            for name in NETWORK_FIGURES:
                value = None if state is None else getattr(state, name)
                rows[name].append(np.nan if value is None else value)
    return pd.DataFrame(rows).astype({"hours": float, "slowdown": float})


def pfc_frame(
    pauses: Sequence[tuple[float, int, EpochSolution]],
    fabrics: Sequence[Any],
    cluster_names: Sequence[str],
) -> pd.DataFrame:
    """PFC pauses after every change of a fabric with PFC, by link tier and top port.

    The same table of a fabric with InfiniBand credits (its changes are
    :attr:`sim.metrics.fabric_log.FabricLog.stalls`) holds credit stalls in
    ``pause_fraction``: the share of time a link waits for credits.

    One row per change, cluster and tier (``kind`` "tier": the mean pause
    fraction of the tier's busy links, and how many are busy) and per most
    paused port (``kind`` "port": a directed link ``from>to``, its pause
    fraction); each row holds until the cluster's next change.

    Args:
        pauses: The fabric log's changes of fabrics with PFC (see
            :attr:`sim.metrics.fabric_log.FabricLog.pauses`).
        fabrics: Each cluster's fabric (with its ``topology``), by cluster index.
        cluster_names: Each cluster's name, by cluster index.
    """
    rows: dict[str, list[Any]] = {
        k: [] for k in ("time_hours", "cluster", "kind", "name", "pause_fraction", "busy_links")
    }

    def add(hours: float, cluster: str, kind: str, name: str, pause: float, busy: int):
        for key, value in zip(rows, (hours, cluster, kind, name, pause, busy), strict=True):
            rows[key].append(value)

    for hours, index, solution in pauses:
        topology = fabrics[index].topology
        cluster = cluster_names[index]
        for tier, (busy, paused) in enumerate(
            zip(solution.tier_busy_links, solution.tier_paused_links, strict=True)
        ):
            add(
                hours,
                cluster,
                "tier",
                topology.tier_names[tier],
                paused / busy if busy else 0.0,
                busy,
            )
        names = topology.node_names
        for link, pause in solution.top_ports:
            src, dst = topology.link_src[link], topology.link_dst[link]
            add(hours, cluster, "port", f"{names[src]}>{names[dst]}", pause, 1)
    return pd.DataFrame(rows).astype(
        {"time_hours": float, "pause_fraction": float, "busy_links": np.int64}
    )


def inference_latency_frame(serving_logs: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Each served model's request latency histogram: the bins that hold requests.

    One row per tenant and bin: ``latency_ms_low`` and ``latency_ms_high``
    bound the bin (log-spaced, 1,000 per decade) and ``requests`` is how
    many requests it holds, so a CDF is the running sum over ``requests``.

    Args:
        serving_logs: Per tenant that serves a model, its serving logs (see
            :class:`sim.workloads.serving.ServingLog`).
    """
    from sim.workloads.latency_histogram import LatencyHistogram
    from sim.workloads.serving import merged_histogram

    edges = LatencyHistogram.EDGES_MS
    parts = []
    for tenant in sorted(serving_logs):
        weights = merged_histogram(serving_logs[tenant]).bin_weights
        held = np.flatnonzero(weights > 0)
        parts.append(
            pd.DataFrame(
                {
                    "tenant": tenant,
                    "latency_ms_low": edges[held],
                    "latency_ms_high": edges[held + 1],
                    "requests": weights[held],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def write_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write the run directory whole: the old directory or the new one, never a mix.

    The files (see :func:`write_run_files`) are written beside ``out_dir`` and put in its
    place together, replacing an earlier run there (see :mod:`sim.outputs`).

    Returns:
        ``out_dir``.

    Raises:
        sim.outputs.OutputError: If ``out_dir`` holds something other than a run, or
            cannot be written; nothing is changed.
    """
    from sim.outputs import write_directory

    return write_directory(out_dir, "run", lambda directory: write_run_files(result, directory))


def write_run_files(result: RunResult, directory: Path) -> None:
    """Write a run's files into an existing, empty directory (as :func:`write_run` does).

    Files: resolved.yaml, summary.json, jobs and timeseries tables. A run that serves
    models also gets ``inference_latency.parquet``, the request latency histogram of each
    served model's tenant; one with power blocks ``power.parquet``, each site's draw and
    clock speed after every change; one with PFC fabrics ``pfc.parquet``, pauses by link
    tier and most paused port; one with InfiniBand fabrics ``credit.parquet``, the same
    table of credit stalls.
    """
    out = Path(directory)
    (out / "resolved.yaml").write_text(dump_scenario(result.scenario), encoding="utf-8")
    result.jobs.to_parquet(out / "jobs.parquet", index=False)
    result.timeseries.to_parquet(out / "timeseries.parquet", index=False)
    tables = {
        "inference_latency": result.inference_latency,
        "power": result.power,
        "pfc": result.pfc,
        "credit": result.credit,
    }
    for name, table in tables.items():
        if table is not None:
            table.to_parquet(out / f"{name}.parquet", index=False)
    text = json.dumps(result.summary, indent=2, allow_nan=False) + "\n"
    (out / "summary.json").write_text(text, encoding="utf-8")
