"""Preemption policies: who gets notice first, and who never does."""

from __future__ import annotations

import pytest

from sim.policies.preemption import PREEMPTIONS, make_preemption
from sim.runner import simulate
from sim.scenario import load_scenario
from sim.scenario.policies import Preemption
from sim.workloads.jobs import Job


def spot(job_id: int, tenant: str, run_since: float, progress_hours: float) -> Job:
    job = Job(job_id, tenant, "spot", 8, work_hours=10.0, submit_hours=0.0, clusters=(0,))
    job.state, job.run_since, job.rate_since = "running", run_since, run_since
    job.progress_hours = progress_hours
    return job


JOBS = [
    spot(1, "low", run_since=1.0, progress_hours=0.5),  # at t = 5: 4.5 h done
    spot(2, "high", run_since=4.0, progress_hours=0.0),  # 1 h done
    spot(3, "low", run_since=3.0, progress_hours=0.0),  # 2 h done
    spot(4, "high", run_since=2.0, progress_hours=2.5),  # 5.5 h done
]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("newest", [2, 3, 4, 1]),
        ("least_progress", [2, 3, 1, 4]),
        ("lowest_priority", [3, 1, 2, 4]),
    ],
)
def test_each_policy_gives_notice_in_its_order(kind, expected):
    policy = make_preemption(Preemption(kind=kind), {"low": 0, "high": 5})
    assert [j.job_id for j in policy.order(list(JOBS), now=5.0)] == expected


@pytest.mark.parametrize("kind", sorted(PREEMPTIONS))
def test_reserved_and_on_demand_jobs_are_never_preempted(quickstart_path, kind):
    s = simulate(
        load_scenario(quickstart_path, ["horizon=1d", f"policies.preemption.kind={kind}"])
    ).summary
    assert s["tenants"]["drift"]["preemptions"] > 0  # the internal demand does reclaim spot
    assert s["tenants"]["acme"]["preemptions"] == 0  # reserved
    assert s["tenants"]["bolt"]["preemptions"] == 0  # on demand
    assert s["tenants"]["internal"]["preemptions"] == 0


def test_the_victim_order_changes_who_loses_work(quickstart_path):
    lost = {
        kind: simulate(
            load_scenario(quickstart_path, ["horizon=1d", f"policies.preemption.kind={kind}"])
        )
        .jobs.query("contract == 'spot'")["lost_gpu_hours"]
        .sum()
        for kind in ("newest", "least_progress")
    }
    # Spot jobs here checkpoint every hour of work, so a job with little work done has
    # little since its last checkpoint: preempting those first loses less (197 -> 183
    # GPU-hours over the day).
    assert lost["least_progress"] < lost["newest"]
