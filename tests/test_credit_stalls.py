"""InfiniBand parity: credit stalls reported as PFC pauses are, overall, per tenant and per tier.

InfiniBand's lossless back-pressure (credits) gives the same per-link pause state
as PFC (see :mod:`sim.fabric.transport`); a run reports it as
``credit_stall_fraction`` and writes ``credit.parquet``, the table ``pfc.parquet``
is on RoCE.
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from sim.fabric.model import EpochSolution, JobNetwork, RunningPlacement
from sim.fabric.network import NetworkFabric
from sim.metrics.fabric_log import FabricLog
from sim.metrics.summary import _tenant_credit_stall
from sim.plotting import CREDIT_LABEL, pfc_by_port, pfc_by_tier, pfc_heatmap
from sim.report import print_summary
from sim.runner import simulate
from sim.scenario import load_scenario
from tests.conftest import SCENARIOS
from tests.helpers import GPN, run_cli

NOISY = SCENARIOS / "noisy-neighbor.yaml"
INFINIBAND = "provider.sites.0.clusters.0.fabric.transport={kind: infiniband}"
SHORT = ("--set", INFINIBAND, "--set", "horizon=1d", "--seed", "7")
"""A day of noisy-neighbor on InfiniBand whose all-to-all incasts stall the victim."""


@pytest.fixture(scope="module")
def ib_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ib") / "nn"
    result = run_cli("run", str(NOISY), "-o", str(out), "-q", *SHORT)
    assert result.exit_code == 0, result.output
    return out


def summary_of(directory) -> dict:
    return json.loads((directory / "summary.json").read_text())


def spans(table: pd.DataFrame, horizon_hours: float) -> pd.Series:
    """Each row's hours: from its change to its cluster's next change (or the horizon)."""
    changes = np.sort(table["time_hours"].unique())
    span = dict(zip(changes, np.diff(np.append(changes, horizon_hours)), strict=True))
    return table["time_hours"].map(span)


def test_an_infiniband_run_reports_credit_stalls_not_pfc_pauses(ib_run):
    summary = summary_of(ib_run)
    assert summary["pfc_pause_fraction"] is None
    assert 0 < summary["credit_stall_fraction"] < 1
    for name in ("atlas", "swarm"):
        tenant = summary["tenants"][name]
        assert tenant["pfc_pause_fraction"] is None
        assert 0 < tenant["credit_stall_fraction"] < 1, name
    # The victim's tail is explained: it is slowed, and its links stall for credits.
    atlas = summary["tenants"]["atlas"]
    assert atlas["iteration_slowdown_p99"] > 1.1 and atlas["credit_stall_fraction"] > 0.01
    assert summary["tenants"]["internal"]["credit_stall_fraction"] is None  # never ran


def test_credit_parquet_is_pfc_parquets_table_and_integrates_to_the_summary(ib_run):
    summary = summary_of(ib_run)
    assert not (ib_run / "pfc.parquet").exists()
    table = pd.read_parquet(ib_run / "credit.parquet")
    pfc_columns = ["time_hours", "cluster", "kind", "name", "pause_fraction", "busy_links"]
    assert list(table.columns) == pfc_columns
    tiers = table[table["kind"] == "tier"]
    hours = spans(tiers, summary["horizon_hours"])
    stalled = tiers["pause_fraction"] * tiers["busy_links"] * hours
    busy = tiers["busy_links"] * hours
    # Overall: stalled over busy link-hours, as pfc_pause_fraction is on RoCE.
    assert stalled.sum() / busy.sum() == pytest.approx(summary["credit_stall_fraction"], rel=1e-9)
    by_tier = summary["credit_stall_fraction_by_tier"]
    assert list(by_tier) == ["gpu-rtsw", "rtsw-ctsw", "ctsw-atsw"]  # the topology's order
    for name, value in by_tier.items():
        own = tiers["name"] == name
        assert stalled[own].sum() / busy[own].sum() == pytest.approx(value, rel=1e-9, abs=1e-12)
    ports = table[table["kind"] == "port"]
    assert not ports.empty and ports["pause_fraction"].between(0, 1).all()


def test_roce_runs_have_no_credit_stalls_and_no_credit_table():
    result = simulate(load_scenario(NOISY, overrides=["horizon=12h"]))
    assert result.credit is None and result.pfc is not None
    assert result.summary["credit_stall_fraction"] is None
    assert result.summary["credit_stall_fraction_by_tier"] is None
    assert all(t["credit_stall_fraction"] is None for t in result.summary["tenants"].values())
    ideal = simulate(load_scenario(SCENARIOS / "quickstart.yaml", overrides=["horizon=6h"]))
    assert ideal.credit is None and ideal.summary["credit_stall_fraction"] is None


def solution(stall: float | None, busy: int, tiers: tuple[int, ...], stalled: tuple[float, ...]):
    return EpochSolution(
        credit_stall_fraction=stall,
        busy_links=busy,
        tier_busy_links=tiers,
        tier_paused_links=stalled,
        tier_names=("up", "down") if stall is not None else (),
    )


def test_the_fabric_log_integrates_stalls_over_busy_link_hours():
    log = FabricLog(2)
    # Cluster 0: 4 busy links at 0.25 for 2 h, then 2 at 0.5 for 1 h.
    log.change(0, 0.0, solution(0.25, 4, (3, 1), (0.5, 0.5)))
    log.change(0, 2.0, solution(0.5, 2, (2, 0), (1.0, 0.0)))
    log.change(1, 0.0, EpochSolution(busy_links=6))  # an ideal-like fabric: no stalls
    log.close(3.0)
    # Stalled 0.25*4*2 + 0.5*2*1 = 3 of 4*2 + 2*1 = 10 busy link-hours.
    assert log.credit_stall_fraction == pytest.approx(0.3)
    # up: (0.5*2 + 1.0*1) / (3*2 + 2*1) = 2/8; down: 0.5*2 / (1*2) = 1/2.
    assert log.credit_stall_fraction_by_tier == pytest.approx({"up": 0.25, "down": 0.5})
    assert log.pfc_pause_fraction is None and [t for t, _, _ in log.stalls] == [0.0, 2.0]
    assert FabricLog(1).credit_stall_fraction is None


def test_each_fabric_figure_weighs_only_the_fabrics_that_have_it():
    """A RoCE and an InfiniBand cluster side by side: PFC pauses over the RoCE cluster's busy
    links, marks over its traffic, stalls over the InfiniBand cluster's links (the others'
    links neither pause nor mark: counting them diluted the figures)."""
    log = FabricLog(3)
    roce = EpochSolution(
        pfc_pause_fraction=0.2, ecn_mark_fraction=0.1, busy_links=10, carried_gbps=100.0
    )
    log.change(0, 0.0, roce)
    log.change(1, 0.0, solution(0.4, 30, (30, 0), (12.0, 0.0)))
    log.change(2, 0.0, EpochSolution(busy_links=50, carried_gbps=900.0))  # ideal-like
    log.close(2.0)
    assert log.pfc_pause_fraction == pytest.approx(0.2)  # 4 of 20, not of 180 link-hours
    assert log.ecn_mark_fraction == pytest.approx(0.1)
    assert log.credit_stall_fraction == pytest.approx(0.4)


def test_a_tenants_stall_is_its_pieces_mean_by_gpu_hours():
    class Log:
        has_credits = True

    pieces = pd.DataFrame(
        {"gpus": [8, 16, 8], "hours": [1.0, 2.0, 0.0], "credit_stall_fraction": [0.1, 0.4, 0.9]}
    )
    # (8*1*0.1 + 16*2*0.4) / (8 + 32) = 13.6 / 40; the piece of 0 hours weighs nothing.
    assert _tenant_credit_stall(pieces, Log())["credit_stall_fraction"] == pytest.approx(0.34)
    none = pieces.assign(credit_stall_fraction=np.nan)
    assert _tenant_credit_stall(none, Log()) == {"credit_stall_fraction": None}


def test_an_infiniband_epoch_gives_each_job_the_stall_pfc_would_report_as_pause():
    """Fixed placements across both pods: the same solve, credits reported as credit stalls."""
    scenario = load_scenario(NOISY, overrides=[INFINIBAND])
    config = scenario.provider.clusters()[0].fabric
    atlas_spec, swarm_spec = (t.workload.training.spec() for t in scenario.tenants)
    nodes = [[0, 16, 3, 19], [1, 17, 5, 21, 9, 25, 13, 29]]  # nodes 16-31: the second pod
    atlas = RunningPlacement(1, "atlas", "on_demand", nodes[0], [GPN] * 4, atlas_spec)
    swarm = RunningPlacement(2, "swarm", "on_demand", nodes[1], [GPN] * 8, swarm_spec)
    fabric = NetworkFabric(config, gpus_per_node=GPN, accelerator="H100")
    assert fabric.has_credits and not fabric.has_pfc
    shared = fabric.solve([atlas, swarm])
    assert shared.pfc_pause_fraction is None and shared.credit_stall_fraction > 0
    assert shared.tier_names == ("gpu-rtsw", "rtsw-ctsw", "ctsw-atsw")
    stalled, busy = sum(shared.tier_paused_links), sum(shared.tier_busy_links)
    assert busy == shared.busy_links
    assert stalled / busy == pytest.approx(shared.credit_stall_fraction, rel=1e-12)
    for state in shared.jobs.values():
        assert isinstance(state, JobNetwork) and state.pfc_pause_fraction is None
        assert 0 < state.credit_stall_fraction <= 1
    alone = NetworkFabric(config, gpus_per_node=GPN, accelerator="H100").solve([atlas])
    # The victim: slowed beside the all-to-all, and its links stall for credits.
    assert shared.jobs[1].slowdown > alone.jobs[1].slowdown
    assert shared.jobs[1].credit_stall_fraction > alone.jobs[1].credit_stall_fraction
    roce = load_scenario(NOISY).provider.clusters()[0].fabric
    pfc = NetworkFabric(roce, gpus_per_node=GPN, accelerator="H100").solve([atlas, swarm])
    assert pfc.credit_stall_fraction is None and pfc.tier_names == ()
    assert pfc.pfc_pause_fraction is not None
    assert all(state.credit_stall_fraction is None for state in pfc.jobs.values())


@pytest.mark.parametrize("kind", ["pfc", "heatmap"])
def test_pfc_plots_draw_an_infiniband_run_as_credit_stalls(ib_run, kind):
    out = ib_run / f"{kind}.png"
    result = run_cli("plot", str(ib_run), "--kind", kind, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_the_credit_plots_are_labelled_credit_stall(ib_run):
    table = pd.read_parquet(ib_run / "credit.parquet")
    fig, (top, bottom) = plt.subplots(2, 1)
    pfc_by_tier(top, table, 24.0, label=CREDIT_LABEL)
    pfc_by_port(bottom, table, 24.0, label=CREDIT_LABEL)
    assert top.get_ylabel() == "credit stall fraction (busy links)"
    assert bottom.get_ylabel() == "credit stall fraction (port)"
    assert {line.get_label() for line in top.lines} == {"gpu-rtsw", "rtsw-ctsw", "ctsw-atsw"}
    plt.close(fig)
    fig, ax = plt.subplots()
    pfc_heatmap(ax, table, 24.0, label=CREDIT_LABEL)
    assert fig.axes[1].get_ylabel().startswith("credit stall fraction")
    plt.close(fig)


def printed(summary: dict) -> str:
    console = Console(width=200, record=True)
    print_summary(summary, console)
    return console.export_text()


def test_the_summary_table_shows_credit_stall_where_it_shows_pfc_pause(ib_run):
    summary = summary_of(ib_run)
    text = printed(summary)
    assert "credit stall fraction" in text and "PFC pause fraction" not in text
    assert f"{summary['credit_stall_fraction']:.2%}" in text
    mixed = {**summary, "pfc_pause_fraction": 0.125}  # PFC and credit clusters in one run
    text = printed(mixed)
    assert "PFC pause fraction" in text and "12.50%" in text and "credit stall fraction" in text
    roce = {k: v for k, v in summary.items() if not k.startswith("credit_stall")}
    assert "credit stall" not in printed(roce) and "PFC pause fraction" in printed(roce)


def test_a_run_directory_with_credit_parquet_can_be_rewritten(ib_run, tmp_path):
    out = tmp_path / "again"
    for _ in range(2):  # the second run replaces a directory holding credit.parquet
        result = run_cli("run", str(NOISY), "-o", str(out), "-q", *SHORT)
        assert result.exit_code == 0, result.output
    assert (out / "credit.parquet").exists()
    again = summary_of(out)
    assert again["credit_stall_fraction"] == summary_of(ib_run)["credit_stall_fraction"]
