"""SenseTime's Helios traces (S-Lab-System-Group/HeliosData ``cluster_log.csv``): its jobs.

One ``cluster_log.csv`` per cluster (Earth, Saturn, Uranus, Venus), one row per
Slurm job: ``job_id, user, vc, gpu_num, cpu_num, node_num, state, submit_time,
start_time, end_time, duration, queue``. ``gpu_num`` is the job's GPUs (all of
them, over its ``node_num`` nodes), the times are like ``2020-06-09 18:41:01``
with no zone (read as written: the cluster's time of day), ``duration`` is
``end_time - start_time`` in seconds and ``queue`` ``start_time -
submit_time``; ``state`` is ``COMPLETED``, ``CANCELLED``, ``FAILED``,
``TIMEOUT`` or ``NODE_FAIL``. Source: the HeliosData README.

Per job: submit from ``submit_time``, duration from ``duration`` (from
``end_time - start_time`` where ``duration`` is empty), GPUs from ``gpu_num``;
no GPU model (Helios does not name it). Every state is kept (a cancelled or
failed job held its GPUs while it ran); a scenario filters on ``state``.

Skipped, with a count per reason: CPU jobs (``gpu_num`` 0: ``zero GPUs``, over
half of the trace's rows), jobs without a start (``never started``: cancelled
while queued), jobs without a submit time or any way to a duration (``missing
times``), and jobs that ended as they started (``zero duration``).

Filter columns: ``job_id``, ``user``, ``vc`` (when the file has it), ``state``.
"""

from __future__ import annotations

import math
from pathlib import Path

from sim.traces.csv_rows import Rows, clock_seconds, number
from sim.traces.jobs import TraceJobs

FORMAT = "helios"

REQUIRED = ("job_id", "user", "gpu_num", "state", "submit_time", "start_time", "end_time")
"""Columns the reader needs; ``vc``, ``duration`` are read when there."""

FILTER_COLUMNS = ("job_id", "user", "vc", "state")
"""The columns a scenario may filter on (``vc`` only where the file has it)."""

TYPE_COLUMN = "state"
"""The column ``surplus trace inspect`` splits GPU-hours by."""


def read_jobs(path: Path) -> TraceJobs:
    """The jobs of a Helios ``cluster_log.csv``.

    Raises:
        ScenarioError: Naming file, line and column, for a missing column, a GPU
            count that is not a whole number, a time that is not a time, or a
            negative duration.
    """
    rows = Rows(path, REQUIRED)
    name, submit, duration, gpus, lines = [], [], [], [], []
    columns: dict[str, list[str]] = {c: [] for c in FILTER_COLUMNS}
    skipped = {"zero GPUs": 0, "never started": 0, "missing times": 0, "zero duration": 0}
    for line, row in rows:
        times: dict[str, float | None] = {}
        bad = False
        for column in ("submit_time", "start_time", "end_time"):
            try:
                times[column] = clock_seconds(row[column])
            except ValueError:
                rows.problem(line, column, f"{row[column]!r} is not a time")
                bad = True
        try:
            held = number(row["gpu_num"])
            if held is not None and (held < 0 or held != math.floor(held)):
                raise ValueError
        except ValueError:
            rows.problem(line, "gpu_num", f"{row['gpu_num']!r} is not a whole number of GPUs")
            bad = True
        try:
            ran = number(row.get("duration", ""))
            if ran is not None and ran < 0:
                rows.problem(line, "duration", f"{row['duration']!r} is negative")
                bad = True
        except ValueError:
            rows.problem(line, "duration", f"{row['duration']!r} is not a number")
            bad = True
        if bad:
            continue
        if not held:
            skipped["zero GPUs"] += 1
            continue
        start, end = times["start_time"], times["end_time"]
        if ran is None and start is not None and end is not None:
            ran = end - start
        if start is None and not ran:
            skipped["never started"] += 1
            continue
        if times["submit_time"] is None or ran is None:
            skipped["missing times"] += 1
            continue
        if ran <= 0:
            skipped["zero duration"] += 1
            continue
        name.append(row["job_id"].strip())
        submit.append(times["submit_time"])
        duration.append(ran)
        gpus.append(int(held))
        lines.append(line)
        for column in FILTER_COLUMNS:
            columns[column].append(row.get(column, "").strip())
    rows.raise_problems()
    if "vc" not in rows.names:
        del columns["vc"]
    return TraceJobs.build(
        str(path),
        FORMAT,
        name=name,
        submit_s=submit,
        duration_s=duration,
        gpus=gpus,
        gpu_model=[""] * len(name),
        line=lines,
        columns=columns,
        skipped=skipped,
    )
