"""Scenario files: pydantic models, the YAML loader and ``--set`` overrides.

Names are loaded on first use, so that reading another file format with the
loader's helpers does not build every scenario model.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.scenario.loader import (
        ScenarioError,
        dump_scenario,
        load_scenario,
        scenario_from_text,
    )
    from sim.scenario.models import Scenario

__all__ = ["Scenario", "ScenarioError", "dump_scenario", "load_scenario", "scenario_from_text"]

_HOME = {
    "Scenario": "sim.scenario.models",
    "ScenarioError": "sim.scenario.loader",
    "dump_scenario": "sim.scenario.loader",
    "load_scenario": "sim.scenario.loader",
    "scenario_from_text": "sim.scenario.loader",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'sim.scenario' has no attribute {name!r}")
    return getattr(import_module(_HOME[name]), name)
