"""Meta's published RoCE figures on Meta's 24K layout (scenarios/meta-24k-roce.yaml).

Meta (RDMA over Ethernet for distributed AI training at Meta scale, SIGCOMM 2024):
"compared to baseline ECMP without QP scaling, we observed that E-ECMP along with QP
scaling showed performance improvement of up to 40% for the AllReduce collective". The
baseline is the collective library's defaults: NCCL's channels (4 through a NIC for a ring
with one H100 per node) and one queue pair per connection (``NCCL_IB_QPS_PER_CONNECTION``).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from sim.fabric.model import RunningPlacement
from sim.fabric.network import NetworkFabric
from sim.scenario.fabric import NetworkFabricConfig
from sim.workloads.training import CollectiveLibrary, ModelShape, TrainingSpec
from tests.conftest import SCENARIOS

GPN = 8
NODES_PER_POD = 384  # 192 racks of 2 nodes
SEEDS = range(24)
"""ECMP hash seeds averaged over: one draw's gain from 4 queue pairs ranges from +20 % to
+125 % (from 2: -25 % to +80 %), and Meta's figure is over its jobs, not one draw."""


def meta_cluster() -> dict:
    """The cluster fabric of scenarios/meta-24k-roce.yaml."""
    data = yaml.safe_load((SCENARIOS / "meta-24k-roce.yaml").read_text(encoding="utf-8"))
    return data["provider"]["sites"][0]["clusters"][0]["fabric"]


def two_pod_job() -> RunningPlacement:
    """A 512-GPU data-parallel job (tp = 8, one GPU of every DP group per node) astride pods 0/1.

    32 nodes (16 racks) at the end of pod 0 and 32 at the start of pod 1: every data-parallel
    ring crosses racks inside both pods and the aggregation layer twice.
    """
    nodes = np.arange(NODES_PER_POD - 32, NODES_PER_POD + 32)
    spec = TrainingSpec(
        model=ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192),
        tp=8,
        microbatches=8,
    )
    return RunningPlacement(0, "t", "on_demand", nodes, np.full(nodes.size, GPN), spec)


def all_reduce_busbw_gbps(transport: dict, seed: int) -> float:
    """The job's data-parallel all-reduce bus bandwidth alone on the 24K fabric (Gb/s)."""
    fabric = meta_cluster()
    config = NetworkFabricConfig.model_validate(
        {**fabric, "transport": {**fabric["transport"], **transport, "hash_seed": seed}}
    )
    network = NetworkFabric(config, gpus_per_node=GPN, accelerator="H100")
    job = two_pod_job()
    state = network.solve([job]).jobs[job.job_id]
    return next(gbps for name, _, gbps in state.collective_gbps if name == "dp")


def mean_busbw_gbps(transport: dict) -> float:
    return float(np.mean([all_reduce_busbw_gbps(transport, seed) for seed in SEEDS]))


def test_the_default_collective_library_is_meta_baseline():
    fabric = meta_cluster()
    config = NetworkFabricConfig.model_validate(
        {**fabric, "transport": {**fabric["transport"], "qps_per_connection": 1}}
    )
    network = NetworkFabric(config, gpus_per_node=GPN, accelerator="H100")
    # NCCL's defaults: 4 channels through the NIC, NCCL_IB_QPS_PER_CONNECTION = 1.
    assert network.library == CollectiveLibrary(channels_per_nic=4, qps_per_connection=1)
    assert meta_cluster()["transport"]["qps_per_connection"] == 4  # the scenario scales QPs


@pytest.mark.parametrize("scaled_qps", [2, 4])
def test_qp_scaling_gains_what_meta_reported(scaled_qps):
    """E-ECMP + QP scaling against NCCL's defaults: up to +40 % at Meta; 20-60 % here.

    Surplus hashes every queue pair (its UDP source port comes from its number), which
    is what E-ECMP adds to plain ECMP, so QP scaling is the knob. Meta does not publish its
    queue-pair count; the scenario uses 4. Measured (24 seeds, this job): the baseline
    runs its all-reduce at 231 Gb/s of the NIC's 400, 2 queue pairs per connection at
    302 (+31 %), 4 at 368 (+59 %). Bigger 2-pod jobs collide more: at 1,024 GPUs, +41 % and
    +78 %.
    """
    pfc_only = {"pfc": True, "cc": "none"}  # Meta's 400G setting: no DCQCN
    baseline = mean_busbw_gbps({**pfc_only, "qps_per_connection": 1})
    scaled = mean_busbw_gbps({**pfc_only, "qps_per_connection": scaled_qps})
    gain = scaled / baseline - 1.0
    assert 0.2 <= gain <= 0.6, f"QP scaling x{scaled_qps}: {gain:+.0%}"
    assert scaled <= 400.0 * (1 + 1e-9)  # never past the NIC


def test_dcqcn_gives_a_lone_job_the_same_pace_as_pfc():
    """A job alone asks no link for more than it carries: its pace is its own collisions'."""
    for seed in SEEDS[:4]:
        for qps in (1, 4):
            pfc = all_reduce_busbw_gbps(
                {"pfc": True, "cc": "none", "qps_per_connection": qps}, seed
            )
            dcqcn = all_reduce_busbw_gbps(
                {"pfc": True, "cc": "dcqcn", "qps_per_connection": qps}, seed
            )
            assert dcqcn == pytest.approx(pfc, rel=1e-9)
