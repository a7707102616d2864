"""Microsoft's Philly trace (msr-fiddle/philly-traces ``cluster_job_log``): its jobs.

``cluster_job_log`` is a JSON list with one object per job: ``jobid``, ``user``
and ``vc`` (hashed), ``status`` (``Pass``, ``Killed`` or ``Failed``),
``submitted_time``, and ``attempts``, each with ``start_time``, ``end_time`` and
``detail``: per machine its ``ip`` and its list of ``gpus``. Times are like
``2017-10-07 01:11:39`` with no zone; they are read as written, so the time of
day is the cluster's. Source: the trace's README and its analysis notebook.

Per job:

- **submit**: ``submitted_time``.
- **duration**: the first attempt's start to the last attempt's end, as the
  trace's analysis notebook and the ATC'19 paper measure run time: the job held
  or was about to retake its GPUs between attempts (the gaps are seconds), and
  replaying it as one run of that length keeps its published shape. Summing the
  attempts instead would drop those gaps.
- **GPUs**: the first attempt's, summed over its machines (``len(gpus)`` each).
- **GPU model**: none (Philly does not name it; its machines had 12 or 24 GB GPUs).

Skipped, with a count per reason: jobs with no attempt (``no attempts``: never
scheduled), whose last attempt has no end (``still running`` when the snapshot
was taken, as the README says), whose first attempt has no start or which have
no submit time (``missing times``), whose first attempt lists no GPU
(``zero GPUs``), and which ended as they started (``zero duration``).

Filter columns: ``jobid``, ``user``, ``vc``, ``status``. A job's line is where
its object starts in the file (the JSON entry's real line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.scenario.yaml_input import ScenarioError
from sim.traces.csv_rows import MAX_PROBLEMS, clock_seconds
from sim.traces.jobs import TraceJobs, row_problem

FORMAT = "philly"

FILTER_COLUMNS = ("jobid", "user", "vc", "status")
"""The fields a scenario may filter on."""

TYPE_COLUMN = "status"
"""The column ``surplus trace inspect`` splits GPU-hours by."""

_BAD = object()
"""What :func:`_time` returns for a field that is not a time (after noting the problem)."""


def _entries(path: Path) -> Iterator[tuple[int, Any]]:
    """The entries of the file's top-level JSON list, each with the line it starts on."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read: {exc}"]) from None
    decoder = json.JSONDecoder()
    position, line, counted = 0, 1, 0

    def skip_space(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    def where(at: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, at)
        counted = at
        return line

    position = skip_space(position)
    if position >= len(text) or text[position] != "[":
        raise ScenarioError([f"{path}:{where(position)}: not a JSON list of jobs"])
    position = skip_space(position + 1)
    if position < len(text) and text[position] == "]":
        return
    while True:
        try:
            entry, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ScenarioError([f"{path}:{exc.lineno}: not JSON: {exc.msg}"]) from None
        yield where(position), entry
        position = skip_space(end)
        if position < len(text) and text[position] == ",":
            position = skip_space(position + 1)
            continue
        if position < len(text) and text[position] == "]":
            return
        raise ScenarioError([f"{path}:{where(position)}: expected ',' or ']' in the list of jobs"])


def _time(entry: dict, key: str, problems: list[str], source: str, line: int, label: str) -> Any:
    """A time field as seconds (None if absent or null); ``_BAD`` if it is not a time."""
    value = entry.get(key)
    if value is None:
        return None
    try:
        return clock_seconds(str(value))
    except ValueError:
        problems.append(row_problem(source, line, label, f"{value!r} is not a time"))
        return _BAD


def read_jobs(path: Path) -> TraceJobs:
    """The jobs of a Philly ``cluster_job_log``.

    Raises:
        ScenarioError: Naming file, line and field, for an entry that is not an
            object, attempts that are not a list, or a time that is not a time.
    """
    path = Path(path)
    source = str(path)
    problems: list[str] = []
    skipped = {
        "no attempts": 0,
        "still running": 0,
        "missing times": 0,
        "zero GPUs": 0,
        "zero duration": 0,
    }
    name, submit, duration, gpus, lines = [], [], [], [], []
    columns: dict[str, list[str]] = {c: [] for c in FILTER_COLUMNS}
    for line, entry in _entries(path):
        if len(problems) >= MAX_PROBLEMS:
            break
        if not isinstance(entry, dict):
            problems.append(row_problem(source, line, "job", "not a JSON object"))
            continue
        attempts = entry.get("attempts") or []
        if not isinstance(attempts, list) or not all(isinstance(a, dict) for a in attempts):
            problems.append(row_problem(source, line, "attempts", "not a list of objects"))
            continue
        submitted = _time(entry, "submitted_time", problems, source, line, "submitted_time")
        if not attempts:
            skipped["no attempts"] += 1
            continue
        started = _time(attempts[0], "start_time", problems, source, line, "attempts[0].start_time")
        last = f"attempts[{len(attempts) - 1}].end_time"
        ended = _time(attempts[-1], "end_time", problems, source, line, last)
        held = _gpus(attempts[0].get("detail"), problems, source, line)
        if any(value is _BAD for value in (submitted, started, ended)) or held is None:
            continue
        if ended is None:
            skipped["still running"] += 1
            continue
        if submitted is None or started is None:
            skipped["missing times"] += 1
            continue
        if held == 0:
            skipped["zero GPUs"] += 1
            continue
        if ended <= started:
            skipped["zero duration"] += 1
            continue
        name.append(str(entry.get("jobid", "")))
        submit.append(submitted)
        duration.append(ended - started)
        gpus.append(held)
        lines.append(line)
        for column in FILTER_COLUMNS:
            value = entry.get(column)
            columns[column].append("" if value is None else str(value))
    if problems:
        raise ScenarioError(problems)
    return TraceJobs.build(
        source,
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


def _gpus(detail: Any, problems: list[str], source: str, line: int) -> int | None:
    """GPUs an attempt held, summed over its machines; None after noting a problem."""
    if detail is None:
        return 0
    if not isinstance(detail, list) or not all(
        isinstance(machine, dict) and isinstance(machine.get("gpus", []), list)
        for machine in detail
    ):
        what = "not a list of machines, each with a list of gpus"
        problems.append(row_problem(source, line, "attempts[0].detail", what))
        return None
    return sum(len(machine.get("gpus", [])) for machine in detail)
