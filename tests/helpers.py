"""Builders shared by several test modules: fabrics, a small Meta zone, the CLI runner.

Fixtures and scenario builders live in ``tests/conftest.py``; this module holds the
plain helpers that more than one test module imports, so that no test module imports
another.
"""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner, Result

from sim.cli import app
from sim.fabric.network import NetworkFabric
from sim.market.inventory import ClusterInfo, Inventory
from sim.scenario.fabric import FabricConfig, NetworkFabricConfig

_RUNNER = CliRunner()

FABRIC_RUN_FIELDS = ("message_bytes", "latency_samples", "seed")
"""Fields of a fabric file beside ``topology`` and ``transport``."""

ZONE = {
    "kind": "meta_ai_zone",
    "racks_per_pod": 4,
    "pods": 4,
    "ctsw_per_pod": 4,
    "atsw_per_plane": 2,
}
"""4 pods of 4 racks of 2 nodes of 8 GPUs (256 GPUs): Meta's layout in small."""

GPN = 8
"""GPUs per node of :data:`ZONE`."""

NODES = 32
"""Nodes of :data:`ZONE`."""


def run_cli(*args: str) -> Result:
    """Run ``surplus`` in-process with ``args``; exceptions propagate."""
    return _RUNNER.invoke(app, list(args), catch_exceptions=False)


def fabric(topology: dict[str, Any] | None = None, **settings: Any) -> FabricConfig:
    """A fabric file's model: a k = 4 fat tree at 100 Gb/s unless ``topology`` is given.

    Keyword arguments named in :data:`FABRIC_RUN_FIELDS` are the run's own
    settings; every other one is a transport field (``kind="roce"`` by default).
    """
    run = {k: v for k, v in settings.items() if k in FABRIC_RUN_FIELDS}
    transport = {k: v for k, v in settings.items() if k not in run}
    return FabricConfig.model_validate(
        {
            "topology": topology or {"kind": "fat_tree", "k": 4, "link_gbps": 100},
            "transport": transport or {"kind": "roce"},
            **run,
        }
    )


def zone_fabric() -> NetworkFabric:
    """The network of :data:`ZONE`, RoCE with PFC, H100 nodes."""
    config = NetworkFabricConfig.model_validate(
        {"kind": "network", "topology": ZONE, "transport": {"kind": "roce", "pfc": True}}
    )
    return NetworkFabric(config, gpus_per_node=GPN, accelerator="H100")


def zone_inventory(fabric: NetworkFabric) -> tuple[Inventory, ClusterInfo]:
    """An inventory of :data:`ZONE`'s nodes with their racks and pods as domains."""
    info = ClusterInfo(0, "zone", "site", 0, NODES, GPN, "H100")
    inventory = Inventory([info])
    inventory.set_domains(info, *fabric.node_domains(NODES))
    return inventory, info


def erlang_c(servers: int, load: float) -> float:
    """P(wait > 0) in M/M/c with ``servers`` servers at utilisation ``load``."""
    offered = servers * load
    term = 1.0
    total = 1.0
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers / (1 - load)
    return last / (total + last)


TAIL_SWEEP = """
name: tails
seed: 42
horizon: 12h
provider:
  sites:
    - name: east
      clusters:
        - {name: east-a, nodes: 16}
tenants:
  - name: bolt
    contract: {kind: on_demand, max_wait: 4h, price_per_gpu_hour: 2.79}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 3}
      gpus: {kind: choice, values: [1, 2, 4, 8, 16]}
      duration: {kind: lognormal, median: 1h, sigma: 1.0}
sweep:
  grid:
    tenants.bolt.workload.arrivals.rate_per_hour: [4, 40]
  seeds: 2
"""
"""A sweep of 2 arrival rates times 2 seeds; ``TAIL_SLA`` gives bolt a queue-wait term."""

TAIL_SLA = "tenants.bolt.contract.sla={queue_wait_p99: 30m}"
"""Bolt's terms: a queue-wait P99 of at most 30 minutes over the run."""


def tail_sweep(directory: Any) -> Any:
    """Run :data:`TAIL_SWEEP` with :data:`TAIL_SLA` into ``directory / "sweep"``; its path."""
    out = directory / "sweep"
    scenario = directory / "tails.yaml"
    scenario.write_text(TAIL_SWEEP, encoding="utf-8")
    result = run_cli("sweep", str(scenario), "-o", str(out), "-j", "1", "-q", "--set", TAIL_SLA)
    assert result.exit_code == 0, result.output
    return out
