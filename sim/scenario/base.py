"""The base of every model read from a file: strict, immutable pydantic models.

Kept apart from :mod:`sim.scenario.models` so that other file formats (the
fabric file of :mod:`sim.fabric.config`) share it without loading, or being
loaded by, the scenario models.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for file models: unknown fields are errors, values are immutable.

    Values are strict: ``true`` is not a number, ``"8"`` is not a count and ``2.5``
    is not a whole number, and every float must be finite (NaN and infinities
    are refused as "Input should be a finite number").
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
