"""Per-message latency: exact parts on hand-built cases, Little's law, sampling, properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fabric.dcqcn import fixed_point
from sim.fabric.flows import simulate_flows
from sim.fabric.latency import MessageSampler, latency_cdf, path_delays
from tests.helpers import fabric

MTU = 4096
GBPS = 100.0
PROP_US = 0.5


# One leaf of 16 hosts: senders on the receiver's own leaf meet only its port.
ONE_LEAF = {"kind": "leaf_spine", "hosts_per_leaf": 16, "leaves": 2, "spines": 2}


def flows(src, dst, size_bytes=2_000_000, start_us=0.0) -> dict[str, np.ndarray]:
    src = np.atleast_1d(np.asarray(src, dtype=np.int64))
    return {
        "src": src,
        "dst": np.broadcast_to(np.asarray(dst, dtype=np.int64), src.shape).copy(),
        "start_us": np.full(src.shape, float(start_us)),
        "size_bytes": np.full(src.shape, int(size_bytes), dtype=np.int64),
    }


def serialisation_us(size_bytes: float) -> float:
    return size_bytes * 8.0 / (GBPS * 1e3)


def test_alone_a_message_pays_propagation_and_serialisation_only():
    # Host 0 to host 15 on a k = 4 fat tree crosses 6 links (other pod).
    result = simulate_flows(fabric(kind="ideal"), flows(0, 15))
    messages = result.message_table
    # Every message is sampled: 488.3 messages of 4096 bytes, the last one partial.
    assert messages["latency_us"].size in (2_000_000 // MTU, 2_000_000 // MTU + 1)
    expected = 6 * (PROP_US + serialisation_us(MTU))
    assert messages["latency_us"] == pytest.approx(expected, rel=1e-12)
    assert messages["queueing_us"].max() == 0
    assert messages["pause_us"].max() == 0
    assert result.summary["message_latency_us_p999"] == pytest.approx(expected, rel=1e-12)


def test_a_long_message_is_pipelined_in_packets():
    message = 64 * 1024
    result = simulate_flows(fabric(kind="ideal", message_bytes=message), flows(0, 15))
    # The first hop clocks out the whole message, each further hop one MTU packet.
    expected = serialisation_us(message) + 5 * serialisation_us(MTU)
    assert result.message_table["serialisation_us"] == pytest.approx(expected, rel=1e-12)
    assert result.message_table["propagation_us"] == pytest.approx(6 * PROP_US)


def test_path_delays_of_a_server_local_sub_flow_use_its_local_rate():
    incidence = sp.csr_matrix((1, 3))
    prop, ser = path_delays(
        incidence, np.full(3, 0.5), np.full(3, 100.0), np.arange(3), 8000, 4096, 3600.0
    )
    assert prop[0] == 0
    assert ser[0] == pytest.approx(8000 * 8 / 3600e3)


def test_dcqcn_holds_the_fixed_point_queue_after_the_burst():
    # Two 50 MB flows into one host: after the line-rate start, DCQCN settles
    # at the exact fluid fixed point of N = 2 (Zhu et al.), about 9.65 KB at 100G.
    config = fabric(ONE_LEAF, kind="roce")
    result = simulate_flows(config, flows([1, 2], 0, size_bytes=50_000_000))
    messages = result.message_table
    settled = messages["sent_us"] > 2_500
    point = fixed_point(2, config.transport.dcqcn_params(GBPS))
    expected_us = point.queue_kb_exact * 1000 * 8 / (GBPS * 1e3)
    assert messages["queueing_us"][settled] == pytest.approx(expected_us, rel=1e-9)
    # During the burst the queue is higher, but never beyond what the port holds.
    burst = ~settled
    assert messages["queueing_us"][burst].max() > 3 * expected_us
    held_us = 2 * config.transport.pfc_xoff_kb * 8 / GBPS
    assert messages["queueing_us"].max() <= held_us * (1 + 1e-9)


BUFFER_KB = 2 * 1024 * 1024 / 1000  # a port's buffer by default


@pytest.mark.parametrize("senders", [2, 4, 8])
def test_pfc_back_pressure_queues_obey_littles_law(senders):
    # n line-rate senders on the receiver's leaf, PFC without rate control. Each
    # input brings C and its port passes C/n, so its ingress buffer fills at
    # C(1 - 1/n) and the port's backlog grows by (n - 1) us every us; once the
    # buffers reach Xoff they pause their senders. From then on every input swings
    # between Xon and Xoff, so a message waits behind n * (Xon + Xoff) / 2 drained
    # at the port's rate (Little's law), and each sender's link is paused 1 - 1/n
    # of the time in episodes of (Xoff - Xon) / (C / n).
    config = fabric(ONE_LEAF, kind="roce", cc="none")
    result = simulate_flows(config, flows(np.arange(1, senders + 1), 0))
    transport = config.transport
    messages = result.message_table
    fill_us = transport.pfc_xoff_kb * 8 / (GBPS * (1 - 1 / senders))
    settled = messages["sent_us"] > fill_us
    filling = ~settled
    assert filling.sum() > 20 and settled.sum() > 500
    backlog_us = (senders - 1) * messages["sent_us"][filling]
    assert messages["queueing_us"][filling] == pytest.approx(
        np.minimum(backlog_us, BUFFER_KB * 8 / GBPS), rel=1e-9
    )
    assert (messages["pause_us"][filling] == 0).all()
    held_kb = min(senders * (transport.pfc_xoff_kb + transport.pfc_xon_kb) / 2, BUFFER_KB)
    assert messages["queueing_us"][settled] == pytest.approx(held_kb * 8 / GBPS, rel=1e-9)
    paused = 1 - 1 / senders
    episode_us = (transport.pfc_xoff_kb - transport.pfc_xon_kb) * 8 / (GBPS / senders)
    mean_wait = messages["pause_us"][settled].mean()
    assert mean_wait == pytest.approx(paused * episode_us / 2, rel=0.05)
    assert messages["pause_us"].max() <= episode_us


def test_infiniband_credits_hold_one_buffer_per_input():
    config = fabric(ONE_LEAF, kind="infiniband")
    result = simulate_flows(config, flows([1, 2, 3, 4], 0))
    messages = result.message_table
    credit_kb = config.transport.credit_buffer_kb
    # Each input's credit buffer fills at 3/4 of the line rate, then holds.
    settled = messages["sent_us"] > credit_kb * 8 / (GBPS * 3 / 4)
    assert messages["queueing_us"][settled] == pytest.approx(4 * credit_kb * 8 / GBPS, rel=1e-9)
    assert messages["queueing_us"][~settled] == pytest.approx(
        3 * messages["sent_us"][~settled], rel=1e-9
    )


def test_lossy_drop_tail_fills_the_buffer_and_retransmits_the_overflow():
    senders = 4
    result = simulate_flows(
        fabric(ONE_LEAF, kind="roce", cc="none", pfc=False), flows(np.arange(1, 5), 0)
    )
    messages = result.message_table
    buffer_us = 2 * 1024 * 1024 * 8 / (GBPS * 1e3)
    first_try = ~messages["retransmitted"]
    assert messages["queueing_us"][first_try] == pytest.approx(buffer_us, rel=1e-9)
    # Line-rate senders into one port: 3 of every 4 messages are dropped once.
    share = messages["retransmitted"].mean()
    n = messages["retransmitted"].size
    expected = 1 - 1 / senders
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    # A dropped message goes twice, and its NAK comes back once.
    resent = messages["retransmitted"]
    once = messages["latency_us"][first_try][0]
    prop = messages["propagation_us"][first_try][0]
    assert messages["latency_us"][resent] == pytest.approx(2 * once + prop, rel=1e-9)


# 8 senders in pods 2 and 3 into host 0; the victim goes from pod 1 to host 1,
# sharing the links into host 0's edge switch but not host 0's port.
def victim_mix() -> dict[str, np.ndarray]:
    incast, victim = flows(np.arange(8, 16), 0), flows(4, 1)
    return {k: np.concatenate([incast[k], victim[k]]) for k in incast}


@pytest.mark.parametrize("hash_seed", [0, 1, 2])
def test_a_pfc_victims_messages_wait_for_pauses_and_only_with_pfc(hash_seed):
    mix = victim_mix()
    on = simulate_flows(fabric(kind="roce", hash_seed=hash_seed), mix).message_table
    off = simulate_flows(fabric(kind="roce", hash_seed=hash_seed, pfc=False), mix).message_table
    victim = 8
    on_victim = on["flow_id"] == victim
    off_victim = off["flow_id"] == victim
    assert on["pause_us"][on_victim].max() > 0
    assert off["pause_us"][off_victim].max() == 0
    assert np.quantile(on["latency_us"][on_victim], 0.99) > np.quantile(
        off["latency_us"][off_victim], 0.99
    )


def test_same_seed_same_sample_other_seed_other_draws():
    mix = victim_mix()
    first = simulate_flows(fabric(kind="roce", cc="none", seed=3), mix).message_table
    again = simulate_flows(fabric(kind="roce", cc="none", seed=3), mix).message_table
    other = simulate_flows(fabric(kind="roce", cc="none", seed=4), mix).message_table
    for column in first:
        np.testing.assert_array_equal(first[column], again[column])
    assert not np.array_equal(first["pause_us"], other["pause_us"])


def test_systematic_sampling_takes_the_asked_number_in_proportion():
    rng = np.random.default_rng(0)
    sampler = MessageSampler(total_messages=10_000.0, samples=1_000, rng=rng)
    weights = np.array([1_000.0, 3_000.0, 6_000.0])
    hits = np.concatenate([sampler.draw(weights[:2]), sampler.draw(weights[2:]) + 2])
    assert hits.size == 1_000
    counts = np.bincount(hits, minlength=3)
    np.testing.assert_allclose(counts, [100, 300, 600], atol=1)


def test_fewer_messages_than_samples_are_all_taken():
    result = simulate_flows(fabric(kind="ideal", latency_samples=10**6), flows([1, 2], 0))
    assert result.summary["latency_samples"] in (2 * 2_000_000 // MTU, 2 * 2_000_000 // MTU + 1)


def test_latency_cdf_is_monotone_and_ends_at_the_extremes():
    values = np.random.default_rng(1).exponential(size=5_000)
    table = latency_cdf(values)
    assert np.all(np.diff(table["quantile"]) > 0)
    assert np.all(np.diff(table["latency_us"]) >= 0)
    assert table["latency_us"][0] == values.min()
    assert table["latency_us"][-1] == values.max()
    assert 0.9995 in np.round(table["quantile"], 6)


TRANSPORTS = [
    {"kind": "ideal"},
    {"kind": "roce"},
    {"kind": "roce", "pfc": False},
    {"kind": "roce", "cc": "none"},
    {"kind": "roce", "cc": "none", "pfc": False},
    {"kind": "infiniband"},
    {"kind": "infiniband", "adaptive_routing": False},
]


@settings(max_examples=25, deadline=None)
@given(
    transport=st.sampled_from(TRANSPORTS),
    pairs=st.lists(
        st.tuples(st.integers(0, 15), st.integers(0, 15), st.integers(1, 2_000_000)),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 3),
)
def test_latency_parts_add_up_and_never_beat_an_empty_fabric(transport, pairs, seed):
    pairs = [(s, d, n) for s, d, n in pairs if s != d]
    if not pairs:
        return
    src, dst, size = (np.array(column) for column in zip(*pairs, strict=True))
    traffic = {"src": src, "dst": dst, "start_us": np.zeros(src.size), "size_bytes": size}
    result = simulate_flows(fabric(seed=seed, latency_samples=2_000, **transport), traffic)
    m = result.message_table
    assert 0 < m["latency_us"].size <= 2_000 + 1
    assert np.all(np.isfinite(m["latency_us"]))
    floor = m["propagation_us"] + m["serialisation_us"]
    assert np.all(m["latency_us"] >= floor * (1 - 1e-12))
    assert np.all(m["queueing_us"] >= 0) and np.all(m["pause_us"] >= 0)
    first = ~m["retransmitted"]
    parts = floor + m["queueing_us"] + m["pause_us"]
    np.testing.assert_allclose(m["latency_us"][first], parts[first], rtol=1e-12)
    s = result.summary
    assert s["message_latency_us_p50"] <= s["message_latency_us_p99"]
    assert s["message_latency_us_p99"] <= s["message_latency_us_p999"]
