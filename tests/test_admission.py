"""Admission by Kueue-style quotas: cohorts lend, borrowing and lending are limited."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.market.marketplace import Marketplace
from sim.policies.admission import Quotas
from sim.runner import simulate
from sim.scenario import load_scenario
from sim.scenario.policies import QuotaAdmission


def quotas(**per_tenant) -> Quotas:
    return Quotas(QuotaAdmission(kind="quotas", quotas=per_tenant))


def test_a_quota_alone_is_a_cap():
    policy = quotas(a={"gpus": 16})
    assert policy.headroom("a", {"a": 8}) == 8
    assert policy.admits("a", 8, {"a": 8}) and not policy.admits("a", 9, {"a": 8})
    assert policy.admits("nobody", 10**6, {})  # tenants without a quota are not limited


def test_a_cohort_lends_what_its_members_leave_unused():
    policy = quotas(a={"gpus": 10, "cohort": "c"}, b={"gpus": 10, "cohort": "c"})
    assert policy.headroom("a", {}) == 20  # all of b's unused quota
    assert policy.headroom("b", {"a": 20}) == 0  # the lender waits for the borrower
    assert policy.headroom("b", {"a": 14}) == 6


def test_borrowing_and_lending_limits():
    policy = quotas(
        a={"gpus": 10, "cohort": "c", "borrowing_limit": 3},
        b={"gpus": 10, "cohort": "c", "lending_limit": 4},
        d={"gpus": 10, "cohort": "c"},
    )
    assert policy.headroom("a", {}) == 13  # its borrowing limit
    assert policy.headroom("d", {}) == 10 + 4 + 10  # b keeps 6 of its 10 back
    assert policy.headroom("d", {"b": 8}) == 10 + 2 + 10  # b lends only what it leaves unused


MEMBERS = ("a", "b", "d", "e")


@settings(max_examples=80, deadline=None)
@given(
    spec=st.lists(
        st.tuples(
            st.integers(0, 20),
            st.sampled_from(["c", "k", None]),
            st.one_of(st.none(), st.integers(0, 10)),
            st.one_of(st.none(), st.integers(0, 10)),
        ),
        min_size=4,
        max_size=4,
    ),
    ops=st.lists(st.tuples(st.sampled_from(MEMBERS), st.integers(-8, 12)), max_size=60),
)
def test_quotas_are_never_exceeded_beyond_borrowing_limits(spec, ops):
    config = {
        name: {"gpus": g, "cohort": c, "borrowing_limit": b, "lending_limit": lend}
        for name, (g, c, b, lend) in zip(MEMBERS, spec, strict=True)
    }
    policy = quotas(**config)
    usage = dict.fromkeys(MEMBERS, 0)
    for tenant, change in ops:
        if change <= 0:  # a job ends
            usage[tenant] = max(0, usage[tenant] + change)
        elif policy.admits(tenant, change, usage):
            usage[tenant] += change
        for name, q in config.items():
            assert usage[name] <= q["gpus"] + (q["borrowing_limit"] or 0) or (
                q["cohort"] is not None and q["borrowing_limit"] is None
            )
            if q["cohort"] is None:
                assert usage[name] <= q["gpus"]
        for cohort in ("c", "k"):
            members = [n for n, q in config.items() if q["cohort"] == cohort]
            assert sum(usage[n] for n in members) <= sum(config[n]["gpus"] for n in members)


def test_a_run_keeps_every_tenant_within_its_quota(quickstart_path, monkeypatch):
    limits = "{gpus: 64, cohort: sold, borrowing_limit: 32}"
    quota = f"policies.admission={{kind: quotas, quotas: {{bolt: {limits}, drift: {limits}}}}}"
    peaks: dict[str, int] = {}
    cohort_peak = [0]
    original = Marketplace._start

    def start(self, job, proposal):
        original(self, job, proposal)
        usage = self.shared_usage
        for name in ("bolt", "drift"):
            peaks[name] = max(peaks.get(name, 0), usage.get(name, 0))
        cohort_peak[0] = max(cohort_peak[0], usage.get("bolt", 0) + usage.get("drift", 0))

    monkeypatch.setattr(Marketplace, "_start", start)
    simulate(load_scenario(quickstart_path, ["horizon=1d"]))
    unlimited = dict(peaks)
    peaks.clear()
    cohort_peak[0] = 0
    simulate(load_scenario(quickstart_path, ["horizon=1d", quota]))
    assert unlimited["drift"] > 64 + 32  # without quotas spot takes more than its limit
    assert 64 < peaks["drift"] <= 64 + 32  # with them it borrows, up to its limit
    assert peaks["bolt"] <= 64 + 32
    assert cohort_peak[0] <= 128  # and the cohort never holds more than its quotas


@pytest.mark.parametrize(
    ("quota_tenants", "message"),
    [("{nobody: {gpus: 8}}", "no tenant named 'nobody'"), ("{acme: {gpus: 8}}", "reserved")],
)
def test_quotas_name_real_shared_pool_tenants(quickstart_path, quota_tenants, message):
    from sim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=message):
        load_scenario(
            quickstart_path, [f"policies.admission={{kind: quotas, quotas: {quota_tenants}}}"]
        )


def test_fabric_aware_admission_keeps_the_victim_within_its_slo():
    from tests.conftest import SCENARIOS

    path = SCENARIOS / "noisy-neighbor.yaml"
    slo = "policies.admission={kind: fabric_aware, slowdown_slo: {atlas: 1.1}}"
    free = simulate(load_scenario(path, ["horizon=1d"])).summary["tenants"]
    guarded = simulate(load_scenario(path, ["horizon=1d", slo])).summary["tenants"]
    # Left free, atlas breaks its SLO; guarded, it keeps it (1.13 -> 1.09).
    assert (
        free["atlas"]["iteration_slowdown_p99"] > 1.1 > guarded["atlas"]["iteration_slowdown_p99"]
    )
    # Placements that spare atlas also spread the all-to-all tenant's own traffic.
    assert guarded["swarm"]["iteration_slowdown_p50"] < free["swarm"]["iteration_slowdown_p50"]


def test_an_slo_names_a_tenant(quickstart_path):
    from sim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="no tenant named 'nobody'"):
        load_scenario(
            quickstart_path,
            ["policies.admission={kind: fabric_aware, slowdown_slo: {nobody: 1.2}}"],
        )
