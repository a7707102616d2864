"""Human durations: "90s", "15m", "6h", "30d", "1h30m".

Simulated time is kept in hours everywhere in Surplus. A bare number in a
scenario file is read as hours; a string needs a unit on every part.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_UNIT_HOURS = {
    "us": 1.0 / 3_600_000_000.0,
    "ms": 1.0 / 3_600_000.0,
    "s": 1.0 / 3600.0,
    "m": 1.0 / 60.0,
    "min": 1.0 / 60.0,
    "h": 1.0,
    "d": 24.0,
    "w": 168.0,
}
_PART = re.compile(
    r"\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)\s*(us|ms|min|s|m|h|d|w)\s*", re.ASCII
)

MAX_DURATION_HOURS = 100 * 8766.0
"""The longest duration Surplus takes: a century (876,600 h), beyond any cluster's life."""

DURATION_HELP = "use a number of hours or a number with a unit, e.g. 90s, 15m, 6h, 30d, 1h30m"


def parse_duration_hours(value: object) -> float:
    """Parse a duration into hours.

    Args:
        value: A non-negative number of hours, or a string such as ``"90s"``,
            ``"15m"``, ``"6h"``, ``"30d"`` or ``"1h30m"``.

    Returns:
        The duration in hours.

    Raises:
        ValueError: If the value is negative, not finite, above 100 years or not
            understood.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}; {DURATION_HELP}")
    if isinstance(value, int | float):
        hours = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        pos, hours, parts = 0, 0.0, 0
        while pos < len(text):
            match = _PART.match(text, pos)
            if match is None:
                raise ValueError(f"invalid duration {value!r}; {DURATION_HELP}")
            hours += float(match.group(1)) * _UNIT_HOURS[match.group(2)]
            pos, parts = match.end(), parts + 1
        if parts == 0:
            raise ValueError(f"empty duration; {DURATION_HELP}")
    else:
        raise ValueError(f"expected a duration, got {value!r}; {DURATION_HELP}")
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"duration must be finite and not negative, got {value!r}")
    if hours > MAX_DURATION_HOURS:
        raise ValueError(
            f"duration {value!r} is above the longest supported, 100 years "
            f"({MAX_DURATION_HOURS:,.0f} h)"
        )
    return hours


def format_duration(hours: float) -> str:
    """Format hours as the shortest exact human duration ("6h", "90s", "1.5d").

    Args:
        hours: A non-negative duration in hours.

    Returns:
        A string that :func:`parse_duration_hours` reads back to the same value.
    """
    if hours == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        count = round(hours / _UNIT_HOURS[unit])
        if count >= 1 and math.isclose(count * _UNIT_HOURS[unit], hours, rel_tol=1e-12):
            return f"{count}{unit}"
    return f"{hours!r}h"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration_hours),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "minimum": 0,
                    "maximum": MAX_DURATION_HOURS,
                    "description": "hours",
                },
                {"type": "string", "pattern": r"^(\s*[0-9.]+\s*(us|ms|min|s|m|h|d|w)\s*)+$"},
            ],
            "description": 'A duration: hours as a number, or "90s", "15m", "6h", "30d".',
        }
    ),
]
"""A non-negative duration in hours, written in files as "90s", "6h", "30d"."""


MIN_STEP_HOURS = 1.0 / 3600.0
"""The shortest sampling step Surplus takes: one second."""


def _at_least_a_second(hours: float) -> float:
    if hours < MIN_STEP_HOURS:
        raise ValueError(f"a step must be at least 1s, got {format_duration(hours)}")
    return hours


Step = Annotated[Duration, AfterValidator(_at_least_a_second)]
"""A sampling step: a duration of at least one second (each step is an event of the run)."""
