"""Scenario files: pydantic models, the YAML loader and ``--set`` overrides."""

from sim.scenario.loader import ScenarioError, dump_scenario, load_scenario, scenario_from_text
from sim.scenario.models import Scenario

__all__ = ["Scenario", "ScenarioError", "dump_scenario", "load_scenario", "scenario_from_text"]
