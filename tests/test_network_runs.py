"""Scenarios on a modelled network: validation of layouts and topologies, and a full run."""

from __future__ import annotations

import pytest

from sim.runner import simulate
from sim.scenario import ScenarioError, scenario_from_text

NETWORK_RUN = """
name: net
horizon: 1d
seed: 3
provider:
  sites:
    - name: east
      clusters:
        - name: zone
          nodes: 16
          gpus_per_node: 8
          accelerator: H100
          fabric:
            kind: network
            topology:
              kind: meta_ai_zone
              racks_per_pod: 4
              pods: 2
              ctsw_per_pod: 16
              atsw_per_plane: 2
            transport: {kind: roce, pfc: true, cc: TRANSPORT_CC}
tenants:
  - name: acme
    contract: {kind: on_demand}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 1}
      gpus: {kind: choice, values: [16, 32, 64]}
      duration: {kind: exponential, mean: 4h}
      training:
        model: {params_billion: 8, layers: 32, hidden: 4096, seq_len: 8192}
        tp: 8
  - name: plain
    contract: {kind: spot}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 1}
      gpus: 8
      duration: {kind: exponential, mean: 2h}
"""


def network_run(cc: str = "none") -> str:
    return NETWORK_RUN.replace("TRANSPORT_CC", cc)


@pytest.mark.parametrize("cc", ["none", "dcqcn"])
def test_a_run_on_a_modelled_network_reports_its_fabric(cc):
    s = simulate(scenario_from_text(network_run(cc), "net.yaml")).summary
    parts = s["internal_gpu_hours"] + s["sold_gpu_hours"] + s["idle_gpu_hours"]
    assert parts == pytest.approx(s["capacity_gpu_hours"], rel=1e-9)
    assert s["iteration_slowdown_p99"] >= s["iteration_slowdown_p50"] >= 1.0
    assert s["pfc_pause_fraction"] is not None and 0 <= s["pfc_pause_fraction"] <= 1
    assert (s["ecn_mark_fraction"] is None) == (cc == "none")
    assert s["fct_slowdown_p99"] >= 1.0
    acme, plain = s["tenants"]["acme"], s["tenants"]["plain"]
    assert acme["iteration_slowdown_p99"] >= 1.0
    # A slowed job does less work for its GPU-hours.
    if acme["iteration_slowdown_p50"] > 1.0:
        assert acme["usable_compute_fraction"] < 1.0
    # Jobs whose traffic is not modelled run at their ideal speed.
    assert plain["iteration_slowdown_p99"] == 1.0
    assert plain["pfc_pause_fraction"] is None


def test_same_seed_same_network_run():
    text = network_run()
    first = simulate(scenario_from_text(text, "net.yaml")).summary
    again = simulate(scenario_from_text(text, "net.yaml")).summary
    for key in ("iteration_slowdown_p99", "pfc_pause_fraction", "usable_gpu_hours"):
        assert first[key] == again[key]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("tp: 8", "tp: 3"), "workload.training: 16 GPUs do not split into tp x pp = 3"),
        (("nodes: 16", "nodes: 32"), "fabric.topology: has 128 hosts but the cluster has 256 GPUs"),
        (("accelerator: H100", "accelerator: Z9"), "unknown accelerator 'Z9'; known: A10, A100,"),
    ],
    ids=["layout", "hosts", "accelerator"],
)
def test_network_scenario_mistakes_are_named(change, message):
    text = network_run().replace(*change)
    with pytest.raises(ScenarioError) as caught:
        scenario_from_text(text, "net.yaml")
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("collectives", "message"),
    [
        ("{channels_per_nic: 0}", "fabric.collectives.channels_per_nic: Input should be greater"),
        ("{channels_per_nic: 65}", "fabric.collectives.channels_per_nic: Input should be less"),
        ("{channels: 2}", "fabric.collectives.channels: unknown field"),
    ],
)
def test_collective_library_mistakes_are_named(collectives, message):
    text = network_run().replace(
        "transport: {kind: roce,",
        f"collectives: {collectives}\n            transport: {{kind: roce,",
    )
    with pytest.raises(ScenarioError) as caught:
        scenario_from_text(text, "net.yaml")
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_more_channels_spread_a_run_over_more_paths():
    """NCCL_MIN_NCHANNELS-style: 16 channels per NIC give every hop 16 ECMP paths."""
    text = network_run()
    channels = text.replace(
        "transport: {kind: roce,",
        "collectives: {channels_per_nic: 16}\n            transport: {kind: roce,",
    )
    one = text.replace(
        "transport: {kind: roce,",
        "collectives: {channels_per_nic: 1}\n            transport: {kind: roce,",
    )
    default = simulate(scenario_from_text(text, "net.yaml")).summary["tenants"]["acme"]
    many = simulate(scenario_from_text(channels, "net.yaml")).summary["tenants"]["acme"]
    single = simulate(scenario_from_text(one, "net.yaml")).summary["tenants"]["acme"]
    assert single["iteration_slowdown_p99"] >= default["iteration_slowdown_p99"]
    assert default["iteration_slowdown_p99"] >= many["iteration_slowdown_p99"] >= 1.0
    assert single["iteration_slowdown_p99"] > many["iteration_slowdown_p99"]
