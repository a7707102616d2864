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
    (``pfc.parquet``); on InfiniBand the credit stall fraction, from the same
    table of credit stalls (``credit.parquet``).
``heatmap``
    PFC pause (or credit stall) fraction of the most paused ports (rows) over
    time (columns), one cell per port and fabric epoch (``pfc.parquet``, or
    ``credit.parquet``).
``timeline``
    Every job as a bar from its first start to its end, in one lane per
    tenant, with its wait in the queue before it (``jobs.parquet``).
``bars``
    One bar per policy for each chosen metric, with its 95 % confidence
    interval (``comparison.parquet``), titled by what the metric is and its unit.
``frontier``
    A sweep's or plan's points: net revenue against one tenant's tail (P99 slowdown,
    breach probability or any metric), 95 % intervals, the Pareto front marked
    (:mod:`sim.frontier`; ``results.parquet``).
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

KINDS = ("latency", "allocation", "pfc", "heatmap", "timeline", "bars", "frontier")
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
    floor = 1.0
    labels = []
    for name in sorted(histograms[by].unique()):
        rows = histograms[histograms[by] == name]
        bins = rows.groupby(["latency_ms_low", "latency_ms_high"], sort=True)["requests"].sum()
        low = bins.index.get_level_values(0).to_numpy(dtype=float)
        high = bins.index.get_level_values(1).to_numpy(dtype=float)
        weight = bins.to_numpy(dtype=float)
        total = float(weight.sum())
        share = np.cumsum(weight) / total
        x = np.concatenate([[low[0]], high])
        y = np.concatenate([[0.0], share])
        if ccdf:
            # Below one request in N, 1 - share is the running sum's rounding residue.
            y = 1.0 - y
            keep = y >= (1.0 - 1e-9) / total
            floor = min(floor, float(y[keep].min()))
            (line,) = ax.step(x[keep], y[keep], where="post", label=str(name))
        else:
            (line,) = ax.step(x, y, where="post", label=str(name))
        for q in marks:
            value = histogram_quantile(low, high, weight, q)
            level = 1.0 - q if ccdf else q
            ax.plot([value], [level], "o", color=line.get_color(), markersize=4)
            if ccdf:  # labelled on the CCDF, where the tail has room
                labels.append((f"P{100 * q:g} {value:,.0f} ms", value, level, line.get_color()))
    ax.set_xscale("log")
    if ccdf:
        ax.set_yscale("log")
        ax.set_ylabel("P(latency > x)")
        ax.set_ylim(floor / 2, 1.5)
    else:
        ax.set_ylabel("P(latency ≤ x)")
        ax.set_ylim(0, 1.02)
    for text, value, level, color in labels:
        # Below and to the left of its dot: under a falling CCDF, and inside the axes.
        ax.annotate(
            text,
            (value, level),
            textcoords="offset points",
            xytext=(-5, -3),
            ha="right",
            va="top",
            fontsize=7,
            color=color,
            annotation_clip=True,
        )
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


def power_draw(
    ax: Axes, power: pd.DataFrame, horizon_hours: float, caps_mw: dict[str, float] | None = None
) -> Axes:
    """Each site's power draw over time (MW, a step function), and its cap.

    Args:
        ax: Where to draw (e.g. ``allocation_axes.twinx()``).
        power: ``time_hours``, ``site``, ``power_mw`` (``power.parquet``).
        horizon_hours: Where the last step ends.
        caps_mw: Each capped site's grid connection (MW), drawn as a dashed line.
    """
    caps_mw = caps_mw or {}
    sites = sorted(power["site"].unique())
    several = len(sites) > 1
    for index, site in enumerate(sites):
        rows = power[power["site"] == site]
        color = "black" if not several else f"C{index}"
        style = {"color": color, "lw": 1, "label": f"{site} draw"}
        _steps(ax, rows["time_hours"], rows["power_mw"], horizon_hours, **style)
        if site in caps_mw:
            ax.axhline(caps_mw[site], color=color, lw=1, ls="--", label=f"{site} cap")
    ax.set_ylabel("power draw (MW)")
    top = max([float(power["power_mw"].max()), *caps_mw.values()])
    ax.set_ylim(0, top * 1.25)
    ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    return ax


def power_caps(resolved: dict[str, Any]) -> dict[str, float]:
    """Each site's ``power.cap_mw`` from a run's ``resolved.yaml`` (sites without a cap left out).

    Args:
        resolved: The scenario as ``resolved.yaml`` holds it.
    """
    sites = (resolved.get("provider") or {}).get("sites") or []
    return {
        site["name"]: float(site["power"]["cap_mw"])
        for site in sites
        if (site.get("power") or {}).get("cap_mw") is not None
    }


PFC_LABEL = "PFC pause fraction"
"""What ``pause_fraction`` is in ``pfc.parquet``."""

CREDIT_LABEL = "credit stall fraction"
"""What ``pause_fraction`` is in ``credit.parquet`` (InfiniBand's credit stalls)."""


def pfc_by_tier(ax: Axes, pfc: pd.DataFrame, horizon_hours: float, label: str = PFC_LABEL) -> Axes:
    """Mean pause fraction of each link tier's busy links over time, per cluster.

    Args:
        ax: Where to draw.
        pfc: The ``pfc.parquet`` table (rows of ``kind`` "tier" are used), or
            ``credit.parquet``.
        horizon_hours: Where the last step ends.
        label: What the pause fraction is (:data:`CREDIT_LABEL` for credit stalls).
    """
    tiers = pfc[pfc["kind"] == "tier"]
    for (cluster, tier), rows in sorted(tiers.groupby(["cluster", "name"])):
        name = tier if tiers["cluster"].nunique() == 1 else f"{cluster} {tier}"
        _steps(ax, rows["time_hours"], rows["pause_fraction"], horizon_hours, label=name)
    return _over_time(ax, horizon_hours, f"{label} (busy links)", legend_size=8)


def pfc_by_port(
    ax: Axes, pfc: pd.DataFrame, horizon_hours: float, ports: int = 8, label: str = PFC_LABEL
) -> Axes:
    """Pause fraction over time of the ports most paused over the run.

    A port is shown at its pause while it is among an epoch's most paused
    ports (``pfc.parquet`` keeps each epoch's 20), and at 0 otherwise.

    Args:
        ax: Where to draw.
        pfc: The ``pfc.parquet`` table (rows of ``kind`` "port" are used).
        horizon_hours: Where the last step ends.
        ports: How many ports to show.
        label: What the pause fraction is (:data:`CREDIT_LABEL` for credit stalls).
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
    colors = _distinct_colors(len(top))
    for rank, (cluster, name) in enumerate(top):
        own = rows[(rows["cluster"] == cluster) & (rows["name"] == name)]
        times = changes[cluster]
        series = own.set_index("time_hours")["pause_fraction"].reindex(times, fill_value=0.0)
        # Ports often pause alike: wider lines first, so each one drawn over them leaves
        # the ones below it showing.
        width = 1.0 + 2.5 * (len(top) - 1 - rank) / max(1, len(top) - 1)
        style = {"label": name, "color": colors[rank], "lw": width}
        _steps(ax, times, series.to_numpy(dtype=float), horizon_hours, **style)
    _over_time(ax, horizon_hours, f"{label} (port)", legend_size=6)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax


def _distinct_colors(count: int) -> list[Any]:
    """``count`` colours told apart at a glance (tab10, then tab20)."""
    import matplotlib

    palette = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [palette(i % palette.N) for i in range(count)]


def pfc_ports_by_time(
    pfc: pd.DataFrame, horizon_hours: float, ports: int = 30
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The most paused ports' pause fraction at every change: the heatmap's data.

    ``pfc.parquet`` keeps each change's 20 most paused ports; a port is 0 where it
    was not among them (paused less than the 20th, or not at all).

    Args:
        pfc: The ``pfc.parquet`` table.
        horizon_hours: Where the last change's row ends.
        ports: How many ports, those with the most paused hours over the run.

    Returns:
        The time edges (the changes and the horizon, hours), the pause fraction as
        one row per port and one column per change, and each row's name (the port,
        after its cluster when there are several).
    """
    times = np.sort(pfc["time_hours"].unique())
    edges = np.append(times, horizon_hours)
    rows = pfc[pfc["kind"] == "port"]
    hours = rows["time_hours"].map(dict(zip(times, np.diff(edges), strict=True)))
    paused = (rows["pause_fraction"] * hours).groupby([rows["cluster"], rows["name"]]).sum()
    top = paused.nlargest(ports).index
    grid = np.zeros((len(top), times.size))
    column = {t: i for i, t in enumerate(times)}
    index = {port: i for i, port in enumerate(top)}
    for cluster, name, time, value in zip(
        rows["cluster"], rows["name"], rows["time_hours"], rows["pause_fraction"], strict=True
    ):
        row = index.get((cluster, name))
        if row is not None:
            grid[row, column[time]] = value
    several = pfc["cluster"].nunique() > 1
    names = [f"{cluster} {name}" if several else str(name) for cluster, name in top]
    return edges, grid, names


def pfc_heatmap(
    ax: Axes, pfc: pd.DataFrame, horizon_hours: float, ports: int = 30, label: str = PFC_LABEL
) -> Axes:
    """Pause fraction of the most paused ports (rows) over time (columns).

    Args:
        ax: Where to draw.
        pfc: The ``pfc.parquet`` table.
        horizon_hours: Where the last change's row ends.
        ports: How many ports (see :func:`pfc_ports_by_time`).
        label: What the pause fraction is (:data:`CREDIT_LABEL` for credit stalls).
    """
    edges, grid, names = pfc_ports_by_time(pfc, horizon_hours, ports)
    if not names:
        ax.text(0.5, 0.5, "no port was paused", ha="center", transform=ax.transAxes)
        return ax
    mesh = ax.pcolormesh(edges, np.arange(len(names) + 1), grid, cmap="magma_r", vmin=0.0, vmax=1.0)
    ax.set_yticks(np.arange(len(names)) + 0.5, names, fontsize=6)
    ax.invert_yaxis()  # the most paused port on top
    ax.set_xlim(0, horizon_hours)
    ax.set_xlabel("hours")
    ax.set_ylabel("port (most paused first)")
    bar = ax.figure.colorbar(mesh, ax=ax, pad=0.01)
    bar.set_label(f"{label} (0: not among the 20 most paused)")
    return ax


def job_lanes(jobs: pd.DataFrame, horizon_hours: float) -> pd.DataFrame:
    """Each started job's bar on the timeline: its tenant's lane and a row in it.

    Jobs of a tenant whose waits and runs overlap in time get different rows (the
    lowest free one, in order of start), so no bar or wait hides another.

    Args:
        jobs: ``jobs.parquet``.
        horizon_hours: The end of a job still running.

    Returns:
        One row per job that started: ``job_id``, ``tenant``, ``start_hours``,
        ``end_hours`` (the horizon if it has not ended), ``submit_hours``, ``gpus``,
        ``outcome`` and ``row`` (its row from the top, lanes in order of first
        submission, ``internal`` first).
    """
    started = jobs[jobs["start_hours"].notna()].copy()
    started["end_hours"] = started["end_hours"].fillna(horizon_hours)
    started = started.sort_values(["start_hours", "job_id"], kind="stable")
    tenants = list(dict.fromkeys(jobs.sort_values("submit_hours")["tenant"]))
    tenants.sort(key=lambda t: t != "internal")
    rows = np.zeros(len(started), dtype=int)
    base = 0
    for tenant in tenants:
        ends: list[float] = []  # each row's last end
        for position in np.flatnonzero((started["tenant"] == tenant).to_numpy()):
            start = float(started["submit_hours"].iloc[position])
            free = next((r for r, end in enumerate(ends) if end <= start), len(ends))
            if free == len(ends):
                ends.append(0.0)
            ends[free] = float(started["end_hours"].iloc[position])
            rows[position] = base + free
        base += max(1, len(ends))
    started["row"] = rows
    return started.reset_index(drop=True)


def job_timeline(ax: Axes, jobs: pd.DataFrame, horizon_hours: float) -> Axes:
    """Every job as a bar from its first start to its end, one lane per tenant.

    A thin line before a bar is the job's first wait in the queue; a bar ends at
    the horizon if the job still runs, and spans the time a preempted job spent
    queued again (``jobs.parquet`` keeps a job's first start and its end).

    Args:
        ax: Where to draw.
        jobs: ``jobs.parquet``.
        horizon_hours: Where the time axis ends.
    """
    lanes = job_lanes(jobs, horizon_hours)
    tenants = list(dict.fromkeys(lanes.sort_values("row")["tenant"]))
    colors = dict(zip(tenants, _distinct_colors(len(tenants)), strict=True))
    centres = []
    for tenant in tenants:
        own = lanes[lanes["tenant"] == tenant]
        ax.barh(
            own["row"],
            own["end_hours"] - own["start_hours"],
            left=own["start_hours"],
            height=0.8,
            color=colors[tenant],
            label=f"{tenant} ({len(own):,} jobs)",
        )
        waited = own[own["start_hours"] > own["submit_hours"]]
        ax.hlines(
            waited["row"], waited["submit_hours"], waited["start_hours"], color=colors[tenant],
            lw=0.6, alpha=0.6,
        )  # fmt: skip
        centres.append((own["row"].min() + own["row"].max()) / 2)
        ax.axhline(own["row"].max() + 0.5, color="#bbbbbb", lw=0.5)  # the lane's lower edge
    ax.set_yticks(centres, tenants, fontsize=8)
    ax.set_ylim(lanes["row"].max() + 0.6 if len(lanes) else 1, -0.6)
    ax.set_xlim(0, horizon_hours)
    ax.set_xlabel("hours")
    ax.set_ylabel("jobs by tenant")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax


def back_pressure_table(folder: Path) -> tuple[pd.DataFrame, str]:
    """A run's pauses by tier and port, and what they are: PFC pauses or credit stalls.

    ``pfc.parquet`` (PFC) and ``credit.parquet`` (InfiniBand) have the same columns;
    a run whose clusters have both gets them together, each cluster with its own.

    Raises:
        PlotError: If the run has neither (no lossless fabric).
    """
    import pandas as pd

    files = {PFC_LABEL: folder / "pfc.parquet", CREDIT_LABEL: folder / "credit.parquet"}
    tables = {label: pd.read_parquet(path) for label, path in files.items() if path.exists()}
    if not tables:
        raise PlotError(
            f"{folder}: no pfc.parquet: no cluster's fabric has PFC "
            "(nor credit.parquet: none has InfiniBand credits)"
        )
    return pd.concat(tables.values(), ignore_index=True), " / ".join(tables)


METRIC_LABELS = {
    "capacity_gpu_hours": "capacity (GPU-hours)",
    "allocated_gpu_hours": "GPU-hours held by jobs",
    "sold_gpu_hours": "GPU-hours sold",
    "usable_gpu_hours": "usable GPU-hours",
    "usable_compute_fraction": "usable compute (share of GPU-hours held)",
    "iteration_slowdown_p50": "P50 iteration slowdown (× ideal)",
    "iteration_slowdown_p99": "P99 iteration slowdown (× ideal)",
    "fct_slowdown_p99": "P99 flow slowdown (× ideal)",
    "inference_latency_ms_p50": "P50 request latency (ms)",
    "inference_latency_ms_p99": "P99 request latency (ms)",
    "inference_latency_ms_p999": "P99.9 request latency (ms)",
    "inference_slo_attainment": "requests within the SLO (share)",
    "pfc_pause_fraction": "PFC pause (share of busy link time)",
    "credit_stall_fraction": "credit stall (share of busy link time)",
    "ecn_mark_fraction": "ECN marks (share of traffic)",
    "queue_wait_hours_mean": "mean queue wait (hours)",
    "queue_wait_hours_p99": "P99 queue wait (hours)",
    "jobs_submitted": "jobs submitted",
    "jobs_completed": "jobs completed",
    "jobs_rejected": "jobs rejected",
    "preemptions": "preemptions",
    "failures": "failures",
    "revenue_usd": "revenue (USD)",
    "cost_usd": "cost of the surplus (USD)",
    "margin_usd": "margin (USD)",
    "margin_usd_per_gpu_hour": "margin (USD per GPU-hour sold)",
    "energy_mwh": "energy (MWh)",
    "power_mw_mean": "mean power draw (MW)",
    "compute_speed_mean": "mean compute speed (1: never throttled)",
}
"""Titles of the metrics :func:`policy_bars` draws most, with their units."""

UNITS = (
    ("_gpu_hours", "GPU-hours"),
    ("_usd_per_gpu_hour", "USD per GPU-hour"),
    ("_usd", "USD"),
    ("_hours", "hours"),
    ("_ms", "ms"),
    ("_mwh", "MWh"),
    ("_mw", "MW"),
    ("_fraction", "share"),
)
"""Units of other metrics, by how their key ends (the project names units in keys)."""


def metric_label(metric: str) -> str:
    """A human title with its unit for a ``summary.json`` key (``tenants.NAME.key`` too).

    Args:
        metric: The key, e.g. ``tenants.atlas.iteration_slowdown_p99``.
    """
    tenant = ""
    if metric.startswith("tenants.") and metric.count(".") >= 2:
        _, tenant, metric = metric.split(".", 2)
    label = METRIC_LABELS.get(metric)
    if label is None:
        label = metric.replace("_", " ")
        for suffix, unit in UNITS:
            if metric.endswith(suffix):
                label = f"{metric[: -len(suffix)].replace('_', ' ')} ({unit})"
                break
    return f"{tenant}: {label}" if tenant else label


def _bounds(metric: str) -> tuple[float | None, float | None]:
    """What a metric can never go below and above (None: unbounded)."""
    key = metric.rsplit(".", 1)[-1]
    if "margin" in key:
        return None, None
    if "slowdown" in key:
        return 1.0, None
    if key.endswith(("_fraction", "_attainment")) and "speed" not in key:
        return 0.0, 1.0
    return 0.0, None


def policy_bars(
    ax: Axes, table: pd.DataFrame, metric: str, policies: Sequence[str] | None = None
) -> Axes:
    """One bar per policy for ``metric``: its mean, with the 95 % confidence interval.

    The interval is clipped to what the metric can be (no negative count, no share
    above 1, no slowdown below 1), and a slowdown's axis starts at 1.

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
    low = np.where(np.isnan(low), means, low)
    high = np.where(np.isnan(high), means, high)
    floor, ceiling = _bounds(metric)
    if floor is not None:
        low = np.maximum(low, floor)
    if ceiling is not None:
        high = np.minimum(high, ceiling)
    errors = np.vstack([np.maximum(means - low, 0.0), np.maximum(high - means, 0.0)])
    ax.bar(names, means, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_title(metric_label(metric), fontsize=9)
    top = float(np.max(high)) if high.size else 0.0
    if floor is not None:  # a slowdown's axis starts at 1 (no slowdown), others' at 0
        span = top - floor
        ax.set_ylim(floor, floor + (span * 1.1 if span > 0 else 1.0))
    ax.yaxis.set_major_formatter("{x:,.6g}")
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


def _resolved(folder: Path) -> dict[str, Any]:
    """A run's ``resolved.yaml`` as plain data (empty if it has none)."""
    import yaml

    path = folder / "resolved.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


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
    tenant: str | None = None,
    tail: str | None = None,
) -> Path:
    """Draw one kind of plot of a run, comparison, sweep or plan directory and save it.

    Args:
        directory: What ``surplus run``, ``compare``, ``sweep`` or ``plan`` wrote.
        kind: One of :data:`KINDS`.
        out: The image file; its suffix (``.png`` or ``.svg``) sets the format.
        metrics: For ``bars``, the metrics (default: those ``surplus compare`` prints).
        tenant: For ``frontier``, the tenant whose tail is drawn.
        tail: For ``frontier``: ``breach``, a results metric, or its P99 slowdown (None).

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
    from sim.points_table import points_document

    is_comparison = (folder / "comparison.json").exists()
    document = points_document(folder)
    if (tenant is not None or tail is not None) and kind != "frontier":
        raise PlotError("--tenant and --tail are for --kind frontier")
    if kind == "frontier" and document is None:
        raise PlotError(
            f"{folder}: not a sweep or plan directory (no sweep.json or plan.json): "
            "--kind frontier draws one"
        )
    if kind != "frontier" and document is not None:
        raise PlotError(
            f"{folder}: a sweep or plan directory: --kind {kind} draws a run or comparison "
            "directory; draw this one with --kind frontier"
        )
    if kind == "frontier":
        pass  # drawn below
    elif not is_comparison and not (folder / "summary.json").exists():
        raise PlotError(
            f"{folder}: neither a run directory (summary.json), a comparison, a sweep nor a plan"
        )
    elif is_comparison:
        document = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
        title = f"{document['scenario']} ({len(document['seeds'])} seeds per policy)"
    else:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        horizon = float(summary["horizon_hours"])
        title = f"{summary['scenario']} (seed {summary['seed']}, {horizon:g} h)"
    if kind in ("allocation", "pfc", "heatmap", "timeline") and is_comparison:
        raise PlotError(f"{folder}: --kind {kind} draws a run directory, not a comparison")
    if kind == "bars" and not is_comparison:
        raise PlotError(f"{folder}: --kind bars draws a comparison directory (surplus compare)")

    if kind == "frontier":
        fig, title = _frontier(folder, tenant, tail)
    elif kind == "latency":
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
            caps = power_caps(_resolved(folder))
            power_draw(ax.twinx(), _read(folder / "power.parquet", ""), horizon, caps)
    elif kind == "pfc":
        table, label = back_pressure_table(folder)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
        pfc_by_tier(top, table, horizon, label=label)
        pfc_by_port(bottom, table, horizon, label=label)
    elif kind == "heatmap":
        table, label = back_pressure_table(folder)
        fig, ax = plt.subplots(figsize=(11, 6.5))
        pfc_heatmap(ax, table, horizon, label=label)
    elif kind == "timeline":
        jobs = _read(folder / "jobs.parquet", "not a run directory")
        rows = (
            int(job_lanes(jobs, horizon)["row"].max() + 1)
            if jobs["start_hours"].notna().any()
            else 1
        )
        fig, ax = plt.subplots(figsize=(11, min(30.0, 2.0 + 0.12 * rows)))
        job_timeline(ax, jobs, horizon)
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


def _frontier(folder: Path, tenant: str | None, tail: str | None) -> tuple[Any, str]:
    """The frontier figure of a sweep or plan directory (:mod:`sim.frontier`) and its title."""
    import matplotlib.pyplot as plt

    from sim.frontier import BREACH, FrontierError, draw_frontier, frontier_points

    if not tenant:
        raise PlotError("--kind frontier needs --tenant NAME: whose tail to draw")
    try:
        points, metric, document = frontier_points(folder, tenant, tail)
    except FrontierError as exc:
        raise PlotError(str(exc)) from None
    x_label = (
        f"{tenant}: probability its SLA terms broke (1 − P(held), Wilson 95 %)"
        if tail == BREACH
        else f"{metric_label(metric)}, mean ± 95 %"
    )
    fig, ax = plt.subplots(figsize=(9, 6))
    draw_frontier(ax, points, x_label, "net revenue (USD, after SLA credits), mean ± 95 %")
    what = "plan" if (folder / "plan.json").exists() else "sweep"
    name = document.get("scenario", folder.name)
    return fig, f"{name}: {what} of {len(points)} points, net revenue against {tenant}'s tail"
