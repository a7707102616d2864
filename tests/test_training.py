"""Training-job collectives: flows, hand-checked collective times, compute, layout, scale."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.workloads.training import (
    NCCL_CHANNELS_PER_NIC,
    CollectiveLibrary,
    ModelShape,
    TrainingSpec,
    training_plan,
)

NIC = 400.0
NVLINK = 3600.0
H100_TFLOPS = 989.0

LLAMA_8B = ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192)
GRAD_4GB = ModelShape(params_billion=2.0, layers=2, hidden=1024, seq_len=1024)  # S = 2 B x 2e9
MOE = ModelShape(
    params_billion=47, layers=32, hidden=4096, seq_len=4096, active_params_billion=13, experts=8
)


def one_gpu_per_node(nodes: int) -> np.ndarray:
    """GPU 0 of each of ``nodes`` 8-GPU nodes."""
    return np.arange(nodes) * 8


def flow_set(plan) -> set[tuple[int, int]]:
    return set(zip(plan.src.tolist(), plan.dst.tolist(), strict=True))


def only(plan, name: str):
    (collective,) = [c for c in plan.collectives if c.name == name]
    return collective


# --------------------------------------------------------------------------- 1. nccl-tests


def test_ring_all_reduce_bus_bandwidth_matches_nic_like_nccl_tests():
    n, size_bytes, alpha_s = 16, 4e9, 2e-6
    plan = training_plan(
        TrainingSpec(model=GRAD_4GB), one_gpu_per_node(n), 8, H100_TFLOPS, NIC, hop_latency_us=2.0
    )
    ideal = plan.ideal_rates_gbps()
    assert plan.n_flows == n
    np.testing.assert_allclose(ideal, NIC)
    t_dp = plan.comm_s(ideal)["dp"]
    assert t_dp == pytest.approx(
        2 * (n - 1) / n * size_bytes * 8 / (NIC * 1e9) + 2 * (n - 1) * alpha_s
    )
    algbw_gbps = size_bytes * 8 / t_dp / 1e9
    busbw_gbps = algbw_gbps * 2 * (n - 1) / n  # nccl-tests: busbw = algbw · 2(n−1)/n
    assert busbw_gbps == pytest.approx(NIC, rel=0.05)
    assert busbw_gbps < NIC


def test_fsdp_reduce_scatter_and_all_gather_bus_bandwidth():
    n, size_bytes = 16, 4e9
    spec = TrainingSpec(model=GRAD_4GB, data_parallel="fsdp")
    plan = training_plan(spec, one_gpu_per_node(n), 8, H100_TFLOPS, NIC, hop_latency_us=2.0)
    ideal = plan.ideal_rates_gbps()
    kinds = {c.kind: c for c in plan.collectives}
    assert set(kinds) == {"reduce_scatter", "all_gather"}
    assert kinds["reduce_scatter"].calls_per_iteration == 1
    assert kinds["all_gather"].calls_per_iteration == 2
    for collective in kinds.values():
        t = collective.call_s(ideal)
        assert t == pytest.approx((n - 1) / n * size_bytes * 8 / (NIC * 1e9) + (n - 1) * 2e-6)
        busbw_gbps = size_bytes * 8 / t / 1e9 * (n - 1) / n  # nccl-tests: busbw = algbw · (n−1)/n
        assert busbw_gbps == pytest.approx(NIC, rel=0.05)
    assert plan.comm_s(ideal)["dp"] == pytest.approx(3 * kinds["all_gather"].call_s(ideal))


# --------------------------------------------------------------------------- 2. tree


def test_tree_all_reduce_bandwidth_term_and_ratio_to_ring():
    n, size_bytes = 16, 4e9
    gpus = one_gpu_per_node(n)
    tree = training_plan(TrainingSpec(model=GRAD_4GB, all_reduce="tree"), gpus, 8, H100_TFLOPS, NIC)
    ring = training_plan(TrainingSpec(model=GRAD_4GB), gpus, 8, H100_TFLOPS, NIC)
    assert tree.n_flows == 2 * (n - 1)  # every parent-child edge, both directions
    assert (0, 8) in flow_set(tree) and (8, 0) in flow_set(tree)  # rank 1's parent is rank 0
    assert (8 * 8, 8 * 3) in flow_set(tree)  # rank 8's parent is rank (8 - 1) // 2 = 3
    t_tree = tree.comm_s(np.full(tree.n_flows, NIC))["dp"]
    t_ring = ring.comm_s(np.full(ring.n_flows, NIC))["dp"]
    assert t_tree == pytest.approx(2 * size_bytes * 8 / (NIC * 1e9))  # 0.16 s
    assert t_ring == pytest.approx(0.15)
    assert t_tree / t_ring == pytest.approx(n / (n - 1))
    # Latency: 2 ceil(log2 16) = 8 steps for the tree, 2 (16 - 1) = 30 for the ring.
    lat = training_plan(
        TrainingSpec(model=GRAD_4GB, all_reduce="tree"),
        gpus,
        8,
        H100_TFLOPS,
        NIC,
        hop_latency_us=5.0,
    )
    assert lat.comm_s(np.full(lat.n_flows, NIC))["dp"] == pytest.approx(0.16 + 8 * 5e-6)
    # Alone on the fabric, an inner tree rank sends to its parent and two children: NIC / 3.
    assert tree.ideal_rates_gbps().min() == pytest.approx(NIC / 3)


# --------------------------------------------------------------------------- 3. one node


def test_job_inside_one_node_has_no_flows_and_uses_nvlink():
    model = ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=4096)
    spec = TrainingSpec(model=model, tp=4, pp=2, microbatches=8)
    plan = training_plan(spec, np.arange(16, 24), 8, H100_TFLOPS, NIC, hop_latency_us=3.0)
    assert plan.n_flows == 0
    assert plan.src.dtype == np.int64 and plan.src.shape == (0,)
    assert plan.ideal_rates_gbps().shape == (0,)
    activation_bytes = 1 * 4096 * 4096 * 2
    comm = plan.comm_s(np.zeros(0))
    tp_calls = 4 * (32 / 2) * 8
    assert comm["tp"] == pytest.approx(
        tp_calls * 2 * 3 / 4 * activation_bytes * 8 / (NVLINK * 1e9)
    )  # no latency: every step stays in the node
    assert comm["pp"] == pytest.approx(2 * 8 * activation_bytes * 8 / (NVLINK * 1e9))
    assert comm["dp"] == 0.0 and comm["ep"] == 0.0
    assert plan.iteration_s(np.zeros(0)) == pytest.approx(plan.compute_s + comm["tp"] + comm["pp"])


# --------------------------------------------------------------------------- 4. compute


def test_compute_time_llama3_8b_on_h100_with_pipeline_bubble():
    spec = TrainingSpec(model=LLAMA_8B, tp=8, pp=2, microbatches=8, mfu=0.4)
    plan = training_plan(spec, np.arange(64), 8, H100_TFLOPS, NIC)
    # dp = 64 / 16 = 4; tokens = 4 x 8 x 8192 = 262,144; 6 x 8e9 x 262,144 = 1.2582912e16 FLOPs
    # over 64 GPUs x 989e12 x 0.4 = 0.49698685 s, times the bubble 1 + 1/8.
    tokens = 4 * 8 * 8192
    expected = 6 * 8e9 * tokens / (64 * 989e12 * 0.4) * (1 + 1 / 8)
    assert expected == pytest.approx(0.5591102123356926)
    assert plan.compute_s == pytest.approx(expected, rel=1e-12)


def test_compute_time_uses_active_params_for_mixture_of_experts():
    spec = TrainingSpec(model=MOE, ep=4, microbatches=16, mfu=0.5)
    plan = training_plan(spec, np.arange(16), 8, H100_TFLOPS, NIC)
    # 6 x 13e9 x 16 x 4096 / (989e12 x 0.5) per GPU (tp = pp = 1, no bubble).
    assert plan.compute_s == pytest.approx(6 * 13e9 * 16 * 4096 / (989e12 * 0.5), rel=1e-12)


# --------------------------------------------------------------------------- 5. rates


def test_halving_dp_rates_doubles_dp_bandwidth_term_and_ideal_slowdown_is_one():
    spec = TrainingSpec(model=LLAMA_8B, tp=8, pp=2)
    plan = training_plan(spec, np.arange(64), 8, H100_TFLOPS, NIC, hop_latency_us=2.0)
    ideal = plan.ideal_rates_gbps()
    dp = only(plan, "dp")
    latency_s = 2 * (4 - 1) * 2e-6  # ring of dp = 4, every hop across nodes
    halved = ideal.copy()
    halved[dp.flow_index] /= 2
    before, after = plan.comm_s(ideal), plan.comm_s(halved)
    assert after["dp"] - latency_s == pytest.approx(2 * (before["dp"] - latency_s))
    assert after["pp"] == before["pp"] and after["tp"] == before["tp"]
    assert plan.iteration_s(ideal) / plan.iteration_s(plan.ideal_rates_gbps()) == 1.0
    assert plan.slowdown(ideal) == 1.0
    assert plan.slowdown(halved) > 1.0


# --------------------------------------------------------------------------- 6. overlap


def test_overlap_hides_communication_but_never_below_comm_minus_compute():
    spec = TrainingSpec(model=LLAMA_8B, tp=8, overlap=1.0)
    gpus = np.arange(32)
    plan = training_plan(spec, gpus, 8, H100_TFLOPS, NIC)
    ideal = plan.ideal_rates_gbps()
    comm = sum(plan.comm_s(ideal).values())
    assert 0 < comm < plan.compute_s
    assert plan.iteration_s(ideal) == plan.compute_s

    serial = training_plan(dataclasses.replace(spec, overlap=0.0), gpus, 8, H100_TFLOPS, NIC)
    assert serial.iteration_s(ideal) == pytest.approx(serial.compute_s + comm)

    half = training_plan(dataclasses.replace(spec, overlap=0.5), gpus, 8, H100_TFLOPS, NIC)
    assert half.iteration_s(ideal) == pytest.approx(half.compute_s + 0.5 * comm)

    slow = ideal * 1e-3  # communication now far exceeds compute
    slow_comm = sum(plan.comm_s(slow).values())
    assert slow_comm > plan.compute_s
    assert plan.iteration_s(slow) == pytest.approx(slow_comm)  # compute + (comm - compute)
    assert half.iteration_s(slow) == pytest.approx(slow_comm)


# --------------------------------------------------------------------------- 7. layout


def test_tp_inside_node_and_every_dp_hop_crosses_nodes():
    spec = TrainingSpec(model=LLAMA_8B, tp=8)
    plan = training_plan(spec, np.arange(32), 8, H100_TFLOPS, NIC)
    tp, dp = only(plan, "tp"), only(plan, "dp")
    assert tp.flow_index.size == 0 and tp.intra_gbps == NVLINK
    assert dp.groups == 8 and dp.ranks == 4
    assert dp.intra_gbps == np.inf  # no DP hop stays in a node
    assert plan.n_flows == 32 == dp.flow_index.size  # 8 rings x 4 hops
    expected = {(t + 8 * d, t + 8 * ((d + 1) % 4)) for t in range(8) for d in range(4)}
    assert flow_set(plan) == expected
    keys = plan.src * 10**6 + plan.dst
    assert np.all(np.diff(keys) > 0)  # sorted by (src, dst), no duplicates


def test_megatron_rank_order_one_gpu_per_node():
    # rank = t + tp (d + dp p) with tp = 2, dp = 4, pp = 2; GPU id = rank, one GPU per node.
    spec = TrainingSpec(model=LLAMA_8B, tp=2, pp=2)
    plan = training_plan(spec, np.arange(16), 1, H100_TFLOPS, NIC)
    tp = {(2 * j + a, 2 * j + 1 - a) for j in range(8) for a in (0, 1)}
    pp = {
        (t + 2 * d + 8 * a, t + 2 * d + 8 * (1 - a))
        for t in (0, 1)
        for d in range(4)
        for a in (0, 1)
    }
    dp = {
        (t + 2 * d + 8 * p, t + 2 * ((d + 1) % 4) + 8 * p)
        for t in (0, 1)
        for d in range(4)
        for p in (0, 1)
    }
    assert flow_set(plan) == tp | pp | dp
    assert plan.n_flows == 48
    for name, pairs in (("tp", tp), ("pp", pp), ("dp", dp)):
        collective = only(plan, name)
        got = set(
            zip(plan.src[collective.flow_index], plan.dst[collective.flow_index], strict=True)
        )
        assert got == pairs


def test_rings_snake_through_nodes_so_hops_between_nodes_keep_their_slot():
    """tp=4 on 8-GPU nodes: each data-parallel ring holds slots t and t+4 of every node.
    NCCL's ring order runs one node's GPUs forward and the next node's backward."""
    spec = TrainingSpec(model=LLAMA_8B, tp=4)
    even = training_plan(spec, np.arange(32), 8, H100_TFLOPS, NIC)  # 4 nodes, dp = 8
    dp = only(even, "dp")
    assert dp.groups == 4 and dp.ranks == 8
    # Ring t: 0+t -> 4+t -> 12+t -> 8+t -> 16+t -> 20+t -> 28+t -> 24+t -> back to 0+t.
    order = [0, 4, 12, 8, 16, 20, 28, 24]
    crossing = {
        (t + a, t + b)
        for t in range(4)
        for a, b in zip(order, order[1:] + order[:1], strict=True)
        if a // 8 != b // 8
    }
    assert flow_set(even) == crossing
    assert np.array_equal(even.src % 8, even.dst % 8)  # every hop between nodes keeps its slot
    # Over an odd number of nodes only the wrap-around changes slot.
    odd = training_plan(spec, np.arange(24), 8, H100_TFLOPS, NIC)
    changed = odd.src % 8 != odd.dst % 8
    assert changed.sum() == 4  # one hop per ring
    assert np.all(odd.src[changed] // 8 == 2) and np.all(odd.dst[changed] // 8 == 0)


# --------------------------------------------------------------------------- 8. pp and ep


def test_pipeline_flows_run_both_directions_at_the_slowest_boundary():
    spec = TrainingSpec(model=LLAMA_8B, tp=8, pp=2, microbatches=4)
    plan = training_plan(spec, np.arange(16), 8, H100_TFLOPS, NIC)
    assert flow_set(plan) == {(t, 8 + t) for t in range(8)} | {(8 + t, t) for t in range(8)}
    rates = np.full(plan.n_flows, NIC)
    rates[5] = 100.0
    activation_bytes = 8192 * 4096 * 2
    assert plan.comm_s(rates)["pp"] == pytest.approx(2 * 4 * activation_bytes * 8 / 100e9)


ONE_CHANNEL = CollectiveLibrary(channels_per_nic=1)
"""Every hop a single connection of one queue pair: a NIC shares itself per flow."""


def test_expert_all_to_all_flows_and_time_two_nodes_of_two():
    # 4 GPUs, nodes {0, 1} and {2, 3}: one EP group of 4; each GPU has 1 intra-node peer
    # and 2 inter-node peers -> 4 x 2 = 8 flows (the DP ring's inter-node hops are among them).
    spec = TrainingSpec(model=MOE, ep=4, microbatches=2)
    plan = training_plan(
        spec, np.arange(4), 2, H100_TFLOPS, NIC, hop_latency_us=1.0, library=ONE_CHANNEL
    )
    expected = {(s, d) for s in range(4) for d in range(4) if s // 2 != d // 2}
    assert flow_set(plan) == expected
    ep = only(plan, "ep")
    assert ep.kind == "all_to_all" and ep.intra_gbps == NVLINK / 1
    assert ep.calls_per_iteration == 4 * 32 * 2
    ideal = plan.ideal_rates_gbps()
    np.testing.assert_allclose(ideal, NIC / 2)  # two flows share each uplink and downlink
    activation_bytes = 4096 * 4096 * 2
    per_peer_bytes = activation_bytes * 2 / 4  # A top_k / ep
    assert ep.call_s(ideal) == pytest.approx(per_peer_bytes * 8 / (NIC / 2 * 1e9) + 1e-6)


def test_a_nic_serves_queue_pairs_in_turn_so_a_ring_hop_on_four_channels_gets_four_shares():
    # The same job with NCCL's 4 channels: the DP ring hops 1 -> 3 and 2 -> 0 (the snake
    # 0, 1, 3, 2) open 4 connections, each all-to-all pair 1. GPU 1 sends on 4 + 1 queue
    # pairs: the ring hop gets 4/5 of its NIC, the pair 1/5; GPU 0's pairs (0, 2) and (0, 3)
    # meet GPU 3's downlink, shared 1/5 to 4/5 with the ring hop 1 -> 3.
    spec = TrainingSpec(model=MOE, ep=4, microbatches=2)
    plan = training_plan(spec, np.arange(4), 2, H100_TFLOPS, NIC)
    assert plan.library.channels_per_nic == NCCL_CHANNELS_PER_NIC == 4
    ring = {(1, 3), (2, 0)}
    pairs = list(zip(plan.src.tolist(), plan.dst.tolist(), strict=True))
    assert plan.connections.tolist() == [4 if p in ring else 1 for p in pairs]
    assert np.array_equal(plan.queue_pairs, plan.connections)  # one queue pair per connection
    expected = {(0, 2): 320, (0, 3): 80, (1, 2): 80, (1, 3): 320}
    expected |= {(2, 0): 320, (2, 1): 80, (3, 0): 80, (3, 1): 320}  # and the mirror image
    ideal = dict(zip(pairs, plan.ideal_rates_gbps().tolist(), strict=True))
    assert ideal == pytest.approx(expected)
    # Twice the queue pairs per connection: the same shares, twice the queue pairs.
    doubled = training_plan(
        spec, np.arange(4), 2, H100_TFLOPS, NIC, library=CollectiveLibrary(qps_per_connection=2)
    )
    assert np.array_equal(doubled.queue_pairs, 2 * plan.connections)
    np.testing.assert_allclose(doubled.ideal_rates_gbps(), plan.ideal_rates_gbps())


def test_expert_all_to_all_three_remote_peers_share_the_nic():
    spec = TrainingSpec(model=MOE, ep=4)
    plan = training_plan(spec, one_gpu_per_node(4), 8, H100_TFLOPS, NIC, library=ONE_CHANNEL)
    assert plan.n_flows == 12  # 4 x 3 ordered pairs, DP ring hops included
    assert only(plan, "ep").intra_gbps == np.inf
    np.testing.assert_allclose(plan.ideal_rates_gbps(), NIC / 3)
    # With NCCL's 4 channels each GPU's NIC serves 4 + 1 + 1 queue pairs: its ring hop 4/6.
    channels = training_plan(spec, one_gpu_per_node(4), 8, H100_TFLOPS, NIC)
    ideal = channels.ideal_rates_gbps()
    np.testing.assert_allclose(ideal[channels.connections == 4], NIC * 4 / 6)
    np.testing.assert_allclose(ideal[channels.connections == 1], NIC / 6)


def test_expert_groups_are_blocks_of_consecutive_data_ranks():
    spec = TrainingSpec(model=MOE, ep=4)
    plan = training_plan(spec, one_gpu_per_node(8), 8, H100_TFLOPS, NIC)
    ep = only(plan, "ep")
    assert ep.groups == 2 and ep.flow_index.size == 2 * 12
    # The DP ring adds the two hops that leave a block: rank 3 -> 4 and 7 -> 0.
    assert plan.n_flows == 26
    assert {(24, 32), (56, 0)} <= flow_set(plan)
    assert (0, 32) not in flow_set(plan)


def test_dense_model_has_no_expert_traffic():
    plan = training_plan(
        TrainingSpec(model=LLAMA_8B, ep=4), one_gpu_per_node(4), 8, H100_TFLOPS, NIC
    )
    assert [c.name for c in plan.collectives] == ["dp"]
    assert plan.n_flows == 4


# --------------------------------------------------------------------------- 9. bad input


@pytest.mark.parametrize(
    ("kwargs", "gpus", "match"),
    [
        ({"tp": 8}, 12, "tp"),
        ({"tp": 2, "pp": 3}, 16, "pp"),
        ({"ep": 3}, 8, "ep"),
    ],
)
def test_layout_that_does_not_fit_raises(kwargs, gpus, match):
    with pytest.raises(ValueError, match=match):
        training_plan(TrainingSpec(model=MOE, **kwargs), np.arange(gpus), 8, H100_TFLOPS, NIC)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mfu": 0.0}, "mfu"),
        ({"mfu": 1.5}, "mfu"),
        ({"overlap": -0.1}, "overlap"),
        ({"tp": 0}, "tp"),
        ({"microbatches": 0}, "microbatches"),
        ({"all_reduce": "butterfly"}, "all_reduce"),
        ({"data_parallel": "zero3"}, "data_parallel"),
        ({"ep": 16}, "ep"),
    ],
)
def test_bad_spec_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingSpec(model=MOE, **kwargs)


def test_bad_model_gpus_and_rates_raise():
    with pytest.raises(ValueError, match="active_params_billion"):
        ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192, active_params_billion=9)
    with pytest.raises(ValueError, match="layers"):
        ModelShape(params_billion=8, layers=0, hidden=4096, seq_len=8192)
    spec = TrainingSpec(model=LLAMA_8B)
    with pytest.raises(ValueError, match="gpus"):
        training_plan(spec, np.array([0, 0]), 8, H100_TFLOPS, NIC)
    with pytest.raises(ValueError, match="gpus_per_node"):
        training_plan(spec, np.arange(8), 0, H100_TFLOPS, NIC)
    with pytest.raises(ValueError, match="nic_gbps"):
        training_plan(spec, np.arange(8), 8, H100_TFLOPS, 0.0)
    plan = training_plan(spec, one_gpu_per_node(4), 8, H100_TFLOPS, NIC)
    with pytest.raises(ValueError, match="flow_rates_gbps"):
        plan.iteration_s(np.ones(3))


# --------------------------------------------------------------------------- 10. scale


def test_16k_gpu_plan_builds_and_evaluates():
    model = ModelShape(params_billion=405, layers=126, hidden=16384, seq_len=8192)
    spec = TrainingSpec(model=model, tp=8, pp=16, microbatches=16)
    plan = training_plan(spec, np.arange(16_384), 8, H100_TFLOPS, NIC, hop_latency_us=2.0)
    # dp = 128: TP stays in each node; 128 DP rings x 128 hops all cross nodes (16,384);
    # PP: 2 directions x 8 x 128 chains x 15 boundaries (30,720).
    assert only(plan, "tp").flow_index.size == 0
    assert only(plan, "dp").flow_index.size == 16_384
    assert only(plan, "pp").flow_index.size == 30_720
    assert plan.n_flows == 16_384 + 30_720
    ideal = plan.ideal_rates_gbps()
    # A middle stage's NIC serves 1 DP flow on 4 channels and 2 PP flows on 1: a PP flow 1/6.
    assert ideal.min() == pytest.approx(NIC / 6)
    assert plan.slowdown(ideal) == 1.0
    assert plan.slowdown(ideal / 2) > 1.0


# --------------------------------------------------------------------------- 11. the library


def test_rings_and_trees_open_the_library_channels_point_to_point_one_connection():
    spec = TrainingSpec(model=LLAMA_8B, tp=8, pp=2, microbatches=4)
    gpus = np.arange(32)  # 4 nodes: pipeline stages {0, 1} and {2, 3}, dp = 2
    plan = training_plan(spec, gpus, 8, H100_TFLOPS, NIC, library=CollectiveLibrary(3, 2))
    dp, pp = only(plan, "dp"), only(plan, "pp")
    assert set(plan.connections[dp.flow_index].tolist()) == {3}
    assert set(plan.connections[pp.flow_index].tolist()) == {1}
    assert np.array_equal(plan.queue_pairs, 2 * plan.connections)
    with pytest.raises(ValueError, match="read-only"):
        plan.queue_pairs[0] = 1
    # A lone ring's bus bandwidth is its slowest flow's rate, whatever its channels.
    rates = plan.ideal_rates_gbps()
    rates[dp.flow_index[0]] = 100.0
    gbps = {name: value for name, _, value in plan.collective_gbps(rates)}
    assert gbps["dp"] == 100.0 and gbps["tp"] == NVLINK


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels_per_nic": 0}, "channels_per_nic must be a positive integer, got 0"),
        ({"channels_per_nic": 65}, "channels_per_nic must be at most 64, got 65"),
        ({"qps_per_connection": 129}, "qps_per_connection must be at most 128, got 129"),
        ({"qps_per_connection": 1.5}, "qps_per_connection must be a positive integer, got 1.5"),
    ],
)
def test_bad_library_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CollectiveLibrary(**kwargs)


def test_the_scenario_bounds_channels_as_the_library_does():
    from sim.scenario.fabric import CollectiveSettings
    from sim.workloads.training import MAX_CHANNELS

    field = CollectiveSettings.model_fields["channels_per_nic"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert field.default == NCCL_CHANNELS_PER_NIC
    assert bounds["Ge"].ge == 1 and bounds["Le"].le == MAX_CHANNELS
