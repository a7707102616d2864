"""Weighted max-min fair rates: hand-solved cases, properties, certificate, speed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fabric.routing import route
from sim.fabric.solver import (
    link_load_gbps,
    max_min_certificate,
    max_min_certificate_ok,
    max_min_rates,
)
from sim.fabric.topology_kinds import build_topology
from tests.fabric.strategies import RateProblem, rate_problems


def incidence_of(paths: list[list[int]], n_links: int) -> sp.csr_matrix:
    """Flows x links 0/1 matrix from each flow's list of links."""
    dense = np.zeros((len(paths), n_links))
    for flow, links in enumerate(paths):
        dense[flow, links] = 1.0
    return sp.csr_matrix(dense)


def reference_max_min(problem: RateProblem) -> np.ndarray:
    """Textbook progressive filling, one bottleneck at a time, in plain Python loops."""
    a = problem.incidence.toarray()
    n_flows, n_links = a.shape
    w = np.ones(n_flows) if problem.weights is None else problem.weights
    d = np.full(n_flows, np.inf) if problem.demand_gbps is None else problem.demand_gbps
    rate = np.zeros(n_flows)
    frozen = [False] * n_flows
    while not all(frozen):
        best, kind, which = np.inf, None, None
        for link in range(n_links):
            users = [f for f in range(n_flows) if a[f, link] > 0 and not frozen[f]]
            if not users:
                continue
            used = sum(a[f, link] * rate[f] for f in range(n_flows) if frozen[f])
            level = max(problem.capacity_gbps[link] - used, 0.0) / sum(
                a[f, link] * w[f] for f in users
            )
            if level < best:
                best, kind, which = level, "link", link
        for f in range(n_flows):
            if not frozen[f] and d[f] / w[f] < best:
                best, kind, which = d[f] / w[f], "demand", f
        if kind == "demand":
            rate[which], frozen[which] = d[which], True
        else:
            for f in range(n_flows):
                if a[f, which] > 0 and not frozen[f]:
                    rate[f], frozen[f] = w[f] * best, True
    return rate


# --------------------------------------------------------------------------- by hand


def test_single_bottleneck_equal_shares() -> None:
    rates = max_min_rates(incidence_of([[0], [0], [0], [0]], 1), np.array([10.0]))
    np.testing.assert_allclose(rates, [2.5, 2.5, 2.5, 2.5])


def test_weighted_shares_are_proportional_to_weights() -> None:
    rates = max_min_rates(
        incidence_of([[0], [0], [0], [0]], 1), np.array([10.0]), weights=np.array([1, 2, 3, 4.0])
    )
    np.testing.assert_allclose(rates, [1.0, 2.0, 3.0, 4.0])


def test_demand_below_fair_share_releases_capacity() -> None:
    # Fair share would be 3 each; flow 0 only wants 1, so the others split 8.
    rates = max_min_rates(
        incidence_of([[0], [0], [0]], 1),
        np.array([9.0]),
        demand_gbps=np.array([1.0, np.inf, np.inf]),
    )
    np.testing.assert_allclose(rates, [1.0, 4.0, 4.0])


def test_textbook_four_flows_three_links() -> None:
    # Links: 0 (cap 1) carries flows 0, 1, 2; link 1 (cap 1) carries 0, 3;
    # link 2 (cap 2) carries 1, 3. Filling: link 0 fills first at 1/3 and
    # freezes flows 0, 1, 2; link 1 then has 2/3 left for flow 3 (link 2
    # would allow 5/3). Max-min rates: 1/3, 1/3, 1/3, 2/3.
    rates = max_min_rates(incidence_of([[0, 1], [0, 2], [0], [1, 2]], 3), np.array([1.0, 1.0, 2.0]))
    np.testing.assert_allclose(rates, [1 / 3, 1 / 3, 1 / 3, 2 / 3])


def test_textbook_five_flows_three_bottleneck_levels() -> None:
    # Link 0 (cap 10): flows A, B, C; link 1 (cap 8): A, D; link 2 (cap 3): C, E.
    # Levels: link 2 fills at 1.5 (C = E = 1.5); then link 1 at 4 (A = D = 4)
    # before link 0 at 4.25; last, link 0 has 10 - 1.5 - 4 = 4.5 for B.
    rates = max_min_rates(
        incidence_of([[0, 1], [0], [0, 2], [1], [2]], 3), np.array([10.0, 8.0, 3.0])
    )
    np.testing.assert_allclose(rates, [4.0, 4.5, 1.5, 4.0, 1.5])


def test_parking_lot() -> None:
    # One long flow over four unit links, one short flow per link: all get 1/2.
    paths = [[0, 1, 2, 3], [0], [1], [2], [3]]
    rates = max_min_rates(incidence_of(paths, 4), np.ones(4))
    np.testing.assert_allclose(rates, np.full(5, 0.5))


def test_weighted_two_levels() -> None:
    # Link 0 (cap 6): flow 0 (w=1), flow 1 (w=2). Link 1 (cap 3): flow 1, flow 2 (w=1).
    # Level of link 0: 6/3 = 2; of link 1: 3/3 = 1 -> link 1 first: flow 1 = 2,
    # flow 2 = 1. Then link 0 has 4 left for flow 0.
    rates = max_min_rates(
        incidence_of([[0], [0, 1], [1]], 2), np.array([6.0, 3.0]), weights=np.array([1, 2, 1.0])
    )
    np.testing.assert_allclose(rates, [4.0, 2.0, 1.0])


def test_fractional_incidence_split_flow() -> None:
    # Flow 0 is sprayed half over link 0 and half over link 1 (cap 1 each);
    # flow 1 uses link 0 only. Level t: link 0 carries 0.5 t + t = 1 at t = 2/3,
    # link 1 carries 0.5 t = 1 at t = 2: both flows get 2/3.
    incidence = sp.csr_matrix(np.array([[0.5, 0.5], [1.0, 0.0]]))
    rates = max_min_rates(incidence, np.array([1.0, 1.0]))
    np.testing.assert_allclose(rates, [2 / 3, 2 / 3])


def test_flows_crossing_no_link() -> None:
    incidence = sp.csr_matrix((3, 2))
    rates = max_min_rates(incidence, np.array([1.0, 1.0]), demand_gbps=np.array([5.0, np.inf, 0]))
    np.testing.assert_array_equal(rates, [5.0, np.inf, 0.0])


def test_zero_capacity_and_infinite_capacity_links() -> None:
    incidence = incidence_of([[0], [1], [1, 2]], 3)
    rates = max_min_rates(incidence, np.array([0.0, np.inf, 4.0]))
    np.testing.assert_array_equal(rates, [0.0, np.inf, 4.0])


def test_empty_problem() -> None:
    assert max_min_rates(sp.csr_matrix((0, 3)), np.ones(3)).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"capacity_gbps": np.ones(2)}, "capacity_gbps"),
        ({"capacity_gbps": np.array([-1.0, 1.0, 1.0])}, "capacity_gbps"),
        ({"weights": np.array([1.0, 0.0])}, "weights"),
        ({"weights": np.ones(3)}, "weights"),
        ({"demand_gbps": np.array([1.0, -2.0])}, "demand_gbps"),
        ({"incidence": np.ones((2, 3))}, "incidence"),
        ({"incidence": sp.csr_matrix(-np.ones((2, 3)))}, "incidence"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs: dict, name: str) -> None:
    args = {"incidence": sp.csr_matrix(np.ones((2, 3))), "capacity_gbps": np.ones(3)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        max_min_rates(**args)


def test_certificate_rejects_unfair_and_infeasible_allocations() -> None:
    incidence = incidence_of([[0], [0]], 1)
    capacity = np.array([2.0])
    assert max_min_certificate_ok(incidence, capacity, np.array([1.0, 1.0]))
    unfair = max_min_certificate(incidence, capacity, np.array([0.5, 1.5]))
    assert not unfair.ok
    assert unfair.unbottlenecked_flows.tolist() == [0]
    wasteful = max_min_certificate(incidence, capacity, np.array([0.5, 0.5]))
    assert wasteful.unbottlenecked_flows.tolist() == [0, 1]
    over = max_min_certificate(incidence, capacity, np.array([1.5, 1.5]))
    assert over.overloaded_links.tolist() == [0]
    negative = max_min_certificate(incidence, capacity, np.array([-1.0, 3.0]))
    assert negative.negative_flows.tolist() == [0]


# --------------------------------------------------------------------------- properties


@settings(max_examples=80, deadline=None)
@given(rate_problems())
def test_rates_are_max_min_fair(problem: RateProblem) -> None:
    rates = max_min_rates(
        problem.incidence, problem.capacity_gbps, problem.weights, problem.demand_gbps
    )
    assert np.all(rates >= 0)
    load = link_load_gbps(problem.incidence, rates)
    assert np.all(load <= problem.capacity_gbps * (1 + 1e-9) + 1e-12)
    certificate = max_min_certificate(
        problem.incidence, problem.capacity_gbps, rates, problem.weights, problem.demand_gbps
    )
    assert certificate.ok, certificate


@settings(max_examples=40, deadline=None)
@given(rate_problems(fractional=True))
def test_fractional_rates_are_max_min_fair(problem: RateProblem) -> None:
    rates = max_min_rates(
        problem.incidence, problem.capacity_gbps, problem.weights, problem.demand_gbps
    )
    assert max_min_certificate_ok(
        problem.incidence, problem.capacity_gbps, rates, problem.weights, problem.demand_gbps
    )


@settings(max_examples=60, deadline=None)
@given(rate_problems(fractional=True))
def test_matches_one_bottleneck_at_a_time_reference(problem: RateProblem) -> None:
    rates = max_min_rates(
        problem.incidence, problem.capacity_gbps, problem.weights, problem.demand_gbps
    )
    np.testing.assert_allclose(rates, reference_max_min(problem), rtol=1e-7, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(rate_problems(demands=False), st.sampled_from([0.25, 3.0, 1000.0]))
def test_scaling_capacities_scales_rates(problem: RateProblem, factor: float) -> None:
    rates = max_min_rates(problem.incidence, problem.capacity_gbps, problem.weights)
    scaled = max_min_rates(problem.incidence, problem.capacity_gbps * factor, problem.weights)
    np.testing.assert_allclose(scaled, rates * factor, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(rate_problems(), st.randoms(use_true_random=False))
def test_flow_order_does_not_matter(problem: RateProblem, random) -> None:
    order = list(range(problem.n_flows))
    random.shuffle(order)
    rates = max_min_rates(
        problem.incidence, problem.capacity_gbps, problem.weights, problem.demand_gbps
    )
    permuted = max_min_rates(
        problem.incidence[order],
        problem.capacity_gbps,
        None if problem.weights is None else problem.weights[order],
        None if problem.demand_gbps is None else problem.demand_gbps[order],
    )
    np.testing.assert_allclose(permuted, rates[order], rtol=1e-9)


def test_rounds_at_most_distinct_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.fabric.solver as solver

    rounds = []
    original = solver._Working.round

    def counting_round(self, rates, rtol):
        rounds.append(1)
        original(self, rates, rtol)

    monkeypatch.setattr(solver._Working, "round", counting_round)
    topology = build_topology("fat_tree", k=8)
    dst = np.random.default_rng(3).permutation(topology.n_hosts)
    routes = route(topology, np.arange(topology.n_hosts), dst, qps_per_connection=4)
    rates = max_min_rates(routes.incidence, topology.capacity_gbps)
    levels = np.unique(np.round(rates[np.isfinite(rates)], 9)).size
    assert len(rounds) <= levels < routes.n_subflows
    rounds.clear()
    max_min_rates(incidence_of([[0]] * 1000, 1), np.array([10.0]))
    assert len(rounds) == 1


# --------------------------------------------------------------------------- scale


def test_k16_permutation_is_certified_max_min() -> None:
    topology = build_topology("fat_tree", k=16, link_gbps=100.0)
    dst = np.random.default_rng(7).permutation(topology.n_hosts)
    routes = route(topology, np.arange(topology.n_hosts), dst, mode="ecmp")
    rates = max_min_rates(routes.incidence, topology.capacity_gbps)
    assert max_min_certificate_ok(routes.incidence, topology.capacity_gbps, rates)
