"""Trace readers and node lists: small files in each format, values counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.runner import simulate
from sim.scenario import scenario_from_text
from sim.scenario.yaml_input import ScenarioError
from sim.traces import TRACE_FORMATS, read_trace
from sim.traces.nodes import NODE_FORMATS, read_nodes

SHANGHAI_S = 8 * 3600
"""PAI's times are read as UTC+8 (their original time of day)."""

PAI_TASKS = [
    "j1,worker,2,Terminated,1000,4600,600,29.3,50,V100",  # 2 × 50 % = 1 GPU
    "j1,ps,1,Terminated,900,4700,400,10,0,",  # no GPU; widens the job to 900-4700
    "j2,worker,3,Terminated,2000,9200,600,29,100,T4",  # 3 GPUs
    "j2,evaluator,1,Terminated,2100,9000,100,1,100,P100",  # 1 GPU: the model stays T4
    "j3,worker,1,Failed,5000,5600,100,1,25,V100",  # a quarter GPU: 1
    "j4,ps,1,Terminated,100,200,600,1,0,",  # zero GPUs
    "j5,worker,1,Running,6000,,100,1,100,V100",  # no end: missing times
    "j6,worker,1,Waiting,,,100,1,100,V100",  # never started: missing times
    "j7,worker,1,Terminated,7000,7000,100,1,100,V100",  # zero duration
    "j8,worker,2,Terminated,3000,4000,100,1,nan,V100",  # plan_gpu NaN: zero GPUs
]
TASK_HEADER = (
    "job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,plan_gpu,gpu_type"
)
PAI_JOBS = [  # j7 is missing: "not in the job table"
    "j1,i1,u1,Terminated,800,4700",
    "j2,i2,u2,Terminated,1500,9200",
    "j3,i3,u1,Failed,4000,5600",
    "j4,i4,u3,Terminated,50,200",
    "j5,i5,u3,Running,5900,",
    "j6,i6,u3,Waiting,6000,",
    "j8,i8,u2,Terminated,2900,4000",
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_contract_format_is_registered():
    assert set(TRACE_FORMATS) == {"alibaba_spot_2026", "alibaba_pai_2020", "philly", "helios"}
    assert set(NODE_FORMATS) == {"alibaba_spot_2026", "alibaba_pai_2020"}


@pytest.mark.parametrize("style", ["headerless", "header row"])
def test_pai_tasks_alone(tmp_path, style):
    lines = PAI_TASKS if style == "headerless" else [TASK_HEADER, *PAI_TASKS]
    jobs = read_trace("alibaba_pai_2020", write(tmp_path / "pai_task_table.csv", lines))
    first = 1 if style == "headerless" else 2  # the line of the first task row
    assert list(jobs.name) == ["j1", "j2", "j3"]
    assert jobs.submit_s.tolist() == [0.0, 1100.0, 4100.0]  # earliest task starts 900, 2000, 5000
    assert jobs.origin_s == 900 + SHANGHAI_S
    assert jobs.duration_s.tolist() == [3800.0, 7200.0, 600.0]
    assert jobs.gpus.tolist() == [1, 4, 1]
    assert list(jobs.gpu_model) == ["V100", "T4", "V100"]
    assert jobs.line.tolist() == [first, first + 2, first + 4]
    assert list(jobs.columns["status"]) == ["Terminated", "Terminated", "Failed"]
    assert "user" not in jobs.columns
    assert jobs.skipped == {"missing times": 2, "zero GPUs": 2, "zero duration": 1}


def test_pai_with_the_job_table_beside_it(tmp_path):
    write(tmp_path / "pai_job_table.csv", PAI_JOBS)
    jobs = read_trace("alibaba_pai_2020", write(tmp_path / "pai_task_table.csv", PAI_TASKS))
    assert list(jobs.name) == ["j1", "j2", "j3"]
    assert jobs.submit_s.tolist() == [0.0, 700.0, 3200.0]  # submissions 800, 1500, 4000
    assert jobs.duration_s.tolist() == [3800.0, 7200.0, 600.0]  # still task start to end
    assert list(jobs.columns["user"]) == ["u1", "u2", "u1"]
    assert jobs.skipped == {"missing times": 2, "not in the job table": 1, "zero GPUs": 2}
    assert len(jobs.filter({"status": "Terminated", "user": "u1"})) == 1


def test_pai_header_files_beside_the_csvs(tmp_path):
    order = ["gpu_type", "job_name", "plan_gpu", "task_name", "inst_num"]
    rest = ["status", "start_time", "end_time", "plan_cpu", "plan_mem"]
    names = TASK_HEADER.split(",")
    shuffled = []
    for line in PAI_TASKS:
        cells = dict(zip(names, line.split(","), strict=True))
        shuffled.append(",".join(cells[c] for c in order + rest))
    write(tmp_path / "pai_task_table.header", [",".join(order + rest)])
    write(tmp_path / "pai_job_table.csv", PAI_JOBS)
    write(tmp_path / "pai_job_table.header", ["job_name,inst_id,user,status,start_time,end_time"])
    jobs = read_trace("alibaba_pai_2020", write(tmp_path / "pai_task_table.csv", shuffled))
    assert jobs.gpus.tolist() == [1, 4, 1]
    assert list(jobs.gpu_model) == ["V100", "T4", "V100"]
    assert jobs.submit_s.tolist() == [0.0, 700.0, 3200.0]
    assert jobs.line.tolist() == [1, 3, 5]


def test_pai_bad_rows_name_file_line_and_column(tmp_path):
    lines = [*PAI_TASKS[:2], "j9,worker,x,Terminated,1,2,100,1,100,V100", PAI_TASKS[2]]
    path = write(tmp_path / "pai_task_table.csv", lines)
    with pytest.raises(ScenarioError) as error:
        read_trace("alibaba_pai_2020", path)
    assert error.value.problems == [f"{path}:3: column 'inst_num': 'x' is not a number"]
    with pytest.raises(ScenarioError, match="PAI's job table; give its task table"):
        read_trace("alibaba_pai_2020", write(tmp_path / "pai_job_table.csv", PAI_JOBS))
    write(tmp_path / "pai_task_table.header", ["job_name,task_name"])
    with pytest.raises(ScenarioError, match=r"header lacks column.*'inst_num'"):
        read_trace("alibaba_pai_2020", path)


def _attempt(start: str | None, end: str | None, *machines: int) -> dict:
    detail = [
        {"ip": f"m{i}", "gpus": [f"gpu{g}" for g in range(n)]} for i, n in enumerate(machines)
    ]
    return {"start_time": start, "end_time": end, "detail": detail}


def _philly_job(jobid: str, status: str, submitted: str | None, attempts: list) -> str:
    job = {"jobid": jobid, "user": f"u{jobid}", "vc": "vc1", "status": status}
    return json.dumps({**job, "submitted_time": submitted, "attempts": attempts})


PHILLY = [
    "[",
    _philly_job(  # the README's example: two attempts of 8 GPUs
        "a",
        "Pass",
        "2017-10-07 01:11:39",
        [
            _attempt("2017-10-07 01:12:09", "2017-10-07 01:13:23", 8),
            _attempt("2017-10-07 01:13:30", "2017-10-09 06:53:12", 8),
        ],
    )
    + ",",
    _philly_job(  # 1 + 2 GPUs on two machines
        "b",
        "Failed",
        "2017-10-07 02:00:00",
        [_attempt("2017-10-07 02:30:00", "2017-10-07 03:00:00", 1, 2)],
    )
    + ",",
    _philly_job("c", "Killed", "2017-10-07 03:00:00", []) + ",",  # no attempts
    _philly_job("d", "Pass", "2017-10-07 03:00:00", [_attempt("2017-10-07 03:00:00", None, 1)])
    + ",",  # still running
    _philly_job("e", "Pass", "2017-10-07 03:00:00", [_attempt(None, "2017-10-07 04:00:00", 1)])
    + ",",  # missing times
    _philly_job(
        "f", "Pass", "2017-10-07 03:00:00", [_attempt("2017-10-07 03:00:00", "2017-10-07 04:00:00")]
    )
    + ",",  # zero GPUs
    _philly_job(
        "g",
        "Pass",
        "2017-10-07 03:00:00",
        [_attempt("2017-10-07 03:30:00", "2017-10-07 03:30:00", 4)],
    ),
    "]",
]


def test_philly(tmp_path):
    jobs = read_trace("philly", write(tmp_path / "cluster_job_log", PHILLY))
    assert list(jobs.name) == ["a", "b"]
    assert jobs.submit_s.tolist() == [0.0, 2901.0]  # 01:11:39 to 02:00:00
    # first attempt's start 10-07 01:12:09 to the last's end 10-09 06:53:12: 2 d 5 h 41 min 3 s
    assert jobs.duration_s.tolist() == [2 * 86400 + 5 * 3600 + 41 * 60 + 3, 1800.0]
    assert jobs.gpus.tolist() == [8, 3]
    assert list(jobs.gpu_model) == ["", ""]
    assert jobs.line.tolist() == [2, 3]
    assert list(jobs.columns["status"]) == ["Pass", "Failed"]
    assert list(jobs.columns["user"]) == ["ua", "ub"]
    assert jobs.origin_s % 86400 == 1 * 3600 + 11 * 60 + 39  # the trace's own time of day
    assert jobs.skipped == {
        "missing times": 1,
        "no attempts": 1,
        "still running": 1,
        "zero GPUs": 1,
        "zero duration": 1,
    }


def test_philly_lines_of_multi_line_entries_and_bad_fields(tmp_path):
    entries = [json.loads(PHILLY[1].rstrip(",")), json.loads(PHILLY[2].rstrip(","))]
    text = json.dumps(entries, indent=2)
    jobs = read_trace("philly", write(tmp_path / "log.json", [text]))
    second = text[: text.index('"jobid": "b"')].count("\n")  # the line of its "{"
    assert jobs.line.tolist() == [2, second]
    bad = [PHILLY[0], PHILLY[1], PHILLY[2].replace("2017-10-07 02:00:00", "yesterday"), "]"]
    bad[2] = bad[2].rstrip(",")
    path = write(tmp_path / "bad.json", bad)
    with pytest.raises(ScenarioError) as error:
        read_trace("philly", path)
    assert error.value.problems == [f"{path}:3: column 'submitted_time': 'yesterday' is not a time"]
    with pytest.raises(ScenarioError, match="not a JSON list"):
        read_trace("philly", write(tmp_path / "obj.json", ['{"jobid": "a"}']))


HELIOS = [
    "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue",
    "1,uA,vcA,1,1,1,COMPLETED,2020-06-09 18:41:01,2020-06-09 18:41:01,2020-06-10 04:55:09,36848,0",
    "2,uB,vcB,4,16,1,FAILED,2020-06-09 18:41:27,2020-06-09 18:41:27,2020-06-09 18:45:36,249,0",
    "3,uC,vcA,0,4,1,COMPLETED,2020-06-09 18:42:00,2020-06-09 18:42:00,2020-06-09 18:50:00,480,0",
    "4,uA,vcA,8,32,1,CANCELLED,2020-06-09 19:00:00,,2020-06-09 19:05:00,0,300",
    "5,uB,vcB,2,8,1,COMPLETED,2020-06-09 20:00:00,2020-06-09 20:10:00,2020-06-09 20:40:00,,600",
    "6,uB,vcB,2,8,1,COMPLETED,,2020-06-09 20:10:00,2020-06-09 20:40:00,1800,",
    "7,uC,vcA,1,1,1,COMPLETED,2020-06-09 21:00:00,2020-06-09 21:00:00,2020-06-09 21:00:00,0,0",
]


def test_helios(tmp_path):
    jobs = read_trace("helios", write(tmp_path / "cluster_log.csv", HELIOS))
    assert list(jobs.name) == ["1", "2", "5"]
    assert jobs.submit_s.tolist() == [0.0, 26.0, 4739.0]  # 18:41:01, 18:41:27, 20:00:00
    assert jobs.duration_s.tolist() == [36848.0, 249.0, 1800.0]  # job 5: end - start
    assert jobs.gpus.tolist() == [1, 4, 2]
    assert jobs.line.tolist() == [2, 3, 6]
    assert list(jobs.columns["state"]) == ["COMPLETED", "FAILED", "COMPLETED"]
    assert list(jobs.columns["vc"]) == ["vcA", "vcB", "vcB"]
    assert jobs.skipped == {
        "missing times": 1,
        "never started": 1,
        "zero GPUs": 1,
        "zero duration": 1,
    }
    assert len(jobs.filter({"vc": "vcB", "state": ["COMPLETED", "FAILED"]})) == 2


def test_helios_bad_rows(tmp_path):
    lines = [
        HELIOS[0],
        HELIOS[1].replace(",1,1,1,", ",1.5,1,1,", 1),
        HELIOS[2].replace("2020-06-09 18:41:27", "soon", 1),
    ]
    path = write(tmp_path / "cluster_log.csv", lines)
    with pytest.raises(ScenarioError) as error:
        read_trace("helios", path)
    assert error.value.problems == [
        f"{path}:2: column 'gpu_num': '1.5' is not a whole number of GPUs",
        f"{path}:3: column 'submit_time': 'soon' is not a time",
    ]
    no_vc = write(
        tmp_path / "no_vc.csv",
        [line.replace(",vcA", "").replace(",vcB", "").replace(",vc,", ",") for line in HELIOS],
    )
    assert sorted(read_trace("helios", no_vc).columns) == ["job_id", "state", "user"]


ALIBABA_NODES = [
    "node_name,gpu_model,gpu_capacity_num,cpu_num",
    "0,GPU-series-1,4,192",
    "1,GPU-series-1,1,192",
    "2,A10,1,128",
    "3,A100-SXM4-80GB,8,128",
    "4,A100-SXM4-80GB,8,128",
    "5,A10,0,64",
]


def test_alibaba_nodes(tmp_path):
    nodes = read_nodes("alibaba_spot_2026", write(tmp_path / "node_info_df.csv", ALIBABA_NODES))
    assert len(nodes) == 5
    assert nodes.groups() == [
        ("A10", 1, 1),
        ("A100-SXM4-80GB", 8, 2),
        ("GPU-series-1", 1, 1),
        ("GPU-series-1", 4, 1),
    ]
    assert nodes.skipped == {"zero GPUs": 1}
    assert [n.name for n in nodes.nodes] == ["0", "1", "2", "3", "4"]
    assert nodes.line_of("A100-SXM4-80GB") == 5


@pytest.mark.parametrize("header", [False, True])
def test_pai_machine_spec(tmp_path, header):
    lines = ["m1,T4,96,512,2", "m2,V100,96,512,8", "m3,V100,96,512,8", "m4,CPU,64,256,0"]
    if header:
        lines.insert(0, "machine,gpu_type,cap_cpu,cap_mem,cap_gpu")
    nodes = read_nodes("alibaba_pai_2020", write(tmp_path / "pai_machine_spec.csv", lines))
    assert nodes.groups() == [("T4", 2, 1), ("V100", 8, 2)]
    assert nodes.skipped == {"zero GPUs": 1}


def test_bad_node_lists(tmp_path):
    path = write(tmp_path / "pai_machine_spec.csv", ["m1,T4,96,512,2.5", "m2,,96,512,8"])
    with pytest.raises(ScenarioError) as error:
        read_nodes("alibaba_pai_2020", path)
    assert error.value.problems == [
        f"{path}:1: column 'cap_gpu': '2.5' is not a whole number of GPUs",
        f"{path}:2: column 'gpu_type': empty, on a node with GPUs",
    ]
    with pytest.raises(ScenarioError, match="no node list in format 'philly'"):
        read_nodes("philly", path)


REPLAY = """
name: replay
seed: 1
horizon: 4d
provider:
  sites:
    - name: s
      clusters:
        - {name: c, nodes: 4, accelerator: ACCELERATOR}
tenants:
  - name: t
    contract: {kind: on_demand}
    workload:
      trace: {format: FORMAT, path: PATH, DEFAULT}
"""


@pytest.mark.parametrize(
    "format, files, accelerator, default",
    [
        ("alibaba_pai_2020", {"pai_task_table.csv": PAI_TASKS}, "{V100: 2, T4: 2}", ""),
        (
            "alibaba_pai_2020",
            {"pai_task_table.csv": [TASK_HEADER, *PAI_TASKS]},
            "{V100: 2, T4: 2}",
            "",
        ),
        ("philly", {"cluster_job_log": PHILLY}, "H100", "default_accelerator: H100"),
        ("helios", {"cluster_log.csv": HELIOS}, "H100", "default_accelerator: H100"),
    ],
    ids=["pai-headerless", "pai-header", "philly", "helios"],
)
def test_every_format_replays_exactly(tmp_path, format, files, accelerator, default):
    """With room for every job and nothing failing, each job starts when the trace submits
    it, holds its GPUs and runs its duration (on its own type: speed 1)."""
    for name, lines in files.items():
        path = write(tmp_path / name, lines)
    trace = read_trace(format, path)
    text = (
        REPLAY.replace("FORMAT", format)
        .replace("PATH", path.name)
        .replace("ACCELERATOR", accelerator)
        .replace(", DEFAULT", f", {default}" if default else "")
    )
    jobs = simulate(scenario_from_text(text, "replay.yaml", base_dir=tmp_path)).jobs
    jobs = jobs.sort_values("submit_hours", kind="stable")
    assert len(jobs) == len(trace)
    assert jobs["submit_hours"].to_numpy() == pytest.approx(trace.submit_s / 3600)
    assert jobs["start_hours"].to_numpy() == pytest.approx(trace.submit_s / 3600)
    assert (jobs["end_hours"] - jobs["start_hours"]).to_numpy() == pytest.approx(
        trace.duration_s / 3600
    )
    assert jobs["gpus"].tolist() == trace.gpus.tolist()


def test_a_cluster_takes_its_nodes_from_a_pai_machine_spec(tmp_path):
    """PAI's machine list fills a cluster as Alibaba 2026's does: per size, per type."""
    lines = ["m1,T4,96,512,2", "m2,V100,96,512,8", "m3,V100,96,512,8", "m4,P100,96,512,8"]
    write(tmp_path / "pai_machine_spec.csv", lines)
    text = """
name: nodes
seed: 1
horizon: 1d
provider:
  sites:
    - name: s
      clusters:
        - name: c
          nodes_from: {format: alibaba_pai_2020, path: pai_machine_spec.csv, gpus_per_node: 8}
"""
    cluster = scenario_from_text(text, "nodes.yaml", base_dir=tmp_path).provider.clusters()[0]
    assert cluster.nodes == 3 and cluster.gpus_per_node == 8
    assert sorted(cluster.node_types()) == [("P100", 1), ("V100", 2)]
