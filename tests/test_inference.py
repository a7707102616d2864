"""Inference serving: replica physics, Erlang C, latency sampling and the latency histogram."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.catalog import accelerator
from sim.workloads.inference import ServicePoint, ServingSpec, sample_latency_s, service_point
from sim.workloads.latency_histogram import LatencyHistogram
from sim.workloads.mmc_queue import erlang_c, latency_quantile_s, mean_wait_s, wait_quantile_s
from sim.workloads.training import ModelShape

LLAMA_70B = ModelShape(params_billion=70, layers=80, hidden=8192, seq_len=4096)
H100 = accelerator("H100")


def erlang_c_by_recurrence(servers: int, offered: float) -> float:
    """Erlang C from the Erlang B recurrence B(k) = a B(k-1) / (k + a B(k-1))."""
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    return servers * blocking / (servers - offered * (1.0 - blocking))


def stable_point(servers: int, load: float, service_s: float) -> ServicePoint:
    """An M/M/c operating point with ``servers`` slots at utilisation ``load``."""
    arrivals = load * servers / service_s
    return ServicePoint(
        step_s=service_s,
        service_s=service_s,
        servers=servers,
        arrivals_per_s=arrivals,
        utilisation=load,
        wait_probability=erlang_c(servers, load * servers),
        busy_per_replica=load,
    )


# --- Erlang C ---------------------------------------------------------------------------


def test_erlang_c_reproduces_the_design_figures_for_8_servers_at_load_08() -> None:
    assert erlang_c(8, 6.4) == pytest.approx(0.4576, rel=1e-3)
    # Service time 1 s, so mu = 1 and the figures are in units of 1 / mu.
    assert mean_wait_s(8, 6.4, 1.0) == pytest.approx(0.2860, rel=1e-3)
    assert wait_quantile_s(8, 6.4, 1.0, 0.99) == pytest.approx(2.390, rel=1e-3)


def test_erlang_c_reproduces_the_design_figures_for_64_servers_at_load_09() -> None:
    assert erlang_c(64, 57.6) == pytest.approx(0.3107, rel=1e-3)
    assert mean_wait_s(64, 57.6, 1.0) == pytest.approx(0.0485, rel=1e-3)


def test_wait_figures_scale_with_the_service_time() -> None:
    # Same load with S = 0.25 s: lambda = 25.6 / s, waits are a quarter as long.
    assert mean_wait_s(8, 25.6, 0.25) == pytest.approx(0.2860 * 0.25, rel=1e-3)
    assert wait_quantile_s(8, 25.6, 0.25, 0.99) == pytest.approx(2.390 * 0.25, rel=1e-3)


@pytest.mark.parametrize("servers", [1, 2, 3, 8, 17, 64, 500, 3000])
@pytest.mark.parametrize("load", [0.01, 0.3, 0.7, 0.95, 0.999])
def test_erlang_c_matches_the_erlang_b_recurrence(servers: int, load: float) -> None:
    offered = servers * load
    expected = erlang_c_by_recurrence(servers, offered)
    if expected < 1e-250:
        assert erlang_c(servers, offered) < 1e-240
    else:
        assert erlang_c(servers, offered) == pytest.approx(expected, rel=1e-9)


def test_erlang_c_of_one_server_is_the_load() -> None:
    assert erlang_c(1, 0.37) == pytest.approx(0.37, rel=1e-12)


def test_erlang_c_is_stable_for_very_many_servers() -> None:
    big = erlang_c(20_000, 0.95 * 20_000)
    assert math.isfinite(big) and 0 < big < 1
    assert big == pytest.approx(erlang_c_by_recurrence(20_000, 19_000.0), rel=1e-8)
    huge = erlang_c(100_000, 0.999 * 100_000)
    assert math.isfinite(huge) and 0 < huge < 1
    # Halfin-Whitt: at load 1 - beta / sqrt(c), C tends to a function of beta alone.
    beta = 1.0
    values = [erlang_c(c, c - beta * math.sqrt(c)) for c in (10_000, 40_000, 100_000)]
    assert values[0] == pytest.approx(values[-1], rel=0.01)


def test_erlang_c_edges() -> None:
    assert erlang_c(8, 0.0) == 0.0
    assert erlang_c(8, 8.0) == 1.0
    assert erlang_c(8, 12.5) == 1.0
    assert erlang_c(8, 1e-9) < 1e-60
    with pytest.raises(ValueError, match="servers"):
        erlang_c(0, 1.0)
    with pytest.raises(ValueError, match="servers"):
        erlang_c(2.5, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="offered_erlangs"):
        erlang_c(8, -1.0)
    with pytest.raises(ValueError, match="offered_erlangs"):
        erlang_c(8, math.nan)


def test_wait_quantile_edges() -> None:
    c = erlang_c(8, 6.4)
    assert wait_quantile_s(8, 6.4, 1.0, 1.0 - c) == 0.0
    assert wait_quantile_s(8, 6.4, 1.0, 0.5) == 0.0
    assert wait_quantile_s(8, 6.4, 1.0, 0.6) > 0.0
    assert wait_quantile_s(8, 6.4, 1.0, 1.0) == math.inf
    assert wait_quantile_s(8, 9.0, 1.0, 0.5) == math.inf
    assert wait_quantile_s(8, 9.0, 1.0, 0.0) == 0.0
    assert mean_wait_s(8, 9.0, 1.0) == math.inf
    assert mean_wait_s(8, 0.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="q"):
        wait_quantile_s(8, 6.4, 1.0, 1.5)


def test_latency_quantile_solves_the_closed_form_cdf() -> None:
    # M/M/1 at load rho: latency is Exp(mu - lambda) exactly.
    for q in (0.1, 0.5, 0.99, 0.9999):
        assert latency_quantile_s(1, 0.6, 1.0, q) == pytest.approx(-math.log(1 - q) / 0.4)
    # Theta = c / S - lambda equals mu = 1 / S: the Erlang-2 branch, continuous around it.
    at = latency_quantile_s(8, 7.0, 1.0, 0.99)
    near = latency_quantile_s(8, 7.0 - 1e-9, 1.0, 0.99)
    assert at == pytest.approx(near, rel=1e-6)
    assert latency_quantile_s(8, 6.4, 1.0, 0.0) == 0.0
    assert latency_quantile_s(8, 6.4, 1.0, 1.0) == math.inf
    assert latency_quantile_s(8, 8.0, 1.0, 0.5) == math.inf


def test_latency_quantile_agrees_with_a_plain_monte_carlo() -> None:
    rng = np.random.default_rng(12345)
    n = 400_000
    servers, offered = 8, 6.4
    c = erlang_c(servers, offered)
    waits = np.where(rng.random(n) < c, rng.exponential(1.0 / (servers - offered), n), 0.0)
    latency = waits + rng.exponential(1.0, n)
    for q in (0.5, 0.9, 0.99):
        analytic = latency_quantile_s(servers, offered, 1.0, q)
        assert analytic == pytest.approx(np.quantile(latency, q), rel=0.02)


# --- Replica physics and the operating point --------------------------------------------


def test_decode_is_memory_bound_at_small_batch() -> None:
    spec = ServingSpec(LLAMA_70B, tp=8, max_batch=64, prompt_tokens=1000, output_tokens=200)
    bandwidth = 3.35e12 * 0.7
    weights_s = 140e9 / 8 / bandwidth
    assert weights_s == pytest.approx(7.46e-3, rel=1e-3)
    kv_per_token = 2 * 80 * 8192 * 2
    assert spec.kv_bytes_per_token == kv_per_token
    kv_s = 1 * (1000 + 100) * kv_per_token / 8 / bandwidth
    compute_s = 2 * 70e9 * 1 / (8 * 989e12 * 0.5)
    assert compute_s < weights_s / 100
    step = spec.decode_step_s(1, H100.tflops_bf16_dense, H100.hbm_tbps)
    assert step == pytest.approx(weights_s + kv_s, rel=1e-12)
    assert step == pytest.approx(7.616e-3, rel=1e-3)
    prefill = 2 * 70e9 * 1000 / (8 * 989e12 * 0.5)
    assert spec.prefill_s(H100.tflops_bf16_dense) == pytest.approx(prefill, rel=1e-12)
    assert spec.service_s(1, H100.tflops_bf16_dense, H100.hbm_tbps) == pytest.approx(
        prefill + 200 * step, rel=1e-12
    )


def test_decode_turns_compute_bound_at_large_batch() -> None:
    spec = ServingSpec(
        LLAMA_70B,
        tp=8,
        max_batch=1024,
        prompt_tokens=512,
        output_tokens=128,
        kv_heads_ratio=8 / 64,
    )
    bandwidth = 3.35e12 * 0.7
    memory_s = (140e9 + 1024 * 576 * 2 * 80 * 8192 * 2 / 8) / 8 / bandwidth
    compute_s = 2 * 70e9 * 1024 / (8 * 989e12 * 0.5)
    assert compute_s > memory_s
    step = spec.decode_step_s(1024, H100.tflops_bf16_dense, H100.hbm_tbps)
    assert step == pytest.approx(compute_s, rel=1e-12)
    assert step == pytest.approx(36.24e-3, rel=1e-3)
    # Below the crossover (about 294 requests) the same replica is memory-bound.
    assert spec.decode_step_s(64, H100.tflops_bf16_dense, H100.hbm_tbps) < 1.1 * 7.46e-3


def test_moe_streams_all_weights_but_computes_only_active_ones() -> None:
    moe = ModelShape(
        params_billion=400,
        layers=48,
        hidden=5120,
        seq_len=4096,
        active_params_billion=17,
        experts=128,
        top_k=1,
    )
    spec = ServingSpec(moe, tp=8, max_batch=256, prompt_tokens=100, output_tokens=100)
    assert spec.weight_bytes == 800e9
    assert spec.prefill_s(1000) == pytest.approx(2 * 17e9 * 100 / (8 * 1000e12 * 0.5))
    kv_s = 150 * spec.kv_bytes_per_token / 8 / (5e12 * 0.7)
    assert spec.decode_step_s(1, 1000, 5.0) == pytest.approx(800e9 / 8 / 3.5e12 + kv_s)


def test_mtia_lpddr_makes_decode_far_slower_than_an_h100() -> None:
    small = ModelShape(params_billion=8, layers=32, hidden=4096, seq_len=8192)
    spec = ServingSpec(small, tp=1, max_batch=8, prompt_tokens=256, output_tokens=64)
    mtia, h100 = accelerator("MTIA"), accelerator("H100")
    ratio = spec.decode_step_s(1, mtia.tflops_bf16_dense, mtia.hbm_tbps) / spec.decode_step_s(
        1, h100.tflops_bf16_dense, h100.hbm_tbps
    )
    assert ratio == pytest.approx(3.35 / 0.2048, rel=1e-9)


def test_service_point_solves_the_batch_fixed_point() -> None:
    spec = ServingSpec(LLAMA_70B, tp=8, max_batch=64, prompt_tokens=1000, output_tokens=200)
    for arrivals in (5.0, 20.0, 50.0, 70.0):
        point = service_point(spec, 4, arrivals, H100.tflops_bf16_dense, H100.hbm_tbps)
        busy = point.busy_per_replica
        assert 1.0 < busy < 64
        assert busy == pytest.approx(min(64, arrivals * point.service_s / 4), rel=1e-9)
        assert point.service_s == pytest.approx(
            spec.service_s(busy, H100.tflops_bf16_dense, H100.hbm_tbps), rel=1e-12
        )
        assert point.step_s == pytest.approx(
            spec.decode_step_s(busy, H100.tflops_bf16_dense, H100.hbm_tbps), rel=1e-12
        )
        assert point.servers == 256
        assert point.utilisation == pytest.approx(busy / 64, rel=1e-9)
        assert point.wait_probability == pytest.approx(
            erlang_c(256, arrivals * point.service_s), rel=1e-12
        )
        assert not point.overloaded


def test_service_point_fixed_point_in_closed_form() -> None:
    # Memory-bound throughout: S(b) = P + o (A + K b) is linear, so b = r (P + o A) / (1 - r o K).
    spec = ServingSpec(LLAMA_70B, tp=8, max_batch=64, prompt_tokens=1000, output_tokens=200)
    tflops, tbps = H100.tflops_bf16_dense, H100.hbm_tbps
    prefill = spec.prefill_s(tflops)
    bandwidth = tbps * 1e12 * 0.7
    weights_s = spec.weight_bytes / 8 / bandwidth
    kv_s = 1100 * spec.kv_bytes_per_token / 8 / bandwidth
    per_replica = 30.0 / 4
    expected = per_replica * (prefill + 200 * weights_s) / (1 - per_replica * 200 * kv_s)
    point = service_point(spec, 4, 30.0, tflops, tbps)
    assert point.busy_per_replica == pytest.approx(expected, rel=1e-9)


def test_light_load_evaluates_the_step_at_batch_one() -> None:
    spec = ServingSpec(LLAMA_70B, tp=8, max_batch=64, prompt_tokens=1000, output_tokens=200)
    point = service_point(spec, 4, 1.0, H100.tflops_bf16_dense, H100.hbm_tbps)
    service_1 = spec.service_s(1, H100.tflops_bf16_dense, H100.hbm_tbps)
    assert point.service_s == service_1
    assert point.busy_per_replica == pytest.approx(service_1 / 4)
    assert point.busy_per_replica < 1
    idle = service_point(spec, 4, 0.0, H100.tflops_bf16_dense, H100.hbm_tbps)
    assert (idle.utilisation, idle.wait_probability, idle.busy_per_replica) == (0.0, 0.0, 0.0)


def test_overload_is_reported_not_raised() -> None:
    spec = ServingSpec(LLAMA_70B, tp=8, max_batch=64, prompt_tokens=1000, output_tokens=200)
    tflops, tbps = H100.tflops_bf16_dense, H100.hbm_tbps
    full = spec.service_s(64, tflops, tbps)
    capacity = 4 * 64 / full
    point = service_point(spec, 4, 1.5 * capacity, tflops, tbps)
    assert point.overloaded
    assert point.utilisation == pytest.approx(1.5, rel=1e-12)
    assert point.wait_probability == 1.0
    assert point.busy_per_replica == 64
    assert point.service_s == full
    # Just below capacity the fixed point exists and sits close to a full batch.
    near = service_point(spec, 4, 0.999 * capacity, tflops, tbps)
    assert not near.overloaded
    assert 60 < near.busy_per_replica < 64


def test_utilisation_grows_with_arrivals() -> None:
    spec = ServingSpec(LLAMA_70B, tp=8, max_batch=32, prompt_tokens=500, output_tokens=300)
    points = [service_point(spec, 2, rate, 989, 3.35) for rate in np.linspace(0.1, 40, 25)]
    utilisation = [p.utilisation for p in points]
    assert utilisation == sorted(utilisation)
    assert utilisation[-1] >= 1.0


def test_serving_spec_rejects_bad_values() -> None:
    good = {
        "model": LLAMA_70B,
        "tp": 8,
        "max_batch": 16,
        "prompt_tokens": 10,
        "output_tokens": 10,
    }
    for field, bad in [
        ("tp", 0),
        ("max_batch", 1.5),
        ("prompt_tokens", -1),
        ("output_tokens", True),
        ("mfu", 0.0),
        ("mfu", 1.2),
        ("bandwidth_efficiency", 0),
        ("bytes_per_param", -2.0),
        ("kv_heads_ratio", 2.0),
        ("model", "llama"),
    ]:
        with pytest.raises(ValueError, match=field):
            ServingSpec(**{**good, field: bad})
    spec = ServingSpec(**good)
    with pytest.raises(ValueError, match="replicas"):
        service_point(spec, 0, 1.0, 989, 3.35)
    with pytest.raises(ValueError, match="arrivals_per_s"):
        service_point(spec, 1, -1.0, 989, 3.35)
    with pytest.raises(ValueError, match="hbm_tbps"):
        service_point(spec, 1, 1.0, 989, 0.0)


# --- Latency sampling -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("servers", "load", "service_s"), [(8, 0.8, 1.0), (64, 0.9, 2.0), (256, 0.97, 0.05)]
)
def test_sampled_latency_matches_m_m_c(servers: int, load: float, service_s: float) -> None:
    point = stable_point(servers, load, service_s)
    latency = sample_latency_s(np.random.default_rng(7), 200_000, point, period_s=3600.0)
    expected_mean = mean_wait_s(servers, point.arrivals_per_s, service_s) + service_s
    assert latency.mean() == pytest.approx(expected_mean, rel=0.01)
    for q in (0.5, 0.99, 0.999):
        analytic = latency_quantile_s(servers, point.arrivals_per_s, service_s, q)
        assert np.quantile(latency, q) == pytest.approx(analytic, rel=0.02)


def test_stratification_cuts_sampling_noise() -> None:
    point = stable_point(8, 0.8, 1.0)
    expected = mean_wait_s(8, 6.4, 1.0) + 1.0
    errors = [
        abs(sample_latency_s(np.random.default_rng(seed), 20_000, point, 1.0).mean() - expected)
        for seed in range(5)
    ]
    # Plain sampling: the standard error of the mean is about 1.2 / sqrt(20000) = 0.0085.
    assert max(errors) < 0.006


def test_overloaded_latency_follows_the_fluid_backlog() -> None:
    point = stable_point(8, 1.25, 1.0)
    point = ServicePoint(**{**point.__dict__, "wait_probability": 1.0})
    period = 600.0
    latency = sample_latency_s(np.random.default_rng(3), 100_000, point, period)
    drain = 8.0
    excess = point.arrivals_per_s - drain
    # Waits are uniform on [0, excess * period / drain) = [0, 150) s, plus Exp(1) service.
    assert latency.mean() == pytest.approx(excess * period / drain / 2 + 1.0, rel=0.005)
    assert np.quantile(latency, 0.5) == pytest.approx(75.0 + math.log(2), rel=0.01)
    assert latency.max() < 150.0 + 20.0
    assert latency.min() >= 0.0


def test_sampling_is_reproducible_and_uses_only_the_given_stream() -> None:
    point = stable_point(64, 0.9, 2.0)
    first = sample_latency_s(np.random.default_rng(42), 1000, point, 60.0)
    np.random.seed(0)
    second = sample_latency_s(np.random.default_rng(42), 1000, point, 60.0)
    assert np.array_equal(first, second)
    other = sample_latency_s(np.random.default_rng(43), 1000, point, 60.0)
    assert not np.array_equal(first, other)
    assert sample_latency_s(np.random.default_rng(1), 0, point, 60.0).shape == (0,)
    with pytest.raises(ValueError, match="n must"):
        sample_latency_s(np.random.default_rng(1), -1, point, 60.0)


@given(
    servers=st.integers(1, 5000),
    load=st.floats(0.0, 1.5),
    service_s=st.floats(1e-4, 1e3),
    n=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_latency_samples_are_finite_and_non_negative(
    servers: int, load: float, service_s: float, n: int, seed: int
) -> None:
    point = stable_point(servers, load, service_s)
    if load >= 1.0:
        point = ServicePoint(**{**point.__dict__, "wait_probability": 1.0})
    latency = sample_latency_s(np.random.default_rng(seed), n, point, period_s=100.0)
    assert latency.shape == (n,)
    assert np.all(np.isfinite(latency))
    assert np.all(latency >= 0.0)


# --- Latency histogram ------------------------------------------------------------------


def lognormal_ms(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(mean=math.log(50.0), sigma=1.2, size=n)


def test_histogram_quantiles_are_within_half_a_percent_of_numpy() -> None:
    values = lognormal_ms(1, 1_000_000)
    histogram = LatencyHistogram()
    histogram.add(values)
    assert histogram.total == 1_000_000
    for q in (0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999):
        exact = float(np.quantile(values, q))
        assert histogram.quantile(q) == pytest.approx(exact, rel=0.005)
        assert abs(histogram.quantile(q) / exact - 1) < 0.0025  # under one bin width
    assert histogram.quantile(0.0) == values.min()
    assert histogram.quantile(1.0) == values.max()


def test_histogram_fraction_at_most_matches_the_empirical_cdf() -> None:
    values = lognormal_ms(2, 200_000)
    histogram = LatencyHistogram()
    histogram.add(values)
    for x in (1.0, 10.0, 50.0, 200.0, 1000.0):
        assert histogram.fraction_at_most(x) == pytest.approx(np.mean(values <= x), abs=1e-3)
    assert histogram.fraction_at_most(values.max()) == 1.0
    assert histogram.fraction_at_most(values.min() / 2) == 0.0
    assert histogram.fraction_at_most(histogram.quantile(0.9)) == pytest.approx(0.9, abs=1e-4)


def test_histogram_weights_spread_evenly_over_each_sample() -> None:
    histogram = LatencyHistogram()
    histogram.add(np.full(100, 10.0), weight=900.0)  # 100 values for 900 requests
    histogram.add(np.full(1000, 1000.0), weight=100.0)  # 1000 values for 100 requests
    assert histogram.total == 1000.0
    assert histogram.quantile(0.5) == pytest.approx(10.0, rel=0.003)
    assert histogram.quantile(0.95) == pytest.approx(1000.0, rel=0.003)
    assert histogram.fraction_at_most(100.0) == pytest.approx(0.9)
    histogram.add(np.array([5.0]), weight=0.0)
    assert histogram.total == 1000.0
    assert histogram.min_ms == 10.0


def test_merging_equals_adding_both() -> None:
    a, b = lognormal_ms(3, 50_000), lognormal_ms(4, 20_000) * 3
    left, right, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    left.add(a, weight=500.0)
    right.add(b, weight=2000.0)
    both.add(a, weight=500.0)
    both.add(b, weight=2000.0)
    merged = LatencyHistogram()
    merged.merge(left)
    merged += right
    assert np.allclose(merged.bin_weights, both.bin_weights, rtol=1e-12, atol=1e-12)
    assert merged.total == both.total == 2500.0
    assert (merged.min_ms, merged.max_ms) == (both.min_ms, both.max_ms)
    for q in (0.1, 0.5, 0.99):
        assert merged.quantile(q) == pytest.approx(both.quantile(q), rel=1e-12)
    # Merging an empty histogram changes nothing; the source is left unchanged.
    merged += LatencyHistogram()
    assert merged.total == 2500.0
    assert right.total == 2000.0


def test_histogram_empty_and_out_of_range() -> None:
    histogram = LatencyHistogram()
    assert histogram.total == 0
    assert histogram.quantile(0.5) is None
    assert histogram.min_ms is None and histogram.max_ms is None
    assert math.isnan(histogram.fraction_at_most(1.0))
    histogram.add(np.array([]), weight=0.0)
    histogram.add(np.array([1e-6, 1e9]))
    assert histogram.quantile(0.0) == 1e-6
    assert histogram.quantile(1.0) == 1e9
    assert 1e-6 <= histogram.quantile(0.25) <= 1e-3
    assert 1e7 <= histogram.quantile(0.75) <= 1e9
    zeros = LatencyHistogram()
    zeros.add(np.zeros(10))
    assert zeros.quantile(0.5) == 0.0
    assert zeros.fraction_at_most(0.0) == 1.0


def test_histogram_rejects_bad_input() -> None:
    histogram = LatencyHistogram()
    with pytest.raises(ValueError, match="values_ms"):
        histogram.add(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="values_ms"):
        histogram.add(np.array([np.nan]))
    with pytest.raises(ValueError, match="weight"):
        histogram.add(np.array([]), weight=3.0)
    with pytest.raises(ValueError, match="weight"):
        histogram.add(np.array([1.0]), weight=-1.0)
    with pytest.raises(ValueError, match="q"):
        histogram.quantile(1.01)
    assert histogram.total == 0


def test_histogram_bins_are_fixed_and_read_only() -> None:
    edges = LatencyHistogram.EDGES_MS
    assert edges[0] == pytest.approx(1e-3) and edges[-1] == pytest.approx(1e7)
    assert np.allclose(edges[1:] / edges[:-1], 10 ** (1 / 1000))
    assert 10 ** (1 / 1000) - 1 < 0.0025
    with pytest.raises(ValueError):
        edges[0] = 1.0


@given(
    values=st.lists(st.floats(0.0, 1e8, allow_nan=False), min_size=1, max_size=50),
    weight=st.floats(0.1, 1e6),
    qs=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=10),
)
def test_histogram_quantiles_are_monotone_and_bounded(
    values: list[float], weight: float, qs: list[float]
) -> None:
    histogram = LatencyHistogram()
    histogram.add(np.array(values), weight=weight)
    answers = [histogram.quantile(q) for q in sorted(qs)]
    assert all(a is not None for a in answers)
    assert answers == sorted(answers)
    assert min(values) <= answers[0] and answers[-1] <= max(values)
    fractions = [histogram.fraction_at_most(a) for a in answers]
    assert fractions == sorted(fractions)


def test_end_to_end_service_point_to_histogram_p99() -> None:
    spec = ServingSpec(LLAMA_70B, tp=8, max_batch=64, prompt_tokens=1000, output_tokens=200)
    point = service_point(spec, 4, 70.0, H100.tflops_bf16_dense, H100.hbm_tbps)
    assert 0 < point.wait_probability < 1
    histogram = LatencyHistogram()
    rng = np.random.default_rng(2024)
    for _ in range(4):  # four epochs of 50,000 samples, each standing for 3,600 s of requests
        latency_ms = 1e3 * sample_latency_s(rng, 50_000, point, period_s=3600.0)
        histogram.add(latency_ms, weight=70.0 * 3600.0)
    assert histogram.total == pytest.approx(4 * 70.0 * 3600.0)
    for q in (0.5, 0.99):
        analytic_ms = 1e3 * latency_quantile_s(point.servers, 70.0, point.service_s, q)
        assert histogram.quantile(q) == pytest.approx(analytic_ms, rel=0.01)
