"""SLA terms: validation, windows, hand-solved verdicts and the credit schedule's arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from sim.compare import Policy, compare, prepare, sla_table, wilson_interval
from sim.metrics.sla import TenantRecord, credit_percent, evaluate, window_bills, windows
from sim.report import print_comparison
from sim.runner import simulate
from sim.scenario import ScenarioError, load_scenario, scenario_from_text
from sim.scenario.sla import Sla
from tests.helpers import run_cli

HEADER = (
    "job_name,organization,gpu_model,cpu_request,gpu_request,worker_num,"
    "submit_time,duration,job_type\n"
)

SCENARIO = """
name: sla
horizon: 2d
provider:
  sites:
    - name: s
      clusters:
        - {name: c, nodes: 1, gpus_per_node: 8, accelerator: H100}
tenants:
  - name: acme
    contract:
      kind: on_demand
      price_per_gpu_hour: 2
      SLA
    workload:
      trace: {format: alibaba_spot_2026, path: job_info_df.csv}
"""

TERMS = """sla:
        window: WINDOW
        queue_wait_p99: 10h
        credits:
          - {past_limit_by: 0, percent: 10}
          - {past_limit_by: 0.25, percent: 25}
          - {past_limit_by: 1, percent: 50}"""


def _scenario(folder: Path, window: str | None = "day", first_s: int = 30 * 3600) -> Path:
    """One 8-GPU node; job 1 (8 GPUs) holds it from 0 h for ``first_s``; job 2 (8 GPUs,
    submitted at 1 h, 20 h long) waits for it."""
    rows = [("j1", 100, first_s), ("j2", 100 + 3600, 20 * 3600)]
    lines = [f"{n},o,H100,8,8,1,{s},{d},HP\n" for n, s, d in rows]
    (folder / "job_info_df.csv").write_text(HEADER + "".join(lines), encoding="utf-8")
    sla = "" if window is None else TERMS.replace("WINDOW", window)
    path = folder / "sla.yaml"
    path.write_text(SCENARIO.replace("SLA", sla), encoding="utf-8")
    return path


def _atlas(tmp_path: Path, window: str | None = "day", first_s: int = 30 * 3600):
    summary = simulate(load_scenario(_scenario(tmp_path, window, first_s))).summary
    return summary, summary["tenants"]["acme"]


def test_queue_wait_term_breaks_on_the_day_the_waiting_job_starts(tmp_path):
    # Job 2 starts at 30 h (day 2) after waiting 29 h; job 1 started at 0 h (day 1).
    summary, acme = _atlas(tmp_path, "day")
    term = acme["sla_terms"]["queue_wait_p99"]
    assert term["windows"] == pytest.approx([0.0, 29.0])
    assert (term["windows_breached"], term["windows_total"]) == (1, 2)
    assert term["limit"] == 10.0
    assert term["measured"] == pytest.approx(0.99 * 29.0)  # both waits over the run
    assert term["held"] is False and acme["sla_held"] is False
    # Day 2: 29 h is 190 % past 10 h: the 50 % tier, of day 2's bill:
    # 8 GPUs x 24 h held (job 1 to 30 h, job 2 from 30 h) x $2 = $384 -> $192.
    assert acme["sla_credits_usd"] == pytest.approx(192.0)
    assert acme["revenue_gross_usd"] == pytest.approx(2 * 8 * 48)
    assert acme["revenue_usd"] == pytest.approx(2 * 8 * 48 - 192.0)
    assert summary["sla_credits_usd"] == pytest.approx(192.0)
    assert summary["revenue_usd"] == pytest.approx(768.0 - 192.0)
    assert summary["revenue_gross_usd"] == pytest.approx(768.0)
    assert summary["on_demand_revenue_usd"] == pytest.approx(576.0)


def test_a_start_exactly_at_midnight_counts_in_the_next_day(tmp_path):
    # Job 1 ends at 24 h exactly: job 2 starts at 24 h, in day 2, after 23 h.
    _, acme = _atlas(tmp_path, "day", first_s=24 * 3600)
    assert acme["sla_terms"]["queue_wait_p99"]["windows"] == pytest.approx([0.0, 23.0])
    # 23 h is 130 % past 10 h: 50 % of day 2's bill: job 2 holds 8 GPUs from 24 h to
    # 44 h (20 h long), 8 x 20 x $2 = $320 -> $160.
    assert acme["sla_credits_usd"] == pytest.approx(160.0)


def test_run_and_week_windows_take_one_window(tmp_path):
    for window in ("run", "week"):
        _, acme = _atlas(tmp_path, window)
        term = acme["sla_terms"]["queue_wait_p99"]
        assert term["windows"] == pytest.approx([0.99 * 29.0])
        assert term["windows_total"] == 1
        # 28.71 h is 187.1 % past 10 h: 50 % of the whole bill, 8 x 48 x $2 = $768.
        assert acme["sla_credits_usd"] == pytest.approx(384.0)


def test_no_terms_no_verdicts(tmp_path):
    summary, acme = _atlas(tmp_path, None)
    assert (acme["sla_held"], acme["sla_terms"], acme["sla_credits_usd"]) == (None, None, None)
    assert summary["sla_credits_usd"] is None
    assert acme["revenue_usd"] == acme["revenue_gross_usd"] == pytest.approx(768.0)
    assert summary["tenants"]["internal"]["sla_held"] is None


def test_summary_json_carries_the_verdicts(tmp_path):
    path = _scenario(tmp_path, "day")
    result = run_cli("run", str(path), "--out", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sla_credits_usd"] == pytest.approx(192.0)
    assert summary["tenants"]["acme"]["sla_terms"]["queue_wait_p99"]["windows_breached"] == 1


# --------------------------------------------------------------------------- evaluator


class _OnDemand:
    kind = "on_demand"
    price_per_gpu_hour = 1.0


def test_slowdown_and_pause_by_window_from_hand_built_pieces():
    # 8 GPUs at slowdown 1.0 (pause 1 %) from 0 to 30 h, then 1.5 (pause 8 %) to 48 h:
    # the slowdown term (<= 1.3) breaks at 30 h, in day 2 only.
    rec = TenantRecord(
        spans=[(0.0, 48.0, 8)],
        pieces=[(0.0, 30.0, 8, 1.0, 0.01), (30.0, 48.0, 8, 1.5, 0.08)],
    )
    sla = Sla(window="day", iteration_slowdown_p99=1.3, pause_fraction=0.05,
              credits=[{"past_limit_by": 0, "percent": 10}])  # fmt: skip
    out = evaluate(sla, _OnDemand(), rec, {"revenue_usd": 8 * 48.0}, 48.0)
    slow, pause = out["sla_terms"]["iteration_slowdown_p99"], out["sla_terms"]["pause_fraction"]
    assert slow["windows"] == [1.0, 1.5]
    assert slow["measured"] == 1.5  # 18 of 48 h is past the 99th percentile's 0.48 h
    # Day 2: 6 h at 1 % and 18 h at 8 %, by GPU-hours.
    assert pause["windows"] == pytest.approx([0.01, (6 * 0.01 + 18 * 0.08) / 24])
    assert pause["windows_breached"] == 1
    assert out["sla_held"] is False
    # One day in breach at 10 % of its bill: 8 GPUs x 24 h x $1.
    assert out["sla_credits_usd"] == pytest.approx(19.2)


def test_spot_interruptions_per_window():
    # 4 GPUs held 0-10 h and 12-30 h, preempted at 10 h: day 1 holds 4 x 22 = 88 GPU-hours.
    rec = TenantRecord(spans=[(0.0, 10.0, 4), (12.0, 30.0, 4)], preemptions=[10.0])
    sla = Sla(window="day", spot_interruptions_per_1000_gpu_hours=5)
    out = evaluate(sla, _OnDemand(), rec, {"revenue_usd": 4 * 28.0}, 48.0)
    term = out["sla_terms"]["spot_interruptions_per_1000_gpu_hours"]
    assert term["windows"] == pytest.approx([1000 / 88, 0.0])
    assert term["measured"] == pytest.approx(1000 / 112)
    assert out["sla_credits_usd"] == 0.0  # a breach without a credit schedule refunds nothing


def test_run_only_terms_are_null_per_day_and_measured_per_run():
    entry = {"usable_compute_fraction": 0.8, "revenue_usd": 100.0}
    day = evaluate(Sla(window="day", usable_compute_fraction=0.9), _OnDemand(),
                   TenantRecord(), entry, 48.0)  # fmt: skip
    term = day["sla_terms"]["usable_compute_fraction"]
    assert term["held"] is None and "not per day" in term["reason"]
    assert day["sla_held"] is None
    held = TenantRecord(spans=[(0.0, 12.5, 8)])  # 100 GPU-hours at $1
    run = evaluate(Sla(usable_compute_fraction=0.9, credits=[{"past_limit_by": 0.1,
                   "percent": 30}]), _OnDemand(), held, entry, 48.0)  # fmt: skip
    assert run["sla_terms"]["usable_compute_fraction"]["windows"] == [0.8]
    # 0.8 is 11.1 % below 0.9: past the 10 % tier, 30 % of $100.
    assert run["sla_credits_usd"] == pytest.approx(30.0)


def test_pause_without_a_fabric_figure_is_null_with_a_reason():
    rec = TenantRecord(spans=[(0.0, 5.0, 8)], pieces=[(0.0, 5.0, 8, 1.0, float("nan"))])
    out = evaluate(Sla(pause_fraction=0.05), _OnDemand(), rec, {"revenue_usd": 40.0}, 24.0)
    term = out["sla_terms"]["pause_fraction"]
    assert term["held"] is None and "PFC pause or credit stall" in term["reason"]
    assert out["sla_held"] is None and out["sla_credits_usd"] == 0.0


def test_credit_tiers_and_windows():
    sla = Sla(queue_wait_p99=1.0, credits=[{"past_limit_by": 0, "percent": 10},
              {"past_limit_by": 0.5, "percent": 25}])  # fmt: skip
    assert [credit_percent(sla, x) for x in (0.01, 0.5, 0.51)] == [10, 10, 25]
    assert windows("day", 60.0) == [(0.0, 24.0), (24.0, 48.0), (48.0, 60.0)]
    assert windows("week", 48.0) == [(0.0, 48.0)]
    assert windows("run", 48.0) == [(0.0, 48.0)]


BASE = """\
name: base
horizon: 2d
provider:
  sites:
    - name: s
      clusters:
        - {name: a, nodes: 4}
tenants:
  - name: acme
    contract: {kind: on_demand, SLA}
    workload: {arrivals: {kind: poisson, rate_per_hour: 1}, gpus: 8, duration: 2h}
"""


@pytest.mark.parametrize(
    ("sla", "message"),
    [
        ("sla: {p99: 1.2}", "f.yaml:10: tenants[0].contract.sla.p99: unknown field"),
        ("sla: {window: month, queue_wait_p99: 1h}", "tenants[0].contract.sla.window"),
        ("sla: {queue_wait_p99: soon}", "tenants[0].contract.sla.queue_wait_p99: invalid"),
        ("sla: {pause_fraction: 2}", "tenants[0].contract.sla.pause_fraction"),
        ("sla: {iteration_slowdown_p99: 0.5}", "tenants[0].contract.sla.iteration_slowdown"),
        ("sla: {window: day}", "tenants[0].contract.sla: names no term"),
        (
            "sla: {queue_wait_p99: 1h, credits: [{past_limit_by: 1, percent: 5}, "
            "{past_limit_by: 0, percent: 10}]}",
            "strictly increasing past_limit_by",
        ),
        (
            "sla: {queue_wait_p99: 1h, credits: [{past_limit_by: 0, percent: 150}]}",
            "tenants[0].contract.sla.credits[0].percent",
        ),
    ],
)
def test_bad_terms_name_the_field(sla, message):
    with pytest.raises(ScenarioError) as info:
        scenario_from_text(BASE.replace("SLA", sla), "f.yaml")
    assert message in "\n".join(info.value.problems)


def test_bad_terms_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.replace("SLA", "sla: {p99: 1.2}"), encoding="utf-8")
    result = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "sla.p99" in result.output


# --------------------------------------------------------------------------- compare


def test_wilson_interval_matches_the_textbook():
    # Wilson 95 % score intervals: 0/5 -> [0, 0.4345], 4/5 -> [0.3755, 0.9638].
    assert wilson_interval(0, 5) == pytest.approx((0.0, 0.0, 0.43449), abs=1e-4)
    assert wilson_interval(4, 5) == pytest.approx((0.8, 0.37553, 0.96378), abs=1e-4)
    assert wilson_interval(0, 0) == (None, None, None)


def test_sla_table_counts_seeds_whose_terms_held():
    def summary(held):
        terms = None if held == "none" else {"queue_wait_p99": {}}
        return {"tenants": {"internal": {"sla_terms": None, "sla_held": None},
                            "acme": {"sla_terms": terms, "sla_held": held}}}  # fmt: skip

    summaries = {("a", 1): summary(True), ("a", 2): summary(False), ("a", 3): summary(None)}
    summaries |= {("b", seed): summary("none") for seed in (1, 2, 3)}
    rows = sla_table(summaries, [Policy("a"), Policy("b")], [1, 2, 3])
    assert rows == [{"policy": "a", "tenant": "acme", "n": 2, "held": 1, "probability": 0.5,
                     "ci_low": pytest.approx(wilson_interval(1, 2)[1]),
                     "ci_high": pytest.approx(wilson_interval(1, 2)[2])}]  # fmt: skip


def test_compare_reports_the_probability_terms_hold(tmp_path):
    path = _scenario(tmp_path, "day")
    loose = Policy("loose", ("tenants.acme.contract.sla.queue_wait_p99=30h",))
    policies, seeds = prepare(path, [Policy("strict"), loose], 2)
    comparison = compare(path, policies, seeds, workers=1)
    # The trace is the same on every seed: day 2's 29 h wait breaks 10 h, never 30 h.
    assert [(r["policy"], r["held"], r["n"]) for r in comparison.sla] == [
        ("strict", 0, 2),
        ("loose", 2, 2),
    ]
    console = Console(width=200, record=True)
    print_comparison(comparison, ["revenue_usd"], console)
    text = console.export_text()
    assert "SLA terms held" in text
    assert "0.00 [0.00, 0.66] 0/2" in text and "1.00 [0.34, 1.00] 2/2" in text
    out = tmp_path / "cmp"
    result = run_cli("compare", str(path), "-p", "strict", "-p",
                     "loose=tenants.acme.contract.sla.queue_wait_p99=30h", "--seeds", "2",
                     "-j", "1", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "SLA terms held" in result.output
    document = json.loads((out / "comparison.json").read_text())
    assert [row["probability"] for row in document["sla"]] == [0.0, 1.0]


def test_the_run_table_shows_verdicts_and_credits(tmp_path):
    result = run_cli("run", str(_scenario(tmp_path, "day")), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "SLA credits USD" in result.output and "192" in result.output
    assert "SLA held" in result.output and "False" in result.output


def test_window_bills_of_a_reserved_block_and_a_market_priced_spot_tenant():
    class Reserved:
        kind, start, term = "reserved", 12.0, 24.0  # the block runs 12 h to 36 h

    class MarketSpot:
        kind, price_per_gpu_hour = "spot", None

    day = windows("day", 48.0)
    # $240 over its 24 h term: 12 h in each day.
    assert window_bills(Reserved(), TenantRecord(), day, 240.0, 48.0) == [120.0, 120.0]
    assert window_bills(MarketSpot(), TenantRecord(), day, 50.0, 48.0) is None
    held = TenantRecord(spans=[(20.0, 30.0, 2)])  # 8 GPU-hours in day 1, 12 in day 2, at $1
    assert window_bills(_OnDemand(), held, day, 20.0, 48.0) == [8.0, 12.0]
    sla = Sla(window="day", queue_wait_p99=1.0, credits=[{"past_limit_by": 0, "percent": 10}])
    late = TenantRecord(starts=[(30.0, 5.0)])  # one job started in day 2 after 5 h
    assert evaluate(sla, MarketSpot(), late, {"revenue_usd": 50.0}, 48.0)["sla_credits_usd"] is None
    assert evaluate(sla, Reserved(), late, {"revenue_usd": 240.0}, 48.0)["sla_credits_usd"] == 12.0
