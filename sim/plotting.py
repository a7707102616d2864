"""Plots of runs and comparisons, drawn from the files they write.

Every function takes a matplotlib ``Axes`` and the table it draws, draws on
it, and returns it, so notebooks compose them freely; :func:`plot` reads a run
or comparison directory, lays out a figure for one kind of plot and saves it
(PNG or SVG by the file's suffix). The kinds:

``latency``
    Request latency CDF and CCDF on log axes, one curve per tenant (a run) or
    per policy (a comparison), P99 and P99.9 marked
    (``inference_latency.parquet``, or a comparison's ``latency.parquet``).
``allocation``
    GPUs by class over time, stacked (internal, reserved, on-demand, spot,
    idle, spare, down, parked), with each site's power draw if it has a power
    block (``timeseries.parquet``, ``power.parquet``).
``pfc``
    PFC pause fraction over time by link tier, and for the most paused ports
    (``pfc.parquet``).
``bars``
    One bar per policy for each chosen metric, with its 95 % confidence
    interval (``comparison.parquet``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # matplotlib and pandas load when a plot is drawn
    import pandas as pd
    from matplotlib.axes import Axes

KINDS = ("latency", "allocation", "pfc", "bars")
"""What :func:`plot` can draw."""

CLASS_COLORS = {
    "internal": "#4c72b0",
    "reserved": "#8172b3",
    "on_demand": "#55a868",
    "spot": "#ccb974",
    "idle": "#dddddd",
    "spare": "#b0b0b0",
    "down": "#c44e52",
    "parked": "#555555",
}
"""Colours of the GPU classes, in stacking order."""

MARKED_QUANTILES = (0.99, 0.999)
"""Quantiles marked on latency plots."""


class PlotError(ValueError):
    """A directory holds nothing the plot asked for can be drawn from."""


def histogram_quantile(low: np.ndarray, high: np.ndarray, weight: np.ndarray, q: float) -> float:
    """Quantile ``q`` of a histogram of log-spaced bins, log-linear inside the bin.

    Args:
        low: Each bin's lower edge (ms), in increasing order.
        high: Its upper edge.
        weight: Its weight (requests).
        q: In (0, 1).
    """
    cumulative = np.cumsum(weight)
    target = q * cumulative[-1]
    index = min(int(np.searchsorted(cumulative, target, side="left")), weight.size - 1)
    before = cumulative[index - 1] if index > 0 else 0.0
    from sim.workloads.latency_histogram import log_interpolate

    fraction = (target - before) / weight[index] if weight[index] > 0 else 1.0
    fraction = min(1.0, max(0.0, fraction))
    return log_interpolate(float(low[index]), float(high[index]), fraction)


def latency_cdf(
    ax: Axes,
    histograms: pd.DataFrame,
    by: str = "tenant",
    *,
    ccdf: bool = False,
    marks: Sequence[float] = MARKED_QUANTILES,
) -> Axes:
    """Latency CDF (or CCDF, for tails) per group, log latency axis, quantiles marked.

    Args:
        ax: Where to draw.
        histograms: ``latency_ms_low``, ``latency_ms_high``, ``requests`` and the
            ``by`` column (the layout of ``inference_latency.parquet``); rows of
            one group may come from several runs (they are added up).
        by: The column that names a curve.
        ccdf: Draw ``P(latency > x)`` on a log axis instead of ``P(latency <= x)``.
        marks: Quantiles to mark with a dot and a label.
    """
    for name in sorted(histograms[by].unique()):
        rows = histograms[histograms[by] == name]
        bins = rows.groupby(["latency_ms_low", "latency_ms_high"], sort=True)["requests"].sum()
        low = bins.index.get_level_values(0).to_numpy(dtype=float)
        high = bins.index.get_level_values(1).to_numpy(dtype=float)
        weight = bins.to_numpy(dtype=float)
        share = np.cumsum(weight) / weight.sum()
        x = np.concatenate([[low[0]], high])
        y = np.concatenate([[0.0], share])
        if ccdf:
            y = 1.0 - y
            keep = y > 0
            (line,) = ax.step(x[keep], y[keep], where="post", label=str(name))
        else:
            (line,) = ax.step(x, y, where="post", label=str(name))
        for q in marks:
            value = histogram_quantile(low, high, weight, q)
            level = 1.0 - q if ccdf else q
            ax.plot([value], [level], "o", color=line.get_color(), markersize=4)
            if not ccdf:
                continue  # labelled on the CCDF, where the tail has room
            ax.annotate(
                f"P{100 * q:g} {value:,.0f} ms",
                (value, level),
                textcoords="offset points",
                xytext=(5, -10),
                fontsize=7,
                color=line.get_color(),
            )
    ax.set_xscale("log")
    if ccdf:
        ax.set_yscale("log")
        ax.set_ylabel("P(latency > x)")
    else:
        ax.set_ylabel("P(latency ≤ x)")
        ax.set_ylim(0, 1.02)
    ax.set_xlabel("request latency (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def allocation(ax: Axes, timeseries: pd.DataFrame, horizon_hours: float) -> Axes:
    """GPUs by class over time, stacked (a step function up to the horizon).

    Args:
        ax: Where to draw.
        timeseries: ``time_hours`` and one column per class (``timeseries.parquet``).
        horizon_hours: Where the last step ends.
    """
    times = np.append(timeseries["time_hours"].to_numpy(dtype=float), horizon_hours)
    classes = [c for c in CLASS_COLORS if c in timeseries and timeseries[c].any()]
    values = [
        np.append(timeseries[c].to_numpy(dtype=float), timeseries[c].iloc[-1]) for c in classes
    ]
    ax.stackplot(
        times,
        *values,
        labels=[c.replace("_", "-") for c in classes],
        colors=[CLASS_COLORS[c] for c in classes],
        step="post",
    )
    ax.set_xlim(0, horizon_hours)
    ax.set_ylim(0, float(np.sum([v[0] for v in values])) * 1.02 if values else 1)
    ax.set_xlabel("hours")
    ax.set_ylabel("GPUs")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncols=len(classes))
    return ax


def power_draw(ax: Axes, power: pd.DataFrame, horizon_hours: float) -> Axes:
    """Each site's power draw over time (MW, a step function).

    Args:
        ax: Where to draw (e.g. ``allocation_axes.twinx()``).
        power: ``time_hours``, ``site``, ``power_mw`` (``power.parquet``).
        horizon_hours: Where the last step ends.
    """
    for site in sorted(power["site"].unique()):
        rows = power[power["site"] == site]
        style = {"color": "black", "lw": 1, "label": f"{site} MW"}
        _steps(ax, rows["time_hours"], rows["power_mw"], horizon_hours, **style)
    ax.set_ylabel("power draw (MW)")
    ax.set_ylim(0, float(power["power_mw"].max()) * 1.25)
    ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    return ax


def pfc_by_tier(ax: Axes, pfc: pd.DataFrame, horizon_hours: float) -> Axes:
    """Mean pause fraction of each link tier's busy links over time, per cluster.

    Args:
        ax: Where to draw.
        pfc: The ``pfc.parquet`` table (rows of ``kind`` "tier" are used).
        horizon_hours: Where the last step ends.
    """
    tiers = pfc[pfc["kind"] == "tier"]
    for (cluster, tier), rows in sorted(tiers.groupby(["cluster", "name"])):
        label = tier if tiers["cluster"].nunique() == 1 else f"{cluster} {tier}"
        _steps(ax, rows["time_hours"], rows["pause_fraction"], horizon_hours, label=label)
    return _over_time(ax, horizon_hours, "PFC pause fraction (busy links)", legend_size=8)


def pfc_by_port(ax: Axes, pfc: pd.DataFrame, horizon_hours: float, ports: int = 8) -> Axes:
    """Pause fraction over time of the ports most paused over the run.

    A port is shown at its pause while it is among an epoch's most paused
    ports (``pfc.parquet`` keeps each epoch's 20), and at 0 otherwise.

    Args:
        ax: Where to draw.
        pfc: The ``pfc.parquet`` table (rows of ``kind`` "port" are used).
        horizon_hours: Where the last step ends.
        ports: How many ports to show.
    """
    rows = pfc[pfc["kind"] == "port"]
    if rows.empty:
        ax.text(0.5, 0.5, "no port was paused", ha="center", transform=ax.transAxes)
        return ax
    changes = {  # each cluster's own change times: a row holds until its cluster's next one
        cluster: np.sort(own["time_hours"].unique()) for cluster, own in pfc.groupby("cluster")
    }
    spans = {
        cluster: dict(zip(times, np.diff(np.append(times, horizon_hours)), strict=True))
        for cluster, times in changes.items()
    }
    hours = [spans[c][t] for c, t in zip(rows["cluster"], rows["time_hours"], strict=True)]
    weight = rows["pause_fraction"] * np.asarray(hours)
    top = weight.groupby([rows["cluster"], rows["name"]]).sum().nlargest(ports).index
    for cluster, name in top:
        own = rows[(rows["cluster"] == cluster) & (rows["name"] == name)]
        times = changes[cluster]
        series = own.set_index("time_hours")["pause_fraction"].reindex(times, fill_value=0.0)
        _steps(ax, times, series.to_numpy(dtype=float), horizon_hours, label=name)
    return _over_time(ax, horizon_hours, "PFC pause fraction (port)", legend_size=6)


def policy_bars(
    ax: Axes, table: pd.DataFrame, metric: str, policies: Sequence[str] | None = None
) -> Axes:
    """One bar per policy for ``metric``: its mean, with the 95 % confidence interval.

    Args:
        ax: Where to draw.
        table: ``comparison.parquet`` (``policy``, ``metric``, ``mean``, ``ci_low``, ``ci_high``).
        metric: The metric.
        policies: Their order (default: as in the table, the baseline first).
    """
    rows = table[table["metric"] == metric].set_index("policy")
    if rows.empty:
        raise PlotError(f"no metric {metric!r} in the comparison")
    names = list(policies) if policies is not None else list(rows.index)
    means = rows.loc[names, "mean"].to_numpy(dtype=float)
    low = rows.loc[names, "ci_low"].to_numpy(dtype=float)
    high = rows.loc[names, "ci_high"].to_numpy(dtype=float)
    errors = np.vstack(
        [means - np.where(np.isnan(low), means, low), np.where(np.isnan(high), means, high) - means]
    )
    ax.bar(names, means, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_title(metric, fontsize=9)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def _steps(ax: Axes, times: Any, values: Any, horizon_hours: float, **style: Any) -> None:
    """A step function: each value from its time to the next, the last to the horizon."""
    values = np.asarray(values, dtype=float)
    ends = np.append(np.asarray(times, dtype=float), horizon_hours)
    ax.step(ends, np.append(values, values[-1]), where="post", **style)


def _over_time(ax: Axes, horizon_hours: float, ylabel: str, legend_size: int) -> Axes:
    """Axes of a quantity over the run: hours from 0 to the horizon, values from 0."""
    ax.set_xlim(0, horizon_hours)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("hours")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)
    return ax


def _read(path: Path, what: str):
    import pandas as pd

    if not path.exists():
        raise PlotError(f"{path.parent}: no {path.name}: {what}")
    return pd.read_parquet(path)


def plot(
    directory: str | Path,
    kind: str,
    out: str | Path,
    metrics: Sequence[str] = (),
) -> Path:
    """Draw one kind of plot of a run or comparison directory and save it.

    Args:
        directory: What ``surplus run --out`` or ``surplus compare --out`` wrote.
        kind: One of :data:`KINDS`.
        out: The image file; its suffix (``.png`` or ``.svg``) sets the format.
        metrics: For ``bars``, the metrics (default: those ``surplus compare`` prints).

    Returns:
        The image's path.

    Raises:
        PlotError: If the directory has nothing to draw this kind from.
    """
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.files import atomic_write

    folder = Path(directory)
    out = Path(out)
    if kind not in KINDS:
        raise PlotError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    if out.suffix.lower() not in (".png", ".svg"):
        raise PlotError(f"--out: {out.name}: the image must end in .png or .svg")
    is_comparison = (folder / "comparison.json").exists()
    if not is_comparison and not (folder / "summary.json").exists():
        raise PlotError(f"{folder}: neither a run directory (summary.json) nor a comparison")
    if is_comparison:
        document = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
        title = f"{document['scenario']} ({len(document['seeds'])} seeds per policy)"
    else:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        horizon = float(summary["horizon_hours"])
        title = f"{summary['scenario']} (seed {summary['seed']}, {horizon:g} h)"
    if kind in ("allocation", "pfc") and is_comparison:
        raise PlotError(f"{folder}: --kind {kind} draws a run directory, not a comparison")
    if kind == "bars" and not is_comparison:
        raise PlotError(f"{folder}: --kind bars draws a comparison directory (surplus compare)")

    if kind == "latency":
        if is_comparison:
            table = _read(folder / "latency.parquet", "no policy served a model")
            by = "policy"
        else:
            table = _read(folder / "inference_latency.parquet", "the run served no model")
            by = "tenant"
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        latency_cdf(left, table, by)
        latency_cdf(right, table, by, ccdf=True)
    elif kind == "allocation":
        fig, ax = plt.subplots(figsize=(10, 4.5))
        allocation(ax, _read(folder / "timeseries.parquet", "not a run directory"), horizon)
        if (folder / "power.parquet").exists():
            power_draw(ax.twinx(), _read(folder / "power.parquet", ""), horizon)
    elif kind == "pfc":
        table = _read(folder / "pfc.parquet", "no cluster's fabric has PFC")
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
        pfc_by_tier(top, table, horizon)
        pfc_by_port(bottom, table, horizon)
    else:
        from sim.report import COMPARED

        table = _read(folder / "comparison.parquet", "not a comparison directory")
        chosen = list(metrics) or [m for m in COMPARED if (table["metric"] == m).any()]
        unknown = [m for m in chosen if not (table["metric"] == m).any()]
        if unknown:
            raise PlotError(f"--metric: {unknown[0]!r} is not in this comparison")
        columns = min(3, len(chosen))
        rows = math.ceil(len(chosen) / columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
        policies = list(document["policies"])
        for ax, metric in zip(axes.ravel(), chosen, strict=False):
            policy_bars(ax, table, metric, policies)
        for ax in axes.ravel()[len(chosen) :]:
            ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda p: fig.savefig(p, format=out.suffix.lower()[1:], dpi=120))
    plt.close(fig)
    return out
