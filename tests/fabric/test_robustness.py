"""Issue 19: the exact inputs fuzzing found to hang or crash, and the bounds that refuse them.

Each case once hung (over a minute, no message) or ended in a traceback; now
each is refused up front with a one-line message naming the file, line and
field, or runs. Every test runs under a time limit, so a regression fails
instead of hanging the suite.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from typer.testing import CliRunner

from sim.cli import app
from sim.fabric.dcqcn import DcqcnParams, fixed_point, marking_probability
from sim.fabric.dcqcn_dynamics import simulate
from sim.fabric.flows import check_run, simulate_flows
from sim.fabric.limits import (
    MAX_FAT_TREE_K,
    MAX_HOSTS,
    topology_size,
)
from sim.fabric.run_size import MAX_RUN_SECONDS, estimate_run
from sim.fabric.topology_kinds import build_topology
from sim.fabric.traffic import read_flow_arrays
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.fabric import FabricConfig
from sim.scenario.fabric_loader import fabric_from_text
from tests.fabric.strategies import small_topologies
from tests.timing import time_limit

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path("/work/shared/reference/htsim")
HEADER = "src,dst,start_us,size_bytes\n"

# The three spellings of a huge count: YAML 1.1 float syntax, the float the
# shared loader now reads, and an integer.
HUGE = ["1e30", "1.0e+30", str(10**30)]


def problems_of(text: str) -> list[str]:
    with time_limit(10), pytest.raises(ScenarioError) as caught:
        fabric_from_text(text, "fab.yaml")
    return caught.value.problems


def assert_short_lines(problems: list[str]) -> None:
    for problem in problems:
        assert "\n" not in problem and len(problem) < 200, problem


def flows(src, dst, start_us=0.0, size_bytes=1_000_000) -> dict[str, np.ndarray]:
    src = np.atleast_1d(np.asarray(src, dtype=np.int64))
    dst = np.broadcast_to(np.asarray(dst, dtype=np.int64), src.shape).copy()
    return {
        "src": src,
        "dst": dst,
        "start_us": np.broadcast_to(np.asarray(start_us, dtype=np.float64), src.shape).copy(),
        "size_bytes": np.broadcast_to(np.asarray(size_bytes, dtype=np.int64), src.shape).copy(),
    }


# --------------------------------------------------------------------------- hangs


def test_a_start_of_1e300_is_refused_not_simulated_for_ever(tmp_path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(HEADER + "0,1,1e300,1000\n0,2,1e12,1000\n")
    with time_limit(10), pytest.raises(ScenarioError) as caught:
        read_flow_arrays(path, 16)
    assert caught.value.problems == [
        f"{path}:2: start_us: 1e300 is past one day (at most 86,400,000,000 us)",
        f"{path}:3: start_us: 1e12 is past one day (at most 86,400,000,000 us)",
    ]


@pytest.mark.parametrize("kind", ["ideal", "roce", "infiniband"])
def test_the_flow_loop_ends_even_where_time_steps_round_away(kind: str) -> None:
    # Given arrays directly (no file check), starts at 1e300 make now + dt == now:
    # every flow still ends, at its end time.
    config = fabric_from_text(f"topology: {{kind: fat_tree, k: 4}}\ntransport: {{kind: {kind}}}")
    with time_limit(10):
        result = simulate_flows(config, flows([0, 2, 3], 1, 1e300, [1000, 1000, 5000]))
    assert np.all(np.isfinite(result.flow_table["fct_us"]))
    # At the latest start accepted, times keep their precision.
    late = simulate_flows(config, flows([0, 2], 1, 86_400_000_000.0, 1000))
    early = simulate_flows(config, flows([0, 2], 1, 0.0, 1000))
    np.testing.assert_allclose(late.flow_table["fct_us"], early.flow_table["fct_us"], rtol=1e-4)


@pytest.mark.parametrize("spelling", HUGE)
@pytest.mark.parametrize(
    ("topology", "field"),
    [
        ("{kind: meta_ai_zone, ctsw_per_pod: %s}", "ctsw_per_pod"),
        ("{kind: leaf_spine, spines: %s}", "spines"),
    ],
)
def test_huge_switch_counts_are_refused_in_a_fabric_file(
    topology: str, field: str, spelling: str
) -> None:
    problems = problems_of(f"topology: {topology % spelling}\ntransport: {{kind: roce}}\n")
    expected = (
        "Input should be less than or equal to 512"
        if spelling.isdigit()
        else "Input should be a valid integer"
    )
    assert problems == [f"fab.yaml:1: topology.{field}: {expected}"]


@pytest.mark.parametrize("spelling", HUGE)
def test_huge_switch_counts_are_refused_in_a_scenario_network_fabric(spelling: str) -> None:
    path = ROOT / "scenarios" / "noisy-neighbor.yaml"
    for field in ("ctsw_per_pod", "atsw_per_plane"):
        override = f"provider.sites.lab.clusters.zone.fabric.topology.{field}={spelling}"
        with time_limit(20), pytest.raises(ScenarioError) as caught:
            load_scenario(path, [override])
        where = f"provider.sites[0].clusters[0].fabric.topology.{field}"
        assert any(where in problem for problem in caught.value.problems), caught.value.problems
        assert_short_lines(caught.value.problems)


def test_a_scenario_topology_too_big_to_build_is_refused_with_its_size() -> None:
    path = ROOT / "scenarios" / "noisy-neighbor.yaml"
    overrides = [
        "provider.sites.lab.clusters.zone.fabric.topology.pods=512",
        "provider.sites.lab.clusters.zone.fabric.topology.racks_per_pod=512",
    ]
    started = time.perf_counter()
    with time_limit(20), pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides)
    assert time.perf_counter() - started < 10
    assert any(
        "fabric.topology.pods: a meta_ai_zone of 8 GPUs x 2 nodes x 512 racks x 512 pods: "
        "4,194,304 hosts" in problem
        for problem in caught.value.problems
    ), caught.value.problems


def test_100_000_flows_on_a_k4_fat_tree_are_refused_up_front(tmp_path) -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 16, 100_000)
    dst = (src + rng.integers(1, 16, 100_000)) % 16
    traffic = flows(src, dst, 0.0, rng.integers(1000, 2_000_000, 100_000))
    config = fabric_from_text("topology: {kind: fat_tree, k: 4}\ntransport: {kind: roce}\n")
    started = time.perf_counter()
    with time_limit(10), pytest.raises(ScenarioError) as caught:
        simulate_flows(config, traffic, source="flows.csv")
    assert time.perf_counter() - started < 5
    (problem,) = caught.value.problems
    assert problem.startswith("flows.csv: 100,000 flows on this fabric need ~5e+09 flow-epochs")
    assert problem.endswith("at most ~30 min is supported: use fewer or less overlapping flows")
    assert_short_lines([problem])
    # The command says the same, with exit status 2 and no traceback.
    fabric_path, flows_path = tmp_path / "fab.yaml", tmp_path / "flows.csv"
    fabric_path.write_text("topology: {kind: fat_tree, k: 4}\ntransport: {kind: roce}\n")
    lines = [f"{s},{d},0,{n}" for s, d, n in zip(src, dst, traffic["size_bytes"], strict=True)]
    flows_path.write_text(HEADER + "\n".join(lines) + "\n")
    with time_limit(20):
        result = CliRunner().invoke(
            app,
            ["fabric", str(fabric_path), "-t", str(flows_path), "-o", str(tmp_path / "o"), "-q"],
        )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {flows_path}: 100,000 flows on this fabric need")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- crashes


@pytest.mark.parametrize("value", ["1e300", "1e30", "1.0e+30", ".nan"])
def test_rail_optimized_oversubscription_past_64_is_refused(value: str) -> None:
    text = (
        f"topology: {{kind: rail_optimized, oversubscription: {value}}}\ntransport: {{kind: roce}}"
    )
    expected = "Input should be a finite number" if value == ".nan" else "less than or equal to 64"
    (problem,) = problems_of(text)
    assert problem.startswith("fab.yaml:1: topology.oversubscription: ") and expected in problem


@pytest.mark.parametrize("transport", ["roce", "infiniband", "ideal"])
@pytest.mark.parametrize(
    "topology",
    [
        "{kind: rail_optimized, gpus_per_node: 2, nodes_per_group: 2, groups: 2, spines: 512, "
        "oversubscription: 64, link_gbps: 1}",
        "{kind: leaf_spine, hosts_per_leaf: 1, leaves: 3, spines: 512, oversubscription: 64, "
        "link_gbps: 1}",
        "{kind: meta_ai_zone, gpus_per_node: 1, nodes_per_rack: 1, racks_per_pod: 1, pods: 3, "
        "ctsw_per_pod: 512, atsw_per_plane: 512, oversubscription: 64, link_gbps: 1}",
        "{kind: leaf_spine, hosts_per_leaf: 4, leaves: 2, spines: 1, oversubscription: 0.01, "
        "link_gbps: 3200}",
    ],
)
def test_the_most_oversubscribed_fabrics_allowed_still_solve(topology: str, transport: str) -> None:
    # The thinnest uplinks allowed: 1 Gb/s / (64 x 512) per rail-spine link, 6e-8 x a
    # GPU's NIC between CTSW and ATSW. DCQCN once had no fixed point there (and divided by
    # zero at 1e300); InfiniBand back-pressure once left every rate at 0.
    config = fabric_from_text(f"topology: {topology}\ntransport: {{kind: {transport}}}\n")
    n = config.build_topology().n_hosts
    src = np.arange(n)
    with time_limit(20):
        result = simulate_flows(config, flows(src, (src + n // 2 + 1) % n, 0.0, 1_000_000))
    fct = result.flow_table["fct_us"]
    assert np.all(np.isfinite(fct)) and np.all(fct > 0)


@pytest.mark.parametrize("capacity_gbps", [4e-298, 4e-28, 6e-8, 3e-5, 1.0, 8.4e10])
@pytest.mark.parametrize("n_flows", [2, 17, 10_000_000])
def test_dcqcn_fixed_point_exists_or_is_pinned_everywhere(
    capacity_gbps: float, n_flows: int
) -> None:
    params = DcqcnParams(capacity_gbps=capacity_gbps)
    point = fixed_point(n_flows, params)
    assert 0 < point.p_exact < 1
    assert params.kmin_kb <= point.queue_kb_exact <= params.kmax_kb
    assert 0 <= marking_probability(point.queue_kb_exact, params) <= 1


def test_a_port_far_slower_than_its_additive_increase_pins_the_queue_at_kmax() -> None:
    point = fixed_point(1000, DcqcnParams(capacity_gbps=1e-3))
    assert point.queue_pinned_at_kmax and point.queue_kb_exact == 200.0


def test_dcqcn_settings_at_the_ends_of_their_ranges_trace_finitely() -> None:
    # A bundled link of 8.4e10 Gb/s with the shortest periods: explicit steps overshoot,
    # and rates once went negative and the trace to NaN.
    params = DcqcnParams(
        capacity_gbps=8.4e10,
        pmax=1e-9,
        tau_us=1.0,
        tau_prime_us=55.0,
        timer_us=55.0,
        rate_ai_mbps=100_000.0,
        feedback_delay_us=0.0,
    )
    trace = simulate(
        3, params, duration_us=500.0, dt_us=0.1, initial_rates_gbps=[8.4e10] * 2 + [2.8e10]
    )
    assert np.all(np.isfinite(trace.queue_kb)) and np.all(np.isfinite(trace.rate_current_gbps))
    assert np.all(trace.rate_current_gbps > 0)


def test_short_dcqcn_periods_run_with_finer_steps() -> None:
    # A 1 us rate-cut period once made the burst transient refuse its own 1 us step.
    text = (
        "topology: {kind: fat_tree, k: 4}\n"
        "transport: {kind: roce, dcqcn: {tau_us: 1, tau_prime_us: 1, timer_us: 1}}\n"
    )
    with time_limit(20):
        result = simulate_flows(fabric_from_text(text), flows([0, 2, 3], 1))
    assert np.all(np.isfinite(result.flow_table["fct_us"]))


def test_a_k1000_fat_tree_is_refused_with_its_size_before_anything_is_built() -> None:
    started = time.perf_counter()
    (problem,) = problems_of("topology: {kind: fat_tree, k: 1000}\ntransport: {kind: ideal}")
    assert time.perf_counter() - started < 1
    assert problem == (
        "fab.yaml:1: topology.k: a fat_tree of k=1,000: 250,000,000 hosts, 1,500,000,000 links "
        "(~165 GB); at most 262,144 hosts, 2,097,152 links"
    )
    (problem,) = problems_of(
        f"topology: {{kind: fat_tree, k: {10**30}}}\ntransport: {{kind: ideal}}"
    )
    assert problem.startswith("fab.yaml:1: topology.k: a fat_tree of k=1e+30: 2.5e+89 hosts")
    with pytest.raises(ValueError, match=r"^fat_tree: parameter 'k': a fat_tree of k=1,000: "):
        build_topology("fat_tree", k=1000)


# --------------------------------------------------------------------------- bounds


def test_the_largest_fat_tree_and_metas_131k_layout_are_accepted() -> None:
    largest = {
        "topology": {"kind": "fat_tree", "k": MAX_FAT_TREE_K},
        "transport": {"kind": "ideal"},
    }
    FabricConfig.model_validate(largest)
    assert topology_size("fat_tree", {"k": MAX_FAT_TREE_K}).n_hosts <= MAX_HOSTS
    assert (
        "k=102: 265,302 hosts"
        in problems_of("topology: {kind: fat_tree, k: 102}\ntransport: {kind: ideal}")[0]
    )
    config = fabric_from_text("topology: {kind: meta_ai_zone, pods: 43}\ntransport: {kind: roce}")
    assert config.build_topology().n_hosts == 132_096


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_still_validates(path: Path) -> None:
    with time_limit(30):
        load_scenario(path)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="no packet-level reference runs here")
def test_every_reference_traffic_file_still_reads_and_is_accepted() -> None:
    cases = sorted((REFERENCE / "traffic").glob("*.csv"))
    assert cases
    for path in cases:
        k = int(path.name.split("_")[1].removeprefix("k"))
        config = fabric_from_text(
            f"topology: {{kind: fat_tree, k: {k}, link_gbps: 100}}\n"
            "transport: {kind: roce, pfc: true, cc: none, pfc_xoff_kb: 270, pfc_xon_kb: 180}\n"
        )
        traffic = read_flow_arrays(path, config.build_topology().n_hosts)
        assert check_run(config, traffic, str(path)).seconds < MAX_RUN_SECONDS


NAN_FIELDS = {
    "topology": ["oversubscription", "link_gbps", "prop_delay_us"],
    "transport": ["pfc_xoff_kb", "pfc_xon_kb", "ecn_kmin_kb", "ecn_kmax_kb", "ecn_pmax"],
    "transport.dcqcn": ["g", "rate_ai_mbps", "tau_us", "byte_counter_mb", "feedback_delay_us"],
}


@pytest.mark.parametrize("dotted", [f"{s}.{f}" for s, fields in NAN_FIELDS.items() for f in fields])
def test_nan_reads_as_not_a_finite_number(dotted: str) -> None:
    section, name = dotted.rsplit(".", 1)
    topology, transport = "{kind: leaf_spine}", "{kind: roce}"
    if section == "topology":
        topology = f"{{kind: leaf_spine, {name}: .nan}}"
    elif section == "transport":
        transport = f"{{kind: roce, {name}: .nan}}"
    else:
        transport = f"{{kind: roce, dcqcn: {{{name}: .nan}}}}"
    problems = problems_of(f"topology: {topology}\ntransport: {transport}\n")
    assert problems == [
        f"fab.yaml:{1 if section == 'topology' else 2}: {dotted}: Input should be a finite number"
    ]


def test_nan_in_a_builder_reads_as_not_a_finite_number() -> None:
    with pytest.raises(ValueError, match="'oversubscription' must be a finite number, got nan"):
        build_topology("leaf_spine", oversubscription=float("nan"))


LE, GE = "less than or equal to", "greater than or equal to"

BOUNDS = [
    ("topology: {kind: leaf_spine, link_gbps: 3200.5}", "topology.link_gbps", LE, "3200"),
    ("topology: {kind: leaf_spine, hosts_per_leaf: 513}", "topology.hosts_per_leaf", LE, "512"),
    ("topology: {kind: rail_optimized, gpus_per_node: 577}", "topology.gpus_per_node", LE, "576"),
    (
        "topology: {kind: leaf_spine, oversubscription: 0.001}",
        "topology.oversubscription",
        GE,
        "0.01",
    ),
    ("topology: {kind: fat_tree, prop_delay_us: 1001}", "topology.prop_delay_us", LE, "1000"),
    (
        "topology: {kind: fat_tree, buffer_bytes: 16000000001}",
        "topology.buffer_bytes",
        LE,
        "16000000000",
    ),
    ("topology: {kind: fat_tree, mtu_bytes: 65536}", "topology.mtu_bytes", LE, "65535"),
    ("transport: {kind: roce, qps_per_connection: 129}", "transport.qps_per_connection", LE, "128"),
    (
        "transport: {kind: roce, hash_seed: 18446744073709551616}",
        "transport.hash_seed",
        LE,
        "18446744073709551615",
    ),
    ("transport: {kind: roce, pfc_xoff_kb: 1.0e+8}", "transport.pfc_xoff_kb", LE, "16000000"),
    (
        "transport: {kind: infiniband, credit_buffer_kb: 1e300}",
        "transport.credit_buffer_kb",
        LE,
        "16000000",
    ),
    ("transport: {kind: infiniband, adaptive_chunks: 65}", "transport.adaptive_chunks", LE, "64"),
    ("transport: {kind: roce, dcqcn: {tau_us: 0.5}}", "transport.dcqcn.tau_us", GE, "1"),
    ("transport: {kind: roce, dcqcn: {timer_us: 1e5}}", "transport.dcqcn.timer_us", LE, "10000"),
    ("transport: {kind: roce, dcqcn: {g: 1e-7}}", "transport.dcqcn.g", GE, "0.000001"),
    (
        "transport: {kind: roce, dcqcn: {rate_ai_mbps: 1e6}}",
        "transport.dcqcn.rate_ai_mbps",
        LE,
        "100000",
    ),
    (
        "transport: {kind: roce, dcqcn: {byte_counter_mb: 0.0001}}",
        "transport.dcqcn.byte_counter_mb",
        GE,
        "0.001",
    ),
    (
        "transport: {kind: roce, dcqcn: {fast_recovery_steps: 101}}",
        "transport.dcqcn.fast_recovery_steps",
        LE,
        "100",
    ),
    (
        "transport: {kind: roce, dcqcn: {feedback_delay_us: 1001}}",
        "transport.dcqcn.feedback_delay_us",
        LE,
        "1000",
    ),
    ("latency_samples: 1000001", "latency_samples", LE, "1000000"),
    ("message_bytes: 1000000000001", "message_bytes", LE, "1000000000000"),
    ("seed: 9223372036854775808", "seed", LE, "9223372036854775807"),
]
"""A value just past each bound: the line, the field, and the bound its message names."""


@pytest.mark.parametrize(("line", "field", "relation", "bound"), BOUNDS, ids=[b[1] for b in BOUNDS])
def test_every_field_has_a_named_bound(line: str, field: str, relation: str, bound: str) -> None:
    parts = {
        "topology": "topology: {kind: fat_tree, k: 4}",
        "transport": "transport: {kind: ideal}",
    }
    section = line.split(":")[0]
    parts[section if section in parts else "extra"] = line
    problems = problems_of("\n".join(parts.values()) + "\n")
    assert len(problems) == 1, problems
    assert problems[0].endswith(f"{field}: Input should be {relation} {bound}"), problems


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(small_topologies())
def test_topology_size_is_the_built_size(topology) -> None:
    size = topology_size(topology.kind, topology.params)
    assert (size.n_hosts, size.n_switches, size.n_links) == (
        topology.n_hosts,
        topology.n_switches,
        topology.n_links,
    )


# --------------------------------------------------------------------------- estimate, progress


def test_a_run_estimate_counts_epochs_of_sequential_and_overlapping_flows() -> None:
    config = fabric_from_text("topology: {kind: fat_tree, k: 4}\ntransport: {kind: ideal}")
    topology = config.build_topology()
    n = 40_000  # past the point where every flow in every epoch would exceed the budget
    one_at_a_time = flows(np.zeros(n), 1, np.arange(n) * 1000.0, 1000)
    estimate = estimate_run(topology, config.transport, *one_at_a_time.values())
    assert estimate.epochs == 2 * n and estimate.flow_epochs == n and estimate.problem() is None
    # Every host pair at once, 100 flows each: they end in 100 waves per sender.
    src = np.repeat(np.arange(16), 15 * 100)
    dst = (src + 1 + np.tile(np.repeat(np.arange(15), 100), 16)) % 16
    at_once = flows(src, dst, 0.0, np.tile(np.arange(1, 101) * 1000, 16 * 15))
    estimate = estimate_run(topology, config.transport, *at_once.values())
    assert estimate.sub_flows == 24_000 and estimate.epochs > 100


def test_a_run_estimated_too_big_for_memory_is_refused() -> None:
    # Spraying over every path of a k = 48 fat tree stores about 1,200 entries per flow.
    config = fabric_from_text("topology: {kind: fat_tree, k: 48}\ntransport: {kind: ideal}")
    n_hosts = config.build_topology().n_hosts
    src = np.arange(20_000) % n_hosts
    with pytest.raises(ScenarioError, match=r"20,000 flows on this fabric need ~4\.\d+ GB"):
        check_run(config, flows(src, (src + n_hosts // 2) % n_hosts), "flows.csv")


def test_progress_is_reported_up_to_the_total() -> None:
    config = fabric_from_text("topology: {kind: fat_tree, k: 4}\ntransport: {kind: roce}")
    seen: list[tuple[int, int]] = []
    simulate_flows(config, flows([0, 2, 3, 5], 1), progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))
