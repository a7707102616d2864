"""The ``surplus`` command line: run directories, determinism, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from tests.helpers import run_cli

SUMMARY_KEYS = """
scenario seed horizon_hours wall_seconds
gpus_total capacity_gpu_hours internal_gpu_hours sold_gpu_hours idle_gpu_hours down_gpu_hours
usable_gpu_hours usable_compute_fraction
iteration_slowdown_p50 iteration_slowdown_p99
inference_latency_ms_p50 inference_latency_ms_p99 inference_latency_ms_p999
fct_slowdown_p99 pfc_pause_fraction ecn_mark_fraction credit_stall_fraction
jobs_submitted jobs_completed jobs_rejected preemptions failures
queue_wait_hours_mean queue_wait_hours_p99
revenue_usd cost_usd margin_usd
revenue_gross_usd sla_credits_usd
tenants
""".split()


runner = CliRunner()


def test_run_writes_the_run_directory(tmp_path, quickstart_path):
    out = tmp_path / "run"
    result = run_cli("run", str(quickstart_path), "--out", str(out), "--set", "horizon=12h")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".surplus.json",  # the marker: a run directory (sim.outputs)
        "inference_latency.parquet",  # the quickstart fleet serves a model
        "jobs.parquet",
        "power.parquet",  # its site has a power block
        "resolved.yaml",
        "summary.json",
        "timeseries.parquet",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["horizon_hours"] == 12
    assert set(summary["tenants"]) == {"internal", "acme", "bolt", "drift"}
    for name, figures in summary["tenants"].items():
        assert "usable_compute_fraction" in figures, name
        assert {"sla_held", "sla_terms", "sla_credits_usd", "revenue_gross_usd"} <= set(figures)
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert {
        "tenant",
        "contract",
        "gpus",
        "submit_hours",
        "start_hours",
        "end_hours",
        "wait_hours",
        "outcome",
    } <= set(jobs.columns)
    assert len(jobs) == summary["jobs_submitted"]
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert list(ts.columns) == [
        "time_hours",
        "internal",
        "reserved",
        "on_demand",
        "spot",
        "idle",
        "spare",
        "down",
        "parked",
    ]
    assert (ts.drop(columns="time_hours").sum(axis=1) == summary["gpus_total"]).all()
    # The resolved scenario runs again to the same result.
    again = tmp_path / "again"
    assert run_cli("run", str(out / "resolved.yaml"), "--out", str(again), "-q").exit_code == 0
    rerun = json.loads((again / "summary.json").read_text())
    rerun.pop("wall_seconds"), summary.pop("wall_seconds")
    assert rerun == summary


def test_same_seed_same_output_and_other_seed_differs(tmp_path, quickstart_path):
    outs = []
    for name, seed in [("a", "5"), ("b", "5"), ("c", "6")]:
        out = tmp_path / name
        result = run_cli(
            "run",
            str(quickstart_path),
            "--out",
            str(out),
            "--seed",
            seed,
            "--set",
            "horizon=1d",
            "-q",
        )
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "summary.json").read_text())
        summary.pop("wall_seconds")
        outs.append((summary, pd.read_parquet(out / "jobs.parquet")))
    assert outs[0][0] == outs[1][0]
    pd.testing.assert_frame_equal(outs[0][1], outs[1][1])
    assert outs[0][0] != outs[2][0]
    assert outs[0][0]["seed"] == 5


def test_arrivals_do_not_depend_on_the_scheduling_policy(tmp_path, quickstart_path):
    frames = []
    for backfill in ("true", "false"):
        out = tmp_path / backfill
        run_cli(
            "run",
            str(quickstart_path),
            "--out",
            str(out),
            "-q",
            "--set",
            "horizon=1d",
            "--set",
            f"policies.scheduling.backfill={backfill}",
        )
        frames.append(pd.read_parquet(out / "jobs.parquet"))
    cols = ["tenant", "gpus", "submit_hours", "work_hours"]
    for tenant in ("acme", "bolt", "drift"):
        a = frames[0][frames[0]["tenant"] == tenant][cols].reset_index(drop=True)
        b = frames[1][frames[1]["tenant"] == tenant][cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


BAD_FILES = {
    "unknown_kind.yaml": (
        """
name: bad
horizon: 1d
provider: {sites: [{name: s, clusters: [{name: c, nodes: 4}]}]}
tenants:
  - name: t
    contract: {kind: reservd, gpus: 8}
    workload: {arrivals: {kind: poisson, rate_per_hour: 1}, gpus: 8, duration: 1h}
""",
        ["bad.yaml:6: tenants[0].contract: unknown kind 'reservd'"],
    ),
    "bad_duration.yaml": (
        """
name: bad
horizon: 1d
provider: {sites: [{name: s, clusters: [{name: c, nodes: 4}]}]}
tenants:
  - name: t
    contract: {kind: spot, notice: soon}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 1}
      gpus: 8
      duration: {kind: exponential, mean: -2h}
""",
        [
            "bad.yaml:6: tenants[0].contract.notice: invalid duration 'soon'",
            "bad.yaml:10: tenants[0].workload.duration.mean",
        ],
    ),
    "too_big.yaml": (
        """
name: bad
horizon: 1d
provider: {sites: [{name: s, clusters: [{name: c, nodes: 4}]}]}
tenants:
  - name: t
    contract: {kind: on_demand}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 1}
      gpus: {kind: choice, values: [8, 64]}
      duration: 1h
""",
        ["bad.yaml:9: tenants[0].workload.gpus: jobs of 64 GPUs can never run"],
    ),
    "typo.yaml": (
        """
name: bad
horizon: 1d
provider: {sites: [{name: s, clusters: [{name: c, nodes: 4, gpus_per_nod: 4}]}]}
""",
        ["bad.yaml:3: provider.sites[0].clusters[0].gpus_per_nod: unknown field"],
    ),
    "missing.yaml": (
        "name: bad\nprovider: {sites: [{name: s, clusters: [{name: c, nodes: 4}]}]}\n",
        ["bad.yaml:1: horizon: missing required field"],
    ),
    "not_yaml.yaml": ("name: bad\nhorizon: [1d\n", ["bad.yaml:3: not valid YAML"]),
    "list.yaml": ("- 1\n- 2\n", ["bad.yaml: a scenario must be a mapping"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_scenario_files_exit_2_naming_field_and_line(tmp_path, case):
    text, expected = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text.lstrip("\n"))
    out = tmp_path / "out"
    for command in (["run", str(path), "--out", str(out)], ["validate", str(path)]):
        result = subprocess.run(
            [sys.executable, "-m", "sim", *command], capture_output=True, text=True, cwd=tmp_path
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        for fragment in expected:
            assert fragment.replace("bad.yaml", str(path)) in result.stderr, result.stderr
    assert not out.exists(), "nothing is written for bad input"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tenants.nobody.gpus=1", "tenants has no item named 'nobody'"),
        ("tenants.9.gpus=1", "tenants has 3 items, no index 9"),
        ("horizon", "expected dotted.path=value"),
        ("horizon=[1", "value: not valid YAML"),
        ("tenants.bolt.contract.max_wait=-1h", "tenants[1].contract.max_wait: invalid duration"),
        ("seed=-4", "seed: Input should be greater than or equal to 0"),
    ],
)
def test_bad_overrides_exit_2(tmp_path, quickstart_path, override, message):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = runner.invoke(app, ["run", str(quickstart_path), "--out", str(out), "--set", override])
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"], "nothing already written is lost"


def test_missing_file_and_negative_seed(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml"), "--seed", "-1"])
    assert result.exit_code == 2 and "--seed" in result.output


def test_validate_accepts_every_shipped_scenario():
    scenarios = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))
    assert scenarios
    result = run_cli("validate", *map(str, scenarios))
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(scenarios)


def test_schema_is_json_schema_with_every_kind(tmp_path):
    result = run_cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Surplus scenario"
    assert {"name", "horizon", "provider", "tenants", "internal", "policies"} <= set(
        schema["properties"]
    )
    text = result.output
    for kind in ("reserved", "on_demand", "spot", "poisson", "lognormal", "first_fit", "ideal"):
        assert f'"{kind}"' in text
    out = tmp_path / "schema.json"
    assert run_cli("schema", "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text()) == schema


def test_python_dash_m_sim_and_version():
    result = subprocess.run(
        [sys.executable, "-m", "sim", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("surplus ")


def test_piped_tables_cut_no_name_and_show_what_each_tenant_bought(tmp_path, quickstart_path):
    out = tmp_path / "run"
    result = run_cli("run", str(quickstart_path), "--out", str(out), "--set", "horizon=12h")
    assert result.exit_code == 0, result.output
    assert "…" not in result.output  # no header, tenant or contract cut when piped
    header = next(line for line in result.output.splitlines() if "┃ tenant" in line)
    assert "contract" in header and "sold GPU-h" in header and "held GPU-h" in header
    summary = json.loads((out / "summary.json").read_text())
    acme = summary["tenants"]["acme"]  # a reserved block: sold whole, held in part
    row = next(line for line in result.output.splitlines() if " acme " in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[:4] == [
        "acme",
        "reserved",
        f"{acme['sold_gpu_hours']:,.0f}",
        f"{acme['allocated_gpu_hours']:,.0f}",
    ]
    rows = [line.split("│") for line in result.output.splitlines() if line.count("│") > 3]
    internal = next(cells for cells in rows if cells[1].strip() == "internal")
    assert internal[2].strip() == "internal"  # the contract column, whole


def readme_commands(section: str) -> list[list[str]]:
    """The ``surplus`` commands of the first bash block of a README section, split."""
    import shlex

    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1]
    block = body.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_the_readmes_fabric_example_file_runs_as_written(tmp_path, monkeypatch):
    root = Path(__file__).parent.parent
    commands = readme_commands("The fabric alone")
    assert [c[:2] for c in commands] == [["surplus", "traffic"], ["surplus", "fabric"]]
    monkeypatch.chdir(tmp_path)  # the commands' outputs land here, the file is the repo's
    for command in commands:
        args = [str(root / a) if a.startswith("examples/") else a for a in command[1:]]
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "fab-run" / "summary.json").read_text())
    assert summary["max_fct_us"] == pytest.approx(2_455, rel=1e-3)  # as the README says
    assert summary["pfc_pause_fraction"] == pytest.approx(0.047, abs=5e-4)
    assert len(pd.read_csv(tmp_path / "fab-run" / "flows.csv")) == 15
