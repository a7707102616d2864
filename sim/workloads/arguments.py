"""Argument checks shared by the serving models: each raises ``ValueError`` naming the argument."""

from __future__ import annotations

import math

import numpy as np


def check_positive_int(name: str, value: int) -> None:
    """Raise unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def is_real(value: float) -> bool:
    """Whether ``value`` is a real number (not a bool)."""
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def check_positive_float(name: str, value: float) -> None:
    """Raise unless ``value`` is a finite number > 0."""
    if not (is_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_non_negative_float(name: str, value: float) -> None:
    """Raise unless ``value`` is a finite number >= 0."""
    if not (is_real(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def check_fraction(name: str, value: float) -> None:
    """Raise unless ``value`` is in (0, 1]."""
    if not (is_real(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


def check_probability(name: str, value: float) -> None:
    """Raise unless ``value`` is in [0, 1]."""
    if not (is_real(value) and 0 <= value <= 1):
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
