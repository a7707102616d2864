"""Input files read with line numbers: YAML parsing and one-line problems.

Every problem with an input file is reported as one line naming the file, the
line where it can be found, the dotted field and what is wrong, e.g.::

    quickstart.yaml:14: tenants[1].contract.max_wait: invalid duration 'soon' ...

:func:`parse_yaml` reads YAML and notes the line of every value;
:func:`validation_problems` turns a pydantic error into such lines, and
:class:`ScenarioError` carries them. The scenario loader
(:mod:`sim.scenario.loader`), the fabric file (:mod:`sim.scenario.fabric_loader`)
and the traffic files of :mod:`sim.fabric` all report through them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Path_ = tuple[str | int, ...]


class ScenarioError(Exception):
    """Bad input: a list of human-readable problems, one per line."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def dotted(path: Iterable[str | int]) -> str:
    """Render a path as ``tenants[1].contract.kind``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


MAX_DEPTH = 64
"""How deeply a file's sections may nest (scenarios need about ten levels)."""

MAX_NODES = 1_000_000
"""How many values a file may hold once its aliases are expanded."""


def _to_python(node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str) -> Any:
    """Turn a composed YAML node into plain data, noting the line of every path.

    Raises:
        ScenarioError: On a key that is not a string or is given twice, or when the
            data nests deeper than :data:`MAX_DEPTH` (an alias that holds itself) or
            holds more than :data:`MAX_NODES` values (aliases of aliases).
    """
    if len(path) > MAX_DEPTH:
        raise ScenarioError(
            [
                f"{source}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep "
                "(an alias that holds itself?)"
            ]
        )
    lines[path] = node.start_mark.line + 1
    if len(lines) > MAX_NODES:
        raise ScenarioError(
            [
                f"{source}: more than {MAX_NODES:,} values once its aliases are expanded; "
                "write the data out or use fewer nested aliases"
            ]
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node)
            if not isinstance(key, str):
                raise ScenarioError(
                    [
                        f"{source}:{key_node.start_mark.line + 1}: {dotted(path)}: key {key!r} "
                        "must be a string"
                    ]
                )
            if key in out:
                raise ScenarioError(
                    [
                        f"{source}:{key_node.start_mark.line + 1}: {dotted((*path, key))}: "
                        "duplicate key"
                    ]
                )
            out[key] = _to_python(value_node, (*path, key), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, i), lines, source) for i, v in enumerate(node.value)]
    return _construct(node)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe parser where PyYAML has it, reading numbers as YAML 1.2 does.

    YAML 1.1 (PyYAML's default) reads ``1e300`` and ``5e-3`` as strings, because
    its floats need a dot; a user writing them means numbers.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)
_LOADER = _Loader


def _construct(node: yaml.Node) -> Any:
    """The value of a composed node (its tag already resolved), as safe_load would give it."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text, returning the data and a map from paths to line numbers.

    Raises:
        ScenarioError: If the text is not valid YAML.
    """
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([f"{where}: not valid YAML: {problem}"]) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return None, lines
    return _to_python(node, (), lines, source), lines


def _locate(loc: tuple[Any, ...], data: Any) -> Path_:
    """Map a pydantic error location onto the path in the raw data.

    Pydantic inserts the tag of a discriminated union (``'spot'``, or
    ``'batch'`` for a workload that leaves out its kind) and the names of
    validators into locations; they are not keys of the data.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
        elif (isinstance(node, dict) and part == node.get("kind", "batch")) or "[" in str(part):
            continue
        else:
            path.append(part)
            node = None
    return tuple(path)


def _undotted(text: str) -> Path_:
    """Parse ``tenants[1].contract`` back into a path; non-paths give ``()``."""
    if not re.fullmatch(r"[A-Za-z_][\w]*(\[\d+\]|\.[A-Za-z_][\w]*)*", text):
        return ()
    return tuple(
        int(index) if index else name
        for name, index in re.findall(r"([A-Za-z_]\w*)|\[(\d+)\]", text)
    )


def _line_for(path: Path_, lines: dict[Path_, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _where(source: str, line: int | None) -> str:
    if line is None:
        return source
    return f"{source}:{line}" if line > 0 else f"{source} (--set)"


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if error.get("type") == "extra_forbidden":
        msg = "unknown field (check its spelling; `surplus schema` lists the fields)"
    elif error.get("type") == "union_tag_invalid":
        ctx = error.get("ctx", {})
        msg = f"unknown kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    elif error.get("type") == "union_tag_not_found":
        msg = "missing field 'kind'"
    elif error.get("type") == "missing":
        msg = "missing required field"
    return msg


def validation_problems(
    exc: ValidationError, data: Any, lines: dict[Path_, int], source: str
) -> list[str]:
    """Render a pydantic ValidationError as one line per problem."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        path = _locate(tuple(error.get("loc", ())), data)
        line = _line_for(path, lines)
        if error.get("type") == "union_tag_invalid" and (*path, "kind") in lines:
            line = lines[(*path, "kind")]  # the kind may come from --set, not the file
        where = (
            source if line is None else (f"{source}:{line}" if line > 0 else f"{source} (--set)")
        )
        for text in _message(error).splitlines():
            # Model-level checks already name their field in the text.
            if path:
                problems.append(f"{where}: {dotted(path)}: {text}")
            else:
                field_line = _line_for(_undotted(text.split(":", 1)[0]), lines)
                problems.append(f"{_where(source, field_line)}: {text}")
    return problems


def read_input(path: str | Path) -> tuple[str, str]:
    """Read an input file as text, returning it and its name for messages.

    Raises:
        ScenarioError: If the file is missing or unreadable.
    """
    source = str(path)
    try:
        return Path(path).read_text(encoding="utf-8"), source
    except FileNotFoundError:
        raise ScenarioError([f"{source}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{source}: cannot read: {exc}"]) from None
