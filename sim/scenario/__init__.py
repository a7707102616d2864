"""Scenario files: pydantic models, the YAML loader and ``--set`` overrides.

The schema is split by section: :mod:`~sim.scenario.models` (the root),
:mod:`~sim.scenario.provider`, :mod:`~sim.scenario.fabric`,
:mod:`~sim.scenario.power`, :mod:`~sim.scenario.tenants`,
:mod:`~sim.scenario.workloads` and :mod:`~sim.scenario.policies`, with the
checks across sections in :mod:`~sim.scenario.checks`. Files are read by
:mod:`~sim.scenario.loader` (scenarios) and :mod:`~sim.scenario.fabric_loader`
(FABRIC.yaml), both through :mod:`~sim.scenario.yaml_input`.

Names are loaded on first use, so that reading another file format with
:mod:`~sim.scenario.yaml_input` does not build every scenario model.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.scenario.loader import dump_scenario, load_scenario, scenario_from_text
    from sim.scenario.models import Scenario
    from sim.scenario.yaml_input import ScenarioError

__all__ = ["Scenario", "ScenarioError", "dump_scenario", "load_scenario", "scenario_from_text"]

_HOME = {
    "Scenario": "sim.scenario.models",
    "ScenarioError": "sim.scenario.yaml_input",
    "dump_scenario": "sim.scenario.loader",
    "load_scenario": "sim.scenario.loader",
    "scenario_from_text": "sim.scenario.loader",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'sim.scenario' has no attribute {name!r}")
    return getattr(import_module(_HOME[name]), name)
