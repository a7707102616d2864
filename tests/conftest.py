"""Shared fixtures, scenario builders and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from sim.scenario.models import Scenario

settings.register_profile(
    "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def capacity_parts(summary: dict[str, Any]) -> float:
    """The GPU-hours of every class a summary reports (they must make up the capacity)."""
    classes = ("internal", "sold", "idle", "spare", "down", "parked")
    return sum(summary[f"{c}_gpu_hours"] for c in classes)


def one_cluster(nodes: int, gpus_per_node: int = 8, name: str = "c1") -> dict[str, Any]:
    """A provider with one site and one cluster."""
    return {
        "sites": [
            {
                "name": "s1",
                "clusters": [{"name": name, "nodes": nodes, "gpus_per_node": gpus_per_node}],
            }
        ]
    }


def batch(rate_per_hour: float, gpus: Any, duration: Any, **extra: Any) -> dict[str, Any]:
    """A batch workload with Poisson arrivals."""
    return {
        "arrivals": {"kind": "poisson", "rate_per_hour": rate_per_hour},
        "gpus": gpus,
        "duration": duration,
        **extra,
    }


def scenario(**fields: Any) -> Scenario:
    """A validated scenario from keyword fields (name and seed defaulted)."""
    data = {"name": "test", "seed": 1, **fields}
    return Scenario.model_validate(data)


@pytest.fixture
def quickstart_path() -> Path:
    """The quickstart scenario file."""
    return SCENARIOS / "quickstart.yaml"
