"""Routes factored into own links and shared trunks give what the whole matrix gives."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fabric.backpressure import backpressure_rates
from sim.fabric.routing import route
from sim.fabric.solver import MaxMinProblem, max_min_certificate_ok, max_min_rates
from sim.fabric.topology_kinds import build_topology
from sim.fabric.transport import line_rate_arrivals, link_stage
from sim.fabric.trunks import Trunked, factor

SHARES = [0.25, 0.5, 1.0, 0.3]


@st.composite
def trunked_problems(draw: st.DrawFn) -> tuple[Trunked, np.ndarray, np.ndarray, np.ndarray]:
    """A small factored routing, capacities, weights and demands (round values: many ties)."""
    n_flows = draw(st.integers(1, 9))
    n_links = draw(st.integers(2, 7))
    n_trunks = draw(st.integers(0, 3))

    def rows(n: int) -> sp.csr_matrix:
        values = [
            [draw(st.sampled_from([0.0, 0.0, *SHARES])) for _ in range(n_links)] for _ in range(n)
        ]
        return sp.csr_matrix(np.array(values, dtype=float).reshape(n, n_links))

    own, trunks = rows(n_flows), rows(n_trunks)
    trunk_of = np.array([draw(st.integers(-1, n_trunks - 1)) for _ in range(n_flows)])
    paths = Trunked(own, trunk_of, trunks)
    capacity = np.array([draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, 40.0])) for _ in range(n_links)])
    weight = np.array([draw(st.sampled_from([0.5, 1.0, 2.0])) for _ in range(n_flows)])
    demand = np.array([draw(st.sampled_from([np.inf, 0.5, 1.0, 5.0])) for _ in range(n_flows)])
    return paths, capacity, weight, demand


@settings(max_examples=150, deadline=None)
@given(trunked_problems())
def test_factored_max_min_equals_the_whole_matrix(problem) -> None:
    paths, capacity, weight, demand = problem
    whole = paths.tocsr()
    rates = MaxMinProblem(paths).solve(capacity, weight, demand)
    expected = max_min_rates(whole, capacity, weight, demand)
    np.testing.assert_allclose(rates, expected, rtol=1e-9, atol=1e-12)
    finite = np.isfinite(rates)
    if finite.all():
        assert max_min_certificate_ok(whole, capacity, rates, weight, demand)


@settings(max_examples=60, deadline=None)
@given(trunked_problems())
def test_factored_sums_equal_the_whole_matrix(problem) -> None:
    paths, capacity, weight, _ = problem
    whole = paths.tocsr()
    np.testing.assert_allclose(paths.link_sum(weight), whole.T @ weight, rtol=1e-12)
    np.testing.assert_allclose(paths.path_sum(capacity), whole @ capacity, rtol=1e-12)
    assert np.array_equal(paths.crossed, np.diff(whole.tocsc().indptr) > 0)
    assert np.array_equal(paths.crosses_nothing(), np.diff(whole.indptr) == 0)


def zone():
    """A small Meta AI zone: 2 pods of 4 racks of 2 nodes (8 GPUs each), ATSW at 1:7."""
    return build_topology(
        "meta_ai_zone",
        gpus_per_node=8,
        nodes_per_rack=2,
        racks_per_pod=4,
        pods=2,
        ctsw_per_pod=4,
        atsw_per_plane=2,
        link_gbps=100,
    )


def sprayed(topology, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    n = topology.n_hosts
    src = np.repeat(np.arange(n), 3)
    dst = (src + rng.integers(1, n, src.size)) % n
    return route(topology, src, dst, mode="spray").incidence.tocsr()


def test_sprayed_routes_factor_exactly_and_far_smaller():
    topology = zone()
    incidence = sprayed(topology)
    shareable = (topology.link_src >= topology.n_hosts) & (topology.link_dst >= topology.n_hosts)
    paths = factor(incidence, shareable)
    assert paths.n_trunks > 0
    assert paths.nnz < 0.6 * incidence.nnz
    assert (paths.tocsr() != incidence).nnz == 0
    # A sub-flow keeps its NIC links; its trunk holds only switch-to-switch links.
    assert not shareable[paths.own.indices].any()
    assert shareable[paths.trunks.indices].all()


def test_a_hash_collision_leaves_the_matrix_whole(monkeypatch):
    import sim.fabric.trunks as trunks

    topology = zone()
    incidence = sprayed(topology)
    shareable = (topology.link_src >= topology.n_hosts) & (topology.link_dst >= topology.n_hosts)
    monkeypatch.setattr(trunks, "mix64", lambda values: np.zeros_like(values, dtype=np.uint64))
    paths = factor(incidence, shareable)
    assert paths.n_trunks == 0
    assert (paths.tocsr() != incidence).nnz == 0


def test_single_paths_that_rarely_coincide_are_not_factored():
    topology = zone()
    rng = np.random.default_rng(1)
    src = rng.integers(0, topology.n_hosts, 40)
    dst = (src + 1 + rng.integers(0, topology.n_hosts - 1, 40)) % topology.n_hosts
    incidence = route(topology, src, dst, mode="ecmp", qps_per_connection=4).incidence.tocsr()
    shareable = (topology.link_src >= topology.n_hosts) & (topology.link_dst >= topology.n_hosts)
    assert factor(incidence, shareable).n_trunks == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_back_pressure_on_trunks_equals_the_whole_matrix(seed):
    topology = zone()
    incidence = sprayed(topology, seed)
    shareable = (topology.link_src >= topology.n_hosts) & (topology.link_dst >= topology.n_hosts)
    paths = factor(incidence, shareable)
    assert paths.n_trunks > 0
    stage = link_stage(topology)
    capacity = topology.capacity_gbps.astype(float)
    demand = np.full(incidence.shape[0], 100.0)
    whole = backpressure_rates(incidence, capacity, demand, stage, topology)
    factored = backpressure_rates(paths, capacity, demand, stage, topology)
    assert whole.pause_fraction.max() > 0.1
    np.testing.assert_allclose(factored.rates_gbps, whole.rates_gbps, rtol=1e-9)
    np.testing.assert_allclose(factored.pause_fraction, whole.pause_fraction, atol=1e-12)
    np.testing.assert_allclose(factored.drain_gbps, whole.drain_gbps, rtol=1e-9)
    assert np.array_equal(factored.full, whole.full)
    assert np.array_equal(factored.inputs, whole.inputs)
    for a, b in zip(
        line_rate_arrivals(paths, capacity, demand, stage),
        line_rate_arrivals(incidence, capacity, demand, stage),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"high_priority": ["hi"], "low_min_share": 0.2},
        {"rate_limits_gbps": {"hi": 150.0}},
    ],
    ids=["one-class", "two-classes", "rate-limited"],
)
@pytest.mark.parametrize("kind", ["infiniband", "ideal"])
def test_the_cluster_network_gives_the_same_answer_with_trunks_as_without(
    monkeypatch, kind, options
):
    import sim.fabric.network as network_module
    from sim.scenario.fabric import NetworkFabricConfig

    from .test_network import GPN, SMALL_ZONE, data_parallel, placement

    transport = {"kind": kind, "adaptive_routing": True} if kind == "infiniband" else {"kind": kind}
    config = NetworkFabricConfig.model_validate(
        {"kind": "network", "topology": SMALL_ZONE, "transport": transport}
    )
    jobs = [
        placement(0, [0, 1, 2, 3, 8, 9], GPN, data_parallel(tp=8), tenant="hi"),  # across pods
        placement(1, [4, 5, 10, 11, 12], GPN, data_parallel(), tenant="lo"),
        placement(2, [6, 7, 13, 14, 15], GPN, data_parallel(tp=2), tenant="lo"),
    ]

    def solve():
        fabric = network_module.NetworkFabric(config, gpus_per_node=GPN, **options)
        return fabric, fabric.solve(jobs)

    fabric, factored = solve()
    assert any(job.paths.n_trunks for job in fabric._jobs.values())
    monkeypatch.setattr(network_module, "factor", lambda matrix, _: Trunked.of(matrix))
    fabric, whole = solve()
    assert not any(job.paths.n_trunks for job in fabric._jobs.values())
    assert max(state.slowdown for state in whole.jobs.values()) > 1.01  # they do contend
    for job_id, state in whole.jobs.items():
        other = factored.jobs[job_id]
        assert other.slowdown == pytest.approx(state.slowdown, rel=1e-9)
        assert other.flow_slowdown_p99 == pytest.approx(state.flow_slowdown_p99, rel=1e-9)
    assert factored.carried_gbps == pytest.approx(whole.carried_gbps, rel=1e-9)
    assert factored.busy_links == whole.busy_links
