"""The scenario-file reference: Markdown generated from the pydantic models.

:func:`scenario_reference_markdown` walks :class:`sim.scenario.models.Scenario`
depth-first in field order and writes one section per model it reaches (each
model once): the model's docstring and a table of its fields with their type,
default and description. Everything comes from the models themselves (their
``model_fields``, ``Field(description=...)``, constraints and docstrings), so the
reference cannot drift from what the loader accepts; a test checks that the
committed ``docs/scenario-reference.md`` is exactly this function's output.

Regenerate the committed file with::

    python -m sim.scenario.reference > docs/scenario-reference.md
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, BeforeValidator, Discriminator
from pydantic.fields import FieldInfo

from sim.scenario.durations import DURATION_HELP, format_duration, parse_duration_hours
from sim.scenario.models import Scenario

EXAMPLE_YAML = """\
name: example
horizon: 2d                  # a duration
provider:
  sites:
    - name: east
      clusters:
        - {name: east-a, nodes: 16, gpus_per_node: 8, accelerator: H100}
internal:                    # the provider's own demand, served first
  inference: {gpus: 32}
tenants:
  - name: acme
    contract: {kind: on_demand, max_wait: 4h}
    workload:
      arrivals: {kind: poisson, rate_per_hour: 2}
      gpus: {kind: choice, values: [8, 16]}
      duration: {kind: lognormal, median: 3h, sigma: 0.8}
policies:
  placement: {kind: topology_aware}
"""
"""A small valid scenario showing the top-level layout (tested to load)."""

_NONE = type(None)
_PLAIN_STRING = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_DOUBLE_BACKTICK = re.compile(r"``([^`]+)``")
_ATTRIBUTE = re.compile(r"^(\w+)(?: \([^)]*\))?: (.*)$")
_SIMPLE_TYPES = {int: "int", float: "float", str: "str", bool: "bool", Any: "any"}


# --------------------------------------------------------------------------- walking the models


def _is_model(annotation: Any) -> bool:
    """Whether an annotation is a pydantic model class."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_union(annotation: Any) -> bool:
    """Whether an annotation is a ``Union`` or an ``X | Y``."""
    return get_origin(annotation) in (Union, types.UnionType)


def _children(annotation: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    """The models an annotation holds, each with the path step that leads to it.

    Args:
        annotation: A field's annotation.
        suffix: The path so far below the field: ``[]`` for a list item,
            ``.<key>`` for a mapping's value.

    Returns:
        ``(model, suffix)`` pairs in the order the annotation names them.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        return _children(get_args(annotation)[0], suffix)
    if _is_union(annotation):
        found: list[tuple[type[BaseModel], str]] = []
        for arg in get_args(annotation):
            found.extend(_children(arg, suffix))
        return found
    if origin is list:
        return _children(get_args(annotation)[0], suffix + "[]")
    if origin is dict:
        return _children(get_args(annotation)[1], suffix + ".<key>")
    if _is_model(annotation):
        return [(annotation, suffix)]
    return []


def reachable_models(
    root: type[BaseModel] = Scenario,
) -> dict[type[BaseModel], list[str]]:
    """Every model reachable from ``root``, depth-first in field order, each once.

    Args:
        root: The model to start from.

    Returns:
        The models in the order of their sections, each mapped to the dotted
        paths in a file where it appears (``tenants[].workload``), in the
        order they were found. The root's list is empty.
    """
    found: dict[type[BaseModel], list[str]] = {root: []}

    def visit(model: type[BaseModel], prefix: str, stack: tuple[type[BaseModel], ...]) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            for child, suffix in _children(info.annotation):
                paths = found.setdefault(child, [])
                if path + suffix not in paths:
                    paths.append(path + suffix)
                if child not in stack:
                    visit(child, path + suffix, (*stack, child))

    visit(root, "", (root,))
    return found


# --------------------------------------------------------------------------- types


def _metadata(annotation: Any) -> list[Any]:
    """The metadata of an ``Annotated`` annotation, with nested ``Field()`` flattened."""
    if get_origin(annotation) is not Annotated:
        return []
    out: list[Any] = []
    for item in get_args(annotation)[1:]:
        if isinstance(item, FieldInfo):
            out.extend(item.metadata)
            if item.discriminator is not None:
                out.append(Discriminator(item.discriminator))
        else:
            out.append(item)
    return out


def _is_duration(metadata: list[Any]) -> bool:
    """Whether metadata marks a :data:`sim.scenario.durations.Duration`."""
    return any(
        isinstance(item, BeforeValidator) and item.func is parse_duration_hours for item in metadata
    )


def _is_duration_field(info: FieldInfo) -> bool:
    """Whether a field holds a duration, directly or as the non-null member of a union."""
    members = get_args(info.annotation) if _is_union(info.annotation) else ()
    return _is_duration(info.metadata) or any(_is_duration(_metadata(arg)) for arg in members)


def _discriminator(metadata: list[Any], info: FieldInfo | None = None) -> str | None:
    """The name of the field that picks a union's member, if the union is discriminated."""
    if info is not None and isinstance(info.discriminator, str):
        return info.discriminator
    for item in metadata:
        if isinstance(item, Discriminator):
            return item.discriminator if isinstance(item.discriminator, str) else "kind"
    if info is not None and isinstance(info.discriminator, Discriminator):
        return "kind"
    return None


def _anchor(model: type[BaseModel]) -> str:
    """The Markdown link to a model's section."""
    return f"[{model.__name__}](#{model.__name__.lower()})"


def _code(value: Any) -> str:
    """A scalar as inline code."""
    return f"`{value}`"


def type_text(
    annotation: Any, metadata: Sequence[Any] = (), discriminator: str | None = None
) -> str:
    """A human-readable type: ``int``, ``duration``, ``list of X``, ``X or null``, links.

    Args:
        annotation: A field's annotation (or part of one).
        metadata: Metadata that came with it (a field's ``FieldInfo.metadata``).
        discriminator: The field that picks a union's member, if any.

    Returns:
        Markdown text; other models are links to their sections.
    """
    metadata = list(metadata)
    if get_origin(annotation) is Annotated:
        inner = _metadata(annotation)
        return type_text(
            get_args(annotation)[0], metadata + inner, discriminator or _discriminator(inner)
        )
    if _is_duration(metadata):
        return "duration"
    if _is_union(annotation):
        members = [arg for arg in get_args(annotation) if arg is not _NONE]
        nullable = len(members) < len(get_args(annotation))
        if len(members) == 1:
            text = type_text(members[0], metadata, discriminator)
        elif discriminator is not None:
            links = [type_text(member) for member in members]
            text = f"one of {', '.join(links)} by {discriminator}"
        else:
            text = " or ".join(type_text(member, metadata) for member in members)
        return f"{text} or null" if nullable else text
    if discriminator is not None and _is_model(annotation):
        return f"one of {_anchor(annotation)} by {discriminator}"
    origin = get_origin(annotation)
    if origin is Literal:
        values = [_code(value) for value in get_args(annotation)]
        return values[0] if len(values) == 1 else f"one of {', '.join(values)}"
    if origin is list:
        return f"list of {type_text(get_args(annotation)[0])}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping of {type_text(key)} to {type_text(value)}"
    if _is_model(annotation):
        return _anchor(annotation)
    if annotation in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[annotation]
    return getattr(annotation, "__name__", str(annotation))


# --------------------------------------------------------------------------- constraints


def _number(value: Any) -> str:
    """A bound as written in a file: ``0``, ``0.5``, ``10000``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _constraint_texts(metadata: list[Any], container: Any = None) -> list[str]:
    """Readable constraints: ``> 0``, ``≤ 1``, ``not empty``, ``matches `...```.

    Args:
        metadata: Constraint objects (annotated_types and pydantic metadata).
        container: ``list``, ``dict`` or ``str`` for length constraints.

    Returns:
        One text per constraint, in the order given.
    """
    unit = {list: "items", dict: "entries"}.get(container, "characters")
    texts: list[str] = []
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            texts.append(f"> {_number(item.gt)}")
        elif isinstance(item, annotated_types.Ge):
            texts.append(f"≥ {_number(item.ge)}")
        elif isinstance(item, annotated_types.Lt):
            texts.append(f"< {_number(item.lt)}")
        elif isinstance(item, annotated_types.Le):
            texts.append(f"≤ {_number(item.le)}")
        elif isinstance(item, annotated_types.MinLen):
            count = item.min_length
            texts.append("not empty" if count == 1 else f"at least {count} {unit}")
        elif isinstance(item, annotated_types.MaxLen):
            texts.append(f"at most {item.max_length} {unit}")
        elif getattr(item, "pattern", None) is not None:
            texts.append(f"matches `{item.pattern}`")
    return texts


def _container(annotation: Any) -> Any:
    """``list``, ``dict`` or ``str`` when the annotation (or its non-null member) is one."""
    if get_origin(annotation) is Annotated:
        return _container(get_args(annotation)[0])
    if _is_union(annotation):
        members = [arg for arg in get_args(annotation) if arg is not _NONE]
        return _container(members[0]) if len(members) == 1 else None
    origin = get_origin(annotation)
    if origin in (list, dict):
        return origin
    return str if annotation is str else None


def constraints(annotation: Any, metadata: list[Any]) -> list[str]:
    """Every constraint on a field, including those on its items, keys and values.

    Args:
        annotation: The field's annotation.
        metadata: The field's own ``FieldInfo.metadata``.

    Returns:
        Texts such as ``> 0``, ``each > 0``, ``each value ≥ 1``.
    """
    texts = _constraint_texts(metadata, _container(annotation))
    if _is_union(annotation):
        members = [arg for arg in get_args(annotation) if arg is not _NONE]
        if len(members) == 1:
            return texts + constraints(members[0], [])
        return texts
    if get_origin(annotation) is Annotated:
        inner = get_args(annotation)[0]
        return texts + constraints(inner, _metadata(annotation))
    origin = get_origin(annotation)
    if origin is list:
        item = get_args(annotation)[0]
        texts += [f"each {text}" for text in constraints(item, [])]
    elif origin is dict:
        key, value = get_args(annotation)
        texts += [f"each key {text}" for text in constraints(key, [])]
        texts += [f"each value {text}" for text in constraints(value, [])]
    return texts


def _shorthand_text(metadata: list[Any]) -> str | None:
    """How a bare value expands, for unions that accept one (``gpus: 8``)."""
    for item in metadata:
        if not isinstance(item, BeforeValidator):
            continue
        try:
            nonlocals = inspect.getclosurevars(item.func).nonlocals
        except TypeError:
            continue
        kind, field = nonlocals.get("kind"), nonlocals.get("field")
        if isinstance(kind, str) and isinstance(field, str):
            return f"a bare value means `{{kind: {kind}, {field}: VALUE}}`"
    return None


# --------------------------------------------------------------------------- defaults


def yaml_text(value: Any) -> str:
    """A value in YAML flow style, deterministic: ``null``, ``1.5``, ``[8, 16]``, ``{a: 1}``.

    Args:
        value: Plain data (as from ``model_dump(mode="json")``).

    Returns:
        One line of YAML.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        plain = _PLAIN_STRING.match(value) and yaml.safe_load(value) == value
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {yaml_text(item)}" for key, item in value.items()) + "}"
    return json.dumps(str(value))


def _model_default(model: BaseModel) -> Any:
    """A default model as the fields it sets beyond its own defaults, its ``kind`` kept."""
    data = model.model_dump(mode="json", exclude_defaults=True)
    if "kind" in type(model).model_fields:
        data = {"kind": model.model_dump(mode="json")["kind"], **data}
    return data


def default_text(info: FieldInfo) -> str:
    """A field's default for the table: ``required``, or the value as YAML in backticks.

    Durations are written with a unit (``15m``); a default model is written as
    the fields it sets (``{}`` is the section with all its own defaults).

    Args:
        info: The field.

    Returns:
        Markdown text.
    """
    if info.is_required():
        return "required"
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        value = _model_default(value)
    elif isinstance(value, float) and _is_duration_field(info):
        value = format_duration(value)
    return f"`{yaml_text(value)}`"


# --------------------------------------------------------------------------- docstrings


def _markdown(text: str) -> str:
    """Turn reStructuredText inline markup into Markdown: ``x`` and :mod:`x` become `x`."""
    return _DOUBLE_BACKTICK.sub(r"`\1`", _ROLE.sub(r"``\1``", text))


def split_docstring(model: type[BaseModel]) -> tuple[str, dict[str, str]]:
    """A model's own docstring, cleaned, and the descriptions of its ``Attributes:`` section.

    Args:
        model: A pydantic model class.

    Returns:
        The text without the ``Attributes:`` section (Markdown), and the
        attributes it described, by name.
    """
    doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")
    kept: list[str] = []
    attributes: dict[str, str] = {}
    current: str | None = None
    in_attributes = False
    for line in doc.splitlines():
        if line.strip() == "Attributes:" and not line.startswith(" "):
            in_attributes = True
            continue
        if in_attributes and line and not line.startswith(" "):
            in_attributes = False
        if not in_attributes:
            kept.append(line)
            continue
        match = _ATTRIBUTE.match(line.strip())
        if match is not None and len(line) - len(line.lstrip()) <= 4:
            current = match.group(1)
            attributes[current] = match.group(2).strip()
        elif current is not None and line.strip():
            attributes[current] += " " + line.strip()
    text = "\n".join(kept).strip()
    return _markdown(text), {name: _markdown(desc) for name, desc in attributes.items()}


# --------------------------------------------------------------------------- rendering


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.replace("|", "\\|").split())


def field_row(name: str, info: FieldInfo, attribute_help: str = "") -> str:
    """One table row: ``| `name` | type | default | description |``.

    Args:
        name: The field's name.
        info: The field.
        attribute_help: A description from the model's docstring, put before
            the field's own ``description`` (its unit or range) when both exist.

    Returns:
        The Markdown row.
    """
    kind = type_text(info.annotation, info.metadata, _discriminator(info.metadata, info))
    parts = [attribute_help.rstrip("."), (info.description or "").rstrip(".")]
    limits = constraints(info.annotation, info.metadata)
    if limits:
        parts.append(", ".join(limits))
    arms = get_args(info.annotation) if _is_union(info.annotation) else ()
    shorthand = _shorthand_text(info.metadata) or next(
        (
            text
            for arm in arms
            if get_origin(arm) is Annotated
            and (text := _shorthand_text(list(arm.__metadata__))) is not None
        ),
        None,
    )
    if shorthand:
        parts.append(shorthand)
    description = "; ".join(part for part in parts if part)
    cells = [f"`{name}`", kind, default_text(info), description]
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def model_section(model: type[BaseModel], paths: list[str]) -> str:
    """A model's section: heading, where it appears, docstring and field table.

    Args:
        model: The model.
        paths: Where it appears in a file (empty for the whole file).

    Returns:
        Markdown, ending without a newline.
    """
    text, attributes = split_docstring(model)
    lines = [f"## {model.__name__}", ""]
    if paths:
        lines += ["Appears at " + ", ".join(f"`{path}`" for path in paths) + ".", ""]
    if text:
        lines += [text, ""]
    if model.model_fields:
        lines += ["| field | type | default | description |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            lines.append(field_row(name, info, attributes.get(name, "")))
    else:
        lines.append("No fields.")
    return "\n".join(lines)


README_START = "<!-- scenario-index: generated by sim.scenario.reference; do not edit -->"
README_END = "<!-- /scenario-index -->"


def readme_index_markdown() -> str:
    """The README's index of scenario-file sections: where each sits in a file and what it is.

    One row per section of :func:`scenario_reference_markdown`, linked to it,
    with the first sentence of the model's docstring; between
    :data:`README_START` and :data:`README_END` in the README.
    """
    rows = ["| section | where in a file | what it is |", "|---|---|---|"]
    for model, paths in reachable_models(Scenario).items():
        summary, _ = split_docstring(model)
        first = summary.split("\n\n")[0].replace("\n", " ")
        first = first.split(". ")[0].rstrip(".") + "."
        name = model.__name__
        link = f"[{name}](docs/scenario-reference.md#{name.lower()})"
        where = ", ".join(f"`{p}`" for p in paths[:2]) + (", ..." if len(paths) > 2 else "")
        rows.append(f"| {link} | {where or '(the file)'} | {_cell(first)} |")
    return "\n".join([README_START, *rows, README_END]) + "\n"


def scenario_reference_markdown() -> str:
    """The scenario-file reference as Markdown: what ``surplus schema --format markdown`` prints.

    Returns:
        The document, ending in one newline; the same text on every call.

    Raises:
        ValueError: If two reachable models share a name (their sections would clash).
    """
    models = reachable_models(Scenario)
    names = [model.__name__ for model in models]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise ValueError(f"models with the same name cannot share one reference: {clashes}")
    modules = list(dict.fromkeys(model.__module__ for model in models))
    head = [
        "# Scenario file reference",
        "",
        "Generated by `surplus schema --format markdown` from the pydantic models in "
        + ", ".join(f"`{module}`" for module in modules)
        + "; do not edit it by hand. Regenerate it with "
        "`python -m sim.scenario.reference > docs/scenario-reference.md`; a test fails "
        "when it is stale.",
        "",
        "A scenario file is YAML. Each section below is one mapping of the file, starting "
        "with the whole file ([Scenario](#scenario)).",
        "",
        "- Unknown fields are errors.",
        "- Where a type reads `one of ... by kind`, the mapping's `kind` field picks the "
        "section that applies.",
        f"- For a `duration`, {DURATION_HELP}.",
        "- A field with a default may be left out. A default such as `{}` or "
        "`{kind: first_fit}` is that section with its own defaults; a `required` field "
        "has none.",
        "",
        "The top-level layout:",
        "",
        "```yaml",
        EXAMPLE_YAML.rstrip("\n"),
        "```",
        "",
        "Sections:",
        "",
        *[f"- {_anchor(model)}" for model in models],
    ]
    sections = [model_section(model, paths) for model, paths in models.items()]
    return "\n\n".join(["\n".join(head), *sections]) + "\n"


def main() -> None:
    """Print the reference: ``python -m sim.scenario.reference > docs/scenario-reference.md``."""
    sys.stdout.write(scenario_reference_markdown())


if __name__ == "__main__":
    main()
