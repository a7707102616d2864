"""Output directories are written whole, refused when they hold something else, and checked
before any simulation; no exception type reaches the user (issue 19, "Robustness")."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import sim.outputs
from sim.cli import app, main
from sim.outputs import (
    MARKER,
    OutputError,
    StagedDirectory,
    check_directory,
    check_file,
    output_kind,
    write_directory,
)
from tests.conftest import SCENARIOS

runner = CliRunner()
QUICKSTART = str(SCENARIOS / "quickstart.yaml")
SHORT = ("--set", "horizon=1h")

SWEEP = """
name: tiny
seed: 42
horizon: 1h
provider:
  sites:
    - name: east
      clusters:
        - {name: east-a, nodes: 4}
tenants:
  - name: bolt
    contract: {kind: on_demand, max_wait: 4h, price_per_gpu_hour: 2.79}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 3}
      gpus: {kind: choice, values: [1, 2, 4, 8]}
      duration: {kind: lognormal, median: 1h, sigma: 1.0}
sweep:
  grid:
    policies.placement.kind: [first_fit, pack]
  seeds: 1
"""

FABRIC = "topology:\n  kind: fat_tree\n  k: 4\n  link_gbps: 100\ntransport: {kind: roce}\n"
FLOWS = "src,dst,start_us,size_bytes\n1,0,0,100\n"


def cli(*args: str):
    return runner.invoke(app, list(args))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under a directory, hidden ones included, by relative path."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def temporaries(parent: Path) -> list[str]:
    """Hidden entries beside the outputs in ``parent``: Surplus's temporary siblings."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("good") / "run"
    result = cli("run", QUICKSTART, "-o", str(out), "-q", *SHORT)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def run_dir(tmp_path, good_run) -> Path:
    """A copy of a finished quickstart run, at tmp_path/run."""
    return Path(shutil.copytree(good_run, tmp_path / "run"))


@pytest.fixture
def no_simulation(monkeypatch) -> list[str]:
    """Record every simulation started (of a scenario or of the fabric alone)."""
    import sim.fabric.flows
    import sim.runner

    calls: list[str] = []

    def simulate(*args, **kwargs):
        calls.append("simulate")
        raise AssertionError("nothing may be simulated")

    monkeypatch.setattr(sim.runner, "simulate", simulate)
    monkeypatch.setattr(sim.fabric.flows, "simulate_flows", simulate)
    return calls


@pytest.fixture
def fabric_files(tmp_path) -> tuple[Path, Path]:
    fabric, flows = tmp_path / "fab.yaml", tmp_path / "flows.csv"
    fabric.write_text(FABRIC)
    flows.write_text(FLOWS)
    return fabric, flows


@pytest.fixture
def sweep_file(tmp_path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    return path


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Call the console entry point with these arguments: (exit status, standard error)."""
    monkeypatch.setattr(sys, "argv", ["surplus", *args])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # typer installs its own
    with pytest.raises(SystemExit) as exit_info:
        main()
    code = exit_info.value.code
    return (0 if code is None else code), capsys.readouterr().err


# --------------------------------------------------------------------------- whole or nothing


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_run_failing_mid_write_leaves_the_good_run_whole(
    tmp_path, run_dir, monkeypatch, capsys, error
):
    before = snapshot(run_dir)
    real = pd.DataFrame.to_parquet
    written: list[str] = []

    def fragile(self, path, *args, **kwargs):
        if written:  # the first table is written, the second fails
            raise error
        written.append(str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fragile)
    code, err = run_main(monkeypatch, capsys, "run", QUICKSTART, "-o", str(run_dir), "-q",
                         "--seed", "9", *SHORT)  # fmt: skip
    assert written, "the failure came in the middle of writing"
    if isinstance(error, KeyboardInterrupt):
        assert (code, err) == (130, "interrupted\n")
    else:
        assert code == 2
        assert err == (
            "error: internal error: OSError: [Errno 28] No space left on device; "
            "rerun with --debug for the traceback\n"
        )
    assert snapshot(run_dir) == before
    assert temporaries(tmp_path) == []


def test_an_interrupted_simulation_leaves_the_old_run(tmp_path, run_dir, monkeypatch, capsys):
    import sim.runner

    before = snapshot(run_dir)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.runner, "simulate", interrupted)
    code, err = run_main(monkeypatch, capsys, "run", QUICKSTART, "-o", str(run_dir), "-q")
    assert (code, err) == (130, "interrupted\n")
    assert snapshot(run_dir) == before
    assert temporaries(tmp_path) == []


def test_a_run_over_another_scenarios_run_keeps_none_of_its_files(tmp_path):
    out = tmp_path / "out"
    noisy = str(SCENARIOS / "noisy-neighbor.yaml")
    result = cli("run", noisy, "-o", str(out), "-q", "--set", "horizon=2h")
    assert result.exit_code == 0, result.output
    assert (out / "pfc.parquet").exists()
    assert cli("plot", str(out), "--kind", "pfc").exit_code == 0  # a plot drawn into the run
    result = cli("run", QUICKSTART, "-o", str(out), "-q", *SHORT)
    assert result.exit_code == 0, result.output
    assert not (out / "pfc.parquet").exists()
    assert not (out / "pfc.png").exists(), "the old run's plot went with it"
    assert json.loads((out / "summary.json").read_text())["scenario"] == "quickstart"
    assert json.loads((out / MARKER).read_text()) == {"kind": "run"}
    result = cli("plot", str(out), "--kind", "pfc")
    assert result.exit_code == 2 and "no cluster's fabric has PFC" in result.output
    assert temporaries(tmp_path) == []


def test_what_each_command_writes_is_marked_and_its_own(tmp_path, run_dir, fabric_files):
    fabric, flows = fabric_files
    result = cli("fabric", str(fabric), "--traffic", str(flows), "-o", str(tmp_path / "fab"), "-q")
    assert result.exit_code == 0, result.output
    result = cli("compare", QUICKSTART, "-p", "a", "--seeds", "1", "-j", "1", "-q",
                 "-o", str(tmp_path / "cmp"), *SHORT)  # fmt: skip
    assert result.exit_code == 0, result.output
    for name, kind in (("run", "run"), ("fab", "fabric"), ("cmp", "comparison")):
        assert output_kind(tmp_path / name) == kind
        check_directory(tmp_path / name, kind)  # every file it wrote is one its kind writes
    assert temporaries(tmp_path) == []


def test_writing_again_replaces_and_a_failure_changes_nothing(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    write_directory(out, "fabric", lambda d: (d / "flows.csv").write_text("1"))
    assert (out.stat().st_mode & 0o777) == 0o777 & ~sim.outputs._UMASK
    write_directory(out, "fabric", lambda d: (d / "summary.json").write_text("2"))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "summary.json"], "not merged"

    def failing(directory: Path) -> None:
        (directory / "flows.csv").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_directory(out, "fabric", failing)
    assert (out / "summary.json").read_text() == "2"
    with pytest.raises(KeyboardInterrupt):
        write_directory(tmp_path / "new" / "deeper" / "out", "fabric", failing)
    assert not (tmp_path / "new").exists(), "parents made for it are removed too"
    assert temporaries(out.parent) == [] and temporaries(tmp_path) == []


def test_without_an_atomic_exchange_the_old_copy_is_set_aside(tmp_path, monkeypatch):
    monkeypatch.setattr(sim.outputs, "_exchange", lambda first, second: False)
    out = tmp_path / "out"
    write_directory(out, "fabric", lambda d: (d / "flows.csv").write_text("old"))
    write_directory(out, "fabric", lambda d: (d / "flows.csv").write_text("new"))
    assert (out / "flows.csv").read_text() == "new"
    assert temporaries(tmp_path) == []


# --------------------------------------------------------------------------- refusals


def test_a_compare_into_a_run_directory_is_refused(tmp_path, run_dir, no_simulation):
    before = snapshot(run_dir)
    result = cli("compare", QUICKSTART, "-p", "a", "--seeds", "1", "-j", "1", "-q",
                 "-o", str(run_dir), *SHORT)  # fmt: skip
    assert result.exit_code == 2
    assert f"error: --out: {run_dir}: holds a run (surplus run), not a comparison" in result.output
    assert no_simulation == []
    assert snapshot(run_dir) == before
    assert temporaries(tmp_path) == []


def test_an_unmarked_older_run_is_recognised(run_dir, sweep_file, no_simulation):
    (run_dir / MARKER).unlink()
    assert output_kind(run_dir) == "run"
    result = cli("sweep", str(sweep_file), "-o", str(run_dir), "-q")
    assert result.exit_code == 2 and "holds a run (surplus run), not a sweep" in result.output
    (run_dir / "comparison.json").write_text("{}")  # what an old compare into a run left
    result = cli("run", QUICKSTART, "-o", str(run_dir), "-q", *SHORT)
    assert result.exit_code == 2
    assert "holds a run (surplus run) and a comparison (surplus compare) mixed" in result.output
    assert no_simulation == []


@pytest.mark.parametrize(
    "make",
    [
        lambda d: (d / "notes.txt").write_text("mine"),
        lambda d: (d / "data").mkdir() or (d / "data" / "x.csv").write_text("1"),
        lambda d: (d / "holiday.png").write_bytes(b"not a plot of a run"),
    ],
    ids=["a user's file", "an unrelated directory", "only pictures"],
)
def test_a_directory_with_files_surplus_did_not_write_is_refused(tmp_path, no_simulation, make):
    out = tmp_path / "out"
    out.mkdir()
    make(out)
    before = snapshot(out)
    result = cli("run", QUICKSTART, "-o", str(out), "-q", *SHORT)
    assert result.exit_code == 2
    assert f"error: --out: {out}: holds files Surplus did not write" in result.output
    assert no_simulation == [] and snapshot(out) == before


def test_a_run_directory_with_a_users_file_is_refused(run_dir, no_simulation):
    (run_dir / "notes.txt").write_text("mine")
    result = cli("run", QUICKSTART, "-o", str(run_dir), "-q", *SHORT)
    assert result.exit_code == 2 and "(notes.txt)" in result.output
    assert (run_dir / "notes.txt").read_text() == "mine"


def test_an_empty_directory_is_fine(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = cli("run", QUICKSTART, "-o", str(out), "-q", *SHORT)
    assert result.exit_code == 0, result.output
    assert (out / "summary.json").exists() and temporaries(tmp_path) == []


# --------------------------------------------------------------------------- writable targets


def _unwritable(tmp_path: Path, case: str) -> Path:
    if case == "proc":
        return Path("/proc/surplus-test")
    if case == "under a file":
        (tmp_path / "afile").write_text("precious")
        return tmp_path / "afile" / "sub"
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    return locked / "out"


@pytest.mark.parametrize("case", ["proc", "under a file", "read-only directory"])
@pytest.mark.parametrize("command", ["run", "compare", "sweep", "fabric"])
def test_an_unwritable_out_exits_2_before_simulating(
    tmp_path, no_simulation, fabric_files, sweep_file, case, command
):
    out = _unwritable(tmp_path, case)
    args = {
        "run": ["run", QUICKSTART, *SHORT],
        "compare": ["compare", QUICKSTART, "-p", "a", "--seeds", "1", "-j", "1", *SHORT],
        "sweep": ["sweep", str(sweep_file), "-j", "1"],
        "fabric": ["fabric", str(fabric_files[0]), "--traffic", str(fabric_files[1])],
    }[command]
    result = cli(*args, "-o", str(out), "-q")
    assert result.exit_code == 2, result.output
    assert f"error: --out: {out}: " in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert no_simulation == []
    if case == "under a file":
        assert (tmp_path / "afile").read_text() == "precious"


def test_a_directory_refusing_permission_is_named_with_the_reason(
    tmp_path, monkeypatch, no_simulation
):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sim.outputs.tempfile, "mkdtemp", denied)  # as a read-only directory
    out = tmp_path / "new" / "out"
    result = cli("run", QUICKSTART, "-o", str(out), "-q", *SHORT)
    assert result.exit_code == 2
    assert f"error: --out: {out}: cannot write in {out.parent} (Permission denied)" in (
        result.output
    )
    assert no_simulation == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["schema", "-o", "/proc/x.json"],
        ["traffic", "incast", "--hosts", "4", "--size", "1MB", "-o", "/proc/x.csv"],
    ],
)
def test_single_file_targets_are_checked(args):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: --out: {args[-1]}: cannot write in /proc (")


def test_plot_to_an_unwritable_file_exits_2(tmp_path, run_dir):
    result = cli("plot", str(run_dir), "--kind", "allocation", "-o", "/proc/x.png")
    assert result.exit_code == 2
    assert "error: --out: /proc/x.png: cannot write in /proc (" in result.output
    (tmp_path / "afile").write_text("")
    result = cli("plot", str(run_dir), "--kind", "allocation", "-o", str(tmp_path / "afile/x.png"))
    assert result.exit_code == 2 and "afile is not a directory" in result.output
    with pytest.raises(OutputError, match="is a directory"):
        check_file(run_dir)


def test_checking_a_target_leaves_nothing_behind(tmp_path):
    check_directory(tmp_path / "a" / "b" / "run", "run")
    check_file(tmp_path / "c" / "plot.png")
    assert list(tmp_path.iterdir()) == []
    staged = StagedDirectory(tmp_path / "x", "run")
    path = staged.open()
    assert path.parent == tmp_path and path.name.startswith(".x.surplus-")
    staged.discard()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- sweeps


def test_a_sweep_keeps_one_sweep_and_resumes(tmp_path, sweep_file):
    out = tmp_path / "sw"
    result = cli("sweep", str(sweep_file), "-o", str(out), "-j", "1", "-q")
    assert result.exit_code == 0, result.output
    first = {p.name for p in (out / "points").iterdir()}
    assert len(first) == 2 and output_kind(out) == "sweep"
    (out / "points" / ".abc.surplus-12345678").mkdir()  # left by a killed sweep
    sweep_file.write_text(SWEEP.replace("[first_fit, pack]", "[first_fit, spread]"))
    result = cli("sweep", str(sweep_file), "-o", str(out), "-j", "1", "-q")
    assert result.exit_code == 0, result.output
    assert "1 points run, 1 already finished, 0 failed" in result.output
    second = {p.name for p in (out / "points").iterdir()}
    assert len(second) == 2 and len(first & second) == 1, "the pack point is gone"
    points = pd.read_parquet(out / "points.parquet")
    assert set(points["key"]) == second
    assert temporaries(out / "points") == [] and temporaries(tmp_path) == []


def test_a_sweep_directory_with_a_foreign_file_is_refused(tmp_path, sweep_file, no_simulation):
    out = tmp_path / "sw"
    (out / "points").mkdir(parents=True)
    (out / "points" / "notes.txt").write_text("mine")
    result = cli("sweep", str(sweep_file), "-o", str(out), "-j", "1", "-q")
    assert result.exit_code == 2
    assert "holds files Surplus did not write (points/notes.txt)" in result.output
    assert no_simulation == [] and (out / "points" / "notes.txt").exists()


# --------------------------------------------------------------------------- last resort


def test_an_internal_error_is_one_line_with_exit_2(monkeypatch, capsys, tmp_path):
    import sim.runner

    def broken(*args, **kwargs):
        raise RuntimeError("the model broke\nsecond line")

    monkeypatch.setattr(sim.runner, "simulate", broken)
    args = ("run", QUICKSTART, "-o", str(tmp_path / "out"), "-q")
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert err == (
        "error: internal error: RuntimeError: the model broke; "
        "rerun with --debug for the traceback\n"
    )
    code, err = run_main(monkeypatch, capsys, "--debug", *args)
    assert code == 2
    assert err.startswith("Traceback (most recent call last):")
    assert "RuntimeError: the model broke" in err
    assert not (tmp_path / "out").exists() and temporaries(tmp_path) == []


def test_running_out_of_memory_is_one_line(monkeypatch, capsys, tmp_path):
    import sim.runner

    def hungry(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(sim.runner, "simulate", hungry)
    code, err = run_main(monkeypatch, capsys, "run", QUICKSTART, "-o", str(tmp_path / "o"))
    assert code == 2
    assert err.startswith("error: out of memory; ") and err.count("\n") == 1


def test_python_dash_m_sim_goes_through_main():
    text = (Path(sim.outputs.__file__).parent / "__main__.py").read_text()
    assert "from sim.cli import main" in text and "main()" in text
