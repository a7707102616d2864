"""``surplus trace inspect``: a trace's figures on small files, counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.traces import read_trace
from sim.traces.inspect import arrivals_by_hour_of_day, trace_statistics
from tests.helpers import run_cli

SPOT = [
    "job_name,organization,gpu_model,cpu_request,gpu_request,worker_num,submit_time,duration,job_type",
    "a,o1,A10,8,1,1,0,3600,HP",  # 1 GPU, 1 h: 1 GPU-h, hour 0
    "b,o1,A100-SXM4-80GB,8,8,2,1800,7200,Spot",  # 16 GPUs, 2 h: 32 GPU-h, hour 0
    "c,o2,A10,8,2,1,3700,1800,HP",  # 2 GPUs, 0.5 h: 1 GPU-h, hour 1
    "d,o2,A100-SXM4-80GB,8,4,1,90000,36000,Spot",  # 4 GPUs, 10 h: 40 GPU-h, hour 25 (1 of day 2)
    "e,o2,A10,8,0,1,100,30,Spot",  # zero GPUs
    "f,o1,A10,8,1,1,,100,HP",  # missing times
]

EXPECTED = {
    "jobs": 4,
    "span_hours": 25.0,
    "end_hours": 35.0,  # d ends at 90,000 + 36,000 s
    # hours 0 and 1 of the day occur twice in clock hours 0..25, the others once
    "arrivals_per_hour_by_hour_of_day": [1.0, 1.0] + [0.0] * 22,
    "gpus_mean": 5.75,  # (1 + 16 + 2 + 4) / 4
    "gpus_median": 3.0,
    "gpus_p99": 15.64,  # sorted 1, 2, 4, 16: 4 + 0.97 × 12
    "duration_hours_mean": 3.375,  # (1 + 2 + 0.5 + 10) / 4
    "duration_hours_median": 1.5,
    "duration_hours_p99": 9.76,  # sorted 0.5, 1, 2, 10: 2 + 0.97 × 8
    "gpu_hours": 74.0,
    "gpu_hours_by_model": {"A10": 2.0, "A100-SXM4-80GB": 72.0},
    "job_type_column": "job_type",
    "gpu_hours_by_job_type": {"HP": 2.0, "Spot": 72.0},
    "jobs_by_job_type": {"HP": 2, "Spot": 2},
    "skipped": {"missing times": 1, "zero GPUs": 1},
    "skipped_total": 2,
}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check(stats: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, float | dict):
            assert stats[key] == pytest.approx(value), key
        else:
            assert stats[key] == value, key


def test_statistics_of_a_small_spot_trace(tmp_path):
    stats = trace_statistics(read_trace("alibaba_spot_2026", write(tmp_path / "j.csv", SPOT)))
    check(stats, EXPECTED)
    assert stats["format"] == "alibaba_spot_2026"


def test_arrivals_on_pai_are_on_shanghai_time(tmp_path):
    lines = ["j1,w,1,Terminated,900,1900,1,1,100,V100", "j2,w,1,Terminated,4500,5000,1,1,100,T4"]
    jobs = read_trace("alibaba_pai_2020", write(tmp_path / "pai_task_table.csv", lines))
    # 900 s and 4,500 s after the clock's 0, read as UTC+8: 08:15 and 09:15
    rates = arrivals_by_hour_of_day(jobs)
    assert rates[8] == 1.0 and rates[9] == 1.0
    assert [r for h, r in enumerate(rates) if h not in (8, 9)] == [None] * 22
    stats = trace_statistics(jobs)
    assert stats["job_type_column"] == "status"
    assert stats["gpu_hours_by_job_type"] == pytest.approx({"Terminated": 1000 / 3600 + 500 / 3600})


def test_an_empty_trace(tmp_path):
    stats = trace_statistics(read_trace("alibaba_spot_2026", write(tmp_path / "j.csv", SPOT[:1])))
    assert stats["jobs"] == 0 and stats["gpu_hours"] == 0.0
    assert stats["gpus_mean"] is None and stats["span_hours"] is None
    assert stats["arrivals_per_hour_by_hour_of_day"] == [None] * 24


def test_cli_json(tmp_path):
    path = write(tmp_path / "j.csv", SPOT)
    result = run_cli("trace", "inspect", str(path), "--format", "alibaba_spot_2026", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    check(stats, EXPECTED)


def test_cli_table_is_not_cut(tmp_path):
    path = write(tmp_path / ("a-rather-long-directory-name-" * 4 + "j.csv"), SPOT)
    result = run_cli("trace", "inspect", str(path), "--format", "alibaba_spot_2026")
    assert result.exit_code == 0, result.output
    assert str(path) in result.output
    for text in ("74.0", "A100-SXM4-80GB", "missing times", "job_type", "15.6"):
        assert text in result.output


def test_cli_bad_input_exits_2(tmp_path):
    path = write(tmp_path / "j.csv", [*SPOT[:2], "x,o1,A10,8,one,1,0,10,HP"])
    result = run_cli("trace", "inspect", str(path), "--format", "alibaba_spot_2026", "--json")
    assert result.exit_code == 2
    assert f"{path}:3: column 'gpu_request': 'one' is not a number" in result.output
    result = run_cli("trace", "inspect", str(path), "--format", "slurm")
    assert result.exit_code == 2 and "unknown trace format 'slurm'" in result.output
    result = run_cli("trace", "inspect", str(tmp_path / "nope.csv"), "--format", "helios")
    assert result.exit_code == 2 and "cannot read" in result.output
