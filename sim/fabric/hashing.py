"""Deterministic flow hashing, as switches and NICs hash packet headers.

ECMP routing (:mod:`sim.fabric.routing`) hashes each queue pair's 5-tuple with
every switch's own seed and takes the next hop modulo the number of choices
(:func:`flow_hash`, :func:`hash_choice`); a RoCEv2 NIC derives the UDP source
port from the queue-pair number (:func:`roce_source_port`). The hashes are
splitmix64 mixes (:func:`mix64`): the same on every process and platform,
unlike Python's salted ``hash()``; :mod:`sim.fabric.trunks` keys routes by them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MASK64 = (1 << 64) - 1
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


def mix64(values: np.ndarray) -> np.ndarray:
    """A 64-bit avalanche mix (the splitmix64 finaliser), elementwise.

    Deterministic across processes and platforms, unlike Python's salted
    ``hash()``.

    Args:
        values: Array of unsigned 64-bit integers.

    Returns:
        Array of mixed unsigned 64-bit integers, same shape.
    """
    z = np.asarray(values, dtype=np.uint64) + _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


def flow_hash(fields: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """Hash header fields of many flows into one 64-bit value per flow.

    Args:
        fields: Non-negative integer arrays of equal length, e.g. the 5-tuple
            and queue-pair number.
        seed: Salt; different seeds give independent hash functions.

    Returns:
        ``uint64`` array, one value per flow.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ValueError(f"hash_seed must be an integer, got {seed!r}")
    n = len(fields[0]) if fields else 0
    h = mix64(np.full(n, int(seed) & _MASK64, dtype=np.uint64))
    for i, values in enumerate(fields):
        salt = np.uint64(((i + 1) * int(_GAMMA)) & _MASK64)
        salted = np.asarray(values).astype(np.uint64) + salt
        h = mix64(h ^ salted)
    return h


def hash_choice(hashes: np.ndarray, n_choices: np.ndarray | int) -> np.ndarray:
    """Map 64-bit hashes uniformly onto ``0 .. n_choices-1`` (multiply-shift on the top bits).

    Args:
        hashes: ``uint64`` hash values.
        n_choices: Number of choices (``1 <= n < 2**32``), scalar or per hash.

    Returns:
        ``int64`` choice per hash.
    """
    top = np.asarray(hashes, dtype=np.uint64) >> np.uint64(32)
    n = np.asarray(n_choices).astype(np.uint64)
    return ((top * n) >> np.uint64(32)).astype(np.int64)


def roce_source_port(qpn: np.ndarray) -> np.ndarray:
    """UDP source port a RoCEv2 NIC derives from a queue-pair number (0xC000-0xFFFF)."""
    q = np.asarray(qpn, dtype=np.uint64)
    return (np.uint64(0xC000) | ((q ^ (q >> np.uint64(14))) & np.uint64(0x3FFF))).astype(np.int64)
