"""SLA terms of the provider's own served model: its serving block's ``sla``, the verdicts
in the ``internal`` entry of ``summary.json``, and the input it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from sim.compare import Policy, compare, prepare
from sim.report import print_comparison
from sim.runner import simulate
from sim.scenario import ScenarioError, scenario_from_text
from tests.helpers import run_cli

FLEET = """
name: fleet
horizon: 6h
seed: 4
provider:
  sites:
    - name: s
      clusters:
        - {name: c, nodes: 4, gpus_per_node: 8, accelerator: H100}
internal:
  inference:
    gpus: 16
    amplitude: 0
    serving:
      model: {params_billion: 70, layers: 80, hidden: 8192, kv_heads_ratio: 0.125}
      tp: 8
      max_batch: 64
      requests: {rate_per_second: 40, amplitude: 0.3, peak_hour: 4}
      slo: 10s
      SLA
"""


def _run(sla: str = "", overrides: tuple[str, ...] = ()) -> dict:
    """The run's ``internal`` entry and the overall figures, with ``sla`` on the fleet."""
    scenario = scenario_from_text(FLEET.replace("SLA", sla), "fleet.yaml", overrides)
    return simulate(scenario).summary


@pytest.fixture(scope="module")
def measured() -> dict:
    """The fleet's own figures, from a run without terms."""
    internal = _run()["tenants"]["internal"]
    assert internal["sla_terms"] is None and internal["sla_held"] is None
    return internal


@pytest.mark.parametrize(("factor", "held"), [(1.001, True), (0.999, False)])
def test_latency_ceiling_just_above_and_below_the_measured_p99(measured, factor, held):
    p99_ms = measured["inference_latency_ms_p99"]
    assert 1000.0 < p99_ms < 60000.0  # seconds: two 70B replicas at 40 requests a second
    summary = _run(f"sla: {{inference_latency_ms_p99: {p99_ms * factor!r}}}")
    internal = summary["tenants"]["internal"]
    term = internal["sla_terms"]["inference_latency_ms_p99"]
    assert term["limit"] == pytest.approx(p99_ms * factor)
    assert term["measured"] == p99_ms  # terms change nothing in the run
    assert term["windows"] == [p99_ms]
    assert (term["held"], term["reason"]) == (held, None)
    assert (term["windows_breached"], term["windows_total"]) == (0 if held else 1, 1)
    assert internal["sla_held"] is held
    assert internal["sla_credits_usd"] is None  # the provider bills nobody for its model
    assert summary["sla_credits_usd"] is None  # and no tenant has terms


@pytest.mark.parametrize(("factor", "held"), [(0.999, True), (1.001, False)])
def test_attainment_floor_just_below_and_above_the_measured_share(measured, factor, held):
    share = measured["inference_slo_attainment"]
    assert 0.5 < share < 0.999  # some requests miss the objective: the floor can break
    summary = _run(f"sla: {{inference_slo_attainment: {share * factor!r}}}")
    internal = summary["tenants"]["internal"]
    term = internal["sla_terms"]["inference_slo_attainment"]
    assert term["measured"] == share
    assert (term["held"], term["windows_breached"], term["windows_total"]) == (
        held,
        0 if held else 1,
        1,
    )
    assert internal["sla_held"] is held and internal["sla_credits_usd"] is None


def test_one_broken_term_breaks_the_fleets_terms(measured):
    p99_ms, share = measured["inference_latency_ms_p99"], measured["inference_slo_attainment"]
    ceiling, floor = p99_ms * 2, share * 1.001
    sla = f"sla: {{inference_latency_ms_p99: {ceiling!r}, inference_slo_attainment: {floor!r}}}"
    internal = _run(sla)["tenants"]["internal"]
    assert internal["sla_terms"]["inference_latency_ms_p99"]["held"] is True
    assert internal["sla_terms"]["inference_slo_attainment"]["held"] is False
    assert internal["sla_held"] is False


def test_a_day_window_leaves_the_run_only_terms_null_with_the_reason(measured):
    internal = _run("sla: {window: day, inference_latency_ms_p99: 1}")["tenants"]["internal"]
    term = internal["sla_terms"]["inference_latency_ms_p99"]
    assert term["held"] is None and term["windows_breached"] is None
    assert term["reason"] == (
        "the run records inference_latency_ms_p99 over the whole run only, not per day"
    )
    assert term["measured"] == measured["inference_latency_ms_p99"]
    assert term["windows_total"] == 1  # a 6 h run is one (cut) day
    assert internal["sla_held"] is None


def test_compare_gives_the_probability_the_fleets_terms_hold(tmp_path, measured):
    path = tmp_path / "fleet.yaml"
    ceiling = measured["inference_latency_ms_p99"] * 1.5
    path.write_text(FLEET.replace("SLA", f"sla: {{inference_latency_ms_p99: {ceiling!r}}}"))
    tight = Policy("tight", ("internal.inference.serving.sla.inference_latency_ms_p99=1",))
    policies, seeds = prepare(path, [Policy("loose"), tight], 2)
    comparison = compare(path, policies, seeds, workers=1)
    assert [(r["policy"], r["tenant"], r["held"], r["n"]) for r in comparison.sla] == [
        ("loose", "internal", 2, 2),
        ("tight", "internal", 0, 2),
    ]
    console = Console(width=200, record=True)
    print_comparison(comparison, ["inference_latency_ms_p99"], console)
    text = console.export_text()
    assert "SLA terms held" in text and "internal" in text
    assert "1.00 [0.34, 1.00] 2/2" in text and "0.00 [0.00, 0.66] 0/2" in text


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("sla", "message"),
    [
        (
            "sla: {queue_wait_p99: 2h, inference_slo_attainment: 0.9}",
            "fleet.yaml:20: internal.inference.serving.sla.queue_wait_p99: not a term "
            "measured for the provider's served model: inference_latency_ms_p99, "
            "inference_slo_attainment",
        ),
        (
            "sla: {pause_fraction: 0.05, inference_slo_attainment: 0.9}",
            "internal.inference.serving.sla.pause_fraction: not a term measured",
        ),
        (
            "sla: {inference_slo_attainment: 0.9, credits: [{past_limit_by: 0, percent: 10}]}",
            "internal.inference.serving.sla.credits: the provider refunds nobody",
        ),
        ("sla: {window: day}", "internal.inference.serving.sla: names no term"),
        ("sla: {inference_slo_attainment: 1.5}", "serving.sla.inference_slo_attainment"),
        ("sla: {latency: 5}", "internal.inference.serving.sla.latency: unknown field"),
    ],
)
def test_bad_terms_on_the_serving_block_name_the_field(sla, message):
    with pytest.raises(ScenarioError) as info:
        scenario_from_text(FLEET.replace("SLA", sla), "fleet.yaml")
    assert message in "\n".join(info.value.problems)


TENANT_SERVES = """
name: served
horizon: 2h
provider:
  sites:
    - name: s
      clusters:
        - {name: c, nodes: 2, gpus_per_node: 8, accelerator: H100}
tenants:
  - name: chat
    contract: {kind: on_demand}
    workload:
      kind: inference
      replicas: 1
      serving:
        model: {params_billion: 8, layers: 32, hidden: 4096}
        requests: {rate_per_second: 5}
        slo: 10s
        sla: {inference_latency_ms_p99: 800}
"""


def _exit(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_cli("run", str(path), "--out", str(tmp_path / "out"))
    return result.exit_code, result.output


def test_a_tenants_serving_block_refuses_terms_pointing_at_its_contract(tmp_path):
    code, output = _exit(tmp_path, TENANT_SERVES)
    assert code == 2 and "Traceback" not in output
    assert "bad.yaml:19: tenants[0].workload.serving.sla: a tenant's terms go in its " in output
    assert "contract's `sla` block" in output


@pytest.mark.parametrize(
    ("sla", "field"),
    [
        ("sla: {queue_wait_p99: 2h}", "internal.inference.serving.sla.queue_wait_p99"),
        (
            "sla: {inference_latency_ms_p99: 900, credits: []}",
            "internal.inference.serving.sla.credits",
        ),
    ],
)
def test_bad_serving_terms_exit_2_through_the_cli(tmp_path, sla, field):
    code, output = _exit(tmp_path, FLEET.replace("SLA", sla))
    assert code == 2 and "Traceback" not in output
    assert f"bad.yaml:20: {field}: " in output


def test_the_run_writes_the_fleets_verdicts(tmp_path, measured):
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET.replace("SLA", "sla: {inference_slo_attainment: 0.0}"))
    result = run_cli("run", str(path), "--out", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    internal = json.loads((tmp_path / "out" / "summary.json").read_text())["tenants"]["internal"]
    assert internal["sla_held"] is True and internal["sla_credits_usd"] is None
    assert internal["sla_terms"]["inference_slo_attainment"]["measured"] == pytest.approx(
        measured["inference_slo_attainment"]
    )
