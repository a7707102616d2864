"""FLOWS.csv: generators, size parsing, round trips and every malformed-file message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.fabric.paths import equal_cost_path_count
from sim.fabric.topology_kinds import build_topology
from sim.fabric.traffic import (
    MAX_PROBLEMS,
    TRAFFIC_COLUMNS,
    alltoall,
    incast,
    parse_size_bytes,
    permutation,
    read_flow_arrays,
    read_flows,
    write_flows,
)
from sim.scenario.yaml_input import ScenarioError

DTYPES = {"src": "int64", "dst": "int64", "start_us": "float64", "size_bytes": "int64"}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_flow_frame(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(TRAFFIC_COLUMNS)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == DTYPES
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0


# --------------------------------------------------------------------------- generators


def test_incast_targets_one_receiver_from_distinct_sorted_senders() -> None:
    flows = incast(16, 15, 3, 2_000_000, 5.0, rng=rng())
    assert_flow_frame(flows)
    assert len(flows) == 15
    assert (flows["dst"] == 3).all()
    assert sorted(flows["src"]) == [h for h in range(16) if h != 3]
    assert (flows["size_bytes"] == 2_000_000).all() and (flows["start_us"] == 5.0).all()
    few = incast(64, 5, 0, 100, rng=rng(1))
    senders = few["src"].to_numpy()
    assert len(set(senders)) == 5 and 0 not in senders and np.all(np.diff(senders) > 0)


def test_incast_is_deterministic_in_the_generator() -> None:
    a = incast(128, 10, 7, 4096, rng=rng(11))
    pd.testing.assert_frame_equal(a, incast(128, 10, 7, 4096, rng=rng(11)))
    assert not a.equals(incast(128, 10, 7, 4096, rng=rng(12)))


@pytest.mark.parametrize("n_hosts", [2, 3, 7, 128])
def test_permutation_is_a_derangement(n_hosts: int) -> None:
    flows = permutation(n_hosts, 1000, rng=rng(n_hosts))
    assert_flow_frame(flows)
    assert list(flows["src"]) == list(range(n_hosts))
    assert sorted(flows["dst"]) == list(range(n_hosts))
    assert (flows["src"] != flows["dst"]).all()


def test_permutation_is_deterministic_and_varies_with_the_seed() -> None:
    a = permutation(64, 1000, rng=rng(5))
    pd.testing.assert_frame_equal(a, permutation(64, 1000, rng=rng(5)))
    assert not a.equals(permutation(64, 1000, rng=rng(6)))
    # Two hosts have a single derangement: they swap.
    assert list(permutation(2, 1, rng=rng(9))["dst"]) == [1, 0]


@pytest.mark.parametrize("hosts", [[0, 1], [4, 9, 2], list(range(16))])
def test_alltoall_is_every_ordered_pair(hosts: list[int]) -> None:
    flows = alltoall(hosts, 512, 1.5)
    assert_flow_frame(flows)
    n = len(hosts)
    assert len(flows) == n * (n - 1)
    pairs = list(zip(flows["src"], flows["dst"], strict=True))
    assert len(set(pairs)) == len(pairs)
    assert set(pairs) == {(a, b) for a in hosts for b in hosts if a != b}
    assert [a for a, _ in pairs] == [a for a in hosts for _ in range(n - 1)]
    assert (flows["start_us"] == 1.5).all() and (flows["size_bytes"] == 512).all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: incast(16, 16, 0, 100, rng=rng()), "senders must be at most 15"),
        (lambda: incast(16, 0, 0, 100, rng=rng()), "senders must be at least 1"),
        (lambda: incast(16, 3, 16, 100, rng=rng()), "receiver must be a host, 0 to 15, got 16"),
        (lambda: incast(1, 1, 0, 100, rng=rng()), "n_hosts must be at least 2"),
        (lambda: incast(16, 3, 0, 0, rng=rng()), "size_bytes must be at least 1"),
        (lambda: incast(16, 3, 0, 10, -1.0, rng=rng()), "start_us must be a finite number from 0"),
        (lambda: incast(16, 3, 0, 10, 1e300, rng=rng()), "to 86,400,000,000, got 1e+300"),
        (lambda: incast(10**12, 3, 0, 10, rng=rng()), "n_hosts must be at most 262,144, got 1e+12"),
        (lambda: permutation(10**30, 10, rng=rng()), "n_hosts must be at most 262,144"),
        (lambda: incast(16, 3, 0, 10**13, rng=rng()), "size_bytes must be at most"),
        (lambda: permutation(1, 100, rng=rng()), "n_hosts must be at least 2, got 1"),
        (lambda: permutation(4, 2.5, rng=rng()), "size_bytes must be an integer"),
        (lambda: alltoall([3], 100), "at least 2 hosts, got 1"),
        (lambda: alltoall([1, 2, 1], 100), "repeated: [1]"),
        (lambda: alltoall([0, -2], 100), "must not be negative"),
        (lambda: alltoall(list(range(5000)), 100), "24,995,000 flows"),
    ],
)
def test_impossible_requests_are_clear_value_errors(make, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        make()
    assert message in str(caught.value)


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("  4096 ", 4096),
        (4096, 4096),
        ("100B", 100),
        ("2KB", 2_000),
        ("2MB", 2_000_000),
        ("1.5GB", 1_500_000_000),
        ("2 MB", 2_000_000),
        ("64KiB", 65_536),
        ("2MiB", 2_097_152),
        ("1GiB", 1_073_741_824),
        ("0.5KiB", 512),
    ],
)
def test_parse_size_bytes(text, size: int) -> None:
    assert parse_size_bytes(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2XB", "invalid size '2XB'"),
        ("two MB", "invalid size 'two MB'"),
        ("-1", "invalid size '-1'"),
        ("0", "invalid size '0': must be at least 1 byte"),
        ("1.5", "invalid size '1.5': bytes must be a whole number"),
        ("1.0000001KB", "invalid size '1.0000001KB'"),
        ("", "invalid size ''"),
        (0, "invalid size 0"),
    ],
)
def test_parse_size_bytes_errors_name_the_value(text, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size_bytes(text)
    assert message in str(caught.value)


# --------------------------------------------------------------------------- files


def test_write_then_read_round_trips(tmp_path) -> None:
    flows = pd.concat(
        [incast(32, 31, 0, 2_000_000, rng=rng()), permutation(32, 12345, 0.1 + 1e-9, rng=rng())],
        ignore_index=True,
    )
    flows["flow_id"] = np.arange(len(flows))
    path = tmp_path / "nested" / "flows.csv"
    write_flows(flows, path)
    header = path.read_text().splitlines()[0]
    assert header == "src,dst,start_us,size_bytes,flow_id"
    back = read_flows(path, 32)
    assert_flow_frame(back)
    pd.testing.assert_frame_equal(back, flows[list(TRAFFIC_COLUMNS)])
    assert not list(tmp_path.glob("nested/.*")), "no temporary file is left behind"


def test_write_flows_needs_the_required_columns(tmp_path) -> None:
    with pytest.raises(ValueError, match="size_bytes"):
        write_flows(pd.DataFrame({"src": [0], "dst": [1], "start_us": [0.0]}), tmp_path / "f.csv")


def test_columns_in_any_order_extras_blank_lines_and_spaces(tmp_path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(
        "\ufefftag, size_bytes ,dst,src,start_us\n"
        "a,1000,1,0,0\n"
        "\n"
        "b, 2e3 ,0,1, 2.5\n"
        "c,3000,3.0,2,10\n"
    )
    flows = read_flows(path, 4)
    assert_flow_frame(flows)
    assert flows.to_dict("list") == {
        "src": [0, 1, 2],
        "dst": [1, 0, 3],
        "start_us": [0.0, 2.5, 10.0],
        "size_bytes": [1000, 2000, 3000],
    }


def test_a_large_file_is_read_quickly_and_exactly(tmp_path) -> None:
    n = 100_000
    r = rng(3)
    src = r.integers(0, 1024, n)
    flows = pd.DataFrame(
        {
            "src": src,
            "dst": (src + r.integers(1, 1024, n)) % 1024,
            "start_us": r.random(n) * 1e4,
            "size_bytes": r.integers(1, 10**9, n),
        }
    )
    path = tmp_path / "flows.csv"
    write_flows(flows, path)
    pd.testing.assert_frame_equal(read_flows(path, 1024), flows)
    # A messy file goes through the explaining path, which still finds the one bad line.
    lines = path.read_text().splitlines()
    src_50002 = lines[50_001].split(",")[0]
    lines[50_001] = "x" + lines[50_001]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioError) as caught:
        read_flows(path, 1024)
    assert caught.value.problems == [f"{path}:50002: src: 'x{src_50002}' is not a number"]


HEADER = "src,dst,start_us,size_bytes\n"

MALFORMED = {
    "empty file": (
        "",
        ["flows.csv: empty file; expected a header line src,dst,start_us,size_bytes"],
    ),
    "whitespace only": ("\n\n  \n", ["flows.csv: empty file"]),
    "header only": (HEADER, ["flows.csv: no flows; the file has a header but no rows"]),
    "header and blank lines": (HEADER + "\n\n", ["flows.csv: no flows"]),
    "missing column": (
        "src,dst,size_bytes\n0,1,100\n",
        ["flows.csv:1: missing column start_us; the header has 'src', 'dst', 'size_bytes'"],
    ),
    "no header": (
        "0,1,0,100\n",
        ["flows.csv:1: missing columns src, dst, start_us, size_bytes; the header has '0'"],
    ),
    "too many fields": (HEADER + "0,1,0,100\n0,1,0,100,7\n", ["flows.csv:3: 5 fields"]),
    "unparseable number": (
        HEADER + "0,1,0,100\n0,one,0,100\n",
        ["flows.csv:3: dst: 'one' is not a number"],
    ),
    "missing value": (
        HEADER + "0,1,,100\n0,1\n",
        [
            "flows.csv:2: start_us: missing value",
            "flows.csv:3: start_us: missing value",
            "flows.csv:3: size_bytes: missing value",
        ],
    ),
    "src out of range": (
        HEADER + "0,1,0,100\n16,1,0,100\n",
        ["flows.csv:3: src: no host 16; the fabric has 16 hosts, numbered 0 to 15"],
    ),
    "dst negative": (HEADER + "0,-1,0,100\n", ["flows.csv:2: dst: no host -1; the fabric has 16"]),
    "fractional host": (HEADER + "0.5,1,0,100\n", ["flows.csv:2: src: a host is a whole number"]),
    "src equals dst": (
        HEADER + "0,1,0,100\n\n5,5,0,100\n",
        ["flows.csv:4: src, dst: both are host 5; a flow needs two different hosts"],
    ),
    "negative start": (
        HEADER + "0,1,-0.5,100\n",
        ["flows.csv:2: start_us: must not be negative, got '-0.5'"],
    ),
    "non-finite start": (
        HEADER + "0,1,inf,100\n0,1,nan,100\n",
        [
            "flows.csv:2: start_us: must be a finite number, got 'inf'",
            "flows.csv:3: start_us: must be a finite number, got 'nan'",
        ],
    ),
    "zero size": (HEADER + "0,1,0,0\n", ["flows.csv:2: size_bytes: must be a positive whole"]),
    "negative size": (HEADER + "0,1,0,-8\n", ["flows.csv:2: size_bytes: must be a positive whole"]),
    "fractional size": (HEADER + "0,1,0,1.5\n", ["got '1.5'"]),
    "huge size": (HEADER + "0,1,0,1e300\n", ["flows.csv:2: size_bytes: 1e300 is too large"]),
    "size just past 1 TB": (
        HEADER + "0,1,0,1000000000001\n",
        ["flows.csv:2: size_bytes: 1000000000001 is too large (at most 1,000,000,000,000, 1 TB)"],
    ),
    "start past one day": (
        HEADER + "0,1,1e300,100\n0,1,86400000001,100\n0,1,86400000000,100\n",
        [
            "flows.csv:2: start_us: 1e300 is past one day (at most 86,400,000,000 us)",
            "flows.csv:3: start_us: 86400000001 is past one day",
        ],
    ),
    "non-finite host and size": (
        HEADER + "nan,1,0,100\n0,inf,0,100\n0,1,0,nan\n0,1,0,-inf\n",
        [
            "flows.csv:2: src: must be a finite number, got 'nan'",
            "flows.csv:3: dst: must be a finite number, got 'inf'",
            "flows.csv:4: size_bytes: must be a finite number, got 'nan'",
            "flows.csv:5: size_bytes: must be a finite number, got '-inf'",
        ],
    ),
    "column twice after trimming": (
        "src, src,dst,start_us,size_bytes\n0,1,1,0,100\n",
        ["flows.csv:1: column src appears twice"],
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_name_line_and_column(tmp_path, case: str) -> None:
    text, expected = MALFORMED[case]
    path = tmp_path / "flows.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        read_flows(path, 16)
    problems = [p.replace(str(path), "flows.csv") for p in caught.value.problems]
    for fragment in expected:
        assert any(p.startswith(fragment) or fragment in p for p in problems), (fragment, problems)
    assert len(problems) == len(expected) or case == "too many fields"


def test_problems_are_in_line_order_and_capped(tmp_path) -> None:
    path = tmp_path / "flows.csv"
    rows = [f"{i % 3},{i % 3},-1,0" for i in range(40)]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(ScenarioError) as caught:
        read_flows(path, 16)
    problems = caught.value.problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == f"... and {3 * 40 - MAX_PROBLEMS} more problems in {path}"
    lines = [int(p.split(":")[1]) for p in problems[:-1]]
    assert lines == sorted(lines) and lines[0] == 2
    assert [p.split(": ")[1] for p in problems[:3]] == ["start_us", "size_bytes", "src, dst"]


def test_missing_file_and_bad_host_count(tmp_path) -> None:
    with pytest.raises(ScenarioError) as caught:
        read_flows(tmp_path / "nope.csv", 16)
    assert caught.value.problems == [f"{tmp_path / 'nope.csv'}: no such file"]
    with pytest.raises(ValueError, match="n_hosts must be at least 1"):
        read_flows(tmp_path / "nope.csv", 0)


# --------------------------------------------------------------------------- pinned paths


def fat_tree_k4_paths(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    return equal_cost_path_count(build_topology("fat_tree", k=4), src, dst)


def test_path_columns_pin_flows_and_blank_cells_leave_them_routed(tmp_path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(
        "src,dst,start_us,size_bytes,ack_path_index,tag,path_index\n"
        "0,8,0,1000,2,a,3\n"
        "1,2,0,1000,,b,1\n"
        "4,5,0,1000,0,c,\n"
    )
    flows = read_flow_arrays(path, 16, fat_tree_k4_paths)
    assert flows["path_index"].tolist() == [3, 1, -1]
    assert flows["ack_path_index"].tolist() == [2, -1, 0]
    assert flows["path_index"].dtype == np.int64
    # Every cell filled: the fast reader gives the same.
    path.write_text("src,dst,start_us,size_bytes,path_index\n0,8,0,1000,3\n1,2,0,1000,1\n")
    assert read_flow_arrays(path, 16, fat_tree_k4_paths)["path_index"].tolist() == [3, 1]
    # Without path columns, nothing is pinned and no such key comes back.
    path.write_text(HEADER + "0,8,0,1000\n")
    assert set(read_flow_arrays(path, 16)) == set(TRAFFIC_COLUMNS)


def test_bad_paths_name_line_and_column(tmp_path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(
        "src,dst,start_us,size_bytes,path_index,ack_path_index\n"
        "0,8,0,1000,4,\n"  # across pods of a k = 4 tree: 4 paths, 0 to 3
        "0,1,0,1000,1,0\n"  # one switch: one path
        "0,2,0,1000,-1,x\n"
        "0,2,0,1000,0.5,nan\n"
        "0,8,0,1000,0,4\n"
        "0,8,0,1000,1e300,\n"
        "0,99,0,1000,7,\n"  # the host's problem only: no path count for a host that is not
    )
    with pytest.raises(ScenarioError) as caught:
        read_flow_arrays(path, 16, fat_tree_k4_paths)
    problems = [p.replace(str(path), "flows.csv") for p in caught.value.problems]
    assert problems == [
        "flows.csv:2: path_index: 4 is no path: the flow (0 -> 8) has 4 equal-cost paths, 0 to 3",
        "flows.csv:3: path_index: 1 is no path: the flow (0 -> 1) has one path, 0",
        "flows.csv:4: path_index: an equal-cost path is a whole number from 0 (blank: not "
        "pinned), got '-1'",
        "flows.csv:4: ack_path_index: 'x' is not a number",
        "flows.csv:5: path_index: an equal-cost path is a whole number from 0 (blank: not "
        "pinned), got '0.5'",
        "flows.csv:5: ack_path_index: an equal-cost path is a whole number from 0 (blank: not "
        "pinned), got 'nan'",
        "flows.csv:6: ack_path_index: 4 is no path: the ACKs' way back (8 -> 0) has 4 "
        "equal-cost paths, 0 to 3",
        "flows.csv:7: path_index: an equal-cost path is a whole number from 0 (blank: not "
        "pinned), got '1e300'",
        "flows.csv:8: dst: no host 99; the fabric has 16 hosts, numbered 0 to 15",
    ]
