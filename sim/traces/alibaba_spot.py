"""Alibaba's 2026 spot-GPU trace (``cluster-trace-v2026-spot-gpu``): jobs and nodes.

``job_info_df.csv`` has one row per job: ``job_name, organization, gpu_model,
cpu_request, gpu_request, worker_num, submit_time, duration, job_type``.
``gpu_request`` is per worker, so a job holds ``gpu_request × worker_num`` GPUs
(rounded up to whole GPUs where a worker asks for part of one);
``submit_time`` is seconds from the first job, ``duration`` seconds, and
``job_type`` is ``HP`` (high priority, strict SLOs) or ``Spot``.
``node_info_df.csv`` has one row per node: ``node_name, gpu_model,
gpu_capacity_num, cpu_num`` (nodes of 1, 4 or 8 GPUs of six models, some named
only ``GPU-series-N``). Source: the trace's README in alibaba/clusterdata.
"""

from __future__ import annotations

import math
from pathlib import Path

from sim.traces.csv_rows import Rows
from sim.traces.jobs import TraceJobs

FORMAT = "alibaba_spot_2026"

JOB_COLUMNS = (
    "job_name",
    "organization",
    "gpu_model",
    "cpu_request",
    "gpu_request",
    "worker_num",
    "submit_time",
    "duration",
    "job_type",
)

FILTER_COLUMNS = ("job_name", "organization", "gpu_model", "job_type")
"""The columns a scenario may filter on (the others are numbers Surplus reads)."""


def read_jobs(path: Path) -> TraceJobs:
    """The jobs of a ``job_info_df.csv``.

    Rows without a submit time or duration are skipped (``missing times``), as are
    rows whose duration is 0 (``zero duration``) and rows asking for no GPU
    (``zero GPUs``: CPU-only jobs).

    Raises:
        ScenarioError: Naming file, line and column, for a missing column, a cell
            that is not a number, or a negative one.
    """
    rows = Rows(path, JOB_COLUMNS)
    name, submit, duration, gpus, model, lines = [], [], [], [], [], []
    columns: dict[str, list[str]] = {c: [] for c in FILTER_COLUMNS}
    skipped = {"missing times": 0, "zero duration": 0, "zero GPUs": 0}
    for line, row in rows:
        cells = rows.numbers(line, row, ("gpu_request", "worker_num", "submit_time", "duration"))
        if cells is None:
            continue
        if cells["submit_time"] is None or cells["duration"] is None:
            skipped["missing times"] += 1
            continue
        if cells["duration"] == 0:
            skipped["zero duration"] += 1
            continue
        per_worker, workers = cells["gpu_request"] or 0.0, cells["worker_num"]
        held = per_worker * (1.0 if workers is None else workers)
        if held <= 0:
            skipped["zero GPUs"] += 1
            continue
        name.append(row["job_name"].strip())
        submit.append(cells["submit_time"])
        duration.append(cells["duration"])
        gpus.append(math.ceil(held - 1e-9))
        model.append(row["gpu_model"].strip())
        lines.append(line)
        for column in FILTER_COLUMNS:
            columns[column].append(row[column].strip())
    rows.raise_problems()
    return TraceJobs.build(
        str(path),
        FORMAT,
        name=name,
        submit_s=submit,
        duration_s=duration,
        gpus=gpus,
        gpu_model=model,
        line=lines,
        columns=columns,
        skipped=skipped,
    )
