"""``surplus traffic`` and ``surplus fabric``: files written, bad input refused without a trace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.fabric.traffic import read_flows

FLOW_CONTRACT = [
    "flow_id",
    "src",
    "dst",
    "size_bytes",
    "start_us",
    "fct_us",
    "ideal_fct_us",
    "slowdown",
]
SUMMARY_CONTRACT = [
    "fct_slowdown_p50",
    "fct_slowdown_p99",
    "max_fct_us",
    "pfc_pause_fraction",
    "ecn_mark_fraction",
]

FAT_TREE_ROCE = "topology:\n  kind: fat_tree\n  k: 4\n  link_gbps: 100\ntransport: {kind: roce}\n"

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def fabric_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "fab.yaml"
    path.write_text(FAT_TREE_ROCE)
    return path


# --------------------------------------------------------------------------- traffic


def test_traffic_incast_from_a_fabric_file(tmp_path, fabric_yaml) -> None:
    out = tmp_path / "flows" / "incast.csv"
    result = invoke(
        "traffic", "incast", "--fabric", str(fabric_yaml), "--senders", "15", "--receiver",
        "0", "--size", "2MB", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"wrote 15 flows to {out}" in result.output
    flows = read_flows(out, 16)
    assert len(flows) == 15 and (flows["dst"] == 0).all()
    assert sorted(flows["src"]) == list(range(1, 16))
    assert (flows["size_bytes"] == 2_000_000).all() and (flows["start_us"] == 0).all()


def test_traffic_patterns_from_a_host_count_are_seeded(tmp_path) -> None:
    def write(pattern: str, name: str, *extra: str) -> str:
        out = tmp_path / name
        result = invoke(
            "traffic", pattern, "--hosts", "8", "--size", "64KiB", "--out", str(out), *extra
        )
        assert result.exit_code == 0, result.output
        return out.read_text()

    perm = write("permutation", "p1.csv", "--seed", "4", "--start-us", "10")
    assert perm == write("permutation", "p2.csv", "--seed", "4", "--start-us", "10")
    assert perm != write("permutation", "p3.csv", "--seed", "5", "--start-us", "10")
    flows = read_flows(tmp_path / "p1.csv", 8)
    assert sorted(flows["dst"]) == list(range(8)) and (flows["src"] != flows["dst"]).all()
    assert (flows["start_us"] == 10.0).all() and (flows["size_bytes"] == 65_536).all()
    write("alltoall", "a.csv")
    assert len(read_flows(tmp_path / "a.csv", 8)) == 8 * 7
    write("incast", "i.csv", "--senders", "3", "--receiver", "5")
    incast = read_flows(tmp_path / "i.csv", 8)
    assert len(incast) == 3 and (incast["dst"] == 5).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["incast", "--size", "1MB"], "give exactly one of --fabric FABRIC.yaml and --hosts N"),
        (["incast", "--size", "1MB", "--hosts", "4", "--fabric", "f.yaml"], "exactly one of"),
        (["incast", "--size", "1MB", "--hosts", "1"], "--hosts: need at least 2 hosts, got 1"),
        (["permutation", "--size", "1MB", "--hosts", "4", "--senders", "2"], "--senders: only"),
        (["alltoall", "--size", "1MB", "--hosts", "4", "--receiver", "2"], "--receiver: only"),
        (["incast", "--size", "lots", "--hosts", "4"], "--size: invalid size 'lots'"),
        (
            ["incast", "--size", "1MB", "--hosts", "4", "--senders", "4"],
            "senders must be at most 3",
        ),
        (["incast", "--size", "1MB", "--hosts", "4", "--receiver", "9"], "receiver must be a host"),
        (["incast", "--size", "1MB", "--hosts", "4", "--seed", "-1"], "--seed: must not be"),
        (["incast", "--size", "1MB", "--hosts", "4", "--start-us", "-3"], "start_us must be"),
        (["incast", "--size", "1MB", "--fabric", "nope.yaml"], "nope.yaml: no such file"),
    ],
)
def test_traffic_bad_options_exit_2_and_write_nothing(tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sub" / "flows.csv"
    result = runner.invoke(app, ["traffic", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.parent.exists()


# --------------------------------------------------------------------------- fabric


def test_fabric_runs_a_15_to_1_incast_end_to_end(tmp_path, fabric_yaml) -> None:
    flows_csv = tmp_path / "incast.csv"
    made = invoke(
        "traffic", "incast", "--fabric", str(fabric_yaml), "--senders", "15", "--receiver",
        "0", "--size", "2MB", "--out", str(flows_csv),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    out = tmp_path / "run" / "incast"
    result = invoke("fabric", str(fabric_yaml), "--traffic", str(flows_csv), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "FCT slowdown P99" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".surplus.json",  # the marker: a fabric run (sim.outputs)
        "flows.csv",
        "latency.csv",
        "summary.json",
    ]
    flows = pd.read_csv(out / "flows.csv")
    assert list(flows.columns[: len(FLOW_CONTRACT)]) == FLOW_CONTRACT
    assert len(flows) == 15
    assert sorted(flows["src"]) == list(range(1, 16)) and (flows["dst"] == 0).all()
    assert (flows["size_bytes"] == 2_000_000).all()
    assert (flows["slowdown"] >= 1).all()
    assert (flows["fct_us"] >= flows["ideal_fct_us"]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_CONTRACT) <= set(summary)
    assert summary["fct_slowdown_p99"] >= summary["fct_slowdown_p50"] >= 1
    # Fifteen senders into one 100 Gb/s port: nobody gets much more than a fifteenth of it.
    assert summary["fct_slowdown_p50"] > 10
    assert "message latency P99.9 us" in result.output
    latency = pd.read_csv(out / "latency.csv")
    assert list(latency.columns) == ["quantile", "latency_us"]
    at = dict(zip(latency["quantile"], latency["latency_us"], strict=True))
    assert at[0.5] == pytest.approx(summary["message_latency_us_p50"])
    assert at[0.999] == pytest.approx(summary["message_latency_us_p999"])
    # Queues build behind the incast: the tail is far above an empty path's few µs.
    assert summary["message_latency_us_p99"] > 10 * latency["latency_us"].iloc[0]


BAD_FABRIC = {
    "odd k": (
        "topology:\n  kind: fat_tree\n  k: 5\ntransport: {kind: roce}\n",
        ["bad.yaml:3: topology.k: must be even, got 5"],
    ),
    "unknown transport": (
        "topology: {kind: fat_tree, k: 4}\ntransport: {kind: rdma}\n",
        ["bad.yaml:2: transport: unknown kind 'rdma'"],
    ),
    "xon above xoff": (
        "topology: {kind: fat_tree, k: 4}\ntransport:\n  kind: roce\n  pfc_xon_kb: 600\n",
        ["bad.yaml:3: transport: pfc_xon_kb must be below pfc_xoff_kb (512), got 600"],
    ),
    "kmax below kmin": (
        "topology: {kind: fat_tree, k: 4}\ntransport:\n  kind: roce\n  ecn_kmax_kb: 4\n",
        ["bad.yaml:3: transport: ecn_kmax_kb must be greater than ecn_kmin_kb (5), got 4"],
    ),
    "invalid YAML": ("topology: [fat_tree\n", ["bad.yaml:2: not valid YAML"]),
}

BAD_FLOWS = {
    "host outside the fabric": (
        "src,dst,start_us,size_bytes\n1,0,0,100\n16,0,0,100\n",
        ["bad.csv:3: src: no host 16; the fabric has 16 hosts"],
    ),
    "missing column": (
        "src,dst,size_bytes\n1,0,100\n",
        ["bad.csv:1: missing column start_us; the header has 'src', 'dst', 'size_bytes'"],
    ),
    "bad size": ("src,dst,start_us,size_bytes\n1,0,0,2MB\n", ["bad.csv:2: size_bytes: '2MB'"]),
    "pinned to a path the fabric lacks": (
        "src,dst,start_us,size_bytes,path_index\n1,0,0,100,\n0,8,0,100,4\n",
        ["bad.csv:3: path_index: 4 is no path: the flow (0 -> 8) has 4 equal-cost paths, 0 to 3"],
    ),
}


def _bad_inputs(tmp_path: Path, fabric_text: str, flows_text: str) -> tuple[Path, Path]:
    fabric_path, flows_path = tmp_path / "bad.yaml", tmp_path / "bad.csv"
    fabric_path.write_text(fabric_text)
    flows_path.write_text(flows_text)
    return fabric_path, flows_path


GOOD_FLOWS = "src,dst,start_us,size_bytes\n1,0,0,100\n"


def test_fabric_prints_the_credit_stall_on_infiniband(tmp_path) -> None:
    """The printed table has InfiniBand's back-pressure figure, as summary.json does."""
    fab = tmp_path / "ib.yaml"
    fab.write_text(FAT_TREE_ROCE.replace("{kind: roce}", "{kind: infiniband}"))
    flows_csv = tmp_path / "incast.csv"
    made = invoke(
        "traffic", "incast", "--fabric", str(fab), "--senders", "15", "--receiver", "0",
        "--size", "2MB", "--out", str(flows_csv),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    out = tmp_path / "run"
    result = invoke("fabric", str(fab), "--traffic", str(flows_csv), "--out", str(out))
    assert result.exit_code == 0, result.output
    stall = json.loads((out / "summary.json").read_text())["credit_stall_fraction"]
    assert stall > 0
    assert f"credit stall fraction {stall:.2%}" in " ".join(result.output.split()).replace(
        " │ ", " "
    )


@pytest.mark.parametrize(
    ("case", "fabric_text", "flows_text", "expected"),
    [(f"fabric: {k}", text, GOOD_FLOWS, e) for k, (text, e) in sorted(BAD_FABRIC.items())]
    + [(f"flows: {k}", FAT_TREE_ROCE, text, e) for k, (text, e) in sorted(BAD_FLOWS.items())],
)
def test_fabric_bad_input_exits_2_naming_file_line_and_field(
    tmp_path, case, fabric_text, flows_text, expected
) -> None:
    fabric_path, flows_path = _bad_inputs(tmp_path, fabric_text, flows_text)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["fabric", str(fabric_path), "--traffic", str(flows_path), "--out", str(out)]
    )
    assert result.exit_code == 2, (case, result.output)
    for fragment in expected:
        fragment = fragment.replace("bad.yaml", str(fabric_path)).replace(
            "bad.csv", str(flows_path)
        )
        assert f"error: {fragment}" in result.output, (case, result.output)
    assert not out.exists(), "nothing is written for bad input"


def test_python_dash_m_sim_fabric_bad_input_has_no_traceback(tmp_path) -> None:
    flows_text, expected = BAD_FLOWS["host outside the fabric"]
    fabric_path, flows_path = _bad_inputs(tmp_path, FAT_TREE_ROCE, flows_text)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "sim", "fabric", str(fabric_path), "--traffic", str(flows_path),
         "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert expected[0].replace("bad.csv", str(flows_path)) in result.stderr, result.stderr
    assert not out.exists()


def test_fabric_missing_files_and_out_that_is_a_file(tmp_path, fabric_yaml) -> None:
    flows_csv = tmp_path / "flows.csv"
    flows_csv.write_text(GOOD_FLOWS)
    result = runner.invoke(
        app, ["fabric", str(tmp_path / "no.yaml"), "--traffic", str(flows_csv), "--out", "o"]
    )
    assert result.exit_code == 2 and "no.yaml: no such file" in result.output
    result = runner.invoke(
        app, ["fabric", str(fabric_yaml), "--traffic", str(tmp_path / "no.csv"), "--out", "o"]
    )
    assert result.exit_code == 2 and "no.csv: no such file" in result.output
    blocker = tmp_path / "blocker"
    blocker.write_text("precious")
    result = runner.invoke(
        app, ["fabric", str(fabric_yaml), "--traffic", str(flows_csv), "--out", str(blocker)]
    )
    assert result.exit_code == 2 and "exists and is not a directory" in result.output
    assert blocker.read_text() == "precious"


def test_help_does_not_import_the_heavy_libraries() -> None:
    code = (
        "import sys, sim.cli; "
        "print(sorted(m for m in ('pandas', 'numpy', 'scipy', 'pydantic') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
