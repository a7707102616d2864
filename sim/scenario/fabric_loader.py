"""FABRIC.yaml: the fabric on its own, as used by ``surplus fabric``.

The file holds a :class:`sim.scenario.fabric.FabricConfig`: a topology and a
transport section, a seed and the latency sampling. A small file::

    topology: {kind: fat_tree, k: 4, link_gbps: 100}
    transport: {kind: roce, pfc: true, cc: dcqcn}

Problems are reported like scenario problems, one line each, naming the file,
the line and the dotted field: ``fab.yaml:1: topology.k: must be even, got 5``.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.scenario.fabric import (
    TOPOLOGY_KINDS,
    TRANSPORT_KINDS,
    DcqcnSettings,
    FabricConfig,
    FabricConfigBase,
    RoceTransport,
)
from sim.scenario.yaml_input import ScenarioError, parse_yaml, read_input, validation_problems

__all__ = ["fabric_from_text", "load_fabric"]

_UNKNOWN_FIELD = re.compile(r"^(.*?): ([A-Za-z_][\w.]*): unknown field \(.*\)$")


def _model_at(parent: tuple[str, ...], data: dict[str, Any]) -> type[FabricConfigBase] | None:
    """The model that validates the mapping at ``parent`` in the raw data, if known."""
    if not parent:
        return FabricConfig
    section = data.get(parent[0])
    registry = {"topology": TOPOLOGY_KINDS, "transport": TRANSPORT_KINDS}.get(parent[0])
    if registry is None or not isinstance(section, dict):
        return None
    model = registry.get(section.get("kind"))
    if len(parent) == 1:
        return model
    if parent == ("transport", "dcqcn") and model is RoceTransport:
        return DcqcnSettings
    return None


def _name_valid_fields(problems: list[str], data: dict[str, Any]) -> list[str]:
    """Replace the scenario loader's hint on unknown fields by the fields that are valid there."""
    out = []
    for problem in problems:
        match = _UNKNOWN_FIELD.match(problem)
        model = _model_at(tuple(match.group(2).split(".")[:-1]), data) if match else None
        if match is None or model is None:
            out.append(problem)
            continue
        where, dotted = match.groups()
        names = [name for name in model.model_fields if name != "kind"]
        if not names:
            hint = "this kind takes no field but 'kind'"
        else:
            close = difflib.get_close_matches(dotted.rsplit(".", 1)[-1], names, n=1, cutoff=0.8)
            guess = f"did you mean {close[0]}? " if close else ""
            hint = f"{guess}valid fields: {_listing(names, _HINT_CHARS)}"
        if len(dotted) > _HINT_CHARS // 2:
            dotted = dotted[: _HINT_CHARS // 2 - 3] + "..."
        out.append(f"{where}: {dotted}: unknown field; {hint}")
    return out


_HINT_CHARS = 80
"""Longest list of valid fields in a problem, so that the line stays short."""


def _listing(names: list[str], limit: int) -> str:
    """``names`` joined by commas, cut after ``limit`` characters with a count of the rest."""
    shown: list[str] = []
    for i, name in enumerate(names):
        if shown and len(", ".join([*shown, name])) > limit:
            return f"{', '.join(shown)} and {len(names) - i} more"
        shown.append(name)
    return ", ".join(shown)


_BUILDER_PROBLEM = re.compile(r"^(?:\w+: )?parameter '(\w+)':? (.*)$", re.DOTALL)


def _build_problem(exc: ValueError, lines: dict[tuple[str | int, ...], int], source: str) -> str:
    """Render a builder's ``ValueError`` as ``FILE:LINE: topology.PARAM: what is wrong``."""
    text = str(exc)
    match = _BUILDER_PROBLEM.match(text)
    path: tuple[str, ...] = ("topology",)
    if match is not None:
        path, text = ("topology", match.group(1)), match.group(2)
    line = lines.get(path, lines.get(("topology",)))
    where = f"{source}:{line}" if line is not None and line > 0 else source
    return f"{where}: {'.'.join(path)}: {text}"


def fabric_from_text(text: str, source: str = "<fabric>") -> FabricConfig:
    """Validate FABRIC.yaml text, building the topology once to check it.

    Args:
        text: The YAML text.
        source: The name used in problem lines (usually the file path).

    Returns:
        The validated configuration.

    Raises:
        ScenarioError: With one line per problem, if anything is wrong.
    """
    data, lines = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ScenarioError(
            [
                f"{source}: a fabric file must be a mapping with 'topology' and 'transport', "
                f"got {type(data).__name__ if data is not None else 'an empty file'}"
            ]
        )
    try:
        config = FabricConfig.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, data, lines, source)
        raise ScenarioError(_name_valid_fields(problems, data)) from None
    try:
        config.build_topology()
    except ValueError as exc:
        raise ScenarioError([_build_problem(exc, lines, source)]) from None
    return config


def load_fabric(path: str | Path) -> FabricConfig:
    """Read and validate a FABRIC.yaml file.

    Args:
        path: The YAML file.

    Returns:
        The validated configuration; its topology is known to build.

    Raises:
        ScenarioError: With one line per problem, each naming the file, line and
            field, e.g. ``fab.yaml:3: topology.k: must be even, got 5``.
    """
    text, source = read_input(path)
    return fabric_from_text(text, source)
