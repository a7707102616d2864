"""Sweeps: one run per point of a grid (and zip) of overrides times seeds, resumable.

A scenario's ``sweep`` block (:class:`sim.scenario.models.Sweep`) names dotted
paths and their values. Every point is the scenario with one combination of
them applied (``--set`` style) and one seed; its *key* is a content hash of
the point's resolved scenario, so the same point always has the same run
directory, whatever else the sweep holds, and a point that is already
finished is never run twice.

A sweep directory holds

- ``points/KEY/``: each point's run directory (as ``surplus run`` writes it)
  plus ``point.json`` (its overrides and seed), or ``error.txt`` if it failed;
  each is written whole (beside its final name, then renamed in, see
  :mod:`sim.outputs`), so a point is finished when its ``summary.json`` is there
  and a killed sweep never leaves a half-written point;
- ``points.parquet``: one row per point: key, seed, one column per swept path
  (the value as YAML text), status (``done`` or ``failed``), error;
- ``results.parquet``: tidy, every number of every finished point's summary
  (:func:`sim.compare.metric_values`: each tenant's SLA verdict too, as
  ``tenants.NAME.sla_held`` 1.0 or 0.0): key, seed, the swept paths, metric, value;
- ``table.parquet``: per combination of swept values, over its seeds, each metric's
  n, mean and 95 % interval, and each SLA tenant's probability that its terms held
  (:func:`sim.points_table.points_table`);
- ``sweep.json``: the sweep as run: the scenario, its paths and its points;
- ``.surplus.json``: the marker saying the directory holds a sweep.

The top-level files are replaced atomically, one by one. A sweep directory holds one
sweep: when a sweep starts, the point directories whose keys are not among its points
(left by an earlier, different sweep into the same directory) are removed, and a
directory holding anything else (another kind of output, files Surplus did not write)
is refused before any point runs.

Points run in worker processes here (``local``) or on an existing Dask
distributed cluster (``dask``); the workers get each point's resolved scenario
as text and send back its results, which only this process writes, so the
workers need no shared file system. The results do not depend on the backend
or on the number of workers: each point's seed is fixed by the sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim.compare import metric_values, seed_list
from sim.files import atomic_write
from sim.points_table import points_table
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.scenario.loader import dump_scenario

BACKENDS = ("local", "dask")
"""Where points run."""

KEY_LENGTH = 16
"""Hex digits of the content hash that name a point's directory."""

DASK_CONNECT_TIMEOUT = "10s"
"""How long to try to reach a Dask scheduler before giving up."""


@dataclass(frozen=True)
class Point:
    """One run of a sweep: the overrides it applies, its seed, its resolved scenario."""

    overrides: tuple[str, ...]
    parameters: dict[str, str]
    seed: int
    text: str = field(repr=False)
    key: str = ""


def _value_text(value: Any) -> str:
    """A value as the YAML text an override takes (flow style, one line)."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...")
    )


def expand(scenario: Scenario) -> list[tuple[dict[str, str], int]]:
    """The sweep's points as (path → value text, seed), in order: grid, then zip, then seed.

    Raises:
        ScenarioError: If the scenario has no sweep block.
    """
    sweep = scenario.sweep
    if sweep is None:
        raise ScenarioError(["no sweep block: add one (see the scenario reference)"])
    grid_paths = list(sweep.grid)
    combos = list(itertools.product(*(sweep.grid[p] for p in grid_paths))) if grid_paths else [()]
    zip_paths = list(sweep.zip)
    rows = list(zip(*(sweep.zip[p] for p in zip_paths), strict=True)) if zip_paths else [()]
    seeds = seed_list(scenario.seed, sweep.seeds)
    points = []
    for combo in combos:
        for row in rows:
            values = dict(zip(grid_paths, combo, strict=True)) | dict(
                zip(zip_paths, row, strict=True)
            )
            parameters = {path: _value_text(value) for path, value in values.items()}
            points.extend((parameters, seed) for seed in seeds)
    return points


def make_point(
    path: str | Path, overrides: Sequence[str], parameters: dict[str, str], seed: int
) -> Point:
    """Resolve one point: the scenario with ``overrides`` then ``parameters``, at ``seed``.

    Its key is a content hash of the resolved scenario (without sweep and compare blocks),
    so the same run always lands in the same directory.

    Raises:
        ScenarioError: If the point does not resolve.
    """
    own = tuple(f"{p}={v}" for p, v in parameters.items())
    resolved = load_scenario(path, [*overrides, *own], seed)
    text = dump_scenario(resolved.model_copy(update={"sweep": None, "compare": None}))
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]
    return Point((*overrides, *own), parameters, seed, text, key)


def prepare(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Scenario, list[Point]]:
    """Resolve every point of the scenario's sweep, checking each before anything runs.

    Args:
        path: The scenario file.
        overrides: Applied to every point before its own.

    Returns:
        The scenario and its points, each with its resolved scenario and key.

    Raises:
        ScenarioError: Naming every point that does not resolve, and why.
    """
    scenario = load_scenario(path, overrides)
    problems: list[str] = []
    points: list[Point] = []
    for parameters, seed in expand(scenario):
        try:
            points.append(make_point(path, overrides, parameters, seed))
        except ScenarioError as exc:
            label = ", ".join(f"{p}={v}" for p, v in parameters.items()) or "(no overrides)"
            problems.extend(f"sweep point {label}: {problem}" for problem in exc.problems)
    if problems:
        raise ScenarioError(sorted(set(problems), key=problems.index))
    keys = [p.key for p in points]
    if len(set(keys)) != len(keys):
        raise ScenarioError(["sweep: two points resolve to the same scenario (a value repeats)"])
    return scenario, points


def run_point(text: str) -> dict[str, Any]:
    """Run one point from its resolved scenario text; never raises.

    A module function, so worker processes and Dask workers can run it.

    Returns:
        ``{"ok": True, "result": RunResult}`` or ``{"ok": False, "error": text}``.
    """
    try:
        from sim.runner import simulate
        from sim.scenario import scenario_from_text

        return {"ok": True, "result": simulate(scenario_from_text(text, "sweep point"))}
    except Exception as exc:  # a failing point is recorded; the others go on
        lines = traceback.format_exception_only(type(exc), exc)
        return {"ok": False, "error": "".join(lines).strip()}


def check_backend(backend: str, address: str | None) -> None:
    """Raise :class:`ScenarioError` unless the backend can be asked for."""
    if backend not in BACKENDS:
        raise ScenarioError([f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}"])
    if backend == "dask" and not address:
        raise ScenarioError(["--backend dask needs --address tcp://HOST:PORT"])


def finished(out: Path, point: Point) -> bool:
    """Whether the point's run is complete (its summary.json is written last)."""
    return (out / "points" / point.key / "summary.json").exists()


def read_summary(out: Path, point: Point) -> dict[str, Any]:
    """A finished point's ``summary.json``."""
    text = (out / "points" / point.key / "summary.json").read_text(encoding="utf-8")
    return json.loads(text)


def _local(texts: list[str], workers: int) -> Iterator[tuple[int, dict[str, Any]]]:
    if workers == 1:
        for index, text in enumerate(texts):
            yield index, run_point(text)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_point, text): i for i, text in enumerate(texts)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _dask(texts: list[str], address: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise ScenarioError(
            ["--backend dask: dask.distributed is not installed (pip install 'surplus[cluster]')"]
        ) from None
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except OSError as exc:
        raise ScenarioError(
            [f"--address {address}: cannot reach a Dask scheduler ({exc})"]
        ) from None
    try:
        futures = client.map(run_point, texts, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future in dask_completed(futures):
            yield index[future.key], future.result()
    finally:
        client.close()


def run_texts(
    texts: list[str], workers: int | None, backend: str, address: str | None
) -> Iterable[tuple[int, dict[str, Any]]]:
    """Run resolved scenario texts on the backend; yields ``(index, outcome)`` as each ends.

    Args:
        texts: Resolved scenarios (as :func:`run_point` takes them).
        workers: Local worker processes (default: one per CPU, at most one per text);
            1 runs here.
        backend: ``local`` or ``dask``.
        address: The Dask scheduler, for ``dask``.
    """
    if backend == "dask":
        return _dask(texts, address or "")
    return _local(texts, min(workers or os.cpu_count() or 1, max(1, len(texts))))


def write_point(out: Path, point: Point, outcome: dict[str, Any]) -> None:
    """Write a point's directory whole: its run and point.json, or its error."""
    from sim.outputs import write_directory
    from sim.results import write_run_files

    record = {"key": point.key, "seed": point.seed, "overrides": list(point.overrides)}
    text = json.dumps(record, indent=2) + "\n"

    def fill(directory: Path) -> None:
        (directory / "point.json").write_text(text, encoding="utf-8")
        if outcome["ok"]:
            write_run_files(outcome["result"], directory)
        else:
            (directory / "error.txt").write_text(outcome["error"] + "\n", encoding="utf-8")

    write_directory(out / "points" / point.key, None, fill)


def remove_stale(out: Path, points: list[Point]) -> None:
    """Remove point directories of other sweeps, and temporary ones a killed sweep left."""
    from sim.outputs import remove_temporaries

    points_dir = out / "points"
    remove_temporaries(points_dir)
    keys = {p.key for p in points}
    for child in points_dir.iterdir():
        if child.name not in keys and child.is_dir():
            shutil.rmtree(child)


@dataclass
class SweepOutcome:
    """What :func:`sweep` did: points run now, skipped as finished, and failed."""

    out: Path
    ran: int
    skipped: int
    failed: list[str]


def sweep(
    path: str | Path,
    out: str | Path,
    overrides: Sequence[str] = (),
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepOutcome:
    """Run every unfinished point of the scenario's sweep and gather the results.

    Args:
        path: The scenario file (with a ``sweep`` block).
        out: The sweep directory; points already finished there are skipped, those
            not in this sweep are removed.
        overrides: Applied to every point before its own.
        workers: Local worker processes (default: one per CPU); 1 runs here.
        backend: ``local`` or ``dask``.
        address: The Dask scheduler (``tcp://HOST:PORT``) for ``dask``.
        progress: Called with ``(done, total)`` as points finish.

    Raises:
        ScenarioError: If the sweep or a point is bad, or the backend cannot be used.
        sim.outputs.OutputError: If ``out`` holds something other than a sweep, or cannot
            be written; checked before any point runs.
    """
    check_backend(backend, address)
    scenario, points = prepare(path, overrides)
    from sim.outputs import claim_directory

    out = claim_directory(out, "sweep")
    (out / "points").mkdir(exist_ok=True)
    remove_stale(out, points)
    todo = [p for p in points if not finished(out, p)]
    skipped = len(points) - len(todo)
    outcomes = run_texts([p.text for p in todo], workers, backend, address)
    failed: list[str] = []
    if progress is not None:
        progress(0, len(todo))
    for done, (index, outcome) in enumerate(outcomes, start=1):
        write_point(out, todo[index], outcome)
        if not outcome["ok"]:
            failed.append(todo[index].key)
        if progress is not None:
            progress(done, len(todo))
    gather(out, scenario, points)
    return SweepOutcome(out, len(todo), skipped, sorted(failed))


def gather(out: Path, scenario: Scenario, points: list[Point]) -> None:
    """Write points.parquet, results.parquet, table.parquet and sweep.json from the points."""
    paths = list(points[0].parameters) if points else []
    write_tables(out, paths, points)
    document = {
        "scenario": scenario.name,
        "paths": paths,
        "points": [{"key": p.key, "seed": p.seed, "parameters": p.parameters} for p in points],
    }
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(out / "sweep.json", lambda p: Path(p).write_text(text, encoding="utf-8"))


def write_tables(out: Path, paths: list[str], points: list[Point]) -> None:
    """Write points.parquet, results.parquet and table.parquet from the points' directories.

    Args:
        out: The sweep's (or plan's) directory.
        paths: The varied paths (each point's ``parameters`` keys).
        points: The points, in order.
    """
    import pandas as pd

    rows, results = [], []
    for point in points:
        directory = out / "points" / point.key
        base = {"key": point.key, "seed": point.seed, **point.parameters}
        if finished(out, point):
            summary = read_summary(out, point)
            rows.append({**base, "status": "done", "error": None})
            results.extend(
                {**base, "metric": metric, "value": value}
                for metric, value in sorted(metric_values(summary).items())
            )
        elif (directory / "error.txt").exists():
            error = (directory / "error.txt").read_text(encoding="utf-8").strip()
            rows.append({**base, "status": "failed", "error": error})
        else:
            rows.append({**base, "status": "pending", "error": None})
    columns = ["key", "seed", *paths]
    table = pd.DataFrame(rows, columns=[*columns, "status", "error"])
    atomic_write(out / "points.parquet", lambda p: table.to_parquet(p, index=False))
    tidy = pd.DataFrame(results, columns=[*columns, "metric", "value"])
    atomic_write(out / "results.parquet", lambda p: tidy.to_parquet(p, index=False))
    per_point = points_table(tidy, paths)
    atomic_write(out / "table.parquet", lambda p: per_point.to_parquet(p, index=False))
