"""A public cluster trace as Surplus reads it: one row per job, in one table for every format.

Every reader (:mod:`sim.traces.formats`) turns its format's files into a
:class:`TraceJobs`: when each job was submitted, how long it ran, how many GPUs it
held and of which model, and the trace's own columns as text, so that a scenario
can filter on them (``job_type: Spot``, ``vc: ...``). Rows a reader cannot use
(missing times, no GPUs, jobs that failed before they started, ...) are counted
per reason in :attr:`TraceJobs.skipped`, never silently dropped; rows that are
malformed (a column that is not a number where one must be) are errors naming
the file, the line and the column (:func:`row_problem`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from sim.scenario.yaml_input import ScenarioError

__all__ = ["TraceJobs", "row_problem"]


def row_problem(source: str, line: int, column: str, what: str) -> str:
    """One problem with one row of a trace file: ``FILE:LINE: column NAME: WHAT``."""
    return f"{source}:{line}: column {column!r}: {what}"


@dataclass(frozen=True)
class TraceJobs:
    """The jobs of a trace, one entry per job, sorted by submit time (stable).

    Attributes:
        source: The file's name as messages give it.
        format: The trace format (a key of :data:`sim.traces.formats.TRACE_FORMATS`).
        name: Each job's name or id in the trace.
        submit_s: When each job was submitted, in seconds from the trace's first
            submission (0 for the earliest).
        duration_s: How long each job ran, in seconds (> 0).
        gpus: GPUs each job held, whole (>= 1).
        gpu_model: The GPU model each job asked for or ran on, as the trace names it
            ("" where the trace does not say).
        line: Where each job is in the file (1-based line; for JSON, the entry's index + 1).
        columns: The trace's own columns per job, as text, for filters.
        skipped: Rows left out, counted per reason (e.g. ``"missing times"``).
        origin_s: The first submission on the trace's own clock, in seconds (for
            times of day: ``(origin_s + submit_s) mod 86400``); 0 where the trace
            counts from its first job.
    """

    source: str
    format: str
    name: np.ndarray
    submit_s: np.ndarray
    duration_s: np.ndarray
    gpus: np.ndarray
    gpu_model: np.ndarray
    line: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    origin_s: float = 0.0

    def __len__(self) -> int:
        return int(self.submit_s.size)

    @staticmethod
    def build(
        source: str,
        format: str,
        *,
        name: Sequence[str],
        submit_s: Sequence[float],
        duration_s: Sequence[float],
        gpus: Sequence[int],
        gpu_model: Sequence[str],
        line: Sequence[int],
        columns: Mapping[str, Sequence[str]] | None = None,
        skipped: Mapping[str, int] | None = None,
    ) -> TraceJobs:
        """Jobs from per-job lists, sorted by submit time and shifted so the first is at 0.

        ``submit_s`` is on the trace's own clock; its earliest value becomes
        :attr:`origin_s`.
        """
        submit = np.asarray(submit_s, dtype=np.float64)
        order = np.argsort(submit, kind="stable")
        start = float(submit[order[0]]) if submit.size else 0.0

        def text(values: Sequence[str]) -> np.ndarray:
            return np.asarray(list(values), dtype=object)[order]

        return TraceJobs(
            source=source,
            format=format,
            name=text(name),
            submit_s=submit[order] - start,
            duration_s=np.asarray(duration_s, dtype=np.float64)[order],
            gpus=np.asarray(gpus, dtype=np.int64)[order],
            gpu_model=text(gpu_model),
            line=np.asarray(line, dtype=np.int64)[order],
            columns={key: text(values) for key, values in (columns or {}).items()},
            skipped={k: int(v) for k, v in sorted((skipped or {}).items()) if v},
            origin_s=start,
        )

    def take(self, keep: np.ndarray) -> TraceJobs:
        """The jobs where ``keep`` (a boolean mask or indices) selects them; skips unchanged."""
        return replace(
            self,
            name=self.name[keep],
            submit_s=self.submit_s[keep],
            duration_s=self.duration_s[keep],
            gpus=self.gpus[keep],
            gpu_model=self.gpu_model[keep],
            line=self.line[keep],
            columns={key: values[keep] for key, values in self.columns.items()},
        )

    def filter(
        self, conditions: Mapping[str, str | Sequence[str]], where: str = "filter"
    ) -> TraceJobs:
        """The jobs whose columns equal the given values (a list: any of them).

        Args:
            conditions: Column name -> value, or a list of accepted values. Values
                are compared as text, as the file has them.
            where: How messages name the mapping (e.g. ``tenants[2].workload.trace.filter``).

        Raises:
            ScenarioError: If a column is not one of the trace's.
        """
        keep = np.ones(len(self), dtype=bool)
        problems = []
        for column, wanted in conditions.items():
            values = self.columns.get(column)
            if values is None:
                known = ", ".join(sorted(self.columns)) or "none"
                problems.append(
                    f"{where}.{column}: {self.source} ({self.format}) has no column "
                    f"{column!r}; its columns: {known}"
                )
                continue
            accepted = [wanted] if isinstance(wanted, str) else list(wanted)
            keep &= np.isin(values, np.asarray([str(v) for v in accepted], dtype=object))
        if problems:
            raise ScenarioError(problems)
        return self.take(keep)
