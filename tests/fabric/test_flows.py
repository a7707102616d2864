"""The flow simulator: incasts, PFC victims, hand-solved fluid cases, permutations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.fabric.config import FabricConfig
from sim.fabric.flows import FLOW_COLUMNS, NVLINK_GBPS, simulate_flows

MB2 = 2_000_000


def fabric(topology: dict | None = None, **transport) -> FabricConfig:
    return FabricConfig.model_validate(
        {
            "topology": topology or {"kind": "fat_tree", "k": 4, "link_gbps": 100},
            "transport": transport or {"kind": "roce"},
        }
    )


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
IDEAL_INCAST_US = 15 * MB2 * 8 / 100e3  # 2,400 us: 30 MB through one 100 Gb/s port


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
    result = simulate_flows(fabric(**transport), INCAST)
    assert list(result.flows.columns) == list(FLOW_COLUMNS)
    assert result.summary["max_fct_us"] == pytest.approx(IDEAL_INCAST_US, rel=0.01)
    assert (result.flows["slowdown"] >= 1).all()
    if transport in ({"kind": "roce", "cc": "none"}, {"kind": "infiniband"}):
        # Lossless switches serve input ports in turn: host 1, alone on host 0's
        # edge switch, gets a third of the port (beside the two uplinks).
        local = result.flows.set_index("src").loc[1, "slowdown"]
        assert local == pytest.approx(3, rel=0.03)
    else:
        # Fair shares per flow: every flow finishes together, 15 times slower than alone.
        assert result.summary["fct_slowdown_p50"] == pytest.approx(15, rel=0.03)


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
    # Every byte crosses each link of its single path once.
    hops = {0: 2, 1: 4, 2: 6}
    assert result.links["bytes"].sum() == pytest.approx(
        MB2 * sum(hops[2] for _ in range(len(VICTIM_MIX))), rel=1e-9
    )
