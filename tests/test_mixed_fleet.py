"""A provider with several accelerator types: jobs go where their types are, at their speed."""

from __future__ import annotations

import pytest

from sim.catalog import accelerator
from sim.runner import simulate
from sim.scenario import ScenarioError, scenario_from_text

FLEET = """
name: fleet
seed: 2
horizon: 2d
provider:
  sites:
    - name: east
      clusters:
        - {name: hopper, nodes: 2, accelerator: H100}
    - name: west
      clusters:
        - {name: blackwell, nodes: 2, accelerator: B200}
        - {name: instinct, nodes: 2, accelerator: MI300X}
tenants:
  - name: t
    contract: {kind: on_demand}
    ACCEPTS
    workload:
      arrivals: {kind: poisson, rate_per_hour: 100}
      gpus: 8
      duration: 10h
      max_jobs: 1
"""


def only_job(accepts: str):
    result = simulate(scenario_from_text(FLEET.replace("ACCEPTS", accepts), "fleet.yaml"))
    return result.jobs.iloc[0]


def test_work_is_measured_on_the_first_type_and_runs_by_tflops_elsewhere():
    h100 = accelerator("H100").tflops_bf16_dense
    b200 = accelerator("B200").tflops_bf16_dense
    # Measured on H100, placed in the first cluster it accepts: B200 runs it 2.28x faster.
    job = only_job("accelerators: [H100, B200]")
    assert job["cluster"] == "hopper"
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0)
    job = only_job("accelerators: [H100, B200]\n    cluster: blackwell")
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0 * h100 / b200)
    # Measured on B200, it takes 2.28x longer on an H100.
    job = only_job("accelerators: [B200, H100]")
    assert job["cluster"] == "hopper"
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0 * b200 / h100)


def test_a_job_runs_only_on_the_types_it_accepts():
    job = only_job("accelerators: [MI300X]")
    assert job["cluster"] == "instinct"
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0)
    # Without a list, work is measured on the first cluster's type and any cluster will do.
    job = only_job("cluster: instinct")
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("accepts", "message"),
    [
        ("accelerators: [H1000]", r"tenants\[0\]\.accelerators: unknown accelerator 'H1000'"),
        (
            "accelerators: [MI300X]\n    cluster: hopper",
            r"tenants\[0\]\.accelerators: no cluster it may use has MI300X \(they have H100\)",
        ),
    ],
)
def test_bad_accelerator_lists_name_the_field(accepts, message):
    with pytest.raises(ScenarioError, match=message):
        scenario_from_text(FLEET.replace("ACCEPTS", accepts), "fleet.yaml")


MIXED = """
name: mixed
seed: 4
horizon: 2d
provider:
  sites:
    - name: west
      power: {cap_mw: 1, pue: 1.0, price: {kind: flat, usd_per_mwh: 100}}
      clusters:
        - name: hall
          nodes: 4
          accelerator: {H100: 2, B200: 2}
tenants:
  - name: t
    contract: {kind: on_demand}
    ACCEPTS
    workload:
      arrivals: {kind: poisson, rate_per_hour: 100}
      gpus: 16
      duration: 10h
      max_jobs: 2
"""


def mixed_jobs(accepts: str):
    result = simulate(scenario_from_text(MIXED.replace("ACCEPTS", accepts), "mixed.yaml"))
    return result, result.jobs.sort_values("job_id")


def test_a_cluster_of_two_types_runs_each_job_on_one_type():
    h100 = accelerator("H100").tflops_bf16_dense
    b200 = accelerator("B200").tflops_bf16_dense
    # Accepting both, measured on H100: the first job fills the H100 nodes, the second
    # the B200 nodes, neither spans types, and the B200 job runs 2.28x faster.
    result, jobs = mixed_jobs("accelerators: [H100, B200]")
    spans = (jobs["end_hours"] - jobs["start_hours"]).tolist()
    assert spans == pytest.approx([10.0, 10.0 * h100 / b200])
    # Busy GPUs draw their own type's TDP (16 H100 for 10 h, 16 B200 for 4.4 h), and
    # idle ones their own type's idle watts the rest of the two days.
    idle = {"H100": accelerator("H100").idle_watts, "B200": accelerator("B200").idle_watts}
    tdp = {"H100": accelerator("H100").tdp_watts, "B200": accelerator("B200").tdp_watts}
    horizon = 48.0
    busy_mwh = 16 * (tdp["H100"] * spans[0] + tdp["B200"] * spans[1]) / 1e6
    idle_mwh = (
        16 * (idle["H100"] * (horizon - spans[0]) + idle["B200"] * (horizon - spans[1])) / 1e6
    )
    assert result.summary["energy_mwh"] == pytest.approx(busy_mwh + idle_mwh)
    # Only B200 accepted: both jobs run there, one after the other.
    _, jobs = mixed_jobs("accelerators: [B200]")
    assert (jobs["end_hours"] - jobs["start_hours"]).tolist() == pytest.approx([10.0, 10.0])
    assert jobs["start_hours"].iloc[1] == pytest.approx(jobs["end_hours"].iloc[0])


def test_a_reserved_block_in_a_mixed_cluster_takes_the_type_it_accepts():
    text = MIXED.replace("contract: {kind: on_demand}", "contract: {kind: reserved, gpus: 16}")
    result = simulate(scenario_from_text(text.replace("ACCEPTS", "accelerators: [B200]"), "r.yaml"))
    jobs = result.jobs.sort_values("job_id")
    # The block is the two B200 nodes: its jobs run at B200 speed, one after the other.
    assert (jobs["end_hours"] - jobs["start_hours"]).tolist() == pytest.approx([10.0, 10.0])


def test_node_counts_of_a_mixed_cluster_must_add_up():
    bad = MIXED.replace("{H100: 2, B200: 2}", "{H100: 2, B200: 1}").replace("ACCEPTS", "")
    with pytest.raises(ScenarioError, match="node counts add up to 3, not the cluster's 4 nodes"):
        scenario_from_text(bad, "mixed.yaml")
    unknown = MIXED.replace("B200: 2}", "B300: 2}").replace("ACCEPTS", "")
    with pytest.raises(ScenarioError, match="unknown accelerator 'B300'"):
        scenario_from_text(unknown, "mixed.yaml")


RECLAIM = """
name: reclaim
seed: 1
horizon: 1d
provider:
  sites:
    - name: s
      clusters:
        - {name: mixed, nodes: 3, accelerator: {H100: 1, B200: 2}}
internal:
  training:
    trace: {format: alibaba_spot_2026, path: jobs.csv, filter: {job_type: HP}}
tenants:
  - name: spot
    contract: {kind: spot, notice: 6m}
    workload:
      trace: {format: alibaba_spot_2026, path: jobs.csv, filter: {job_type: Spot}}
"""

JOBS = """\
job_name,organization,gpu_model,cpu_request,gpu_request,worker_num,submit_time,duration,job_type
s1,o,B200,8,8,1,0,72000,Spot
s2,o,B200,8,8,1,0,72000,Spot
hp,o,B200,8,8,1,3600,7200,HP
"""


def test_a_blocked_job_reclaims_spot_on_its_own_type_in_a_mixed_cluster(tmp_path):
    # Spot holds both B200 nodes; the free H100 node is no room for a B200 job, so the
    # HP job must reclaim a spot job and start after its notice, not when spot ends.
    (tmp_path / "jobs.csv").write_text(JOBS, encoding="utf-8")
    scenario = scenario_from_text(RECLAIM, "reclaim.yaml", base_dir=tmp_path)
    jobs = simulate(scenario).jobs
    hp = jobs[jobs["tenant"] == "internal"].iloc[0]
    assert hp["start_hours"] == pytest.approx(1.0 + 0.1)
    assert hp["end_hours"] == pytest.approx(3.1)
    spot = jobs[jobs["tenant"] == "spot"]
    assert spot["preemptions"].sum() == 1
