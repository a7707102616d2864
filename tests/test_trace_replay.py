"""Trace workloads replay exactly: each job at its trace time, with its GPUs and duration.

The tests write small files in the Alibaba 2026 spot-GPU layout (``job_info_df.csv``,
``node_info_df.csv``) and compare the run's jobs with the file row by row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sim.scenario.trace_source as trace_source
from sim.catalog import accelerator
from sim.runner import simulate
from sim.scenario import ScenarioError, dump_scenario, load_scenario, scenario_from_text
from tests.helpers import run_cli

HEADER = (
    "job_name,organization,gpu_model,cpu_request,gpu_request,worker_num,"
    "submit_time,duration,job_type\n"
)

JOBS = [
    # name, org, model, gpus per worker, workers, submit s, duration s, type
    ("j1", "orgA", "H100", 8, 1, 100, 3600, "HP"),
    ("j2", "orgB", "H100", 1, 2, 1900, 7200, "Spot"),
    ("j3", "orgA", "B200", 8, 2, 3700, 1800, "HP"),
    ("j4", "orgB", "H100", 0, 1, 4100, 100, "Spot"),  # no GPU: skipped
    ("j5", "orgC", "B200", 4, 1, 7300, 5400, "Spot"),
    ("j6", "orgB", "H100", 2, 3, 9000, 900, "Spot"),
]
"""Submit times start at 100 s: the reader counts from the first job (j1 at 0 h)."""


def write_jobs(folder: Path, rows=JOBS, name: str = "job_info_df.csv") -> Path:
    path = folder / name
    lines = [f"{n},{o},{m},8,{g},{w},{s},{d},{t}\n" for n, o, m, g, w, s, d, t in rows]
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


NODES = "node_name,gpu_model,gpu_capacity_num,cpu_num\n" + "".join(
    f"n{i},{model},{gpus},96\n"
    for i, (model, gpus) in enumerate(
        [("H100", 8)] * 3 + [("B200", 8)] * 2 + [("H100", 4)] * 2 + [("CPU", 0)]
    )
)
"""Three 8-GPU H100 nodes, two 8-GPU B200, two 4-GPU H100 and a CPU host (skipped)."""


SCENARIO = """
name: replay
horizon: 1d
provider:
  sites:
    - name: s
      clusters:
        - name: c
          nodes: 4
          accelerator: {H100: 2, B200: 2}
tenants:
  - name: spot
    contract: {kind: on_demand}
    workload:
      trace: {format: alibaba_spot_2026, path: job_info_df.csv, filter: {job_type: Spot}TRACE}
internal:
  training:
    trace: {format: alibaba_spot_2026, path: job_info_df.csv, filter: {job_type: HP}}
"""


def scenario_file(folder: Path, text: str = SCENARIO, trace: str = "") -> Path:
    path = folder / "replay.yaml"
    path.write_text(text.replace("TRACE", trace), encoding="utf-8")
    return path


def run(folder: Path, trace: str = "", text: str = SCENARIO, *overrides: str):
    return simulate(load_scenario(scenario_file(folder, text, trace), overrides)).jobs


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_jobs(tmp_path)
    return tmp_path


def test_each_job_runs_at_its_trace_time_with_its_gpus_and_duration(folder: Path) -> None:
    jobs = run(folder).sort_values("submit_hours")
    expected = [row for row in JOBS if row[3] > 0]
    assert len(jobs) == len(expected) == 5
    for (_, job), (_, _, _, gpus, workers, submit, duration, kind) in zip(
        jobs.iterrows(), expected, strict=True
    ):
        assert job["tenant"] == ("internal" if kind == "HP" else "spot")
        assert job["submit_hours"] == pytest.approx((submit - 100) / 3600)
        assert job["start_hours"] == pytest.approx(job["submit_hours"])  # room for every job
        assert job["gpus"] == gpus * workers
        assert job["end_hours"] - job["start_hours"] == pytest.approx(duration / 3600)
        assert job["outcome"] == "done"


def test_time_scale_gpu_scale_start_and_a_list_filter(folder: Path) -> None:
    trace = ", filter: {organization: [orgB, orgC]}, start: 30m, time_scale: 2, gpu_scale: 0.5"
    text = SCENARIO.replace("filter: {job_type: Spot}TRACE", trace.lstrip(", "))
    jobs = run(folder, text=text)
    spot = jobs[jobs["tenant"] == "spot"].sort_values("submit_hours")
    # orgB and orgC after 30 min into the trace (1,800 s after j1): j2, j5, j6.
    assert spot["submit_hours"].tolist() == pytest.approx(
        [2 * (1800 - 1800) / 3600, 2 * (7200 - 1800) / 3600, 2 * (8900 - 1800) / 3600]
    )
    assert spot["gpus"].tolist() == [1, 2, 3]  # 2 x 0.5, 4 x 0.5, 6 x 0.5
    spans = (spot["end_hours"] - spot["start_hours"]).tolist()
    assert spans == pytest.approx([2 * 7200 / 3600, 2 * 5400 / 3600, 2 * 900 / 3600])


def test_gpu_scale_rounds_and_keeps_at_least_one_gpu(folder: Path) -> None:
    jobs = run(folder, ", gpu_scale: 0.1")
    spot = jobs[jobs["tenant"] == "spot"].sort_values("submit_hours")
    assert spot["gpus"].tolist() == [1, 1, 1]  # 0.2, 0.4, 0.6 rounded, at least 1


def test_a_job_moved_to_a_faster_type_runs_faster_by_the_tflops_ratio(folder: Path) -> None:
    text = SCENARIO.replace(
        "nodes: 4\n          accelerator: {H100: 2, B200: 2}",
        "nodes: 4\n          accelerator: B200",
    )
    text = text.replace(
        "internal:\n  training:\n    trace: {format: alibaba_spot_2026, path: "
        "job_info_df.csv, filter: {job_type: HP}}\n",
        "",
    )
    jobs = run(folder, ", accelerator: any", text).sort_values("submit_hours")
    ratio = accelerator("H100").tflops_bf16_dense / accelerator("B200").tflops_bf16_dense
    spans = (jobs["end_hours"] - jobs["start_hours"]).tolist()
    # j2 and j6 ran on H100: faster on B200 by the TFLOP/s ratio; j5 ran on B200.
    assert spans == pytest.approx([7200 / 3600 * ratio, 5400 / 3600, 900 / 3600 * ratio])
    assert (jobs["work_hours"] * 3600).tolist() == pytest.approx([7200, 5400, 900])


def test_accelerator_trace_keeps_each_job_on_its_own_type(folder: Path) -> None:
    jobs = run(folder)
    # Both types in one mixed cluster: each job on its own type, at its trace duration.
    assert ((jobs["end_hours"] - jobs["start_hours"]) * 3600).sort_values().tolist() == (
        pytest.approx([900, 1800, 3600, 5400, 7200])
    )


def test_max_jobs_caps_and_jobs_after_the_horizon_never_come(folder: Path) -> None:
    jobs = run(
        folder, text=SCENARIO.replace("    workload:\n", "    workload:\n      max_jobs: 2\n")
    )
    assert (jobs["tenant"] == "spot").sum() == 2
    jobs = run(folder, "", SCENARIO, "horizon=1.5h")
    assert sorted(jobs["submit_hours"] * 3600) == pytest.approx([0, 1800, 3600])


def test_a_trace_draws_nothing_so_other_tenants_draws_are_unchanged(folder: Path) -> None:
    poisson = """
  - name: drawn
    contract: {kind: on_demand}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 0.5}
      gpus: {kind: choice, values: [1, 2]}
      duration: {kind: exponential, mean: 1h}
"""
    alone = (
        SCENARIO.split("  - name: spot")[0]
        + poisson.lstrip("\n")
        + SCENARIO.split("internal:")[0].split("job_type: Spot}TRACE}\n")[1]
        + "internal:"
        + SCENARIO.split("internal:")[1]
    )
    both = SCENARIO.replace("internal:", poisson.lstrip("\n") + "internal:")
    big = "nodes: 40\n          accelerator: {H100: 20, B200: 20}"
    alone = alone.replace("nodes: 4\n          accelerator: {H100: 2, B200: 2}", big)
    both = both.replace("nodes: 4\n          accelerator: {H100: 2, B200: 2}", big)
    drawn = [run(folder, text=t) for t in (alone, both)]
    columns = ["submit_hours", "gpus", "work_hours"]
    a, b = (d[d["tenant"] == "drawn"][columns].reset_index(drop=True) for d in drawn)
    assert len(a) > 3
    assert a.equals(b)


def test_one_file_is_read_once_for_every_workload_that_uses_it(folder, monkeypatch) -> None:
    reads = []
    real = trace_source.read_trace
    monkeypatch.setattr(trace_source, "read_trace", lambda f, p: reads.append(p) or real(f, p))
    trace_source._read.cache_clear()
    run(folder)
    assert len(reads) == 1
    # An edited file is read again.
    write_jobs(folder, JOBS[:3])
    assert len(run(folder)) == 3
    assert len(reads) == 2


def test_paths_are_relative_to_the_scenario_file_or_the_working_directory(
    folder: Path, monkeypatch
) -> None:
    scenario = load_scenario(scenario_file(folder))
    path = Path(scenario.tenants[0].workload.trace.path)
    assert path == folder / "job_info_df.csv"
    assert scenario_from_text(dump_scenario(scenario)) == scenario
    monkeypatch.chdir(folder)
    assert scenario_from_text(SCENARIO.replace("TRACE", "")) == scenario


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("      trace: {", "      arrivals: {kind: poisson, rate_per_hour: 1}\n      trace: {"),
            r"replay\.yaml:\d+: tenants\[0\]\.workload: arrivals: a trace workload's arrivals, "
            r"GPUs and durations come from its trace; remove arrivals",
        ),
        (
            (
                "trace: {format: alibaba_spot_2026, path: job_info_df.csv, "
                "filter: {job_type: Spot}}",
                "gpus: 8\n      duration: 1h",
            ),
            r"tenants\[0\]\.workload: arrivals: missing required field \(or give a trace\)",
        ),
        (
            (
                "format: alibaba_spot_2026, path: job_info_df.csv, filter: {job_type: Spot}",
                "format: borg, path: job_info_df.csv",
            ),
            r"tenants\[0\]\.workload\.trace\.format: unknown trace format 'borg'; known: "
            r"alibaba_pai_2020, alibaba_spot_2026, helios, philly",
        ),
        (
            ("{job_type: Spot}", "{queue: Spot}"),
            r"replay\.yaml:\d+: tenants\[0\]\.workload\.trace\.filter\.queue: .*job_info_df\.csv "
            r"\(alibaba_spot_2026\) has no column 'queue'; its columns: gpu_model, job_name, "
            r"job_type, organization",
        ),
        (
            (
                "path: job_info_df.csv, filter: {job_type: Spot}",
                "path: nowhere.csv, filter: {job_type: Spot}",
            ),
            r"tenants\[0\]\.workload\.trace\.path: .*nowhere\.csv: cannot read",
        ),
        (
            ("{H100: 2, B200: 2}", "{H100: 2, MI300X: 2}"),
            r"internal\.training\.trace: 1 jobs ran on B200 \(first at .*job_info_df\.csv:4\), "
            r"which no cluster they may use has \(they have H100, MI300X\); map their model",
        ),
        (
            ("filter: {job_type: Spot}", "filter: {job_type: Spot}, gpu_scale: 3"),
            r"tenants\[0\]\.workload\.trace\.gpu_scale: 1 jobs on H100 need up to 18 GPUs \(first "
            r"at .*job_info_df\.csv:7\), more than the 16 available to them",
        ),
        (
            ("filter: {job_type: Spot}", "filter: {job_type: Spot}, accelerator_map: {H100: X1}"),
            r"tenants\[0\]\.workload\.trace\.accelerator_map: H100: unknown accelerator 'X1'",
        ),
        (
            ("    workload:\n", "    accelerators: [H100]\n    workload:\n"),
            r"tenants\[0\]\.accelerators: with tenants\[0\]\.workload\.trace\.accelerator: trace "
            r"each job runs on the type its trace names",
        ),
    ],
)
def test_bad_trace_workloads_name_the_field(folder: Path, change, message) -> None:
    text = SCENARIO.replace("TRACE", "").replace(*change)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(scenario_file(folder, text))


def test_unknown_models_need_a_mapping_and_blank_ones_a_default(folder: Path) -> None:
    rows = [("k1", "o", "GPU-series-1", 8, 1, 0, 60, "Spot"), ("k2", "o", "", 4, 1, 60, 60, "Spot")]
    write_jobs(folder, rows)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario_file(folder, SCENARIO.split("internal:")[0]))
    problems = caught.value.problems
    assert len(problems) == 2
    assert "tenants[0].workload.trace.default_accelerator: 1 jobs (first at " in problems[0]
    assert "job_info_df.csv:3) name no GPU model" in problems[0]
    assert (
        "tenants[0].workload.trace.accelerator_map: GPU model 'GPU-series-1' is not in "
        in (problems[1])
    )
    assert "(1 jobs, first at " in problems[1]
    mapped = ", accelerator_map: {GPU-series-1: B200}, default_accelerator: H100"
    jobs = run(folder, mapped, SCENARIO.split("internal:")[0]).sort_values("submit_hours")
    assert jobs["gpus"].tolist() == [8, 4]
    assert (jobs["end_hours"] - jobs["start_hours"]).tolist() == pytest.approx([60 / 3600] * 2)


def test_a_bad_row_reaches_surplus_run_as_file_line_and_column(folder: Path) -> None:
    path = folder / "job_info_df.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(",1800,HP", ",soon,HP")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("run", str(scenario_file(folder)), "--out", str(folder / "out"), "-q")
    assert result.exit_code == 2
    assert f"{path}:4: column 'duration': 'soon' is not a number" in result.output
    assert "tenants[0].workload.trace.path:" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- nodes_from

NODE_SCENARIO = """
name: nodes
horizon: 1d
provider:
  sites:
    - name: s
      clusters:
        - name: big
          nodes_from: {format: alibaba_spot_2026, path: node_info_df.csv, gpus_per_node: 8BIG}
        - name: small
          nodes_from: {format: alibaba_spot_2026, path: node_info_df.csv, gpus_per_node: 4}
"""


def load_nodes(folder: Path, big: str = "", nodes: str = NODES):
    (folder / "node_info_df.csv").write_text(nodes, encoding="utf-8")
    path = folder / "nodes.yaml"
    path.write_text(NODE_SCENARIO.replace("BIG", big), encoding="utf-8")
    return load_scenario(path)


def test_a_cluster_takes_its_nodes_per_type_from_a_node_list(tmp_path: Path) -> None:
    big, small = load_nodes(tmp_path).provider.clusters()
    assert (big.nodes, big.gpus_per_node, big.node_types()) == (5, 8, [("B200", 2), ("H100", 3)])
    assert (small.nodes, small.gpus_per_node, small.accelerator) == (2, 4, "H100")
    big = load_nodes(tmp_path, ", scale: 0.4").provider.clusters()[0]
    assert big.node_types() == [("B200", 1), ("H100", 1)]  # 0.8 and 1.2, rounded


def test_node_list_problems_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(
        ScenarioError,
        match=r"nodes\.yaml:\d+: provider\.sites\[0\]\.clusters"
        r"\[0\]\.nodes_from\.gpus_per_node: .*node_info_df\.csv has 2 nodes of 4 "
        r"GPUs, 5 nodes of 8 GPUs; a cluster has one node size",
    ):
        load_nodes(tmp_path).provider  # noqa: B018
        path = tmp_path / "nodes.yaml"
        path.write_text(NODE_SCENARIO.replace(", gpus_per_node: 8BIG", ""), encoding="utf-8")
        load_scenario(path)
    with pytest.raises(
        ScenarioError,
        match=r"clusters\[0\]\.nodes_from\.accelerator_map: GPU "
        r"model 'GPU-series-1' is not in the accelerator catalog; map it",
    ):
        load_nodes(tmp_path, nodes=NODES + "x,GPU-series-1,8,96\n")
    scenario = load_nodes(
        tmp_path, ", accelerator_map: {GPU-series-1: MI300X}", NODES + "x,GPU-series-1,8,96\n"
    )
    assert scenario.provider.clusters()[0].node_types() == [("B200", 2), ("MI300X", 1), ("H100", 3)]
    with pytest.raises(
        ScenarioError,
        match=r"node_info_df\.csv:3: column 'gpu_capacity_num': "
        r"'eight' is not a whole number of GPUs",
    ):
        load_nodes(tmp_path, nodes=NODES.replace("n1,H100,8", "n1,H100,eight"))


def test_a_resolved_node_list_scenario_loads_again(tmp_path: Path) -> None:
    scenario = load_nodes(tmp_path)
    assert scenario_from_text(dump_scenario(scenario)) == scenario
    text = NODE_SCENARIO.replace("BIG", "}\n          nodes: 3\n          x: {").replace(
        "          x: {}\n", ""
    )
    path = tmp_path / "both.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"clusters\[0\]\.nodes: 3 where nodes_from gives 5"):
        load_scenario(path)


# --------------------------------------------------------------------------- the shipped scenario

SHIPPED = Path(__file__).resolve().parents[1] / "scenarios" / "alibaba-spot.yaml"


def test_the_shipped_alibaba_sample_keeps_the_trace_mix_and_splits_hp_from_spot() -> None:
    scenario = load_scenario(SHIPPED)
    sample = SHIPPED.parent / "traces" / "alibaba-spot-2026"
    rows = (sample / "node_info_df.csv").read_text(encoding="utf-8").splitlines()[1:]
    models = [row.split(",")[1] for row in rows]
    # Six GPU types, 146 nodes: 4,278 / 30 with at least one node per type.
    assert len(set(models)) == 6 and len(rows) == 146
    gpus = {c.name: c.nodes * c.gpus_per_node for c in scenario.provider.clusters()}
    assert gpus == {"eight-gpu": 26 * 8, "four-gpu": 27 * 4, "one-gpu": 93}
    jobs = (sample / "job_info_df.csv").read_text(encoding="utf-8").splitlines()[1:]
    kinds = [row.rsplit(",", 1)[1] for row in jobs]
    result = simulate(load_scenario(SHIPPED, ["horizon=4d"]))
    counts = result.jobs.groupby("tenant").size().to_dict()
    assert counts == {"internal": kinds.count("HP"), "spot": kinds.count("Spot")}
    assert kinds.count("HP") / len(kinds) == pytest.approx(41_538 / (41_538 + 12_844), abs=0.02)


def test_a_filter_that_keeps_nothing_shows_the_values_it_could_keep(folder: Path) -> None:
    text = SCENARIO.replace("TRACE", "").replace("{job_type: Spot}", "{job_type: spot}")
    with pytest.raises(
        ScenarioError,
        match=r"tenants\[0\]\.workload\.trace\.filter: no job of .*job_info_df\.csv matches "
        r"\(of 5 jobs; values are compared as text, e\.g\. job_type: HP, Spot\)",
    ):
        load_scenario(scenario_file(folder, text))


def test_accelerator_any_keeps_to_the_types_a_tenant_accepts(folder: Path) -> None:
    text = SCENARIO.replace("    workload:\n", "    accelerators: [B200]\n    workload:\n")
    jobs = run(folder, ", accelerator: any", text)
    spot = jobs[jobs["tenant"] == "spot"].sort_values("submit_hours")
    ratio = accelerator("H100").tflops_bf16_dense / accelerator("B200").tflops_bf16_dense
    # Only B200 nodes: the H100 jobs (j2, j6) run there, faster by the TFLOP/s ratio.
    spans = ((spot["end_hours"] - spot["start_hours"]) * 3600).tolist()
    assert spans == pytest.approx([7200 * ratio, 5400, 900 * ratio])


def test_a_scenario_named_by_a_relative_path_resolves_its_files_absolute(
    folder: Path, monkeypatch
) -> None:
    (folder / "node_info_df.csv").write_text(NODES, encoding="utf-8")
    text = SCENARIO.replace(
        "nodes: 4\n          accelerator: {H100: 2, B200: 2}",
        ("nodes_from: {format: alibaba_spot_2026, path: node_info_df.csv, gpus_per_node: 8}"),
    )
    scenario_file(folder, text)
    monkeypatch.chdir(folder.parent)
    scenario = load_scenario(Path(folder.name) / "replay.yaml")
    assert scenario.tenants[0].workload.trace.path == str(folder / "job_info_df.csv")
    assert scenario.provider.clusters()[0].nodes_from.path == str(folder / "node_info_df.csv")
    assert scenario.provider.clusters()[0].node_types() == [("B200", 2), ("H100", 3)]
    monkeypatch.chdir("/")
    assert scenario_from_text(dump_scenario(scenario)) == scenario
