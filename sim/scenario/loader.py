"""Read scenario files: ``--set`` overrides, validation and the resolved dump.

Problems are reported one per line, naming the file, the line and the dotted
field (:mod:`sim.scenario.yaml_input`).

Relative file paths in a scenario (traces, node lists) are relative to the
scenario file's folder (:mod:`sim.scenario.trace_source`); a cluster's
``nodes_from`` is expanded into its nodes before validation
(:mod:`sim.scenario.node_lists`).

Overrides use dotted paths; list items may be picked by index or, when they
have a ``name``, by name: ``tenants.acme.contract.max_wait=2h``. Values are
parsed as YAML, so ``=[8, 16]`` is a list and ``=2h`` a string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.scenario.models import Scenario
from sim.scenario.node_lists import expand_node_lists
from sim.scenario.yaml_input import (
    Path_,
    ScenarioError,
    dotted,
    parse_yaml,
    read_input,
    validation_problems,
)

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter where PyYAML has it (the same output, faster)."""


def load_value(text: str, source: str = "--set") -> Any:
    """One YAML value (as on the right of ``--set path=value``), read like scenario files.

    Raises:
        ScenarioError: If the text is not valid YAML or nests too deeply.
    """
    return parse_yaml(text, source)[0]


def _step(container: Any, part: str, so_far: Path_, override: str) -> tuple[Any, str | int]:
    """Resolve one segment of an override path inside ``container``."""
    if isinstance(container, dict):
        return container, part
    if isinstance(container, list):
        if re.fullmatch(r"-[0-9]+", part):
            raise ScenarioError(
                [
                    f"--set {override}: {dotted(so_far)}: index {part} is negative; items are "
                    f"numbered from 0 (it has {len(container)}), or pick one by name"
                ]
            )
        if re.fullmatch(r"[0-9]+", part):
            index = int(part)
            if index >= len(container):
                raise ScenarioError(
                    [
                        f"--set {override}: {dotted(so_far)} has {len(container)} items, "
                        f"no index {index}"
                    ]
                )
            return container, index
        for i, item in enumerate(container):
            if isinstance(item, dict) and item.get("name") == part:
                return container, i
        names = [item.get("name") for item in container if isinstance(item, dict)]
        raise ScenarioError(
            [
                f"--set {override}: {dotted(so_far)} has no item named {part!r} "
                f"(names: {[n for n in names if n is not None]})"
            ]
        )
    raise ScenarioError(
        [
            f"--set {override}: {dotted(so_far)} is a {type(container).__name__}, "
            f"it has no field {part!r}"
        ]
    )


def apply_override(data: dict[str, Any], override: str, lines: dict[Path_, int]) -> None:
    """Apply one ``dotted.path=value`` override to ``data`` in place.

    Raises:
        ScenarioError: If the override is malformed or its path does not exist.
    """
    key, sep, raw = override.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not sep or not key.strip() or any(not p for p in parts):
        raise ScenarioError([f"--set {override}: expected dotted.path=value"])
    try:
        value = load_value(raw) if raw.strip() else ""
    except ScenarioError as exc:
        problem = exc.problems[0].split(": ", 1)[-1]
        raise ScenarioError([f"--set {override}: value: {problem}"]) from None
    container: Any = data
    path: Path_ = ()
    for depth, part in enumerate(parts):
        holder, index = _step(container, part, path, override)
        path = (*path, index)
        last = depth == len(parts) - 1
        if last:
            holder[index] = value
        else:
            if isinstance(holder, dict) and index not in holder:
                holder[index] = {}
                lines[path] = -1  # a section the file does not have, made by --set
            container = holder[index]
    for known in [p for p in lines if p[: len(path)] == path]:
        del lines[known]
    lines[path] = -1  # marks "from --set"


def load_scenario(
    path: str | Path, overrides: Sequence[str] = (), seed: int | None = None
) -> Scenario:
    """Read, override and validate a scenario file.

    Args:
        path: The YAML scenario file.
        overrides: ``dotted.path=value`` strings applied in order.
        seed: If given, replaces the scenario's ``seed``.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: With one line per problem, if anything is wrong.
    """
    text, source = read_input(path)
    return scenario_from_text(text, source, overrides, seed, base_dir=Path(path).parent)


def scenario_from_text(
    text: str,
    source: str = "<scenario>",
    overrides: Sequence[str] = (),
    seed: int | None = None,
    base_dir: str | Path | None = None,
) -> Scenario:
    """Validate scenario YAML text; see :func:`load_scenario`.

    Args:
        base_dir: The folder relative file paths (a trace's ``path``, a cluster's
            ``nodes_from.path``) start from; None: the working directory. The
            validated scenario holds them absolute.
    """
    data, lines = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ScenarioError(
            [
                f"{source}: a scenario must be a mapping of fields, got "
                f"{type(data).__name__ if data is not None else 'an empty file'}"
            ]
        )
    problems: list[str] = []
    for override in overrides:
        try:
            apply_override(data, override, lines)
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioError(problems)
    if seed is not None:
        data["seed"] = seed
    base = None if base_dir is None else str(base_dir)
    expand_node_lists(data, lines, source, base)
    try:
        return Scenario.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc, data, lines, source)) from None


def dump_scenario(scenario: Scenario) -> str:
    """The fully resolved scenario as YAML, readable by :func:`load_scenario`."""
    data = scenario.model_dump(mode="json")
    return yaml.dump(
        data, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
