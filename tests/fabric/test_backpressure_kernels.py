"""The compiled back-pressure passes (numba) compute what the numpy passes compute."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.fabric.backpressure as bp
import sim.fabric.backpressure_passes as passes
import sim.fabric.flows as flows_module
import sim.fabric.transport as transport_module
from sim.fabric.flows import simulate_flows
from sim.fabric.link_pairs import upstream_chains
from sim.fabric.routing import route
from sim.fabric.topology_kinds import build_topology
from sim.fabric.transport import link_stage
from sim.fabric.trunks import Trunked, factor
from sim.scenario.fabric import FabricConfig
from tests.fabric.strategies import host_pairs, small_topologies

kernels = pytest.importorskip("sim.fabric.backpressure_kernels")


def networks(topology, src, dst, mode: str, qps: int, rng: np.random.Generator):
    """The numpy and the compiled passes of one routed problem (random demands), local numbering."""
    incidence = route(topology, src, dst, mode=mode, qps_per_connection=qps).incidence.tocsr()
    demand = rng.uniform(1.0, 200.0, incidence.shape[0])
    shareable = (topology.link_src >= topology.n_hosts) & (topology.link_dst >= topology.n_hosts)
    paths = factor(incidence, shareable) if mode == "spray" else Trunked.of(incidence)
    chains = upstream_chains(paths, topology)
    crossed = paths.crossed
    used = np.flatnonzero(crossed)
    number = np.cumsum(crossed) - 1
    local = paths.with_columns(number, used.size)
    chains = chains.renumbered(number)
    stage = link_stage(topology)[used]
    capacity = topology.capacity_gbps[used].astype(float)
    return (
        passes._Network(local, stage, chains, demand),
        passes._CompiledNetwork(local, stage, chains, demand, kernels),
        capacity,
        demand,
    )


def test_the_kernels_fill_to_the_solvers_tolerance() -> None:
    assert kernels._TOLERANCE == passes.TOLERANCE


@st.composite
def problems(draw: st.DrawFn):
    """A small routed problem (single paths or sprayed, 1-4 queue pairs) and a seed."""
    topology = draw(small_topologies())
    src, dst = draw(host_pairs(topology, max_flows=24))
    keep = src != dst
    src, dst = src[keep], dst[keep]
    mode = draw(st.sampled_from(["ecmp", "spray"]))
    qps = draw(st.integers(1, 4))
    return topology, src, dst, mode, qps, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_compiled_passes_equal_the_numpy_passes(problem) -> None:
    topology, src, dst, mode, qps, seed = problem
    if not src.size:
        return
    rng = np.random.default_rng(seed)
    reference, compiled, capacity, demand = networks(topology, src, dst, mode, qps, rng)
    effective = capacity * rng.uniform(0.05, 1.0, capacity.size)
    rates, offered, relayed = reference.forward(effective, demand)
    rates_c, offered_c, relayed_c = compiled.forward(effective, demand)
    np.testing.assert_allclose(rates_c, rates, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(offered_c, offered, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(relayed_c, relayed, rtol=1e-12, atol=1e-12)
    held = rng.random(offered.size) < 0.3
    floor = capacity * rng.uniform(0.1, 1.0, capacity.size)
    pausable = rng.random(capacity.size) < 0.6  # buffers still filling may not pause
    for this_floor, this_pausable in ((None, None), (floor, None), (None, pausable)):
        expected = reference.backward(offered, relayed, held, capacity, this_floor, this_pausable)
        got = compiled.backward(offered, relayed, held, capacity, this_floor, this_pausable)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def numpy_arrays(network: passes._Network, stage: np.ndarray) -> dict[str, np.ndarray]:
    """The compiled passes' arrays as the numpy construction gives them (argsorts, lexsorts)."""
    chains, relays, heads = network.chains, network.relays, network.heads
    n_stages = len(network.stages)
    stage_links, stage_ptr = passes.grouped(stage, n_stages)
    order, nic_ptr = passes.grouped(network.nic_link, network.n_links)
    own_stage = stage[chains.pair_l][chains.pair]
    own_order = np.lexsort((chains.flow, own_stage))
    trunk_order, trunk_ptr = passes.grouped(stage[chains.pair_l][chains.trunk_pair], n_stages)
    out_pairs, out_ptr = passes.grouped(chains.pair_u, network.n_links)
    arrays = {
        "stage_links": stage_links,
        "stage_ptr": stage_ptr,
        "nic_ptr": nic_ptr,
        "nic_flow": network.nic_flow[order],
        "nic_share": network.nic_share[order],
        "into_pairs": network.into_pairs,
        "into_ptr": network.into_ptr,
        "inputs": network.inputs,
        "out_pairs": out_pairs,
        "out_ptr": out_ptr,
        "stage_has_out": np.array([part.out.size > 0 for part in network.stages], dtype=bool),
        "own_ptr": passes.grouped(own_stage, n_stages)[1],
        "own_flow": chains.flow[own_order],
        "own_pair": chains.pair[own_order],
        "own_weight": network.weight[own_order],
        "own_relay": relays.of_crossing[own_order],
        "relay_output": relays.output,
        "relay_input": relays.input,
        "relay_ptr": passes.grouped(relays.output, chains.n_pairs)[1],
        "trunk_ptr": trunk_ptr,
        "trunk_trunk": chains.trunk[trunk_order],
        "trunk_pair": chains.trunk_pair[trunk_order],
        "trunk_weight": network.trunk_weight[trunk_order],
    }
    if heads is not None:
        arrays.update(
            head_pair=heads.pair,
            head_start=heads.start,
            head_asked=heads.asked,
            head_brought=heads.brought,
            entry_asked=heads.entry_asked,
            entry_ptr=np.append(
                np.searchsorted(heads.entry_run, np.arange(heads.pair.size)), heads.entry_run.size
            ),
        )
    else:
        arrays.update(head_pair=np.zeros(0, dtype=np.int64))
    return arrays


def compiled_arrays(network: passes._CompiledNetwork) -> dict[str, np.ndarray]:
    names = ("head_pair", "head_start", "head_asked", "head_brought", "entry_asked", "entry_ptr")
    heads = dict(zip(names, network.head_arrays, strict=True))
    own = dict(zip(("own_flow", "own_pair", "own_weight", "own_relay"), network.own, strict=True))
    trunk = dict(zip(("trunk_trunk", "trunk_pair", "trunk_weight"), network.trunk, strict=True))
    fields = (
        "stage_links stage_ptr nic_ptr into_pairs into_ptr inputs out_pairs out_ptr "
        "stage_has_out own_ptr relay_output relay_input relay_ptr trunk_ptr"
    ).split()
    arrays = {name: getattr(network, name) for name in fields}
    arrays.update(nic_flow=network.nic_order[0], nic_share=network.nic_order[1])
    return {**arrays, **own, **trunk, **heads}


@settings(max_examples=60, deadline=None)
@given(problems())
def test_the_compiled_construction_builds_the_numpy_arrays(problem) -> None:
    """Counting sorts in place of argsort and lexsort: the same arrays, entry for entry."""
    topology, src, dst, mode, qps, seed = problem
    if not src.size:
        return
    reference, compiled, _, _ = networks(topology, src, dst, mode, qps, np.random.default_rng(seed))
    expected = numpy_arrays(reference, reference.link_stage)
    got = compiled_arrays(compiled)
    names = expected.keys() if reference.heads is not None else expected.keys() - {"head_pair"}
    for name in names:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert (reference.heads is None) == (got["head_pair"].size == 0)


@pytest.mark.parametrize("mode", ["ecmp", "spray"])
def test_a_compiled_fixed_point_equals_the_numpy_one(monkeypatch, mode) -> None:
    """A zone shared by many flows and an incast, with deep pause trees: the whole solve."""
    topology = build_topology(
        "meta_ai_zone",
        gpus_per_node=4,
        nodes_per_rack=2,
        racks_per_pod=3,
        pods=3,
        ctsw_per_pod=2,
        atsw_per_plane=2,
    )
    rng = np.random.default_rng(7)
    src = rng.integers(0, topology.n_hosts, 300)
    dst = (src + 1 + rng.integers(0, topology.n_hosts - 1, 300)) % topology.n_hosts
    src[:60] = np.arange(60) % (topology.n_hosts - 1) + 1
    dst[:60] = 0  # an incast beside the rest
    incidence = route(topology, src, dst, mode=mode, qps_per_connection=2).incidence.tocsr()
    stage = link_stage(topology)
    capacity = topology.capacity_gbps.astype(float)
    demand = np.full(incidence.shape[0], 200.0)
    filled = rng.random(topology.n_links) < 0.7
    for buffer_full in (None, filled):
        solved = {}
        for name, threshold in (("numpy", 10**12), ("compiled", 0)):
            monkeypatch.setattr(passes, "COMPILED_FROM", threshold)
            solved[name] = bp.backpressure_rates(
                incidence, capacity, demand, stage, topology, buffer_full=buffer_full
            )
        assert_same_state(solved["numpy"], solved["compiled"])


def assert_same_state(reference: bp.BackPressure, compiled: bp.BackPressure) -> None:
    assert reference.pause_fraction.max() > 0.3
    assert compiled.rounds == reference.rounds
    np.testing.assert_allclose(compiled.rates_gbps, reference.rates_gbps, rtol=1e-9)
    np.testing.assert_allclose(
        compiled.pause_fraction, reference.pause_fraction, rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(compiled.drain_gbps, reference.drain_gbps, rtol=1e-9)
    assert np.array_equal(compiled.full, reference.full)
    if reference.filling is None:
        assert compiled.filling is None
        return
    assert np.array_equal(compiled.filling.pair, reference.filling.pair)
    np.testing.assert_allclose(compiled.filling.gbps, reference.filling.gbps, rtol=1e-9, atol=1e-9)


def test_small_problems_never_import_numba() -> None:
    code = (
        "import sys, numpy as np\n"
        "from sim.fabric.backpressure import backpressure_rates\n"
        "from sim.fabric.routing import route\n"
        "from sim.fabric.topology_kinds import build_topology\n"
        "from sim.fabric.transport import link_stage\n"
        "t = build_topology('fat_tree', k=4)\n"
        "src = np.arange(1, 16); dst = np.zeros(15, dtype=int)\n"
        "a = route(t, src, dst).incidence.tocsr()\n"
        "s = backpressure_rates(a, t.capacity_gbps.astype(float), np.full(15, 100.0),"
        " link_stage(t), t)\n"
        "print(s.pause_fraction.max() > 0, 'numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_a_long_lossless_flow_run_switches_to_the_compiled_passes_and_agrees(monkeypatch) -> None:
    # 60 flows of an incast beside a permutation's worth of others, arriving over time,
    # with the switch brought forward to 100 ms of numpy work.
    rng = np.random.default_rng(2)
    n = 60
    src = rng.integers(1, 16, n)
    dst = np.where(np.arange(n) % 3 == 0, 0, (src + rng.integers(1, 15, n)) % 16)
    dst = np.where(dst == src, (src + 1) % 16, dst)
    traffic = {
        "src": src,
        "dst": dst,
        "start_us": np.sort(rng.random(n) * 200.0),
        "size_bytes": rng.integers(10_000, 400_000, n),
    }
    config = FabricConfig.model_validate(
        {"topology": {"kind": "fat_tree", "k": 4}, "transport": {"kind": "roce", "cc": "none"}}
    )
    chosen = []
    real = bp.backpressure_rates

    def spy(*args, **kwargs):
        chosen.append(kwargs.get("compiled"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transport_module, "backpressure_rates", spy)
    monkeypatch.setattr(flows_module, "COMPILED_AFTER_MS", 100.0)
    switched = simulate_flows(config, traffic)
    # Numpy first (a short run never imports numba), compiled from then on.
    first = chosen.index(True)
    assert 0 < first < len(chosen) / 2
    assert set(chosen[:first]) == {None} and set(chosen[first:]) == {True}
    chosen.clear()
    monkeypatch.setattr(flows_module, "COMPILED_AFTER_MS", 10**9)
    numpy_only = simulate_flows(config, traffic)
    assert set(chosen) == {None}
    np.testing.assert_allclose(switched.flows["fct_us"], numpy_only.flows["fct_us"], rtol=1e-9)
    assert switched.summary["epochs"] == numpy_only.summary["epochs"]
    assert switched.summary["pfc_pause_fraction"] == pytest.approx(
        numpy_only.summary["pfc_pause_fraction"], rel=1e-9
    )
