"""Site power: draw, throttling and parking under a cap, energy bills, costs and margin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.market.power import nodes_to_park
from sim.runner import Simulation, simulate
from sim.scenario import ScenarioError, scenario_from_text

H100_IDLE_W, H100_TDP_W = 70.0, 700.0

# Four nodes of 8 H100 at one site, PUE 1.25, no host draw: idle 2.8 kW, all busy 28 kW.
SITE = """
name: power
seed: SEED
horizon: HORIZON
provider:
  sites:
    - name: s
      power: POWER
      clusters:
        - name: c
          nodes: 4
          capex: {usd_per_gpu: 30000, network_usd_per_gpu: 4000, service_life_years: 5}
tenants:
  - name: solo
    contract: {kind: on_demand, price_per_gpu_hour: 2.5}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 1000}
      gpus: 32
      duration: 10h
      max_jobs: 1
"""


def run(power: str, horizon: str = "40h", seed: int = 1, text: str = SITE):
    scenario = scenario_from_text(
        text.replace("POWER", power).replace("HORIZON", horizon).replace("SEED", str(seed)),
        "power.yaml",
    )
    sim = Simulation(scenario)
    return sim, sim.run()


def test_a_throttled_site_delivers_proportionally_less_compute():
    # 15.4 kW: room for 12,320 W at the GPUs, 2,240 W of it idle draw: busy GPUs get
    # 10,080 of their 20,160 dynamic watts, so they run at half speed.
    capped = "{cap_mw: 0.0154, pue: 1.25, price: {kind: flat, usd_per_mwh: 100}}"
    _, result = run(capped)
    job = result.jobs.iloc[0]
    assert job["end_hours"] - job["start_hours"] == pytest.approx(20.0)  # 10 h of work
    s = result.summary
    assert s["compute_speed_mean"] == pytest.approx((20.0 * 0.5 + (40 - 20.0)) / 40, abs=1e-3)
    assert s["power_mw_peak"] == pytest.approx(0.0154)
    # Energy: 15.4 kW while it runs, 2.8 kW idle otherwise, 100 USD/MWh.
    start = job["start_hours"]
    mwh = 0.0028 * start + 0.0154 * 20 + 0.0028 * (40 - start - 20)
    assert s["energy_mwh"] == pytest.approx(mwh)
    assert s["energy_usd"] == pytest.approx(100 * mwh)
    # Unthrottled, the same job takes 10 h at 28 kW.
    _, free = run("{cap_mw: 1, pue: 1.25, price: {kind: flat, usd_per_mwh: 100}}")
    fast = free.jobs.iloc[0]
    assert fast["end_hours"] - fast["start_hours"] == pytest.approx(10.0)
    assert free.summary["compute_speed_mean"] == 1.0
    assert free.summary["power_mw_peak"] == pytest.approx(0.028)
    # Same work either way; the throttled job held its GPUs twice as long.
    assert job["done_work_hours"] == fast["done_work_hours"] == 10.0
    assert job["run_hours"] == pytest.approx(2 * fast["run_hours"])


def test_park_powers_off_what_the_cap_cannot_run_at_full_power():
    # 14 kW runs two nodes at full power (7 kW each at PUE 1.25): two nodes are parked.
    assert nodes_to_park(0.014, 1.25, 0.0, [(4, 8, H100_TDP_W)]) == [2]
    assert nodes_to_park(0.028, 1.25, 0.0, [(4, 8, H100_TDP_W)]) == [0]
    assert nodes_to_park(0.012, 1.0, 100.0, [(2, 8, 700.0), (2, 4, 700.0)]) == [1, 1]
    text = SITE.replace("gpus: 32", "gpus: 16")
    _, result = run(
        "{cap_mw: 0.014, pue: 1.25, policy: park, price: {kind: flat, usd_per_mwh: 50}}", text=text
    )
    s = result.summary
    assert s["parked_gpu_hours"] == pytest.approx(16 * 40)
    assert s["compute_speed_mean"] == 1.0  # parking never throttles
    assert s["power_mw_peak"] == pytest.approx(0.014)
    job = result.jobs.iloc[0]
    assert job["end_hours"] - job["start_hours"] == pytest.approx(10.0)


def test_a_cap_below_the_idle_draw_is_refused():
    with pytest.raises(ScenarioError, match=r"power\.cap_mw: 0.001 MW does not cover"):
        run("{cap_mw: 0.001, pue: 1.25, price: {kind: flat, usd_per_mwh: 50}}")
    with pytest.raises(ScenarioError, match="cannot run even one node"):
        run("{cap_mw: 0.001, pue: 1.25, policy: park, price: {kind: flat, usd_per_mwh: 50}}")


def test_costs_revenue_and_margin_add_up():
    capped = "{cap_mw: 1, pue: 1.25, price: {kind: flat, usd_per_mwh: 100}}"
    _, result = run(capped)
    s = result.summary
    hours = 40
    per_gpu_hour = (30000 + 4000) / (5 * 8766)
    assert s["depreciation_usd"] == pytest.approx(32 * hours * 30000 / (5 * 8766))
    assert s["network_usd"] == pytest.approx(32 * hours * 4000 / (5 * 8766))
    solo = s["tenants"]["solo"]
    assert solo["revenue_usd"] == pytest.approx(2.5 * 320)
    busy_mwh = 32 * (H100_TDP_W * 1.25) / 1e6 * 10
    assert solo["energy_mwh"] == pytest.approx(busy_mwh)
    assert solo["cost_usd"] == pytest.approx(per_gpu_hour * 320 + 100 * busy_mwh)
    assert solo["margin_usd"] == pytest.approx(solo["revenue_usd"] - solo["cost_usd"])
    total = s["depreciation_usd"] + s["network_usd"] + s["energy_usd"]
    assert s["total_cost_usd"] == pytest.approx(total)
    assert s["internal_cost_usd"] == 0.0  # no internal demand here
    assert s["cost_usd"] == pytest.approx(total)
    assert s["margin_usd"] == pytest.approx(s["revenue_usd"] - total)
    assert s["margin_usd_per_gpu_hour"] == pytest.approx(s["margin_usd"] / 320)
    assert s["margin_usd_per_mw"] == pytest.approx(s["margin_usd"] / 1.0)
    # Without capex or power nothing is costed.
    plain = SITE.replace("      power: POWER\n", "").replace(
        "          capex: {usd_per_gpu: 30000, network_usd_per_gpu: 4000, service_life_years: 5}\n",
        "",
    )
    s = simulate(
        scenario_from_text(plain.replace("HORIZON", "40h").replace("SEED", "1"), "p.yaml")
    ).summary
    assert s["cost_usd"] is None and s["margin_usd"] is None and s["energy_mwh"] is None


MIXED = """
name: mixed
seed: SEED
horizon: 3d
provider:
  failures: {repair: 6h, spares: 1, rate_scale: 200}
  sites:
    - name: a
      power: POWER_A
      clusters:
        - {name: ca, nodes: 6, capex: {usd_per_gpu: 25000, service_life_years: 4}}
    - name: b
      power: POWER_B
      clusters:
        - {name: cb, nodes: 4, accelerator: MI300X}
        - {name: cc, nodes: 2, accelerator: {B200: 1, H200: 1}}
internal:
  inference: {gpus: 8, amplitude: 0.5, cluster: ca}
tenants:
  - name: res
    contract: {kind: reserved, gpus: 16, price_per_gpu_hour: 1.9}
    cluster: ca
    workload:
      arrivals: {kind: poisson, rate_per_hour: 1}
      gpus: {kind: choice, values: [4, 8, 16]}
      duration: {kind: exponential, mean: 3h}
  - name: od
    contract: {kind: on_demand, price_per_gpu_hour: 2.8}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 2}
      gpus: {kind: choice, values: [2, 8, 16, 24]}
      duration: {kind: exponential, mean: 4h}
      checkpoint_interval: 1h
  - name: sp
    contract: {kind: spot, price_per_gpu_hour: 1.5, notice: 2m}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 3}
      gpus: {kind: choice, values: [1, 4, 8]}
      duration: {kind: exponential, mean: 2h}
"""


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 1000),
    cap_a=st.floats(0.03, 0.08),
    cap_b=st.floats(0.03, 0.08),
    policy=st.sampled_from(["throttle", "park"]),
    price=st.sampled_from(
        [
            "{kind: flat, usd_per_mwh: 80}",
            "{kind: time_of_use, periods: [{start_hour: 0, usd_per_mwh: 40},"
            " {start_hour: 9, usd_per_mwh: 150}, {start_hour: 21, usd_per_mwh: 70}]}",
            "{kind: random_walk, start_usd_per_mwh: 90, volatility: 0.2, step: 1h}",
        ]
    ),
)
def test_power_cap_never_exceeded_and_energy_adds_up(seed, cap_a, cap_b, policy, price):
    def block(cap: float) -> str:
        return (
            f"{{cap_mw: {cap}, pue: 1.3, host_watts_per_gpu: 150, policy: {policy},"
            f" price: {price}, carbon: {{usd_per_tonne: 80, grid_kg_per_mwh: 400}}}}"
        )

    text = MIXED.replace("SEED", str(seed)).replace("POWER_A", block(cap_a))
    sim = Simulation(scenario_from_text(text.replace("POWER_B", block(cap_b)), "m.yaml"))
    result = sim.run()
    ledger = sim.market.power
    horizon = 72.0
    total_mwh = total_usd = 0.0
    for site in ledger.sites:
        log = np.array([(h, mw) for h, mw, _ in site.log])
        assert log[:, 1].max() <= site.cap_mw * (1 + 1e-9)  # never above the cap
        assert all(0 < speed <= 1 for _, _, speed in site.log)
        # The draw integrated over time is the energy attributed to owners and idle GPUs.
        ends = np.append(log[1:, 0], horizon)
        assert sum(site.energy_mwh.values()) == pytest.approx(
            np.sum(log[:, 1] * (ends - log[:, 0]))
        )
        usd = sum(site.prices.cost_usd(a, b, mw) for (a, mw), b in zip(log, ends, strict=True))
        assert sum(site.energy_usd.values()) == pytest.approx(usd)
        total_mwh += sum(site.energy_mwh.values())
        total_usd += usd
    s = result.summary
    assert s["energy_mwh"] == pytest.approx(total_mwh)
    assert s["energy_usd"] == pytest.approx(total_usd)
    assert s["carbon_tonnes"] == pytest.approx(total_mwh * 0.4)
    # Tenants' energy and revenue add up to the totals.
    owners = ledger.energy_by_owner("mwh")
    assert sum(owners.values()) == pytest.approx(total_mwh)
    tenants = s["tenants"]
    assert sum(t["revenue_usd"] or 0 for t in tenants.values()) == pytest.approx(s["revenue_usd"])
    parts = sum(
        s[f"{c}_gpu_hours"] for c in ("internal", "sold", "idle", "spare", "down", "parked")
    )
    assert parts == pytest.approx(s["capacity_gpu_hours"], rel=1e-9)
    if policy == "park":
        assert s["compute_speed_mean"] == 1.0
