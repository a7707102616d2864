"""The base of every model read from a file: strict, immutable pydantic models.

Kept apart from :mod:`sim.scenario.models` so that other file formats (the
fabric file of :mod:`sim.fabric.config`) share it without loading, or being
loaded by, the scenario models.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for file models: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
