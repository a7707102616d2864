"""The base of every model read from a file: strict, immutable pydantic models.

Also the names and bounds every section of a scenario shares (:data:`Name`,
:data:`Count`, :data:`Price`, the ``MAX_*`` bounds). Kept apart from the
sections so that other file formats (the fabric file of
:mod:`sim.scenario.fabric`) share it without loading the scenario models.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base for file models: unknown fields are errors, values are immutable.

    Values are strict: ``true`` is not a number, ``"8"`` is not a count and ``2.5``
    is not a whole number, and every float must be finite (NaN and infinities
    are refused as "Input should be a finite number").
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
"""A name in a file (a site, cluster, tenant or policy): a letter, then letters, digits,
``_``, ``.`` or ``-``; at most 64 characters."""

# Bounds shared by several sections (each section's own are beside it). Every number a
# scenario holds is bounded: finite, and far beyond any real cluster, so that a typing slip
# is refused with the bound named rather than run for hours.
MAX_GPUS = 1_048_576
"""2**20 GPUs: a job, block, cluster or quota larger than a million GPUs is refused."""

MAX_PRICE = 10_000.0
"""USD per GPU-hour: thousands of times any public GPU price."""

MAX_DEGREE = 65_536
"""A parallel degree, microbatch count or queue depth."""

Count = Annotated[int, Field(gt=0, le=MAX_GPUS)]
"""A number of GPUs, nodes or replicas: 1 to 2**20."""

Price = Annotated[float, Field(gt=0, le=MAX_PRICE)]
"""USD per GPU-hour."""
