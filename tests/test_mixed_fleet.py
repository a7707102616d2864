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
