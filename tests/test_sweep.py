"""`surplus sweep`: points, content-hash keys, resuming, failures, determinism, Dask."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.scenario import scenario_from_text
from sim.sweep import expand, prepare, sweep

runner = CliRunner()

SWEEP = """
name: qsweep
seed: 42
horizon: 12h
provider:
  sites:
    - name: east
      clusters:
        - {name: east-a, nodes: 16}
tenants:
  - name: bolt
    contract: {kind: on_demand, max_wait: 4h, price_per_gpu_hour: 2.79}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 3}
      gpus: {kind: choice, values: [1, 2, 4, 8, 16]}
      duration: {kind: lognormal, median: 1h, sigma: 1.0}
sweep:
  grid:
    policies.placement.kind: [first_fit, pack]
    tenants.bolt.contract.max_wait: [30m, 4h]
  zip:
    tenants.bolt.workload.arrivals.rate_per_hour: [2, 6]
    provider.sites.east.clusters.east-a.nodes: [8, 24]
  seeds: 2
"""


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP, encoding="utf-8")
    return path


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_points_are_the_grid_times_the_zip_times_the_seeds():
    points = expand(scenario_from_text(SWEEP, "s.yaml"))
    assert len(points) == 2 * 2 * 2 * 2
    first = points[0][0]
    assert first == {
        "policies.placement.kind": "first_fit",
        "tenants.bolt.contract.max_wait": "30m",
        "tenants.bolt.workload.arrivals.rate_per_hour": "2",
        "provider.sites.east.clusters.east-a.nodes": "8",
    }
    # Zip rows vary together; seeds are the file's seed and the next.
    zipped = {
        (
            p["tenants.bolt.workload.arrivals.rate_per_hour"],
            p["provider.sites.east.clusters.east-a.nodes"],
        )
        for p, _ in points
    }
    assert zipped == {("2", "8"), ("6", "24")}
    assert [seed for _, seed in points[:2]] == [42, 43]


def test_a_points_key_is_the_hash_of_its_resolved_scenario(scenario_file):
    _, points = prepare(scenario_file)
    for point in points:
        assert point.key == hashlib.sha256(point.text.encode()).hexdigest()[:16]
        resolved = scenario_from_text(point.text, "p.yaml")
        assert resolved.seed == point.seed and resolved.sweep is None
    assert len({p.key for p in points}) == 16
    # A point keeps its key when the sweep around it grows.
    grown = SWEEP.replace("[first_fit, pack]", "[first_fit, pack, spread]")
    scenario_file.write_text(grown, encoding="utf-8")
    _, more = prepare(scenario_file)
    assert {p.key for p in points} < {p.key for p in more} and len(more) == 24


def test_workers_change_nothing_and_a_rerun_runs_nothing(tmp_path, scenario_file):
    one = sweep(scenario_file, tmp_path / "one", workers=1)
    two = sweep(scenario_file, tmp_path / "two", workers=2)
    assert (one.ran, two.ran, one.failed) == (16, 16, [])
    for name in ("results.parquet", "points.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "one" / name), pd.read_parquet(tmp_path / "two" / name)
        )
    again = sweep(scenario_file, tmp_path / "one", workers=2)
    assert (again.ran, again.skipped) == (0, 16)


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path, scenario_file):
    out = tmp_path / "out"
    sweep(scenario_file, out, workers=1)
    complete = pd.read_parquet(out / "results.parquet")
    _, points = prepare(scenario_file)
    # A kill leaves some points without their summary (written last), one with only a
    # temporary file of an atomic write, one with nothing at all.
    for point in points[3:6]:
        (out / "points" / point.key / "summary.json").unlink()
    (out / "points" / points[3].key / ".summary.json.abc123").write_text("{half")
    for child in (out / "points" / points[7].key).iterdir():
        child.unlink()
    (out / "results.parquet").unlink()
    resumed = sweep(scenario_file, out, workers=2)
    assert (resumed.ran, resumed.skipped) == (4, 12)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), complete)


def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path, scenario_file, monkeypatch):
    import sim.runner

    real = sim.runner.simulate

    def fragile(scenario, progress=None):
        if scenario.seed == 43 and scenario.policies.placement.kind == "pack":
            raise RuntimeError("the node caught fire")
        return real(scenario, progress)

    monkeypatch.setattr(sim.runner, "simulate", fragile)
    result = cli("sweep", str(scenario_file), "-o", str(tmp_path / "out"), "-j", "1", "-q")
    assert result.exit_code == 1
    assert "12 points run, 0 already finished, 4 failed" in result.output
    assert "RuntimeError: the node caught fire" in result.output
    table = pd.read_parquet(tmp_path / "out" / "points.parquet")
    failed = table[table["status"] == "failed"]
    assert len(failed) == 4 and set(failed["seed"]) == {43}
    assert (failed["error"] == "RuntimeError: the node caught fire").all()
    assert (table["status"] == "done").sum() == 12
    # Fixed, a rerun runs only the failed points.
    monkeypatch.setattr(sim.runner, "simulate", real)
    result = cli("sweep", str(scenario_file), "-o", str(tmp_path / "out"), "-j", "1", "-q")
    assert result.exit_code == 0 and "4 points run, 12 already finished, 0 failed" in result.output


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (
            ("[first_fit, pack]", "[first_fit, packed]"),
            [],
            "sweep point policies.placement.kind=packed",
        ),
        (("[8, 24]", "[8, 24, 32]"), [], "zip: every list must have the same length"),
        (("sweep:", "unused:"), [], "unused"),
        ((), ["--backend", "dask"], "--backend dask needs --address"),
        ((), ["--backend", "ray"], "--backend: 'ray' is not one of local, dask"),
        ((), ["-j", "0"], "--workers: need 1 to 1,024"),
    ],
)
def test_bad_sweeps_exit_2_naming_the_problem(tmp_path, change, extra, message):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.replace(*change) if change else SWEEP, encoding="utf-8")
    result = cli("sweep", str(path), "-o", str(tmp_path / "out"), "-q", *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out" / "results.parquet").exists()


def test_a_scenario_without_a_sweep_block_exits_2(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.split("sweep:")[0], encoding="utf-8")
    result = cli("sweep", str(path), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 2 and "no sweep block" in result.output


def test_a_dask_cluster_gives_exactly_the_local_results(tmp_path, scenario_file):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = cli(
            "sweep", str(scenario_file), "-o", str(tmp_path / "dask"), "-q",
            "--backend", "dask", "--address", cluster.scheduler_address,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep(scenario_file, tmp_path / "local", workers=2)
    for name in ("results.parquet", "points.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "dask" / name), pd.read_parquet(tmp_path / "local" / name)
        )


def test_an_unreachable_dask_scheduler_exits_2(tmp_path, scenario_file, monkeypatch):
    pytest.importorskip("dask.distributed")
    import sim.sweep

    monkeypatch.setattr(sim.sweep, "DASK_CONNECT_TIMEOUT", "1s")
    result = cli(
        "sweep", str(scenario_file), "-o", str(tmp_path / "out"), "-q",
        "--backend", "dask", "--address", "tcp://127.0.0.1:9",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--address tcp://127.0.0.1:9: cannot reach a Dask scheduler" in result.output
