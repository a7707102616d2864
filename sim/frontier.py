"""Revenue against the tail: the Pareto front of a sweep's or a plan's points.

A provider selling more of its surplus earns more and, past some point, makes a
tenant's tail worse. Over the points of a sweep or plan (each one combination of
the varied values, run on several seeds), this module sets each point's mean net
revenue (``revenue_usd``, net of SLA credits) against one tenant's tail: by default
its P99 iteration slowdown, or its *breach probability* (one minus the probability
over seeds that its SLA terms held, with Wilson's interval), or any metric of the
results. A point is on the *Pareto front* when no other point earns at least as
much with a tail at most as bad, and is better in one of the two
(:func:`pareto_front`): those are the only points a provider should choose among.

:func:`frontier_points` reads a sweep or plan directory into one row per point and
:func:`draw_frontier` draws it; ``surplus plot DIR --kind frontier --tenant NAME``
does both (:func:`sim.plotting.plot`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.points_table import HELD, HOLD_PROBABILITY, points_table, read_points

if TYPE_CHECKING:  # matplotlib and pandas load when a plot is drawn
    import pandas as pd
    from matplotlib.axes import Axes

BREACH = "breach"
"""``--tail`` for a tenant's breach probability, ``1 − P(its terms held)``."""

REVENUE = "revenue_usd"
"""The revenue the front maximises: the run's, net of SLA credits."""

FRONT_COLOR = "#c44e52"
OTHER_COLOR = "#8c8c8c"


class FrontierError(ValueError):
    """A directory, tenant or tail the frontier cannot be drawn from; one line."""


def pareto_front(tail: Any, revenue: Any) -> np.ndarray:
    """Which points no other point dominates (lower tail is better, higher revenue is).

    Point ``j`` dominates point ``i`` when ``revenue[j] >= revenue[i]`` and
    ``tail[j] <= tail[i]``, one of them strictly. Equal points do not dominate each
    other, so duplicates on the front are all on it.

    Args:
        tail: Each point's tail (e.g. a P99 or a breach probability), finite.
        revenue: Each point's revenue, finite, as long as ``tail``.

    Returns:
        A boolean mask, True for the points on the front.
    """
    tail = np.asarray(tail, dtype=float)
    revenue = np.asarray(revenue, dtype=float)
    if tail.shape != revenue.shape or tail.ndim != 1:
        raise ValueError("tail and revenue must be 1-D arrays of one length")
    front = np.zeros(tail.size, dtype=bool)
    order = np.lexsort((-revenue, tail))  # by tail, then the highest revenue first
    best = -np.inf  # the highest revenue of any point with a strictly lower tail
    start = 0
    while start < order.size:
        stop = start
        while stop < order.size and tail[order[stop]] == tail[order[start]]:
            stop += 1
        group = order[start:stop]
        top = revenue[group[0]]
        if top > best:  # no lower tail earns as much, and within the tail none earns more
            front[group[revenue[group] == top]] = True
        best = max(best, top)
        start = stop
    return front


def _tenants(folder: Path, results: pd.DataFrame) -> list[str]:
    """The tenants of the directory's runs, from a finished point's ``summary.json``."""
    for key in dict.fromkeys(results["key"]) if "key" in results else []:
        path = folder / "points" / str(key) / "summary.json"
        if path.is_file():
            summary = json.loads(path.read_text(encoding="utf-8"))
            return sorted(summary.get("tenants", {}))
    return []


def _label(paths: list[str], values: dict[str, Any]) -> str:
    """A point's varied values, each path by its last part unless two share it."""
    ends = [path.rsplit(".", 1)[-1] for path in paths]
    names = [end if ends.count(end) == 1 else path for path, end in zip(paths, ends, strict=True)]
    return ", ".join(f"{name}={values[path]}" for name, path in zip(names, paths, strict=True))


def frontier_points(
    directory: str | Path, tenant: str, tail: str | None = None
) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """One row per point of a sweep or plan: the tenant's tail, the revenue, on the front.

    Args:
        directory: A sweep directory (``surplus sweep``) or plan directory (``surplus plan``).
        tenant: The tenant whose tail is the x axis.
        tail: :data:`BREACH`, a results metric, or None for
            ``tenants.TENANT.iteration_slowdown_p99``.

    Returns:
        The points (columns ``label``, ``tail``, ``tail_low``, ``tail_high``, ``revenue``,
        ``revenue_low``, ``revenue_high``, ``front``; the intervals NaN with one seed, and
        cut where the metric cannot go: a slowdown below 1, a figure never negative below 0),
        the tail metric (``tenants.TENANT.sla_held_probability`` for a breach), and the
        directory's ``sweep.json`` or ``plan.json``.

    Raises:
        FrontierError: Not a sweep or plan directory, no finished point, an unknown
            tenant (the known ones listed), or a tail no point has.
    """
    import pandas as pd

    folder = Path(directory)
    try:
        document, results = read_points(folder)
    except FileNotFoundError:
        raise FrontierError(
            f"{folder}: not a sweep or plan directory (no sweep.json or plan.json with "
            "results.parquet)"
        ) from None
    if results.empty:
        raise FrontierError(f"{folder}: no finished points (results.parquet is empty)")
    tenants = _tenants(folder, results)
    if tenant not in tenants:
        known = ", ".join(tenants) or "none"
        raise FrontierError(f"--tenant: no tenant {tenant!r} in {folder} (tenants: {known})")
    paths = [str(p) for p in document.get("paths", [])]
    table = points_table(results, paths)
    breach = tail == BREACH
    metric = (
        f"tenants.{tenant}.{HOLD_PROBABILITY}"
        if breach
        else tail or f"tenants.{tenant}.iteration_slowdown_p99"
    )
    own = table[table["metric"] == metric]
    if own.empty:
        if breach:
            raise FrontierError(
                f"--tail breach: tenant {tenant!r} has no SLA verdict in any point (no "
                f"`sla` in its contract, or every verdict null; see metric tenants.{tenant}."
                f"{HELD})"
            )
        raise FrontierError(f"--tail: no point has the metric {metric!r}")
    money = table[table["metric"] == REVENUE]
    suffixes = ("_tail", "_revenue")
    joined = (  # nothing varied: one point, one row each
        own.merge(money, on=paths, suffixes=suffixes)
        if paths
        else own.merge(money, how="cross", suffixes=suffixes)
    )
    if joined.empty:
        raise FrontierError(f"{folder}: no point has both {metric!r} and {REVENUE!r}")
    mean, low, high = (joined[f"{c}_tail"].to_numpy(dtype=float) for c in ("mean", "low", "high"))
    if breach:
        mean, low, high = 1.0 - mean, 1.0 - high, 1.0 - low
    low = np.maximum(low, _floor(metric, results))
    money_low = np.maximum(joined["low_revenue"].to_numpy(dtype=float), _floor(REVENUE, results))
    points = pd.DataFrame(
        {
            "label": [_label(paths, row) for row in joined[paths].to_dict("records")],
            "tail": mean,
            "tail_low": low,
            "tail_high": high,
            "revenue": joined["mean_revenue"].to_numpy(dtype=float),
            "revenue_low": money_low,
            "revenue_high": joined["high_revenue"].to_numpy(dtype=float),
        }
    )
    points["front"] = pareto_front(points["tail"], points["revenue"])
    return points, metric, document


def _floor(metric: str, results: pd.DataFrame) -> float:
    """The least value a metric can take, where an interval is cut: a slowdown is at least 1,
    a metric no run has seen below 0 is at least 0 (a Student-t interval over few seeds
    can reach past either); otherwise none."""
    if "slowdown" in metric:
        return 1.0
    values = results.loc[results["metric"] == metric, "value"]
    return 0.0 if values.empty or bool((values >= 0).all()) else -np.inf


def _errors(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Error bar lengths below and above each point's ``column`` (0 without an interval)."""
    mean, low, high = (
        rows[c].to_numpy(dtype=float) for c in (column, f"{column}_low", f"{column}_high")
    )
    below = np.where(np.isnan(low), 0.0, np.maximum(mean - low, 0.0))
    above = np.where(np.isnan(high), 0.0, np.maximum(high - mean, 0.0))
    return np.vstack([below, above])


def draw_frontier(ax: Axes, points: pd.DataFrame, tail_label: str, revenue_label: str) -> Axes:
    """Revenue against the tail, 95 % intervals as error bars, the Pareto front marked.

    The front's points are drawn dark and joined by a step line (the most revenue to be
    had at each tail), the dominated ones lighter; every point is labelled with its
    varied values.

    Args:
        ax: Where to draw.
        points: :func:`frontier_points`'s table.
        tail_label: The x axis' title.
        revenue_label: The y axis' title.
    """
    for on_front, color, name in ((False, OTHER_COLOR, "dominated"), (True, FRONT_COLOR, "")):
        rows = points[points["front"] == on_front]
        if rows.empty:
            continue
        x, y = rows["tail"].to_numpy(dtype=float), rows["revenue"].to_numpy(dtype=float)
        ax.errorbar(
            x, y, xerr=_errors(rows, "tail"), yerr=_errors(rows, "revenue"),
            fmt="o", color=color, alpha=1.0 if on_front else 0.45, capsize=3,
            markersize=7 if on_front else 5, zorder=3 if on_front else 2,
            label=name or f"Pareto front ({len(rows)} of {len(points)} points)",
        )  # fmt: skip
        for label, px, py in zip(rows["label"], x, y, strict=True):
            ax.annotate(label, (px, py), xytext=(4, 4), textcoords="offset points", fontsize=7,
                        color=color, alpha=1.0 if on_front else 0.7)  # fmt: skip
    front = points[points["front"]].sort_values(["tail", "revenue"])
    if len(front) > 1:
        ax.step(
            front["tail"],
            front["revenue"],
            where="post",
            color=FRONT_COLOR,
            lw=1,
            ls="--",
            alpha=0.7,
            zorder=1,
        )
    ax.set_xlabel(tail_label)
    ax.set_ylabel(revenue_label)
    ax.yaxis.set_major_formatter("{x:,.0f}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax
