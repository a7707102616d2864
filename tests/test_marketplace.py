"""Marketplace invariants and contracts.

- No GPU is ever held by two jobs; every GPU is in exactly one class.
- GPU-hours are conserved: internal + sold + idle + down = capacity.
- Reserved capacity is never preempted.
- Spot preemption loses exactly the work since the last checkpoint.
- ``max_wait`` rejects; ``max_wait: 0`` means start at once or be rejected.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy
from hypothesis import given
from hypothesis import strategies as st

from sim.fabric.model import IdealFabric
from sim.market.inventory import ClusterInfo, Inventory
from sim.market.marketplace import Marketplace
from sim.metrics.accounting import CLASSES, Accounting
from sim.policies.placement import FirstFit
from sim.results import jobs_frame
from sim.runner import Simulation
from sim.workloads.jobs import Job
from tests.conftest import batch, capacity_parts, scenario


def check_holdings(sim: Simulation) -> None:
    """Every GPU is held at most once, and classes add up to the capacity."""
    inventory, market = sim.inventory, sim.market
    held = np.zeros_like(inventory.capacity)
    for job in market.running.values():
        np.add.at(held, job.nodes, job.counts)
        assert np.all(inventory.pool[job.nodes] == job.pool)
    if market.inference is not None:
        for node in market.inference.nodes:
            held[node] += inventory.capacity[node]
    assert np.all(held + inventory.free == inventory.capacity), "a GPU is held twice or lost"
    assert np.all(inventory.free >= 0)
    counts = sim.accounting.gpus
    assert sum(counts[c] for c in CLASSES) == inventory.gpus_total
    reserved_nodes = sum(len(r.nodes) * r.cluster.gpus_per_node for r in market.reservations)
    assert counts["reserved"] == reserved_nodes


def run_checked(sim: Simulation) -> None:
    """Step the simulation event by event, checking holdings after each event."""
    horizon = sim.scenario.horizon
    while sim.env.peek() <= horizon:
        sim.env.step()
        check_holdings(sim)
    sim.market.close(horizon)


durations = st.sampled_from(
    [
        {"kind": "exponential", "mean": "2h"},
        {"kind": "lognormal", "median": "1h", "sigma": 1.0},
        {"kind": "fixed", "value": "90m"},
        {"kind": "uniform", "low": "10m", "high": "5h"},
    ]
)


@st.composite
def small_scenarios(draw):
    gpn = draw(st.sampled_from([1, 2, 4, 8]))
    clusters = [
        {"name": f"c{i}", "nodes": draw(st.integers(2, 12)), "gpus_per_node": gpn}
        for i in range(draw(st.integers(1, 2)))
    ]
    smallest = min(c["nodes"] for c in clusters) * gpn
    sizes = st.lists(st.sampled_from([1, 2, 4, 8, 16]), min_size=1, max_size=3).map(
        lambda xs: [x for x in xs if x <= smallest] or [1]
    )
    tenants = []
    reserved_nodes = draw(st.integers(0, 1))
    if reserved_nodes:
        tenants.append(
            {
                "name": "res",
                "cluster": "c0",
                "contract": {
                    "kind": "reserved",
                    "gpus": gpn,
                    "start": draw(st.sampled_from([0, "3h"])),
                    "term": draw(st.sampled_from([None, "10h"])),
                },
                "workload": batch(
                    draw(st.floats(0.2, 3)),
                    {"kind": "choice", "values": [1]},
                    draw(durations),
                    checkpoint_interval="30m",
                ),
            }
        )
    tenants.append(
        {
            "name": "od",
            "contract": {"kind": "on_demand", "max_wait": draw(st.sampled_from([None, 0, "2h"]))},
            "workload": batch(
                draw(st.floats(0.2, 4)), {"kind": "choice", "values": draw(sizes)}, draw(durations)
            ),
        }
    )
    tenants.append(
        {
            "name": "sp",
            "contract": {
                "kind": "spot",
                "notice": draw(st.sampled_from([0, "2m", "30m"])),
                "max_wait": draw(st.sampled_from([None, "6h"])),
            },
            "workload": batch(
                draw(st.floats(0.2, 4)),
                {"kind": "choice", "values": draw(sizes)},
                draw(durations),
                checkpoint_interval=draw(st.sampled_from([None, "20m"])),
            ),
        }
    )
    internal = {}
    if draw(st.booleans()):
        internal["inference"] = {"gpus": gpn, "amplitude": 0.5, "step": "2h"}
    if draw(st.booleans()):
        internal["training"] = batch(0.2, {"kind": "choice", "values": draw(sizes)}, "3h")
    return scenario(
        seed=draw(st.integers(0, 2**32)),
        horizon="1d",
        provider={"sites": [{"name": "s", "clusters": clusters}]},
        internal=internal,
        tenants=tenants,
        policies={"scheduling": {"backfill": draw(st.booleans())}},
    )


@given(small_scenarios())
def test_no_gpu_held_twice_and_gpu_hours_conserved(spec):
    sim = Simulation(spec)
    run_checked(sim)
    hours = sim.accounting.gpu_hours
    capacity = sim.inventory.gpus_total * spec.horizon
    assert sum(hours.values()) == pytest.approx(capacity, rel=1e-9)
    jobs = jobs_frame(sim.market.jobs, [c.name for c in sim.clusters])
    reserved = jobs[jobs["contract"] == "reserved"]
    assert (reserved["preemptions"] == 0).all()
    assert (jobs["done_work_hours"] >= jobs["lost_gpu_hours"] / jobs["gpus"] - 1e-9).all()
    done = jobs[jobs["outcome"] == "done"]
    assert np.allclose(
        done["done_work_hours"] - done["lost_gpu_hours"] / done["gpus"], done["work_hours"]
    )


def test_quickstart_conserves_gpu_hours(quickstart_path):
    from sim.scenario import load_scenario

    spec = load_scenario(quickstart_path)
    sim = Simulation(spec)
    result = sim.run()
    s = result.summary
    assert capacity_parts(s) == pytest.approx(s["capacity_gpu_hours"], rel=1e-9)
    assert s["capacity_gpu_hours"] == 384 * 48
    # The timeseries integrates to the same GPU-hours.
    ts = result.timeseries
    dt = np.diff(np.append(ts["time_hours"].to_numpy(), spec.horizon))
    for cls in CLASSES:
        assert float((ts[cls] * dt).sum()) == pytest.approx(sim.accounting.gpu_hours[cls], abs=1e-6)


# ---------------------------------------------------------------- hand-built marketplace


class Hand:
    """A one-cluster marketplace driven by hand, for exact lifecycle checks."""

    def __init__(self, nodes: int = 1, gpus_per_node: int = 8):
        self.env = simpy.Environment()
        self.cluster = ClusterInfo(0, "c", "s", 0, nodes, gpus_per_node, "H100")
        inventory = Inventory([self.cluster])
        self.market = Marketplace(
            self.env, inventory, FirstFit(), [IdealFabric()], Accounting(inventory.gpus_total)
        )
        self.next_id = 0

    def job(self, contract: str, gpus: int, work_hours: float, **fields) -> Job:
        job = Job(self.next_id, contract, contract, gpus, work_hours, 0.0, (0,), **fields)
        self.next_id += 1
        return job

    def submit_at(self, hours: float, job: Job) -> None:
        def arrive():
            yield self.env.timeout(hours)
            self.market.submit(job)

        self.env.process(arrive())

    def run(self, until: float) -> None:
        self.env.run(until=until)
        self.market.close(until)


@pytest.mark.parametrize(
    ("checkpoint_hours", "lost_hours", "end_hours"),
    [(1.0, 0.6, 12.6), (None, 3.6, 15.6), (0.5, 0.1, 12.1), (1.2, 0.0, 12.0)],
)
def test_spot_preemption_loses_exactly_the_work_since_the_last_checkpoint(
    checkpoint_hours, lost_hours, end_hours
):
    hand = Hand()
    spot = hand.job("spot", 8, 10.0, checkpoint_hours=checkpoint_hours, spot_notice_hours=0.1)
    internal = hand.job("internal", 8, 2.0)
    hand.submit_at(0.0, spot)
    hand.submit_at(3.5, internal)  # reclaims the node; the spot job stops at 3.6
    hand.run(until=30.0)
    assert internal.first_start_hours == pytest.approx(3.6)
    assert spot.preemptions == 1
    assert spot.lost_hours == pytest.approx(lost_hours)
    # Restarted at 5.6 from its checkpoint, with 10 - (3.6 - lost) hours of work left.
    assert spot.end_hours == pytest.approx(end_hours)
    assert spot.state == "done"
    assert spot.done_work_hours == pytest.approx(10.0 + lost_hours)


def test_reserved_block_is_never_preempted():
    hand = Hand(nodes=2)
    hand.market.add_reservation("r", hand.cluster, 8, 0.0, math.inf)
    reserved = hand.job("reserved", 8, 5.0, pool=0)
    reserved.contract = "reserved"
    hand.submit_at(0.5, reserved)
    hand.submit_at(1.0, hand.job("internal", 8, 1.0))
    hand.submit_at(1.0, hand.job("internal", 8, 1.0))
    hand.run(until=10.0)
    assert reserved.preemptions == 0
    assert reserved.end_hours == pytest.approx(5.5)
    assert hand.market.accounting.gpu_hours["reserved"] == pytest.approx(80.0)


def test_on_demand_reclaims_spot_but_not_other_on_demand():
    hand = Hand(nodes=1)
    first = hand.job("on_demand", 8, 4.0)
    spot = hand.job("spot", 8, 4.0, spot_notice_hours=0.25, checkpoint_hours=1.0)
    second = hand.job("on_demand", 8, 1.0)
    hand.submit_at(0.0, spot)
    hand.submit_at(1.0, first)  # reclaims spot at 1.25
    hand.submit_at(2.0, second)  # waits for first, never preempts it
    hand.run(until=20.0)
    assert first.first_start_hours == pytest.approx(1.25)
    assert first.preemptions == 0
    assert second.first_start_hours == pytest.approx(5.25)
    assert spot.preemptions == 1


def test_max_wait_zero_rejects_unless_it_starts_at_once():
    hand = Hand(nodes=1)
    first = hand.job("on_demand", 8, 2.0, max_wait_hours=0.0)
    second = hand.job("on_demand", 8, 2.0, max_wait_hours=0.0)
    third = hand.job("on_demand", 8, 2.0, max_wait_hours=0.0)
    hand.submit_at(0.0, first)
    hand.submit_at(1.0, second)
    hand.submit_at(2.5, third)
    hand.run(until=10.0)
    assert [first.state, second.state, third.state] == ["done", "rejected", "done"]
    assert second.end_hours == pytest.approx(1.0)


def test_max_wait_rejects_after_the_wait():
    hand = Hand(nodes=1)
    long = hand.job("on_demand", 8, 5.0)
    patient = hand.job("on_demand", 8, 1.0, max_wait_hours=6.0)
    impatient = hand.job("on_demand", 8, 1.0, max_wait_hours=2.0)
    hand.submit_at(0.0, long)
    hand.submit_at(1.0, impatient)
    hand.submit_at(1.0, patient)
    hand.run(until=10.0)
    assert impatient.state == "rejected"
    assert impatient.end_hours == pytest.approx(3.0)
    assert patient.state == "done"
    assert patient.first_start_hours == pytest.approx(5.0)


def test_easy_backfill_lets_short_jobs_pass_without_delaying_the_head():
    hand = Hand(nodes=2)
    running = hand.job("on_demand", 8, 4.0)
    head = hand.job("on_demand", 16, 1.0)
    short = hand.job("on_demand", 8, 2.0)  # ends at 3 <= shadow 4: may backfill
    long = hand.job("on_demand", 8, 9.0)  # would delay the head: must wait
    for job in (running, head, short, long):
        hand.submit_at(0.0, job)
    hand.run(until=30.0)
    assert short.first_start_hours == pytest.approx(0.0)
    assert head.first_start_hours == pytest.approx(4.0)
    assert long.first_start_hours == pytest.approx(5.0)


@pytest.mark.parametrize(
    "slower",
    [
        {"speeds": {"H100": 0.4}},  # a slower accelerator: 2 h of work take 5 h
        {"checkpoint_hours": 1.0, "checkpoint_write_hours": 1.5},  # computes 40 % of the time
        {"restarted": True, "restart_overhead_hours": 3.0},  # works from 3 h on
    ],
    ids=["accelerator", "checkpoint-writes", "restart-overhead"],
)
def test_easy_backfill_never_delays_the_head_past_its_shadow(slower):
    # The head's shadow is 4 h (when the running job frees its node). The candidate has
    # 2 h of work but would hold its node until 5 h: backfilling it would delay the head.
    hand = Hand(nodes=2)
    running = hand.job("on_demand", 8, 4.0)
    head = hand.job("on_demand", 16, 1.0)
    candidate = hand.job("on_demand", 8, 2.0, **slower)
    for job in (running, head, candidate):
        hand.submit_at(0.0, job)
    hand.run(until=30.0)
    shadow_hours = 4.0
    assert head.first_start_hours <= shadow_hours + 1e-9
    assert candidate.first_start_hours == pytest.approx(5.0)  # after the head


def test_shared_queue_is_fifo_without_backfill():
    hand = Hand(nodes=2)
    hand.market.backfill = False
    running = hand.job("on_demand", 8, 4.0)
    head = hand.job("on_demand", 16, 1.0)
    short = hand.job("on_demand", 8, 2.0)
    for job in (running, head, short):
        hand.submit_at(0.0, job)
    hand.run(until=30.0)
    assert head.first_start_hours == pytest.approx(4.0)
    assert short.first_start_hours == pytest.approx(5.0)


def test_whole_node_claims_do_not_livelock_with_spot_jobs_that_restart_at_once():
    # Regression: the inference fleet reclaimed a node from spot jobs with no notice,
    # and the queued spot jobs took the freed GPUs straight back, forever, at one
    # instant. Claims now preempt all spot jobs of a node together and fence it.
    import signal

    spec = scenario(
        seed=182,
        horizon="1d",
        provider={
            "sites": [
                {
                    "name": "s",
                    "clusters": [
                        {"name": "c0", "nodes": 9, "gpus_per_node": 8},
                        {"name": "c1", "nodes": 2, "gpus_per_node": 8},
                    ],
                }
            ]
        },
        internal={"inference": {"gpus": 8, "amplitude": 0.5, "step": "2h"}},
        tenants=[
            {
                "name": "od",
                "contract": {"kind": "on_demand", "max_wait": "2h"},
                "workload": batch(1.64, {"kind": "choice", "values": [16]}, "90m"),
            },
            {
                "name": "sp",
                "contract": {"kind": "spot", "notice": 0},
                "workload": batch(
                    2.4,
                    {"kind": "choice", "values": [8, 16, 2]},
                    {"kind": "lognormal", "median": "1h", "sigma": 1.0},
                    checkpoint_interval="20m",
                ),
            },
        ],
        policies={"scheduling": {"backfill": False}},
    )

    def too_long(*_):
        raise TimeoutError("the marketplace is stuck at one instant")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(60)
    try:
        sim = Simulation(spec)
        run_checked(sim)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert sim.market.preemptions < 200
    hours = sim.accounting.tenant_gpu_hours["internal"]
    assert hours["inference_shortfall"] < 0.05 * hours["inference"]
