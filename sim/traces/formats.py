"""The trace formats Surplus reads, by the name a scenario or ``surplus trace`` gives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sim.traces.alibaba_spot as alibaba_spot
import sim.traces.helios as helios
import sim.traces.pai as pai
import sim.traces.philly as philly
from sim.scenario.yaml_input import ScenarioError
from sim.traces.jobs import TraceJobs

TRACE_FORMATS: dict[str, Callable[[Path], TraceJobs]] = {
    alibaba_spot.FORMAT: alibaba_spot.read_jobs,
    pai.FORMAT: pai.read_jobs,
    philly.FORMAT: philly.read_jobs,
    helios.FORMAT: helios.read_jobs,
}
"""Readers of job tables by format name."""

JOB_TYPE_COLUMNS: dict[str, str] = {
    alibaba_spot.FORMAT: "job_type",
    pai.FORMAT: pai.TYPE_COLUMN,
    philly.FORMAT: philly.TYPE_COLUMN,
    helios.FORMAT: helios.TYPE_COLUMN,
}
"""The column each format's jobs are told apart by (``HP``/``Spot``; else how they ended)."""


def read_trace(format: str, path: Path) -> TraceJobs:
    """Read a trace file of the named format.

    Raises:
        ScenarioError: If the format is unknown, or the file cannot be read or has
            malformed rows (file, line and column named).
    """
    reader = TRACE_FORMATS.get(format)
    if reader is None:
        known = ", ".join(sorted(TRACE_FORMATS))
        raise ScenarioError([f"{path}: unknown trace format {format!r}; known: {known}"])
    return reader(Path(path))
