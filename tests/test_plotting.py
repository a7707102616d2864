"""`surplus plot`: every kind writes an image, and what it draws is what the run wrote."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.plotting import (
    allocation,
    histogram_quantile,
    job_lanes,
    job_timeline,
    latency_cdf,
    metric_label,
    pfc_by_port,
    pfc_by_tier,
    pfc_heatmap,
    pfc_ports_by_time,
    policy_bars,
    power_caps,
    power_draw,
)
from tests.conftest import SCENARIOS

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "qs"
    result = cli(
        "run", str(SCENARIOS / "quickstart.yaml"), "-o", str(out), "-q", "--set", "horizon=12h"
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def pfc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "nn"
    path = SCENARIOS / "noisy-neighbor.yaml"
    result = cli("run", str(path), "-o", str(out), "-q", "--set", "horizon=12h")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "cmp"
    result = cli(
        "compare",
        str(SCENARIOS / "quickstart.yaml"),
        "-p",
        "base",
        "-p",
        "spread=policies.placement.kind=spread",
        "--seeds",
        "2",
        "-j",
        "1",
        "-q",
        "-o",
        str(out),
        "--set",
        "horizon=6h",
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("quick_run", "latency"),
        ("quick_run", "allocation"),
        ("pfc_run", "pfc"),
        ("pfc_run", "heatmap"),
        ("quick_run", "timeline"),
        ("pfc_run", "timeline"),
        ("comparison", "bars"),
        ("comparison", "latency"),
    ],
)
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_every_kind_writes_an_image(request, tmp_path, fixture, kind, suffix):
    directory = request.getfixturevalue(fixture)
    image = tmp_path / f"{kind}{suffix}"
    result = cli("plot", str(directory), "--kind", kind, "-o", str(image))
    assert result.exit_code == 0, result.output
    data = image.read_bytes()
    assert len(data) > 5_000
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]


def test_latency_marks_the_summarys_quantiles(quick_run):
    summary = json.loads((quick_run / "summary.json").read_text())
    table = pd.read_parquet(quick_run / "inference_latency.parquet")
    low, high, weight = (
        table[c].to_numpy() for c in ("latency_ms_low", "latency_ms_high", "requests")
    )
    for q, key in ((0.99, "inference_latency_ms_p99"), (0.999, "inference_latency_ms_p999")):
        assert histogram_quantile(low, high, weight, q) == pytest.approx(summary[key], rel=1e-9)
    fig, ax = plt.subplots()
    latency_cdf(ax, table, ccdf=True)
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [float(d.get_xdata()[0]) for d in dots] == pytest.approx(
        [summary["inference_latency_ms_p99"], summary["inference_latency_ms_p999"]]
    )
    assert [float(d.get_ydata()[0]) for d in dots] == pytest.approx([0.01, 0.001])
    curve = ax.lines[0]
    assert curve.get_ydata()[0] == pytest.approx(1.0)  # the CCDF starts at all requests
    # ... and stops at one request in N, not at the running sum's rounding residue
    assert curve.get_ydata().min() >= (1 - 1e-9) / table["requests"].sum()
    assert ax.get_ylim()[0] > 0.4 * curve.get_ydata().min()
    fig.canvas.draw()  # the quantile labels lie inside the axes
    box = ax.get_window_extent()
    for label in ax.texts:
        extent = label.get_window_extent()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, label.get_text()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, label.get_text()
    assert [t.get_text().split()[0] for t in ax.texts] == ["P99", "P99.9"]
    plt.close(fig)


def test_allocation_stacks_every_gpu_and_draws_the_power_table(quick_run):
    summary = json.loads((quick_run / "summary.json").read_text())
    ts = pd.read_parquet(quick_run / "timeseries.parquet")
    power = pd.read_parquet(quick_run / "power.parquet")
    fig, ax = plt.subplots()
    allocation(ax, ts, summary["horizon_hours"])
    top = ax.collections[-1].get_paths()[0].vertices[:, 1].max()
    assert top == summary["gpus_total"]  # the classes stack to every GPU, always
    twin = power_draw(ax.twinx(), power, summary["horizon_hours"])
    drawn = twin.lines[0].get_ydata()[:-1]
    assert np.array_equal(drawn, power["power_mw"].to_numpy())
    # The drawn draw, integrated, is the summary's energy.
    times = np.append(power["time_hours"].to_numpy(), summary["horizon_hours"])
    assert float(np.sum(drawn * np.diff(times))) == pytest.approx(summary["energy_mwh"])
    plt.close(fig)


def test_the_power_plot_draws_each_sites_cap(tmp_path):
    out = tmp_path / "pc"
    path = SCENARIOS / "power-cap.yaml"
    assert cli("run", str(path), "-o", str(out), "-q", "--set", "horizon=6h").exit_code == 0
    import yaml

    caps = power_caps(yaml.safe_load((out / "resolved.yaml").read_text()))
    assert caps == {"capped": 0.55}
    power = pd.read_parquet(out / "power.parquet")
    fig, ax = plt.subplots()
    power_draw(ax, power, 6.0, caps)
    cap = next(line for line in ax.lines if line.get_label() == "capped cap")
    assert set(cap.get_ydata()) == {0.55} and cap.get_linestyle() == "--"
    assert ax.get_ylim()[1] > 0.55 >= power["power_mw"].max() - 1e-9  # never above its cap
    plt.close(fig)


def test_pfc_tiers_integrate_to_the_summarys_pause_fraction(pfc_run):
    summary = json.loads((pfc_run / "summary.json").read_text())
    table = pd.read_parquet(pfc_run / "pfc.parquet")
    tiers = table[table["kind"] == "tier"]
    changes = np.sort(tiers["time_hours"].unique())
    span = dict(zip(changes, np.diff(np.append(changes, summary["horizon_hours"])), strict=True))
    hours = tiers["time_hours"].map(span)
    paused = float((tiers["pause_fraction"] * tiers["busy_links"] * hours).sum())
    busy = float((tiers["busy_links"] * hours).sum())
    assert paused / busy == pytest.approx(summary["pfc_pause_fraction"], rel=1e-9)
    fig, ax = plt.subplots()
    pfc_by_tier(ax, table, summary["horizon_hours"])
    assert len(ax.lines) == tiers["name"].nunique() == 3  # GPU-RTSW, RTSW-CTSW, CTSW-ATSW
    for line in ax.lines:
        rows = tiers[tiers["name"] == line.get_label()]
        assert np.array_equal(line.get_ydata()[:-1], rows["pause_fraction"].to_numpy())
    plt.close(fig)


def test_pfc_ports_have_colours_of_their_own_and_a_legend(pfc_run):
    table = pd.read_parquet(pfc_run / "pfc.parquet")
    fig, ax = plt.subplots()
    pfc_by_port(ax, table, 12.0)
    colours = [tuple(line.get_color()) for line in ax.lines]
    assert len(colours) == 8 and len(set(colours)) == 8
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        line.get_label() for line in ax.lines
    ]
    plt.close(fig)


def test_the_heatmap_draws_pfc_parquets_ports_by_time(pfc_run):
    table = pd.read_parquet(pfc_run / "pfc.parquet")
    edges, grid, names = pfc_ports_by_time(table, 12.0, ports=30)
    ports = table[table["kind"] == "port"]
    assert list(edges[:-1]) == sorted(table["time_hours"].unique()) and edges[-1] == 12.0
    assert len(names) == min(30, ports["name"].nunique()) == grid.shape[0]
    for row, name in enumerate(names):  # every cell is the file's row, or 0 where it has none
        own = ports[ports["name"] == name].set_index("time_hours")["pause_fraction"]
        expected = own.reindex(edges[:-1], fill_value=0.0).to_numpy()
        assert np.array_equal(grid[row], expected)
    paused = (grid * np.diff(edges)).sum(axis=1)
    assert np.all(np.diff(paused) <= 1e-12)  # the most paused port first
    fig, ax = plt.subplots()
    pfc_heatmap(ax, table, 12.0, ports=30)
    (mesh,) = ax.collections
    assert np.array_equal(np.asarray(mesh.get_array()).reshape(grid.shape), grid)
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert ax.get_xlabel() == "hours" and len(fig.axes) == 2  # and its colour bar
    plt.close(fig)


@pytest.mark.parametrize("fixture", ["quick_run", "pfc_run"])
def test_the_timeline_draws_every_started_job_from_start_to_end(request, fixture):
    directory = request.getfixturevalue(fixture)
    horizon = json.loads((directory / "summary.json").read_text())["horizon_hours"]
    jobs = pd.read_parquet(directory / "jobs.parquet")
    started = jobs[jobs["start_hours"].notna()]
    fig, ax = plt.subplots()
    job_timeline(ax, jobs, horizon)
    bars = [patch for container in ax.containers for patch in container.patches]
    assert len(bars) == len(started)
    drawn = np.array(sorted((p.get_x(), p.get_x() + p.get_width()) for p in bars))
    ends = started["end_hours"].fillna(horizon)
    expected = np.array(sorted(zip(started["start_hours"], ends, strict=True)))
    assert np.allclose(drawn, expected, rtol=1e-12, atol=1e-12)
    assert {t.get_text() for t in ax.get_yticklabels()} == set(started["tenant"])
    lanes = job_lanes(jobs, horizon)
    for _, row in lanes.groupby("row"):  # no two jobs overlap in a row, waits included
        row = row.sort_values("submit_hours")
        assert (row["submit_hours"].to_numpy()[1:] >= row["end_hours"].to_numpy()[:-1]).all()
        assert row["tenant"].nunique() == 1
    plt.close(fig)


def test_bar_titles_are_human_with_units():
    assert metric_label("revenue_usd") == "revenue (USD)"
    assert metric_label("tenants.atlas.iteration_slowdown_p99") == (
        "atlas: P99 iteration slowdown (× ideal)"
    )
    assert metric_label("tenants.bolt.lost_gpu_hours") == "bolt: lost (GPU-hours)"


def test_bars_clip_intervals_to_what_a_metric_can_be_and_slowdowns_start_at_1():
    table = pd.DataFrame(
        {
            "policy": ["a", "b"] * 3,
            "metric": ["jobs_rejected"] * 2 + ["iteration_slowdown_p99"] * 2
            + ["margin_usd"] * 2,
            "mean": [0.4, 2.0, 1.05, 1.3, -10.0, 5.0],
            "ci_low": [-0.3, 1.0, 0.9, 1.2, -30.0, 1.0],
            "ci_high": [1.1, 3.0, 1.2, 1.4, 10.0, 9.0],
        }
    )  # fmt: skip
    fig, axes = plt.subplots(1, 3)
    for ax, metric in zip(
        axes, ["jobs_rejected", "iteration_slowdown_p99", "margin_usd"], strict=True
    ):
        policy_bars(ax, table, metric)
    lows = [[s[:, 1].min() for s in ax.collections[0].get_segments()] for ax in axes]
    assert lows == [[0.0, 1.0], [1.0, 1.2], [-30.0, 1.0]]  # a margin may be negative
    assert axes[0].get_ylim()[0] == 0 and axes[1].get_ylim()[0] == 1
    assert axes[0].get_title() == "jobs rejected"
    plt.close(fig)


def test_bars_are_the_comparisons_means_and_intervals(comparison):
    table = pd.read_parquet(comparison / "comparison.parquet")
    fig, ax = plt.subplots()
    policy_bars(ax, table, "revenue_usd", ["base", "spread"])
    rows = table[table["metric"] == "revenue_usd"].set_index("policy")
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx(rows.loc[["base", "spread"], "mean"].tolist())
    segments = ax.collections[0].get_segments()  # the error bars
    for segment, policy in zip(segments, ["base", "spread"], strict=True):
        # revenue is never negative: a 2-seed interval reaching below 0 stops at 0
        assert segment[:, 1].min() == pytest.approx(max(0.0, rows.loc[policy, "ci_low"]))
        assert segment[:, 1].max() == pytest.approx(rows.loc[policy, "ci_high"])
    plt.close(fig)


@pytest.mark.parametrize(
    ("fixture", "args", "message"),
    [
        ("quick_run", ["--kind", "bars"], "draws a comparison directory"),
        ("comparison", ["--kind", "pfc"], "draws a run directory"),
        ("quick_run", ["--kind", "pfc"], "no pfc.parquet: no cluster's fabric has PFC"),
        ("quick_run", ["--kind", "heatmap"], "no pfc.parquet: no cluster's fabric has PFC"),
        ("comparison", ["--kind", "timeline"], "draws a run directory"),
        ("quick_run", ["--kind", "latency", "-o", "x.jpg"], "must end in .png or .svg"),
        (
            "comparison",
            ["--kind", "bars", "-m", "nonsense"],
            "'nonsense' is not in this comparison",
        ),
    ],
)
def test_plots_that_cannot_be_drawn_exit_2_naming_why(request, fixture, args, message):
    result = cli("plot", str(request.getfixturevalue(fixture)), *args)
    assert result.exit_code == 2
    assert message in result.output
