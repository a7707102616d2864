"""Pricing and revenue: fixed contract prices, a spot price that follows the surplus."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.metrics.accounting import Accounting
from sim.policies.pricing import SurplusUtilisation, surplus_utilisation
from sim.runner import simulate
from sim.scenario import load_scenario
from sim.scenario.policies import SurplusUtilisationPricing

PRICED = [
    "horizon=12h",
    "tenants.acme.contract.price_per_gpu_hour=2.1",
    "tenants.bolt.contract.price_per_gpu_hour=3.0",
    "tenants.drift.contract.price_per_gpu_hour=1.2",
]
UNPRICED = [f"tenants.{t}.contract.price_per_gpu_hour=null" for t in ("acme", "bolt", "drift")]
MARKET = (
    "policies.pricing={kind: surplus_utilisation, floor_per_gpu_hour: 0.5, "
    "ceiling_per_gpu_hour: 3.0}"
)


def test_fixed_prices_pay_for_what_each_contract_sells(quickstart_path):
    s = simulate(load_scenario(quickstart_path, PRICED)).summary
    tenants = s["tenants"]
    acme, bolt, drift = tenants["acme"], tenants["bolt"], tenants["drift"]
    # A reserved block pays for its whole term, used or not.
    assert acme["revenue_usd"] == pytest.approx(2.1 * acme["sold_gpu_hours"], rel=1e-12)
    assert acme["sold_gpu_hours"] > acme["allocated_gpu_hours"]
    assert bolt["revenue_usd"] == pytest.approx(3.0 * bolt["allocated_gpu_hours"], rel=1e-12)
    assert drift["revenue_usd"] == pytest.approx(1.2 * drift["allocated_gpu_hours"], rel=1e-9)
    assert drift["spot_price_usd_mean"] == pytest.approx(1.2)
    assert tenants["internal"]["revenue_usd"] is None
    # Revenue adds up across tenants and across contract classes.
    parts = [s[f"{k}_revenue_usd"] for k in ("reserved", "on_demand", "spot")]
    assert s["revenue_usd"] == pytest.approx(sum(parts), rel=1e-12)
    assert s["revenue_usd"] == pytest.approx(
        sum(t["revenue_usd"] for t in tenants.values() if t["revenue_usd"] is not None)
    )
    assert s["revenue_usd"] == pytest.approx(
        2.1 * s["reserved_gpu_hours"] + 3.0 * s["on_demand_gpu_hours"] + 1.2 * s["spot_gpu_hours"],
        rel=1e-9,
    )


def test_no_price_means_no_revenue_figure(quickstart_path):
    s = simulate(load_scenario(quickstart_path, ["horizon=6h", *UNPRICED])).summary
    assert s["revenue_usd"] is None and s["spot_revenue_usd"] is None
    assert all(t["revenue_usd"] is None for t in s["tenants"].values())


def test_the_market_price_is_integrated_exactly_as_gpus_change_hands():
    config = SurplusUtilisationPricing(
        kind="surplus_utilisation", floor_per_gpu_hour=1.0, ceiling_per_gpu_hour=5.0
    )
    pricing = SurplusUtilisation(config)
    accounting = Accounting(10, prices={"s": lambda gpus: pricing.spot_price(None, gpus)})
    accounting.move(0.0, 2, "idle", "reserved")  # the surplus is 8 GPUs
    accounting.move(0.0, 4, "idle", "spot")
    accounting.hold(0.0, "s", "allocated", 4)  # u = 4/8 for one hour: 3 USD/GPU-h
    accounting.move(1.0, 2, "idle", "on_demand")  # u = 6/8 for two hours: 4 USD/GPU-h
    accounting.advance(3.0)
    assert accounting.tenant_usd["s"] == pytest.approx(4 * 3.0 * 1 + 4 * 4.0 * 2, rel=1e-12)


def test_surplus_utilisation_counts_only_the_surplus():
    gpus = {"internal": 4, "reserved": 2, "on_demand": 1, "spot": 1, "idle": 1, "down": 1}
    assert surplus_utilisation(gpus) == pytest.approx(2 / 3)
    assert surplus_utilisation({**gpus, "idle": 0, "on_demand": 0, "spot": 0}) == 1.0


def test_a_busier_surplus_makes_spot_dearer(quickstart_path):
    base = [*PRICED[:3], UNPRICED[2], MARKET]
    calm = simulate(load_scenario(quickstart_path, base)).summary["tenants"]["drift"]
    busy = simulate(
        load_scenario(quickstart_path, [*base, "tenants.bolt.workload.arrivals.rate_per_hour=30"])
    ).summary["tenants"]["drift"]
    for figures in (calm, busy):
        assert 0.5 <= figures["spot_price_usd_mean"] <= 3.0
    assert busy["spot_price_usd_mean"] > calm["spot_price_usd_mean"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([MARKET, "tenants.drift.contract.price_per_gpu_hour=1"], "spot pays the surplus"),
        (
            [
                "policies.pricing={kind: surplus_utilisation, floor_per_gpu_hour: 4, "
                "ceiling_per_gpu_hour: 3}"
            ],
            "is above ceiling_per_gpu_hour",
        ),
        (["tenants.bolt.contract.price_per_gpu_hour=-1"], "price_per_gpu_hour"),
    ],
)
def test_bad_prices_exit_2(tmp_path, quickstart_path, overrides, message):
    args = ["run", str(quickstart_path), "--out", str(tmp_path / "r")]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
