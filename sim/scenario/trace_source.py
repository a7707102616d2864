"""Demand and inventory read from public cluster traces: a workload's ``trace``, a
cluster's ``nodes_from``.

A batch workload (a tenant's, or the provider's ``internal.training``) may replay
a trace's jobs instead of drawing them from distributions (:class:`TraceSource`):
each job is submitted at its trace time, less the ``start`` offset and times
``time_scale``, holds its trace's GPUs times ``gpu_scale`` and needs its trace's
duration (times ``time_scale``) of work, measured on the accelerator the trace
says it ran on. A cluster may take its nodes from a trace's node list
(:class:`NodesFrom`, expanded when the scenario is loaded:
:mod:`sim.scenario.node_lists`).

Paths are relative to the scenario file's folder (to the working directory for
scenario text read without a file); the loaded scenario holds them absolute.
A trace file is read once per process while it is unchanged
(:func:`read_trace_cached`), however many workloads, checks and runs use it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from sim.catalog import UnknownModel, accelerators, catalog_name
from sim.scenario.base import Strict
from sim.scenario.durations import Duration
from sim.scenario.yaml_input import ScenarioError
from sim.traces.formats import TRACE_FORMATS, read_trace
from sim.traces.jobs import TraceJobs

MAX_SCALE = 1000.0
"""Largest time, GPU or node scale: a thousandfold is beyond any fit of a trace to a fleet."""

FilterValue = str | int | list[str | int]


def resolve_path(value: str, info: ValidationInfo | None) -> str:
    """A scenario's file path made absolute: relative to the scenario file's folder.

    The loader passes the folder as ``base_dir`` in the validation context; without
    one (scenario text with no file) a relative path is relative to the working
    directory.
    """
    if not value.strip():
        raise ValueError("give the file's path")
    path = Path(value).expanduser()
    if not path.is_absolute():
        base = (info.context or {}).get("base_dir") if info is not None else None
        path = Path(base if base is not None else os.getcwd()) / path
    return os.path.abspath(path)


def _registered(value: str, registry: Mapping[str, Any], what: str) -> str:
    """``value`` if it names an entry of ``registry``, else a message listing the known ones."""
    if value not in registry:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(sorted(registry))}")
    return value


def _known_accelerator(name: str) -> str:
    return _registered(name, accelerators(), "accelerator")


def _catalog_map(value: dict[str, str]) -> dict[str, str]:
    """An ``accelerator_map`` whose every value is a catalog key."""
    for model, name in value.items():
        try:
            _known_accelerator(name)
        except ValueError as exc:
            raise ValueError(f"{model}: {exc}") from None
    return value


class TraceSource(Strict):
    """A trace whose jobs a batch workload replays.

    Each job (those ``filter`` selects, submitted at or after ``start`` into the
    trace) is submitted at ``(its trace time − start) × time_scale`` into the run,
    holds ``max(1, round(its GPUs × gpu_scale))`` GPUs and needs its duration ×
    ``time_scale`` of work (so ``time_scale: 2`` stretches the trace: gaps and run
    times twice as long, the same GPUs busy at once). Work is measured on the
    catalog type its ``gpu_model`` maps to (``accelerator_map`` first, then the
    catalog's names); ``accelerator: trace`` runs it only on that type, ``any`` on
    any type it may use, faster or slower by dense TFLOP/s. Jobs submitted after
    the horizon never come. No random draw is made.
    """

    format: str = Field(description="the trace format: alibaba_spot_2026, alibaba_pai_2020, ...")
    path: str = Field(description="the job file, relative to the scenario file")
    filter: dict[str, FilterValue] = Field(
        default_factory=dict,
        description="the trace's own columns and the values to keep (a list: any of them)",
    )
    start: Duration = Field(default=0.0, description="offset into the trace: earlier jobs dropped")
    time_scale: float = Field(
        default=1.0, gt=0, le=MAX_SCALE, description="multiplies submit times and durations"
    )
    gpu_scale: float = Field(
        default=1.0,
        gt=0,
        le=MAX_SCALE,
        description="multiplies each job's GPUs (rounded, at least 1)",
    )
    accelerator: Literal["trace", "any"] = Field(
        default="trace", description="trace: each job only on its own type; any: anywhere"
    )
    accelerator_map: dict[str, str] = Field(
        default_factory=dict, description="the trace's GPU model names -> catalog keys"
    )
    default_accelerator: str | None = Field(
        default=None,
        description="the type durations were measured on, for jobs whose trace names none",
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _registered(value, TRACE_FORMATS, "trace format")

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return resolve_path(value, info)

    @field_validator("accelerator_map")
    @classmethod
    def _map_to_catalog(cls, value: dict[str, str]) -> dict[str, str]:
        return _catalog_map(value)

    @field_validator("default_accelerator")
    @classmethod
    def _default_in_catalog(cls, value: str | None) -> str | None:
        return None if value is None else _known_accelerator(value)


@functools.lru_cache(maxsize=16)
def _read(format: str, path: str, stamp: tuple[int, int]) -> TraceJobs:
    """A trace file's jobs; ``stamp`` (mtime, size) makes an edited file read again."""
    del stamp
    return read_trace(format, Path(path))


def read_trace_cached(format: str, path: str) -> TraceJobs:
    """Read a trace file, once per process while it is unchanged.

    Raises:
        ScenarioError: If the file is missing or unreadable, or a row is malformed.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return _read(format, path, (stat.st_mtime_ns, stat.st_size))


@dataclass(frozen=True)
class Replay:
    """The jobs a trace workload submits, in submit order, as the run sees them.

    Attributes:
        source: The trace file.
        submit_hours: When each job is submitted, hours into the run.
        work_hours: Each job's work, hours on its own accelerator type.
        gpus: GPUs each job holds.
        accelerator: Each job's own type (a catalog key): where its work is measured.
        line: Where each job is in the trace file.
        skipped: The reader's skipped rows, per reason.
    """

    source: str
    submit_hours: np.ndarray
    work_hours: np.ndarray
    gpus: np.ndarray
    accelerator: np.ndarray
    line: np.ndarray
    skipped: dict[str, int]

    def __len__(self) -> int:
        return int(self.submit_hours.size)

    def within(self, horizon: float) -> int:
        """How many jobs are submitted before ``horizon`` hours."""
        return int(np.searchsorted(self.submit_hours, horizon, side="left"))


def replay_jobs(source: TraceSource, where: str) -> Replay:
    """The jobs a trace workload replays: read (cached), filtered, windowed and scaled.

    Args:
        source: The workload's ``trace``.
        where: Its field path for messages, e.g. ``tenants[2].workload.trace``.

    Raises:
        ScenarioError: Naming ``where`` and the field: a malformed row (file, line
            and column), a filter column the trace lacks, a GPU model the catalog
            does not know, or jobs with no model and no ``default_accelerator``.
    """
    try:
        jobs = read_trace_cached(source.format, source.path)
    except ScenarioError as exc:
        raise ScenarioError([f"{where}.path: {p}" for p in exc.problems]) from None
    conditions = {
        column: [str(v) for v in value] if isinstance(value, list) else str(value)
        for column, value in source.filter.items()
    }
    everything = jobs
    jobs = jobs.filter(conditions, f"{where}.filter")
    if conditions and not len(jobs):
        seen = [
            f"{column}: {', '.join(sorted(set(everything.columns[column].tolist()))[:6])}"
            for column in conditions
        ]
        raise ScenarioError(
            [
                f"{where}.filter: no job of {everything.source} matches (of {len(everything):,}"
                f" jobs; values are compared as text, e.g. {'; '.join(seen)})"
            ]
        )
    start_s = source.start * 3600.0
    jobs = jobs.take(jobs.submit_s >= start_s)
    scale = source.time_scale
    gpus = np.maximum(1, np.floor(jobs.gpus * source.gpu_scale + 0.5)).astype(np.int64)
    kinds = np.empty(len(jobs), dtype=object)
    problems = []
    for model in sorted(set(jobs.gpu_model.tolist())):
        chosen = jobs.gpu_model == model
        first = f"{jobs.source}:{int(jobs.line[chosen][0])}"
        count = int(chosen.sum())
        if not model:
            if source.default_accelerator is None:
                problems.append(
                    f"{where}.default_accelerator: {count:,} jobs (first at {first}) name no "
                    "GPU model; give the type their durations were measured on, e.g. "
                    "default_accelerator: H100"
                )
                continue
            kinds[chosen] = source.default_accelerator
            continue
        try:
            kinds[chosen] = catalog_name(model, source.accelerator_map)
        except UnknownModel as exc:
            problems.append(f"{where}.accelerator_map: {exc} ({count:,} jobs, first at {first})")
    if problems:
        raise ScenarioError(problems)
    return Replay(
        source=jobs.source,
        submit_hours=(jobs.submit_s - start_s) / 3600.0 * scale,
        work_hours=jobs.duration_s / 3600.0 * scale,
        gpus=gpus,
        accelerator=kinds,
        line=jobs.line,
        skipped=dict(jobs.skipped),
    )


def scaled_count(nodes: int, scale: float) -> int:
    """A node count times ``scale``, rounded, at least 1."""
    return max(1, math.floor(nodes * scale + 0.5))


class NodesFrom(Strict):
    """A cluster whose nodes come from a trace's node list.

    The loader counts the list's nodes of ``gpus_per_node`` GPUs per GPU model,
    maps each model to a catalog type (``accelerator_map`` first, then the
    catalog's names), scales each count by ``scale`` (rounded, at least one node
    per type) and fills the cluster's ``nodes``, ``gpus_per_node`` and
    ``accelerator`` (one type, or a mix in the list's order of models). A
    cluster has one node size: declare one cluster per size a list holds.
    """

    format: str = Field(description="the node-list format, e.g. alibaba_spot_2026")
    path: str = Field(description="the node file, relative to the scenario file")
    gpus_per_node: int | None = Field(
        default=None,
        gt=0,
        le=576,
        description="take the nodes of this size (required if the list has several)",
    )
    scale: float = Field(
        default=1.0, gt=0, le=MAX_SCALE, description="multiplies each type's node count"
    )
    accelerator_map: dict[str, str] = Field(
        default_factory=dict, description="the list's GPU model names -> catalog keys"
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from sim.traces.nodes import NODE_FORMATS

        return _registered(value, NODE_FORMATS, "node-list format")

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return resolve_path(value, info)

    @field_validator("accelerator_map")
    @classmethod
    def _map_to_catalog(cls, value: dict[str, str]) -> dict[str, str]:
        return _catalog_map(value)
