"""Electricity prices: the power block's models and exact cost integrals of price curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from sim.market.energy import PriceCurve, carbon_kg, price_curve
from sim.scenario.power import (
    CarbonPrice,
    FlatPowerPrice,
    PowerPrice,
    RandomWalkPowerPrice,
    SitePower,
    TimeOfUsePowerPrice,
)

# {0: 40, 8: 100, 20: 60}: 40 until 8 h, 100 until 20 h, 60 until midnight.
TOU = TimeOfUsePowerPrice(
    kind="time_of_use",
    periods=[
        {"start_hour": 0, "usd_per_mwh": 40},
        {"start_hour": 8, "usd_per_mwh": 100},
        {"start_hour": 20, "usd_per_mwh": 60},
    ],
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def walk(**fields) -> RandomWalkPowerPrice:
    return RandomWalkPowerPrice(kind="random_walk", **fields)


def direct_cost(curve: PriceCurve, start: float, end: float, mw: float) -> float:
    """Cost by walking every step and adding price × overlap: the slow reference."""
    hours = [*curve.breakpoints_hours.tolist(), math.inf]
    parts = []
    for i, price in enumerate(curve.usd_per_mwh):
        overlap = min(end, hours[i + 1]) - max(start, hours[i])
        if overlap > 0:
            parts.append(price * overlap)
    return mw * math.fsum(parts)


# --------------------------------------------------------------------------- flat


def test_flat_price_costs_price_times_energy():
    curve = price_curve(FlatPowerPrice(kind="flat", usd_per_mwh=50), 24.0, rng())
    assert curve.cost_usd(0.0, 10.0, 2.0) == 1000.0
    assert curve.cost_usd(3.0, 13.0, 2.0) == 1000.0
    assert curve.at(0.0) == 50.0
    assert curve.at(1e6) == 50.0  # the last price holds past the horizon
    assert curve.mean_usd_per_mwh(2.0, 7.0) == 50.0


def test_flat_and_time_of_use_draw_nothing_from_the_stream():
    for config in (FlatPowerPrice(kind="flat", usd_per_mwh=50), TOU):
        stream = rng(3)
        before = stream.bit_generator.state
        price_curve(config, 100.0, stream)
        assert stream.bit_generator.state == before


# --------------------------------------------------------------------------- time of use


def test_time_of_use_full_day():
    curve = price_curve(TOU, 48.0, rng())
    assert curve.cost_usd(0.0, 24.0, 1.0) == pytest.approx(40 * 8 + 100 * 12 + 60 * 4)
    assert curve.cost_usd(24.0, 48.0, 1.0) == pytest.approx(1760.0)
    assert curve.cost_usd(0.0, 24.0, 2.5) == pytest.approx(2.5 * 1760.0)
    assert curve.mean_usd_per_mwh(0.0, 24.0) == pytest.approx(1760.0 / 24.0)


def test_time_of_use_over_36_hours_from_6():
    curve = price_curve(TOU, 48.0, rng())
    # 6-8: 2×40, 8-20: 12×100, 20-24: 4×60, 24-32: 8×40, 32-42: 10×100.
    expected = 2 * 40 + 12 * 100 + 4 * 60 + 8 * 40 + 10 * 100
    assert expected == 2840
    assert curve.cost_usd(6.0, 42.0, 1.0) == pytest.approx(2840.0, rel=1e-12)
    # Within one period, and across a single boundary.
    assert curve.cost_usd(9.0, 9.5, 4.0) == pytest.approx(4 * 0.5 * 100)
    assert curve.cost_usd(7.0, 9.0, 1.0) == pytest.approx(40 + 100)


def test_time_of_use_price_at_boundaries_is_the_new_price():
    curve = price_curve(TOU, 48.0, rng())
    assert curve.at(0.0) == 40.0
    assert curve.at(7.999) == 40.0
    assert curve.at(8.0) == 100.0
    assert curve.at(19.999) == 100.0
    assert curve.at(20.0) == 60.0
    assert curve.at(24.0) == 40.0
    assert curve.at(32.0) == 100.0
    assert curve.at(44.0) == 60.0


def test_time_of_use_wraps_round_midnight():
    config = TimeOfUsePowerPrice(
        kind="time_of_use",
        periods=[{"start_hour": 6, "usd_per_mwh": 50}, {"start_hour": 18, "usd_per_mwh": 80}],
    )
    curve = price_curve(config, 30.0, rng())
    assert curve.at(0.0) == 80.0
    assert curve.at(5.5) == 80.0
    assert curve.at(6.0) == 50.0
    assert curve.at(18.0) == 80.0
    assert curve.at(26.0) == 80.0
    assert curve.at(30.0) == 50.0
    # 0-6: 6×80, 6-18: 12×50, 18-24: 6×80.
    assert curve.cost_usd(0.0, 24.0, 1.0) == pytest.approx(480 + 600 + 480)
    # 3-6: 3×80, 6-18: 12×50, 18-30: 12×80.
    assert curve.cost_usd(3.0, 30.0, 1.0) == pytest.approx(240 + 600 + 960)


def test_time_of_use_covers_the_whole_horizon():
    curve = price_curve(TOU, 50.0, rng())
    # Every hour up to the horizon (and the day after) follows the schedule.
    for hour in np.arange(0.0, 72.0, 0.5):
        of_day = hour % 24
        expected = 40.0 if of_day < 8 else 100.0 if of_day < 20 else 60.0
        assert curve.at(float(hour)) == expected, hour


def test_single_period_is_flat():
    config = TimeOfUsePowerPrice(
        kind="time_of_use", periods=[{"start_hour": 13, "usd_per_mwh": 70}]
    )
    curve = price_curve(config, 100.0, rng())
    assert set(curve.usd_per_mwh.tolist()) == {70.0}
    assert curve.cost_usd(0.0, 100.0, 1.0) == pytest.approx(7000.0)


# --------------------------------------------------------------------------- random walk


def test_random_walk_same_seed_same_curve():
    config = walk(start_usd_per_mwh=80, volatility=0.1, step="15m")
    a = price_curve(config, 48.0, rng(42))
    b = price_curve(config, 48.0, rng(42))
    c = price_curve(config, 48.0, rng(43))
    np.testing.assert_array_equal(a.usd_per_mwh, b.usd_per_mwh)
    np.testing.assert_array_equal(a.breakpoints_hours, b.breakpoints_hours)
    assert not np.array_equal(a.usd_per_mwh, c.usd_per_mwh)
    # 48 h in 15-minute steps: 192 steps starting at 0, 0.25, ..., 47.75.
    assert len(a) == 192
    assert a.breakpoints_hours[-1] == 47.75
    assert a.at(0.0) == 80.0


def test_random_walk_longer_horizon_extends_the_same_walk():
    config = walk(start_usd_per_mwh=80, volatility=0.2)
    short = price_curve(config, 10.0, rng(5))
    long = price_curve(config, 30.0, rng(5))
    assert len(short) == 10 and len(long) == 30
    np.testing.assert_array_equal(short.usd_per_mwh, long.usd_per_mwh[:10])


def test_random_walk_without_volatility_or_reversion_is_constant():
    curve = price_curve(walk(start_usd_per_mwh=65, volatility=0), 24.0, rng(1))
    assert np.all(curve.usd_per_mwh == 65.0)
    assert curve.cost_usd(0.0, 24.0, 1.0) == pytest.approx(65.0 * 24)


def test_random_walk_reverts_geometrically_to_the_mean():
    config = walk(start_usd_per_mwh=100, volatility=0, mean_usd_per_mwh=50, reversion_per_hour=0.5)
    prices = price_curve(config, 6.0, rng()).usd_per_mwh
    # log p_k = log 50 + 0.5**k × log(100 / 50), so p_k = 50 × 2 ** (0.5 ** k).
    assert prices[0] == pytest.approx(100.0)
    assert prices[1] == pytest.approx(50 * 2**0.5)  # 70.71
    assert prices[2] == pytest.approx(50 * 2**0.25)  # 59.46
    assert prices[5] == pytest.approx(50 * 2 ** (0.5**5))
    assert np.all(np.diff(prices) < 0) and np.all(prices > 50)
    # A half-hour step closes 0.5 × 0.5 of the log-gap each step.
    half = price_curve(config.model_copy(update={"step": 0.5}), 6.0, rng()).usd_per_mwh
    assert half[1] == pytest.approx(50 * 2**0.75)
    assert half[2] == pytest.approx(50 * 2 ** (0.75**2))


def test_random_walk_follows_its_formula_with_the_stream_normals():
    config = walk(
        start_usd_per_mwh=90,
        volatility=0.3,
        mean_usd_per_mwh=60,
        reversion_per_hour=0.2,
        step="30m",
    )
    curve = price_curve(config, 5.0, rng(11))
    z = rng(11).standard_normal(9)
    log_p = [math.log(90.0)]
    for k in range(9):
        pull = 0.2 * 0.5 * (math.log(60.0) - log_p[-1])
        log_p.append(log_p[-1] + pull + 0.3 * math.sqrt(0.5) * z[k])
    np.testing.assert_allclose(curve.usd_per_mwh, np.exp(log_p), rtol=1e-12)
    np.testing.assert_allclose(curve.breakpoints_hours, 0.5 * np.arange(10))


def test_random_walk_floor_holds():
    # Reverting from 100 to 1 by half the log-gap an hour: 100, 10, 3.16, ... floored at 30.
    config = walk(
        start_usd_per_mwh=100,
        volatility=0,
        mean_usd_per_mwh=1,
        reversion_per_hour=0.5,
        floor_usd_per_mwh=30,
    )
    prices = price_curve(config, 5.0, rng()).usd_per_mwh
    np.testing.assert_allclose(prices, [100, 30, 30, 30, 30])
    # With volatility the floor still holds at every step, and is reached.
    noisy = walk(start_usd_per_mwh=40, volatility=1.0, floor_usd_per_mwh=25)
    prices = price_curve(noisy, 500.0, rng(9)).usd_per_mwh
    assert prices.min() == 25.0
    assert prices.max() > 40.0


def test_random_walk_cost_is_the_sum_over_steps():
    config = walk(start_usd_per_mwh=70, volatility=0.4, step="45m")
    curve = price_curve(config, 10.5, rng(2))
    assert len(curve) == 14
    start, end, mw = 0.3, 9.1, 3.0
    expected = 0.0
    for k, price in enumerate(curve.usd_per_mwh):
        lo, hi = 0.75 * k, 0.75 * (k + 1)
        expected += price * max(0.0, min(end, hi) - max(start, lo))
    assert curve.cost_usd(start, end, mw) == pytest.approx(mw * expected, rel=1e-12)
    whole = sum(price * 0.75 for price in curve.usd_per_mwh)
    assert curve.cost_usd(0.0, 10.5, 1.0) == pytest.approx(whole, rel=1e-12)


# --------------------------------------------------------------------------- carbon


def test_carbon_adds_its_price_to_every_mwh():
    carbon = CarbonPrice(usd_per_tonne=80, grid_kg_per_mwh=400)
    assert carbon.usd_per_mwh == pytest.approx(32.0)  # 80 × 400 / 1000
    flat = price_curve(FlatPowerPrice(kind="flat", usd_per_mwh=50), 24.0, rng(), carbon=carbon)
    assert flat.at(5.0) == pytest.approx(82.0)
    assert flat.cost_usd(0.0, 10.0, 2.0) == pytest.approx(20 * 82.0)
    tou = price_curve(TOU, 24.0, rng(), carbon=carbon)
    assert tou.cost_usd(0.0, 24.0, 1.0) == pytest.approx(1760.0 + 24 * 32.0)
    assert carbon_kg(20.0, carbon) == pytest.approx(8000.0)
    assert carbon_kg(20.0, None) == 0.0


def test_carbon_shifts_a_random_walk_without_changing_its_draws():
    config = walk(start_usd_per_mwh=70, volatility=0.4)
    carbon = CarbonPrice(usd_per_tonne=50, grid_kg_per_mwh=300)
    bare = price_curve(config, 12.0, rng(4))
    taxed = price_curve(config, 12.0, rng(4), carbon=carbon)
    np.testing.assert_allclose(taxed.usd_per_mwh, bare.usd_per_mwh + 15.0, rtol=1e-12)


# --------------------------------------------------------------------------- the curve itself


def test_integral_is_vectorised_and_matches_cost():
    curve = price_curve(TOU, 48.0, rng())
    integral = curve.integral_usd_per_mw(np.array([0.0, 8.0, 10.0, 24.0, 30.0]))
    np.testing.assert_allclose(integral, [0, 320, 520, 1760, 1760 + 240])
    assert isinstance(curve.integral_usd_per_mw(10.0), float)
    assert curve.integral_usd_per_mw(10.0) == pytest.approx(520.0)
    assert curve.cost_usd(10.0, 30.0, 2.0) == pytest.approx(2 * (2000.0 - 520.0))


def test_empty_interval_costs_nothing():
    curve = price_curve(TOU, 48.0, rng())
    for hours in (0.0, 8.0, 13.7, 100.0):
        assert curve.cost_usd(hours, hours, 5.0) == 0.0
    assert curve.mean_usd_per_mwh(8.0, 8.0) == 100.0


def test_curve_rejects_bad_arrays_and_intervals():
    with pytest.raises(ValueError, match="strictly increasing"):
        PriceCurve(np.array([0.0, 5.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        PriceCurve(np.array([0.0, 5.0, 5.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="first breakpoint must be at 0"):
        PriceCurve(np.array([1.0, 5.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="2 entries but usd_per_mwh has 3"):
        PriceCurve(np.array([0.0, 5.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="negative"):
        PriceCurve(np.array([0.0, 5.0]), np.array([1.0, -2.0]))
    with pytest.raises(ValueError, match="at least one"):
        PriceCurve(np.array([]), np.array([]))
    curve = PriceCurve(np.array([0.0, 5.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="before start_hours"):
        curve.cost_usd(4.0, 3.0, 1.0)
    with pytest.raises(ValueError, match="start_hours"):
        curve.cost_usd(-1.0, 3.0, 1.0)
    with pytest.raises(ValueError, match="mw"):
        curve.cost_usd(1.0, 3.0, -1.0)
    with pytest.raises(ValueError):
        curve.breakpoints_hours[0] = 3.0  # read-only


# --------------------------------------------------------------------------- properties


@st.composite
def curves(draw, grid: float | None = None):
    """A price curve; with ``grid``, breakpoints on multiples of it and integer prices."""
    n = draw(st.integers(1, 30))
    if grid is None:
        gaps = draw(st.lists(st.floats(1e-3, 50.0), min_size=n - 1, max_size=n - 1))
        prices = draw(
            st.lists(st.floats(0.0, 1000.0, allow_subnormal=False), min_size=n, max_size=n)
        )
    else:
        gaps = [
            grid * k for k in draw(st.lists(st.integers(1, 400), min_size=n - 1, max_size=n - 1))
        ]
        prices = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    hours = np.concatenate(([0.0], np.cumsum(gaps)))
    return PriceCurve(hours, np.array(prices, dtype=float))


@given(curve=curves(), times=st.lists(st.floats(0.0, 2000.0), min_size=3, max_size=3))
def test_cost_is_additive_and_bounded(curve, times):
    a, b, c = sorted(times)
    mw = 2.5
    whole, left, right = (
        curve.cost_usd(a, c, mw),
        curve.cost_usd(a, b, mw),
        curve.cost_usd(b, c, mw),
    )
    # Cumulative sums carry a rounding error relative to the whole curve's cost, hence the
    # tiny absolute tolerance for intervals whose own cost is near zero.
    scale = mw * float(curve.usd_per_mwh.max()) * max(c, float(curve.breakpoints_hours[-1]))
    assert whole == pytest.approx(left + right, rel=1e-9, abs=1e-12 * scale)
    assert whole >= 0 and left >= 0 and right >= 0
    assert whole == pytest.approx(direct_cost(curve, a, c, mw), rel=1e-9, abs=1e-12 * scale)
    # Between the cheapest and dearest price in force over [a, c].
    lo, hi = np.searchsorted(curve.breakpoints_hours, [a, c], side="right") - 1
    in_force = curve.usd_per_mwh[lo : hi + 1]
    slack = 1e-9 * (abs(whole) + 1e-12 * scale)
    assert float(in_force.min()) * (c - a) * mw - slack <= whole
    assert whole <= float(in_force.max()) * (c - a) * mw + slack
    # And so between the curve's extreme prices.
    assert float(curve.usd_per_mwh.min()) * (c - a) * mw - slack <= whole
    assert whole <= float(curve.usd_per_mwh.max()) * (c - a) * mw + slack


@given(curve=curves(grid=0.25), ticks=st.lists(st.integers(0, 16_000), min_size=3, max_size=3))
def test_cost_is_exact_on_a_binary_grid(curve, ticks):
    # Quarter hours and whole-dollar prices are exact in floating point, so nothing rounds.
    a, b, c = (0.25 * t for t in sorted(ticks))
    assert curve.cost_usd(a, c, 1.0) == curve.cost_usd(a, b, 1.0) + curve.cost_usd(b, c, 1.0)
    assert curve.cost_usd(a, c, 1.0) == direct_cost(curve, a, c, 1.0)
    ends = np.array([a, c])
    i_a, i_c = curve.integral_usd_per_mw(ends)
    assert curve.cost_usd(a, c, 1.0) == i_c - i_a


@given(
    seed=st.integers(0, 2**32 - 1),
    volatility=st.floats(0.0, 1.0),
    step=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
    horizon=st.floats(0.0, 200.0),
)
def test_random_walk_curve_is_valid(seed, volatility, step, horizon):
    config = walk(start_usd_per_mwh=50, volatility=volatility, step=step, floor_usd_per_mwh=5)
    curve = price_curve(config, horizon, rng(seed))
    assert len(curve) == max(1, math.ceil(horizon / step))
    assert curve.breakpoints_hours[-1] < max(horizon, step)
    assert np.all(curve.usd_per_mwh >= 5.0)
    assert curve.usd_per_mwh[0] == 50.0


# --------------------------------------------------------------------------- models


def test_time_of_use_start_hours_must_increase():
    periods = [
        {"start_hour": 0, "usd_per_mwh": 40},
        {"start_hour": 8, "usd_per_mwh": 100},
        {"start_hour": 8, "usd_per_mwh": 60},
    ]
    with pytest.raises(ValidationError, match=r"periods\[2\]\.start_hour.*strictly increasing"):
        TimeOfUsePowerPrice(kind="time_of_use", periods=periods)
    periods[2]["start_hour"] = 5
    with pytest.raises(ValidationError, match=r"periods\[2\]\.start_hour \(5\.0\)"):
        TimeOfUsePowerPrice(kind="time_of_use", periods=periods)
    with pytest.raises(ValidationError):
        TimeOfUsePowerPrice(kind="time_of_use", periods=[{"start_hour": 24, "usd_per_mwh": 1}])
    with pytest.raises(ValidationError):
        TimeOfUsePowerPrice(kind="time_of_use", periods=[])


def test_random_walk_model_checks():
    with pytest.raises(ValidationError, match="needs mean_usd_per_mwh"):
        walk(start_usd_per_mwh=50, volatility=0.1, reversion_per_hour=0.5)
    with pytest.raises(ValidationError, match="overshoot"):
        walk(
            start_usd_per_mwh=50,
            volatility=0.1,
            mean_usd_per_mwh=40,
            reversion_per_hour=0.5,
            step="4h",
        )
    with pytest.raises(ValidationError):
        walk(start_usd_per_mwh=0, volatility=0.1)
    with pytest.raises(ValidationError):
        walk(start_usd_per_mwh=50, volatility=0.1, step=0)
    with pytest.raises(ValidationError):
        walk(start_usd_per_mwh=50, volatility=0.1, reversion_per_hour=1.5, mean_usd_per_mwh=5)


def test_site_power_reads_a_file_block():
    site = SitePower.model_validate(
        {
            "cap_mw": 12,
            "pue": 1.25,
            "host_watts_per_gpu": 150,
            "price": {
                "kind": "random_walk",
                "start_usd_per_mwh": 60,
                "volatility": 0.2,
                "step": "15m",
            },
            "carbon": {"usd_per_tonne": 90, "grid_kg_per_mwh": 350},
        }
    )
    assert site.policy == "throttle"
    assert isinstance(site.price, RandomWalkPowerPrice)
    assert site.price.step == 0.25
    assert site.model_dump(mode="json")["price"]["step"] == "15m"
    assert site.carbon.usd_per_mwh == pytest.approx(31.5)
    assert SitePower.model_validate(site.model_dump(mode="json")) == site


def test_site_power_checks():
    price = {"kind": "flat", "usd_per_mwh": 50}
    with pytest.raises(ValidationError, match="pue"):
        SitePower(cap_mw=10, price=price)  # pue is required
    with pytest.raises(ValidationError, match="pue"):
        SitePower(cap_mw=10, pue=0.9, price=price)
    with pytest.raises(ValidationError, match="cap_mw"):
        SitePower(cap_mw=0, pue=1.2, price=price)
    with pytest.raises(ValidationError, match="policy"):
        SitePower(cap_mw=10, pue=1.2, policy="shed", price=price)
    with pytest.raises(ValidationError):
        SitePower(cap_mw=10, pue=1.2, price={"kind": "hourly", "usd_per_mwh": 50})
    with pytest.raises(ValidationError, match="extra"):
        SitePower(cap_mw=10, pue=1.2, price=price, colour="green")
    with pytest.raises(ValidationError):
        FlatPowerPrice(kind="flat", usd_per_mwh=math.inf)
    adapter = TypeAdapter(PowerPrice)
    assert isinstance(adapter.validate_python(price), FlatPowerPrice)
