"""The flow simulator: incasts, PFC victims, hand-solved fluid cases, permutations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.fabric.dcqcn import DcqcnParams, fixed_point
from sim.fabric.dcqcn_dynamics import limit_cycle
from sim.fabric.flows import FLOW_COLUMNS, NVLINK_GBPS, simulate_flows, wire_bytes
from sim.scenario.fabric import FabricConfig
from tests.helpers import fabric

MB2 = 2_000_000


def flows(src, dst, size_bytes=MB2, start_us=0.0) -> pd.DataFrame:
    src = np.atleast_1d(src)
    return pd.DataFrame(
        {
            "src": src,
            "dst": np.broadcast_to(dst, src.shape),
            "start_us": np.broadcast_to(start_us, src.shape).astype(float),
            "size_bytes": np.broadcast_to(size_bytes, src.shape),
        }
    )


INCAST = flows(np.arange(1, 16), 0)


def transfer_us(config: FabricConfig, size_bytes: int = MB2, gbps: float = 100.0) -> float:
    """A flow's bytes on the wire (payload and every packet's headers) at ``gbps``."""
    wire, _ = wire_bytes(
        np.array([size_bytes]),
        config.topology.mtu_bytes,
        config.transport.header_bytes,
        config.transport.whole_packets,
    )
    return float(wire[0]) * 8 / (gbps * 1e3)


@pytest.mark.parametrize(
    "transport",
    [
        {"kind": "ideal"},
        {"kind": "roce"},
        {"kind": "roce", "pfc": False},
        {"kind": "roce", "cc": "none"},
        {"kind": "infiniband"},
    ],
    ids=["ideal", "roce-dcqcn-pfc", "roce-dcqcn-lossy", "roce-pfc-only", "infiniband"],
)
def test_fifteen_to_one_incast_finishes_close_to_ideal(transport):
    config = fabric(**transport)
    result = simulate_flows(config, INCAST)
    assert list(result.flows.columns) == list(FLOW_COLUMNS)
    # 30 MB and their packets' headers through one 100 Gb/s port: 2,400 us without headers.
    alone_us = transfer_us(config)
    assert alone_us == pytest.approx(160.0, rel=0.025)
    assert result.summary["max_fct_us"] == pytest.approx(15 * alone_us, rel=0.01)
    assert (result.flows["slowdown"] >= 1).all()
    # How many times as long as alone each transfer takes (the path and the ACK's return
    # come on top of both).
    latency_us = result.flows["ideal_fct_us"] - alone_us
    transfer = ((result.flows["fct_us"] - latency_us) / alone_us).set_axis(result.flows["src"])
    if transport in ({"kind": "roce", "cc": "none"}, {"kind": "infiniband"}):
        # Lossless switches serve input ports in turn: host 1, alone on host 0's
        # edge switch, gets a third of the port (beside the two uplinks).
        assert transfer[1] == pytest.approx(3, rel=0.03)
    else:
        # Fair shares per flow: every flow finishes together, 15 times slower than alone.
        assert transfer.median() == pytest.approx(15, rel=0.03)


def test_incast_records_pauses_with_pfc_and_marks_with_dcqcn():
    with_pfc = simulate_flows(fabric(kind="roce"), INCAST).summary
    lossy = simulate_flows(fabric(kind="roce", pfc=False), INCAST).summary
    pfc_only = simulate_flows(fabric(kind="roce", cc="none"), INCAST).summary
    assert with_pfc["pfc_pause_fraction"] > 0
    assert lossy["pfc_pause_fraction"] is None
    assert with_pfc["ecn_mark_fraction"] > 0
    assert pfc_only["ecn_mark_fraction"] is None
    # Without rate control the senders and the links behind them stay paused:
    # 15 NICs sending at about a fifteenth of their rate, beside unpaused last hops.
    assert pfc_only["pfc_pause_fraction"] > 0.25 > with_pfc["pfc_pause_fraction"]


def test_lossy_without_rate_control_drops_what_the_port_cannot_carry():
    summary = simulate_flows(fabric(kind="roce", cc="none", pfc=False), INCAST).summary
    # 15 senders at line rate, one port: 14 of every 15 bits sent are dropped.
    assert summary["drop_fraction"] == pytest.approx(14 / 15, rel=0.05)


# 8 senders in pods 2 and 3 into host 0; the victim goes from pod 1 to host 1, sharing
# the links into host 0's edge switch but not host 0's port.
VICTIM_MIX = pd.concat([flows(np.arange(8, 16), 0), flows(4, 1)], ignore_index=True)


@pytest.mark.parametrize("hash_seed", [0, 1, 2])
def test_pfc_pauses_slow_a_victim_that_never_crosses_the_congested_port(hash_seed):
    on = simulate_flows(fabric(kind="roce", hash_seed=hash_seed), VICTIM_MIX).flows
    off = simulate_flows(fabric(kind="roce", hash_seed=hash_seed, pfc=False), VICTIM_MIX).flows
    victim_on, victim_off = on.iloc[-1], off.iloc[-1]
    assert victim_on["fct_us"] > victim_off["fct_us"] + 100  # stalled by the pause
    # The incast itself finishes at the same time either way.
    assert on["fct_us"][:-1].max() == pytest.approx(off["fct_us"][:-1].max())


def test_victim_alone_on_an_uncongested_fabric_is_not_slowed_without_pfc():
    # Leaf-spine with 4x faster uplinks: the victim's shared spine link has room
    # for it at line rate, so only PFC's pauses can slow it.
    topo = {
        "kind": "leaf_spine",
        "hosts_per_leaf": 4,
        "leaves": 3,
        "spines": 1,
        "oversubscription": 0.25,
        "link_gbps": 100,
    }
    mix = pd.concat([flows(np.arange(4, 12), 0), flows(4, 1)], ignore_index=True)
    mix = mix.drop(index=0).reset_index(drop=True)  # host 4 sends only the victim flow
    off = simulate_flows(fabric(topo, kind="roce", pfc=False), mix).flows.iloc[-1]
    on = simulate_flows(fabric(topo, kind="roce"), mix).flows.iloc[-1]
    assert off["slowdown"] == pytest.approx(1.0)
    assert on["slowdown"] > 1.5


def test_pfc_without_rate_control_spreads_congestion_to_victims():
    lossless = simulate_flows(fabric(kind="roce", cc="none"), VICTIM_MIX).flows.iloc[-1]
    dcqcn = simulate_flows(fabric(kind="roce", pfc=False), VICTIM_MIX).flows.iloc[-1]
    assert lossless["fct_us"] > 2 * dcqcn["fct_us"]


def test_staggered_start_solved_by_hand():
    # Two 1 MB flows into one host at 100 Gb/s, the second 40 us later:
    # A alone sends 0.5 MB by 40 us, both share 50/50 until A ends at 120 us,
    # then B sends its last 0.5 MB alone and ends at 160 us.
    mix = pd.DataFrame(
        {"src": [1, 2], "dst": [0, 0], "start_us": [0.0, 40.0], "size_bytes": [1_000_000] * 2}
    )
    result = simulate_flows(fabric(kind="ideal"), mix).flows
    base = result["fct_us"] - (result["ideal_fct_us"] - 80.0)  # strip path latency
    assert base.tolist() == pytest.approx([120.0, 120.0])


def test_permutation_on_a_non_blocking_fabric_runs_at_line_rate_when_sprayed():
    rng = np.random.default_rng(3)
    n = 128
    dst = rng.permutation(n)
    moving = dst != np.arange(n)
    mix = flows(np.arange(n)[moving], dst[moving])
    ideal = simulate_flows(
        fabric({"kind": "fat_tree", "k": 8, "link_gbps": 100}, kind="ideal"), mix
    )
    assert ideal.flows["slowdown"].to_numpy() == pytest.approx(1.0)


def test_adaptive_routing_beats_ecmp_on_a_permutation():
    rng = np.random.default_rng(5)
    n = 128
    dst = rng.permutation(n)
    moving = dst != np.arange(n)
    mix = flows(np.arange(n)[moving], dst[moving])
    topo = {"kind": "fat_tree", "k": 8, "link_gbps": 100}
    ecmp = simulate_flows(fabric(topo, kind="roce", cc="dcqcn"), mix).summary
    ar = simulate_flows(fabric(topo, kind="infiniband"), mix).summary
    assert ecmp["fct_slowdown_p99"] >= 2.0  # collisions halve some flows
    assert ar["fct_slowdown_p50"] < ecmp["fct_slowdown_p50"]
    assert ar["max_fct_us"] < ecmp["max_fct_us"]


def test_gpus_of_one_server_talk_over_nvlink():
    topo = {
        "kind": "rail_optimized",
        "gpus_per_node": 8,
        "nodes_per_group": 2,
        "groups": 1,
        "spines": 2,
        "link_gbps": 400,
    }
    result = simulate_flows(fabric(topo, kind="roce"), flows(1, 0, size_bytes=4_500_000))
    row = result.flows.iloc[0]
    assert row["fct_us"] == pytest.approx(4_500_000 * 8 / (NVLINK_GBPS * 1e3))
    assert result.links["bytes"].sum() == 0


def test_link_bytes_add_up_and_runs_repeat():
    result = simulate_flows(fabric(kind="roce"), VICTIM_MIX)
    again = simulate_flows(fabric(kind="roce"), VICTIM_MIX)
    pd.testing.assert_frame_equal(result.flows, again.flows)
    # Every byte on the wire (payload and headers) crosses each link of its single path once.
    hops = {0: 2, 1: 4, 2: 6}
    wire, _ = wire_bytes(np.array([MB2]), 4096, fabric(kind="roce").transport.header_bytes)
    assert wire[0] == MB2 + 489 * 82  # 489 packets of 4,096 bytes, the last of 1,152
    assert result.links["bytes"].sum() == pytest.approx(
        wire[0] * sum(hops[2] for _ in range(len(VICTIM_MIX))), rel=1e-9
    )


# --------------------------------------------------------------------------- DCQCN dynamics


def zhu_incast(feedback_delay_us: float):
    """Zhu et al.'s setting through ``surplus fabric``: 10 long flows into one 40 Gb/s port."""
    config = FabricConfig.model_validate(
        {
            "topology": {"kind": "fat_tree", "k": 4, "link_gbps": 40},
            "transport": {"kind": "roce", "dcqcn": {"feedback_delay_us": feedback_delay_us}},
        }
    )
    return simulate_flows(config, flows(np.arange(1, 11), 0, size_bytes=20_000_000))


def test_an_unstable_dcqcn_port_costs_rate_queue_swings_and_marks_in_an_epoch():
    stable, unstable = zhu_incast(4.0), zhu_incast(85.0)

    def queue_kb(result):
        # Messages sent once the burst's 2 ms trace is over meet the receiver's port
        # as DCQCN holds it (the only port with a queue), 1 KB per 0.2 us at 40 Gb/s.
        messages = result.messages
        return messages.loc[messages["sent_us"] > 2_500.0, "queueing_us"] * 40 / 8

    # Stable (4 us): the exact fixed point, every message alike.
    held = queue_kb(stable)
    assert held.std() < 1e-6
    assert held.mean() == pytest.approx(fixed_point(10).queue_kb_exact, rel=1e-9)
    # Unstable (85 us): the queue swings with Zhu et al.'s standard deviation of about
    # 70 KB (the fluid model's limit cycle: 79 KB), runs empty for a share of the
    # messages and peaks well above the fixed point's queue.
    swinging = queue_kb(unstable)
    assert swinging.std() == pytest.approx(70.0, rel=0.15)
    assert (swinging < 0.5).mean() > 0.3
    assert swinging.max() > 1.5 * fixed_point(10).queue_kb_exact
    # The link is under-used: the flows finish later, by the cycle's 95 % utilisation.
    cycle = limit_cycle(10, DcqcnParams(feedback_delay_us=85.0))
    ratio = unstable.summary["makespan_us"] / stable.summary["makespan_us"]
    assert ratio == pytest.approx(1.0 / cycle.utilisation, rel=0.005)
    assert ratio > 1.05
    # And the peaks mark far more bytes.
    assert unstable.summary["ecn_mark_fraction"] > 3 * stable.summary["ecn_mark_fraction"]


def random_pairs(n_flows: int, hosts: int, size_bytes: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, hosts, n_flows)
    return flows(src, (src + rng.integers(1, hosts, n_flows)) % hosts, size_bytes=size_bytes)


def test_single_packet_flows_are_sent_before_any_notification_can_slow_them():
    # 500 flows of one 4 KiB packet between random hosts of a k = 4 fat tree, all at
    # once. No CNP can reach a sender before its packet is out, so DCQCN must not
    # slow them beyond what line-rate senders get (cc: none without PFC: nothing
    # throttles and nothing pauses them), and the burst is a pulse of 2 MB that
    # fills no port to Xoff: nothing is paused.
    mix = random_pairs(500, 16, 4096)
    dcqcn = simulate_flows(fabric(kind="roce"), mix).summary
    line_rate = simulate_flows(fabric(kind="roce", cc="none", pfc=False), mix).summary
    assert dcqcn["fct_slowdown_p50"] == pytest.approx(line_rate["fct_slowdown_p50"], rel=0.1)
    assert dcqcn["makespan_us"] <= line_rate["makespan_us"] * 1.1
    assert dcqcn["pfc_pause_fraction"] == 0.0
    # PFC alone pauses nothing either: no ingress buffer fills to Xoff in the pulse.
    assert simulate_flows(fabric(kind="roce", cc="none"), mix).summary["pfc_pause_fraction"] == 0.0


def test_a_long_flow_still_gets_dcqcns_rate_and_a_mouse_beside_it_its_line_rate_share():
    config = fabric(kind="roce")
    two = simulate_flows(config, flows([1, 2], 0, size_bytes=20_000_000)).flows
    # Two long flows into one port: DCQCN's fair share, half the port each.
    np.testing.assert_allclose(two["slowdown"], 2.0, rtol=0.002)
    ten = flows(np.arange(1, 11), 0, size_bytes=20_000_000)
    mouse = pd.concat([ten, flows(11, 0, size_bytes=4096, start_us=3_000.0)], ignore_index=True)
    alone = simulate_flows(config, ten).flows
    beside = simulate_flows(config, mouse).flows
    # A one-packet flow joining ten converged long flows is out before a CNP can
    # return: at its line-rate share of the port (a fair share, an eleventh, would
    # slow it by 1.4), and the long flows hardly notice it.
    assert beside["slowdown"].iloc[-1] < 1.1
    np.testing.assert_allclose(beside["fct_us"].iloc[:10], alone["fct_us"], rtol=1e-4)


def test_wire_bytes_count_every_packets_headers():
    size = np.array([1, 4096, 4097, 1_000_000])
    wire, last = wire_bytes(size, 4096, 82)
    # 1, 1, 2 and 245 packets; the last one carries what is left.
    assert wire.tolist() == [1 + 82, 4096 + 82, 4097 + 2 * 82, 1_000_000 + 245 * 82]
    assert last.tolist() == [1 + 82, 4096 + 82, 1 + 82, 1_000_000 - 244 * 4096 + 82]
    # Sent whole (as htsim does), every packet is a full MTU: 1 MB is 112 packets of 9,064 B.
    wire, last = wire_bytes(np.array([1_000_000]), 9000, 64, whole_packets=True)
    assert wire.tolist() == [112 * 9064]
    assert last.tolist() == [9064]


def test_a_flow_alone_ends_when_the_ack_of_its_last_byte_is_back():
    # 1 MB between two hosts of one edge switch, RoCE's default framing: 245 packets of
    # 4,096 payload bytes and 82 header bytes at 100 Gb/s; the last (576 + 82 bytes) is
    # stored and forwarded once; 0.5 us a link; the 82-byte ACK back over two links.
    result = simulate_flows(fabric(kind="roce"), flows(1, 0, size_bytes=1_000_000)).flows
    wire_us = (1_000_000 + 245 * 82) * 8 / 100e3
    last_packet_us = (1_000_000 - 244 * 4096 + 82) * 8 / 100e3
    ack_us = 2 * (0.5 + 82 * 8 / 100e3)
    want = wire_us + last_packet_us + 2 * 0.5 + ack_us
    assert result["fct_us"][0] == pytest.approx(want, rel=1e-12)
    assert result["ideal_fct_us"][0] == pytest.approx(want, rel=1e-12)
    assert result["slowdown"][0] == 1.0


PFC_ONLY = {"kind": "roce", "cc": "none", "pfc_xoff_kb": 270, "pfc_xon_kb": 180}
HTSIM_RUNS = Path(__file__).resolve().parent / "htsim_runs"
K8 = {"kind": "fat_tree", "k": 8, "link_gbps": 100}


def test_the_last_ack_waits_behind_the_held_inputs_of_the_ports_it_crosses():
    # Hosts 1 and 2 push into host 0 at line rate; host 0 sends 1 MB to host 3, all on
    # one edge switch. The probe's data meets no one, but its ACK goes back through
    # host 0's port, whose two inputs each hold (Xon + Xoff) / 2: 450 KB at 100 Gb/s.
    mix = pd.concat(
        [flows([1, 2], 0, size_bytes=20_000_000), flows(0, 3, 1_000_000, start_us=200.0)],
        ignore_index=True,
    )
    probe = simulate_flows(fabric(K8, **PFC_ONLY), mix).flows.iloc[-1]
    waited_us = probe["fct_us"] - probe["ideal_fct_us"]
    assert waited_us == pytest.approx(2 * 225e3 * 8 / 100e3)
    # csg-htsim on the same traffic (tests/fabric/htsim_runs/ack): 117.28 us against
    # 85.95 alone, a 31.3 us wait.
    htsim = HTSIM_RUNS / "ack"
    loaded = pd.read_csv(htsim / "htsim.csv").iloc[-1]["fct_us"]
    alone = pd.read_csv(htsim / "htsim_alone.csv").iloc[-1]["fct_us"]
    assert waited_us == pytest.approx(loaded - alone, rel=0.2)


def test_an_ack_meets_no_queue_of_flows_that_ended_with_its_own():
    # The same port, but the incast ends exactly when the probe does (each incast flow
    # at half the rate with half the bytes): the queue ahead of the ACK has drained.
    size = 200 * 4096
    mix = pd.concat(
        [flows([1, 2], 0, size_bytes=size), flows(0, 3, size_bytes=2 * size)], ignore_index=True
    )
    result = simulate_flows(fabric(K8, **PFC_ONLY), mix).flows
    assert result["fct_us"].to_numpy() == pytest.approx(result["fct_us"][0])
    assert result["slowdown"].iloc[-1] == 1.0


def test_a_pause_waits_for_the_ingress_buffer_to_fill():
    # On one leaf, hosts 1 and 4 push 20 MB into host 0; host 2 sends a 2 MB victim to
    # host 3 and 20 MB to host 0 beside it, each at half its NIC (50 Gb/s). Host 0's port
    # serves its three inputs in turn, 33.3 Gb/s each, so host 2's input keeps 16.7 Gb/s
    # of what it brings: its ingress buffer reaches Xoff (270 KB) after 129.6 us and only
    # then pauses host 2, whose flows then share 66.7 Gb/s: the victim slows to 33.3.
    leaf = {"kind": "leaf_spine", "hosts_per_leaf": 16, "leaves": 2, "spines": 2}
    config = fabric(leaf, **PFC_ONLY)
    mix = pd.concat([flows([1, 4, 2], 0, size_bytes=20_000_000), flows(2, 3)], ignore_index=True)
    victim = simulate_flows(config, mix).flows.iloc[-1]
    latency_us = victim["ideal_fct_us"] - transfer_us(config)
    fill_us = 270 * 8 / (50 - 100 / 3)
    wire_kbit = transfer_us(config) * 100
    want_us = fill_us + (wire_kbit - 50 * fill_us) / (100 / 3) + latency_us
    assert victim["fct_us"] == pytest.approx(want_us, rel=1e-6)
    # A pause tree in place from the start (every buffer full) would take 64.8 us more.
    held_us = wire_kbit / (100 / 3) + latency_us
    assert held_us - victim["fct_us"] == pytest.approx(fill_us / 2, rel=1e-6)


@pytest.mark.parametrize("kind", ["roce", "infiniband", "ideal"])
def test_flows_pinned_to_one_path_share_it_and_apart_run_at_line_rate(kind) -> None:
    # Two 2 MB flows from one leaf to one leaf of another pod (k = 4: four paths).
    # On one path they share every fabric link: each gets half; apart, each its line.
    two = flows([0, 1], [8, 9])
    config = fabric(kind=kind, **({"cc": "none"} if kind == "roce" else {}))
    alone = simulate_flows(config, two.iloc[:1]).flows["fct_us"][0]
    together = simulate_flows(config, two.assign(path_index=[2, 2])).flows["fct_us"]
    apart = simulate_flows(config, two.assign(path_index=[2, 1])).flows["fct_us"]
    np.testing.assert_allclose(apart, alone, rtol=1e-9)
    # Half the line each: twice the transfer, the path's latency once.
    assert together[0] == together[1]
    assert 1.9 * alone < together[0] < 2 * alone
