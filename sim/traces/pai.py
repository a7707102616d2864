"""Alibaba PAI's 2020 GPU trace (``cluster-trace-gpu-v2020``): its jobs from the task table.

A PAI job is one or more tasks (roles: ``worker``, ``ps``, ``evaluator``, ...),
each of ``inst_num`` instances. ``pai_task_table`` has one row per task:
``job_name, task_name, inst_num, status, start_time, end_time, plan_cpu,
plan_mem, plan_gpu, gpu_type``; ``pai_job_table`` one row per job:
``job_name, inst_id, user, status, start_time, end_time``. Times are seconds
(shifted by a constant; read as UTC+8 they keep the original time of day),
``plan_gpu`` is a percentage of one GPU (50.0 is half a GPU) per instance, and
``gpu_type`` is the model a task ran on (``V100``, ``P100``, ``T4``, ``MISC``
for older ones, ...). Source: the trace's README in alibaba/clusterdata.

The released CSVs have no header row (the names come in ``FILE.header`` files);
the reader takes a ``.header`` file beside the CSV when there is one, else a
header row if the first cell is ``job_name``, else the documented column order
(:func:`sim.traces.csv_rows.header_of`).

A scenario points at the task table; the job table is read from
``pai_job_table.csv`` in the same directory when it is there. Per job:

- **GPUs**: ``ceil(sum over its tasks of inst_num × plan_gpu / 100)`` (a task
  without ``inst_num`` counts as one instance); jobs asking for no GPU (``plan_gpu``
  0 or empty in every task) are skipped as ``zero GPUs``.
- **submit**: the job table's ``start_time`` (the submission) when the job table
  is given (jobs missing from it are skipped as ``not in the job table``); else
  the earliest task start.
- **duration**: the latest task end minus the earliest task start (what it ran,
  not its wait). A job with a task that never started or has no end (``Waiting``,
  still ``Running``) is skipped as ``missing times``; one that ended as it
  started, as ``zero duration``.
- **GPU model**: the ``gpu_type`` of its GPU tasks; where they differ, the type
  of the task holding the most GPUs (the first such task in the file on a tie).
- **status**: the job table's; without it, ``Terminated`` if every task is,
  else the first other task status in the file. All statuses are kept (a failed
  job held its GPUs too); a scenario filters on ``status: Terminated`` for the
  successful ones only.

Filter columns: ``job_name``, ``status``, ``gpu_type``, and ``user`` when the
job table is read. A job's line is its first task's line in the task table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sim.scenario.yaml_input import ScenarioError
from sim.traces.csv_rows import Rows, header_of
from sim.traces.jobs import TraceJobs

FORMAT = "alibaba_pai_2020"

TASK_COLUMNS = (
    "job_name",
    "task_name",
    "inst_num",
    "status",
    "start_time",
    "end_time",
    "plan_cpu",
    "plan_mem",
    "plan_gpu",
    "gpu_type",
)
JOB_COLUMNS = ("job_name", "inst_id", "user", "status", "start_time", "end_time")

JOB_TABLE = "pai_job_table.csv"
"""The job table's file name, looked for beside the task table."""

TYPE_COLUMN = "status"
"""The column ``surplus trace inspect`` splits GPU-hours by."""

TERMINATED = "Terminated"
"""The status of a task or job that ended successfully."""


@dataclass
class _Job:
    """The tasks of one job, as they are read."""

    line: int
    gpus: float = 0.0
    start_s: float | None = None
    end_s: float | None = None
    missing_times: bool = False
    model: str = ""
    model_gpus: float = 0.0
    statuses: list[str] = field(default_factory=list)

    def add(self, share: float, start: float | None, end: float | None, model: str) -> None:
        self.gpus += share
        if share > self.model_gpus:
            self.model, self.model_gpus = model, share
        if start is None or end is None:
            self.missing_times = True
            return
        self.start_s = start if self.start_s is None else min(self.start_s, start)
        self.end_s = end if self.end_s is None else max(self.end_s, end)

    def status(self) -> str:
        return next((s for s in self.statuses if s != TERMINATED), TERMINATED)


def _read_tasks(path: Path) -> dict[str, _Job]:
    """Each job's tasks summed up, in the order jobs first appear."""
    rows = Rows(path, TASK_COLUMNS, header_of(path, TASK_COLUMNS))
    jobs: dict[str, _Job] = {}
    for line, row in rows:
        cells = rows.numbers(line, row, ("inst_num", "start_time", "end_time", "plan_gpu"))
        if cells is None:
            continue
        name = row["job_name"].strip()
        if not name:
            rows.problem(line, "job_name", "empty")
            continue
        job = jobs.setdefault(name, _Job(line))
        instances = 1.0 if cells["inst_num"] is None else cells["inst_num"]
        share = instances * (cells["plan_gpu"] or 0.0) / 100.0
        job.add(share, cells["start_time"], cells["end_time"], row["gpu_type"].strip())
        job.statuses.append(row["status"].strip())
    rows.raise_problems()
    return jobs


def _read_job_table(path: Path) -> dict[str, tuple[float | None, str, str]]:
    """Per job name: its submission time, user and status (the first row of a name)."""
    rows = Rows(path, JOB_COLUMNS, header_of(path, JOB_COLUMNS))
    table: dict[str, tuple[float | None, str, str]] = {}
    for line, row in rows:
        cells = rows.numbers(line, row, ("start_time",))
        if cells is None:
            continue
        table.setdefault(
            row["job_name"].strip(),
            (cells["start_time"], row["user"].strip(), row["status"].strip()),
        )
    rows.raise_problems()
    return table


def read_jobs(path: Path) -> TraceJobs:
    """The jobs of a ``pai_task_table`` (with ``pai_job_table.csv`` beside it, if there).

    Raises:
        ScenarioError: Naming file, line and column, for a missing column, a cell
            that is not a number, or a negative one.
    """
    path = Path(path)
    if path.name == JOB_TABLE:
        raise ScenarioError(
            [
                f"{path}: PAI's job table; give its task table "
                f"({path.with_name('pai_task_table.csv')}), the job table is read beside it"
            ]
        )
    tasks = _read_tasks(path)
    job_path = path.with_name(JOB_TABLE)
    table = _read_job_table(job_path) if job_path.is_file() and job_path != path else None
    skipped = {"zero GPUs": 0, "missing times": 0, "zero duration": 0, "not in the job table": 0}
    name, submit, duration, gpus, model, lines = [], [], [], [], [], []
    columns: dict[str, list[str]] = {"job_name": [], "status": [], "gpu_type": []}
    if table is not None:
        columns["user"] = []
    for job_name, job in tasks.items():
        if job.gpus <= 1e-9:
            skipped["zero GPUs"] += 1
            continue
        if table is not None and job_name not in table:
            skipped["not in the job table"] += 1
            continue
        submitted, user, status = table[job_name] if table is not None else (None, "", "")
        if job.missing_times or job.start_s is None or job.end_s is None:
            skipped["missing times"] += 1
            continue
        if table is not None and submitted is None:
            skipped["missing times"] += 1
            continue
        if job.end_s <= job.start_s:
            skipped["zero duration"] += 1
            continue
        name.append(job_name)
        submit.append(job.start_s if submitted is None else submitted)
        duration.append(job.end_s - job.start_s)
        gpus.append(math.ceil(job.gpus - 1e-9))
        model.append(job.model)
        lines.append(job.line)
        columns["job_name"].append(job_name)
        columns["status"].append(status if table is not None else job.status())
        columns["gpu_type"].append(job.model)
        if table is not None:
            columns["user"].append(user)
    # Read as UTC+8, PAI's times keep the original time of day (the README).
    shanghai_s = 8 * 3600.0
    return TraceJobs.build(
        str(path),
        FORMAT,
        name=name,
        submit_s=[s + shanghai_s for s in submit],
        duration_s=duration,
        gpus=gpus,
        gpu_model=model,
        line=lines,
        columns=columns,
        skipped=skipped,
    )
