"""The results table of a sweep or plan: each point's metrics over its seeds, with intervals.

A *point* is one combination of the swept (or planned) values, run on several seeds.
Per point and metric the table gives the number of seeds ``n``, the mean and its
Student-t 95 % confidence interval (:func:`sim.compare.mean_interval`). For every tenant
with SLA terms it adds the probability over seeds that its terms held, as the metric
``tenants.NAME.sla_held_probability``, with the Wilson 95 % score interval
(:func:`sim.compare.wilson_interval`): ``n`` counts the seeds with a verdict, ``mean``
is the share that held, ``low`` and ``high`` the interval.

The per-seed numbers are :func:`sim.compare.metric_values`: every number of a run's
summary, each tenant's verdict ``sla_held`` among them as 1.0 (held) or 0.0 (broke) under
``tenants.NAME.sla_held``; a null verdict (no terms, or a term that could not be measured
and none broke) is left out.

A directory of points (a sweep's, or a plan's) holds ``results.parquet`` (tidy: key,
seed, one column per varied path, metric, value) and ``sweep.json`` or ``plan.json``,
whose ``paths`` names the varied path columns; :func:`read_points` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.compare import mean_interval, wilson_interval

if TYPE_CHECKING:  # pandas loads when a table is built
    import pandas as pd

HELD = "sla_held"
"""A tenant's per-seed verdict in the results: 1.0 held, 0.0 broke."""

HOLD_PROBABILITY = "sla_held_probability"
"""A tenant's probability over seeds that its terms held, in the table."""

DOCUMENTS = ("sweep.json", "plan.json")
"""The files that make a directory a sweep's or a plan's, with its ``paths``."""

COLUMNS = ("metric", "n", "mean", "low", "high")
"""The table's columns after the varied paths."""


def points_table(results: pd.DataFrame, paths: Sequence[str]) -> pd.DataFrame:
    """Per point and metric: seeds, mean and 95 % interval; per SLA tenant, its hold probability.

    Args:
        results: Tidy results: ``seed``, the ``paths`` columns, ``metric``, ``value``
            (``results.parquet`` of a sweep or plan).
        paths: The columns that name a point (its varied values).

    Returns:
        Columns: the ``paths``, then :data:`COLUMNS`. Points in the order they first appear
        in ``results``, metrics in name order within a point; each
        ``tenants.NAME.sla_held`` row is followed by ``tenants.NAME.sla_held_probability``
        (mean = share held, ``low``/``high`` Wilson's). An interval is null with one seed.
    """
    import pandas as pd

    paths = list(paths)
    rows: list[dict[str, Any]] = []
    if not results.empty:
        groups = results.groupby(paths, sort=False, dropna=False) if paths else [((), results)]
        for group, frame in groups:  # no varied path: every seed is one point
            values = dict(zip(paths, group, strict=True))
            for metric, own in frame.groupby("metric", sort=True)["value"]:
                sample = own.to_numpy(dtype=float)
                mean, low, high = mean_interval(sample)
                rows.append({**values, "metric": metric, "n": int(sample.size),
                             "mean": mean, "low": low, "high": high})  # fmt: skip
                if str(metric).startswith("tenants.") and str(metric).endswith(f".{HELD}"):
                    held = round(float(sample.sum()))
                    p, p_low, p_high = wilson_interval(held, int(sample.size))
                    name = str(metric).removesuffix(HELD) + HOLD_PROBABILITY
                    rows.append({**values, "metric": name, "n": int(sample.size),
                                 "mean": p, "low": p_low, "high": p_high})  # fmt: skip
    table = pd.DataFrame(rows, columns=[*paths, *COLUMNS])
    return table.astype({"n": "int64", "mean": float, "low": float, "high": float})


def points_document(directory: Path) -> dict[str, Any] | None:
    """The ``sweep.json`` or ``plan.json`` of a directory of points (None if it has neither)."""
    for name in DOCUMENTS:
        path = Path(directory) / name
        if path.is_file():
            document = json.loads(path.read_text(encoding="utf-8"))
            return document if isinstance(document, dict) else None
    return None


def read_points(directory: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """A sweep's or plan's document (``sweep.json`` or ``plan.json``) and its results.

    Raises:
        FileNotFoundError: If the directory has neither document or no ``results.parquet``.
    """
    import pandas as pd

    document = points_document(directory)
    results = Path(directory) / "results.parquet"
    if document is None or not results.is_file():
        raise FileNotFoundError(f"{directory}: not a sweep or plan directory")
    return document, pd.read_parquet(results)
