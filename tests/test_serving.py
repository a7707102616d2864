"""Inference serving in runs: replicas, requests, latency against the queue's own analytics,
the SLO and usable GPU-hours, and replicas whose all-reduces cross a congested fabric."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.catalog import accelerator
from sim.fabric.model import RunningPlacement
from sim.fabric.network import NetworkFabric
from sim.fabric.transport import NVLINK_GBPS
from sim.runner import simulate
from sim.scenario import ScenarioError, scenario_from_text
from sim.scenario.fabric import NetworkFabricConfig
from sim.scenario.workloads import Serving
from sim.workloads.inference import service_point, serving_network
from sim.workloads.mmc_queue import latency_quantile_s
from sim.workloads.serving import ServingLog, mean_diurnal_factor, serving_figures
from sim.workloads.training import ModelShape, TrainingSpec

SERVING = {
    "model": {"params_billion": 70, "layers": 80, "hidden": 8192, "kv_heads_ratio": 0.125},
    "tp": 8,
    "max_batch": 64,
    "requests": {"rate_per_second": 60, "amplitude": 0.0},
    "slo": "10s",
}

SERVED_RUN = """
name: served
horizon: 12h
seed: 5
provider:
  sites:
    - name: east
      clusters:
        - name: c
          nodes: 8
          gpus_per_node: 8
          accelerator: H100
tenants:
  - name: chat
    contract: {kind: on_demand}
    workload:
      kind: inference
      replicas: 4
      serving:
        model: {params_billion: 70, layers: 80, hidden: 8192, kv_heads_ratio: 0.125}
        tp: 8
        max_batch: 64
        requests: {rate_per_second: RATE, amplitude: 0.3, peak_hour: 20}
        slo: 10s
        client_rtt: 20ms
  - name: batch
    contract: {kind: spot}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 2}
      gpus: 8
      duration: {kind: exponential, mean: 2h}
"""


def served_run(rate: float = 60.0) -> dict:
    return simulate(scenario_from_text(SERVED_RUN.replace("RATE", str(rate)), "s.yaml")).summary


def test_the_mean_diurnal_factor_is_the_integral_of_the_cosine():
    hours = np.linspace(3.0, 9.5, 200_001)
    exact = np.mean(1 + 0.4 * np.cos(2 * np.pi * (hours - 20.0) / 24.0))
    assert mean_diurnal_factor(3.0, 9.5, 0.4, 20.0) == pytest.approx(exact, rel=1e-6)
    assert mean_diurnal_factor(0.0, 24.0, 0.9, 7.0) == pytest.approx(1.0, abs=1e-12)


def test_a_steady_step_matches_the_m_m_c_latency_quantiles():
    serving = Serving.model_validate({**SERVING, "client_rtt": "30ms"})
    h100 = accelerator("H100")
    log = ServingLog(serving, h100, 8, NVLINK_GBPS, np.random.default_rng(1))
    for hour in range(40):
        log.record(hour, hour + 1, [None] * 4, 32.0)
    network = serving_network(serving.spec(), NVLINK_GBPS, 0.0)
    point = service_point(serving.spec(), 4, 60.0, h100.tflops_bf16_dense, h100.hbm_tbps, network)
    assert 0.3 < point.utilisation < 0.9
    for q in (0.5, 0.99):
        analytic_ms = (latency_quantile_s(point.servers, 60.0, point.service_s, q) + 0.03) * 1e3
        assert log.histogram.quantile(q) == pytest.approx(analytic_ms, rel=0.02)
    # Every request takes at least its prefill (and the client's round trip).
    assert point.prefill_s > 0
    assert log.histogram.min_ms >= (point.prefill_s + 0.03) * 1e3 * (1 - 1e-9)
    assert log.requests == pytest.approx(60.0 * 40 * 3600)
    assert log.usable_gpu_hours == pytest.approx(
        log.gpu_hours * log.within_slo / log.requests, rel=1e-9
    )


def test_a_step_with_no_replica_answers_nobody():
    serving = Serving.model_validate(SERVING)
    log = ServingLog(serving, accelerator("H100"), 8, NVLINK_GBPS, np.random.default_rng(2))
    log.record(0.0, 1.0, [], 0.0)
    assert log.unanswered == log.requests == pytest.approx(60 * 3600)
    assert serving_figures([log])["inference_slo_attainment"] == 0.0
    assert serving_figures([log])["inference_latency_ms_p99"] is None


def test_a_served_model_reports_latency_slo_and_usable_gpu_hours():
    s = served_run()
    chat = s["tenants"]["chat"]
    assert s["inference_latency_ms_p99"] == chat["inference_latency_ms_p99"]
    assert chat["inference_latency_ms_p50"] <= chat["inference_latency_ms_p99"]
    assert chat["inference_latency_ms_p99"] <= chat["inference_latency_ms_p999"]
    # Four replicas of one node each run the whole 12 hours: 384 GPU-hours, and usable
    # GPU-hours are those times the requests answered within the SLO.
    assert chat["allocated_gpu_hours"] == pytest.approx(4 * 8 * 12)
    assert chat["usable_gpu_hours"] == pytest.approx(
        chat["allocated_gpu_hours"] * chat["inference_slo_attainment"], rel=0.02
    )
    assert 0.9 < chat["inference_slo_attainment"] <= 1.0
    # The latency includes the client's 20 ms round trip and a whole prefill.
    assert chat["inference_latency_ms_p50"] > 20.0
    assert s["tenants"]["batch"]["inference_latency_ms_p99"] is None
    # Replicas are not iterating jobs: they leave the slowdown figures alone.
    assert s["iteration_slowdown_p99"] == 1.0


def test_the_run_directory_holds_each_tenants_latency_histogram(tmp_path):
    from sim.results import write_run

    scenario = scenario_from_text(SERVED_RUN.replace("RATE", "60"), "s.yaml")
    result = simulate(scenario)
    write_run(result, tmp_path)
    table = pd.read_parquet(tmp_path / "inference_latency.parquet")
    assert set(table["tenant"]) == {"chat"}
    chat = result.summary["tenants"]["chat"]
    assert table["requests"].sum() == pytest.approx(chat["inference_requests"], rel=1e-9)
    cdf = table["requests"].cumsum() / table["requests"].sum()
    p99_bin = table.iloc[int(np.searchsorted(cdf.to_numpy(), 0.99))]
    assert p99_bin["latency_ms_low"] <= chat["inference_latency_ms_p99"] * (1 + 1e-9)
    assert chat["inference_latency_ms_p99"] <= p99_bin["latency_ms_high"] * (1 + 1e-9)


def test_more_requests_on_the_same_replicas_wait_longer_and_miss_the_slo_more():
    light, heavy = served_run(40.0)["tenants"]["chat"], served_run(105.0)["tenants"]["chat"]
    assert heavy["inference_latency_ms_p99"] > light["inference_latency_ms_p99"]
    assert heavy["inference_slo_attainment"] < light["inference_slo_attainment"]
    assert heavy["usable_gpu_hours"] < light["usable_gpu_hours"]


def test_serving_layout_mistakes_are_named():
    bad = SERVED_RUN.replace("RATE", "60").replace("tp: 8", "tp: 12")
    with pytest.raises(ScenarioError, match=r"tenants\[0\]\.workload\.serving\.tp"):
        scenario_from_text(bad, "s.yaml")
    bad = SERVED_RUN.replace("RATE", "60").replace("replicas: 4", "replicas: 9")
    with pytest.raises(ScenarioError, match=r"tenants\[0\]\.workload\.replicas: 9 replicas"):
        scenario_from_text(bad, "s.yaml")


# A small Meta-style zone: 2 pods of 4 racks of 2 nodes of 8 GPUs.
ZONE = {"kind": "meta_ai_zone", "racks_per_pod": 4, "pods": 2, "ctsw_per_pod": 4,
        "atsw_per_plane": 2}  # fmt: skip


def test_a_replica_across_nodes_waits_in_the_pauses_of_a_pfc_neighbour():
    config = NetworkFabricConfig.model_validate(
        {
            "kind": "network",
            "topology": {**ZONE, "ctsw_per_pod": 16},  # one 400G uplink per CTSW, as at Meta
            "transport": {"kind": "roce", "pfc": True, "cc": "none"},
        }
    )
    fabric = NetworkFabric(config, gpus_per_node=8, accelerator="H100")
    served = Serving.model_validate({**SERVING, "tp": 16}).spec()
    replica = RunningPlacement(0, "chat", "on_demand", np.array([0, 2]), np.array([8, 8]), served)
    alone = fabric.solve([replica]).jobs[0].serving
    # A data-parallel neighbour in the replica's racks, whose rings fill an uplink the
    # replica's ring also takes: together they ask it for more than it carries.
    dense = TrainingSpec(
        model=ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192), tp=8
    )
    nodes = np.array([1, 3, 4, 5])
    neighbour = RunningPlacement(1, "swarm", "spot", nodes, np.full(4, 8), dense)
    shared = fabric.solve([replica, neighbour]).jobs[0]
    assert shared.slowdown == 1.0  # a replica does not iterate
    assert shared.pfc_pause_fraction > 0  # 0.04
    assert shared.serving.step_fixed_s > alone.step_fixed_s
    assert alone.step_fixed_s == pytest.approx(
        2 * 80 * 2 * 15 * fabric._jobs[0].plan.collectives[0].latency_s, rel=1e-9
    )
    assert math.isfinite(shared.serving.prefill_s)
