"""Fuzzing every shipped scenario: bad numbers get a message, never a traceback or a hang.

Each example takes one of ``scenarios/*.yaml``, mutates one to three of its
fields (a number replaced by a negative, zero, NaN, an infinity, 1e300 or a huge
integer; a value of the wrong type; a key deleted; an unknown key added), in the
file itself or as a ``--set`` override, then validates it and, if it is valid,
runs it through the ``surplus run`` command for a short horizon. Every example
must end with exit status 0 or 2 with one-line messages, never another
exception, within a time limit per example.

The default run holds a few hundred examples; ``-m slow`` runs 10,000.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app
from sim.scenario import ScenarioError
from sim.scenario.loader import scenario_from_text
from sim.scenario.yaml_input import parse_yaml
from tests.timing import time_limit

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))
TEXTS = {path.name: path.read_text(encoding="utf-8") for path in SCENARIOS}
DATA = {name: parse_yaml(text, name)[0] for name, text in TEXTS.items()}

SECONDS_PER_EXAMPLE = 30
"""The longest one example may take: more is a hang."""

RUN_HORIZON = "10m"
"""How long a valid mutated scenario is run."""

BAD_VALUES: list[Any] = [
    -1,
    0,
    -0.5,
    1e-300,
    math.nan,
    math.inf,
    -math.inf,
    1e300,
    10**30,
    2**63,
    -(2**63),
    True,
    False,
    None,
    "",
    "abc",
    "1e300",
    "nan",
    "٣h",
    "-2h",
    [],
    [1, 2],
    {},
    {"kind": "banana"},
]


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in the raw data, containers and leaves, in document order."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(paths(value, (*prefix, index)))
    return out


PATHS = {name: paths(data) for name, data in DATA.items()}


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


NUMBERS = {
    name: [path for path in PATHS[name] if _numeric(_get(DATA[name], path))] for name in DATA
}


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy(value) for value in node]
    return node


def _value_text(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip().removesuffix("\n...")
    )


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    """A shipped scenario's name, its mutated text and ``--set`` overrides."""
    name = draw(st.sampled_from(sorted(TEXTS)))
    data = _copy(DATA[name])
    overrides: list[str] = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        path = draw(st.sampled_from(NUMBERS[name] if draw(st.booleans()) else PATHS[name]))
        try:
            old = _get(data, path)
            holder = _get(data, path[:-1])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed it
        action = draw(st.sampled_from(["replace", "scale", "scale", "delete", "unknown"]))
        if action == "scale" and _numeric(old):
            mild = draw(st.booleans())  # half the time a value a run may well take
            factor = draw(
                st.sampled_from([0.5, 1.5, 2, 4] if mild else [-1, 0, 1e-9, 10, 1e3, 1e6, 1e30])
            )
            value: Any = old * factor
            if isinstance(old, int) and draw(st.booleans()):
                value = int(value) if math.isfinite(value) else value
        elif action == "delete" and isinstance(holder, dict):
            del holder[path[-1]]
            continue
        elif action == "unknown" and isinstance(old, dict):
            old["no_such_field"] = _copy(draw(st.sampled_from(BAD_VALUES)))
            continue
        else:
            value = _copy(draw(st.sampled_from(BAD_VALUES)))
        if draw(st.booleans()) and all(isinstance(p, str | int) for p in path):
            overrides.append(f"{_dotted(path)}={_value_text(value)}")
        else:
            holder[path[-1]] = value
    return name, yaml.safe_dump(data, sort_keys=False), overrides


def check(name: str, text: str, overrides: list[str], tmp_path: Path) -> None:
    """Validate the mutated scenario, run it if valid: status 0 or 2, never a traceback."""
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            scenario_from_text(text, name, overrides)
        except ScenarioError as exc:
            assert exc.problems, "a ScenarioError must say what is wrong"
            for problem in exc.problems:
                assert problem.strip() and "\n" not in problem
                assert "Traceback" not in problem
                assert len(problem) < 300, f"a message of {len(problem)} characters: {problem}"
            event("refused by validation")
            return
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        args = ["run", str(path), "-q", "--out", str(tmp_path / "out")]
        for override in [*overrides, f"horizon={RUN_HORIZON}"]:
            args += ["--set", override]
        result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 2), result.output
    event(f"run: exit {result.exit_code}")
    if result.exit_code == 2:
        assert "error:" in result.output


FUZZ = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@settings(FUZZ, max_examples=300)
@given(case=mutations())
def test_mutated_scenarios_run_or_exit_2(case: tuple[str, str, list[str]], tmp_path: Path):
    check(*case, tmp_path)


@pytest.mark.slow
@settings(FUZZ, max_examples=10_000, derandomize=False)
@given(case=mutations())
def test_mutated_scenarios_run_or_exit_2_long(case: tuple[str, str, list[str]], tmp_path: Path):
    check(*case, tmp_path)
