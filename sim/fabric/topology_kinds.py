"""The registry of topology kinds: parameters checked, sizes refused, topologies built.

:data:`TOPOLOGIES` maps the scenario's ``topology.kind`` to its builder (the
two-tier kinds in :mod:`sim.fabric.two_tier`, the three-tier ones in
:mod:`sim.fabric.three_tier`). A builder's signature is the one statement of
its parameters and defaults; :func:`build_topology` binds the given
parameters to it, checks every one against the ranges of
:mod:`sim.fabric.limits` (switch counts up to 512, link speeds from 1 to
3,200 Gb/s, ...), refuses from the counts alone a topology too big to build
(:func:`size_problem`) before any array is allocated, and compiles the
builder's wiring with :func:`sim.fabric.topology.compile_clos`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.fabric.limits import (
    MAX_BUFFER_BYTES,
    MAX_GPUS_PER_NODE,
    MAX_LINK_GBPS,
    MAX_MTU_BYTES,
    MAX_OVERSUBSCRIPTION,
    MAX_PROP_DELAY_US,
    MAX_SWITCH_PORTS,
    MIN_LINK_GBPS,
    MIN_OVERSUBSCRIPTION,
    topology_size,
)
from sim.fabric.three_tier import fat_tree, meta_ai_zone
from sim.fabric.topology import ClosWiring, Topology, check_topology, compile_clos
from sim.fabric.two_tier import leaf_spine, rail_optimized

TOPOLOGIES: dict[str, Callable[..., ClosWiring]] = {
    "leaf_spine": leaf_spine,
    "fat_tree": fat_tree,
    "rail_optimized": rail_optimized,
    "meta_ai_zone": meta_ai_zone,
}
"""Topology builders by the scenario's ``topology.kind``."""


def build_topology(kind: str, *, check: bool = False, **params: Any) -> Topology:
    """Build and compile a topology of a registered kind.

    Args:
        kind: A key of :data:`TOPOLOGIES`.
        check: Also run :func:`~sim.fabric.topology.check_topology` (networkx).
            The test suite checks every builder this way; runs skip it, as
            networkx alone takes longer to import than most fabric runs take.
        **params: Parameters of the kind's builder.

    Returns:
        The compiled topology.

    Raises:
        ValueError: Unknown kind (the message lists the valid ones), unknown
            parameter, a bad parameter value, or a topology too big to build
            (the message names the parameter, and the sizes).
    """
    if kind not in TOPOLOGIES:
        raise ValueError(
            f"unknown topology kind {kind!r}; valid kinds: {', '.join(sorted(TOPOLOGIES))}"
        )
    builder = TOPOLOGIES[kind]
    accepted = inspect.signature(builder).parameters
    for name in sorted(params):
        if name not in accepted:
            raise ValueError(
                f"{kind}: unknown parameter '{name}'; valid parameters: {', '.join(accepted)}"
            )
    checked = {
        name: _CHECKS.get(name, _count)(kind, name, params.get(name, parameter.default))
        for name, parameter in accepted.items()
    }
    found = size_problem(kind, checked)
    if found is not None:
        raise ValueError(f"{kind}: parameter '{found[0]}': {found[1]}")
    topology = compile_clos(kind, checked, builder(**checked))
    if check:
        check_topology(topology)
    return topology


def size_problem(kind: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """Why a topology would be too big to build, from its parameters alone.

    The sizes come from :func:`sim.fabric.limits.topology_size` (arithmetic,
    nothing is allocated); the blamed parameter is the count furthest above
    its builder default, the one a user most likely mistyped.

    Args:
        kind: A key of :data:`TOPOLOGIES`.
        params: The builder's count parameters (others are ignored), each a
            valid count.

    Returns:
        ``(parameter, message)``, or ``None`` if the topology fits within
        :data:`sim.fabric.limits.MAX_HOSTS` hosts and
        :data:`sim.fabric.limits.MAX_LINKS` links.
    """
    signature = inspect.signature(TOPOLOGIES[kind]).parameters
    defaults = {name: p.default for name, p in signature.items() if type(p.default) is int}
    counts = {name: params.get(name, default) for name, default in defaults.items()}
    counts = {k: v for k, v in counts.items() if k not in ("buffer_bytes", "mtu_bytes")}
    problem = topology_size(kind, counts).problem()
    if problem is None:
        return None
    blamed = max(counts, key=lambda name: counts[name] / defaults[name])
    return blamed, problem


# --------------------------------------------------------------------------- parameter checks


def _int_param(
    kind: str, name: str, value: Any, *, minimum: int = 1, maximum: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{kind}: parameter '{name}' must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{kind}: parameter '{name}' must be >= {minimum}, got {value:.6g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{kind}: parameter '{name}' must be <= {maximum:,}, got {value:.6g}")
    return int(value)


def _float_param(
    kind: str,
    name: str,
    value: Any,
    *,
    maximum: float,
    minimum: float = 0.0,
    allow_zero: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{kind}: parameter '{name}' must be a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{kind}: parameter '{name}' must be a finite number, got {value!r}")
    if number < minimum or (number == 0 and not allow_zero):
        bound = f">= {minimum:g}" if minimum > 0 or allow_zero else "> 0"
        raise ValueError(f"{kind}: parameter '{name}' must be {bound}, got {value!r}")
    if number > maximum:
        raise ValueError(f"{kind}: parameter '{name}' must be <= {maximum:g}, got {value!r}")
    return number


def _count(kind: str, name: str, value: Any, maximum: int = MAX_SWITCH_PORTS) -> int:
    """A switch or host count: an integer from 1 to ``maximum``."""
    return _int_param(kind, name, value, maximum=maximum)


def _oversubscription(kind: str, name: str, value: Any) -> float:
    return _float_param(
        kind,
        name,
        value,
        minimum=MIN_OVERSUBSCRIPTION,
        maximum=MAX_OVERSUBSCRIPTION,
    )


def _radix(kind: str, name: str, value: Any) -> int:
    """A fat tree's switch radix: an even integer, at least 2."""
    radix = _int_param(kind, name, value, minimum=2)
    if radix % 2:
        raise ValueError(f"{kind}: parameter '{name}' must be even, got {radix:.6g}")
    return radix


def _gpus_per_node(kind: str, name: str, value: Any) -> int:
    return _count(kind, name, value, MAX_GPUS_PER_NODE)


def _link_gbps(kind: str, name: str, value: Any) -> float:
    return _float_param(kind, name, value, minimum=MIN_LINK_GBPS, maximum=MAX_LINK_GBPS)


def _prop_delay_us(kind: str, name: str, value: Any) -> float:
    return _float_param(kind, name, value, maximum=MAX_PROP_DELAY_US, allow_zero=True)


def _buffer_bytes(kind: str, name: str, value: Any) -> int:
    return _int_param(kind, name, value, minimum=0, maximum=MAX_BUFFER_BYTES)


def _mtu_bytes(kind: str, name: str, value: Any) -> int:
    return _int_param(kind, name, value, minimum=64, maximum=MAX_MTU_BYTES)


_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "k": _radix,
    "gpus_per_node": _gpus_per_node,
    "oversubscription": _oversubscription,
    "link_gbps": _link_gbps,
    "prop_delay_us": _prop_delay_us,
    "buffer_bytes": _buffer_bytes,
    "mtu_bytes": _mtu_bytes,
}
"""The check of each builder parameter by name; every other parameter is a count."""
