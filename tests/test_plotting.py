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
    latency_cdf,
    pfc_by_tier,
    policy_bars,
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


def test_bars_are_the_comparisons_means_and_intervals(comparison):
    table = pd.read_parquet(comparison / "comparison.parquet")
    fig, ax = plt.subplots()
    policy_bars(ax, table, "revenue_usd", ["base", "spread"])
    rows = table[table["metric"] == "revenue_usd"].set_index("policy")
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx(rows.loc[["base", "spread"], "mean"].tolist())
    segments = ax.collections[0].get_segments()  # the error bars
    for segment, policy in zip(segments, ["base", "spread"], strict=True):
        assert segment[:, 1].min() == pytest.approx(rows.loc[policy, "ci_low"])
        assert segment[:, 1].max() == pytest.approx(rows.loc[policy, "ci_high"])
    plt.close(fig)


@pytest.mark.parametrize(
    ("fixture", "args", "message"),
    [
        ("quick_run", ["--kind", "bars"], "draws a comparison directory"),
        ("comparison", ["--kind", "pfc"], "draws a run directory"),
        ("quick_run", ["--kind", "pfc"], "no pfc.parquet: no cluster's fabric has PFC"),
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
