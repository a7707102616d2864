"""Fuzzing FABRIC.yaml and FLOWS.csv: every input succeeds or is refused with a message, fast.

Each example mutates a small valid fabric file and traffic file (numbers made
negative, zero, NaN, infinite, 1e300 or huge integers, wrong types, text,
deleted or unknown keys, missing or extra columns, empty files) and runs the
real path: :func:`~sim.scenario.fabric_loader.fabric_from_text`,
:func:`~sim.fabric.traffic.read_flow_arrays` and
:func:`~sim.fabric.flows.simulate_flows`, or the ``surplus fabric`` command.
It must either succeed or raise :class:`~sim.scenario.yaml_input.ScenarioError`
(exit status 2 on the command line) with one short line per problem; any
other exception fails the test, and so does an example that runs longer than
10 s (:func:`~tests.timing.time_limit`: a SIGALRM timer raises
:class:`~tests.fabric.strategies.ExampleTimedOut`, which the code under test
cannot swallow as an ``Exception``).

The default run draws about six hundred examples, derandomised so that it is
the same every time; ``test_fuzz_long`` (marked slow, excluded by default)
draws ten thousand new ones on every run (a failure prints the blob that
replays it)::

    .venv/bin/pytest -n 0 -m slow tests/fabric/test_fuzz_inputs.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app
from sim.fabric.flows import simulate_flows
from sim.fabric.paths import equal_cost_path_count
from sim.fabric.traffic import read_flow_arrays
from sim.scenario.fabric_loader import fabric_from_text
from sim.scenario.yaml_input import ScenarioError
from tests.fabric.strategies import fabric_documents, fabric_text, flows_texts
from tests.timing import ExampleTimedOut, time_limit

MAX_PROBLEM_CHARS = 220
"""Longest problem line accepted (the message, with the file name and line)."""

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_problems(problems: list[str], source: str) -> None:
    """Problems are non-empty single lines, short, naming the file."""
    assert problems
    for problem in problems:
        assert "\n" not in problem, problem
        assert len(problem) <= MAX_PROBLEM_CHARS, problem
        assert problem.startswith(source), problem
        assert "Traceback" not in problem, problem


def run_fabric(data: st.DataObject, *, max_mutations: int, in_range_only: bool = False) -> None:
    """One example through the library path (its outcome is a hypothesis event)."""
    event(_run_fabric(data, max_mutations=max_mutations, in_range_only=in_range_only))


def _run_fabric(data: st.DataObject, *, max_mutations: int, in_range_only: bool) -> str:
    document = fabric_documents(max_mutations=max_mutations, in_range_only=in_range_only)
    text = fabric_text(data.draw(document, label="fabric"))
    with tempfile.TemporaryDirectory() as tmp, time_limit():
        try:
            config = fabric_from_text(text, "fab.yaml")
        except ScenarioError as exc:
            check_problems(exc.problems, "fab.yaml")
            return "fabric refused"
        n_hosts = config.build_topology().n_hosts
        path = Path(tmp) / "flows.csv"
        traffic = flows_texts(n_hosts, mutate=not in_range_only)
        path.write_text(data.draw(traffic, label="flows"), encoding="utf-8")
        try:
            topology = config.build_topology()
            flows = read_flow_arrays(
                path, n_hosts, lambda src, dst: equal_cost_path_count(topology, src, dst)
            )
            result = simulate_flows(config, flows, source=str(path))
        except ScenarioError as exc:
            check_problems(exc.problems, str(path))
            return "traffic refused"
    assert result.flow_table["fct_us"].size == flows["src"].size
    return "ran"


def run_command(data: st.DataObject) -> None:
    """One example through ``surplus fabric``: exit 0, or 2 with messages, never a trace."""
    document = data.draw(fabric_documents(max_mutations=2), label="fabric")
    try:
        n_hosts = fabric_from_text(fabric_text(document)).build_topology().n_hosts
    except ScenarioError:
        n_hosts = 16  # the command refuses the fabric before it reads the traffic
    flows = data.draw(flows_texts(n_hosts), label="flows")
    with tempfile.TemporaryDirectory() as tmp, time_limit():
        fabric_path, flows_path = Path(tmp) / "fab.yaml", Path(tmp) / "flows.csv"
        fabric_path.write_text(fabric_text(document), encoding="utf-8")
        flows_path.write_text(flows, encoding="utf-8")
        result = CliRunner().invoke(
            app,
            ["fabric", str(fabric_path), "--traffic", str(flows_path), "--out", f"{tmp}/out", "-q"],
        )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 2), result.output
    event(f"command exit {result.exit_code}")
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line]
        assert errors and all(line.startswith("error: ") for line in errors), result.stderr
        check_problems([line.removeprefix("error: ") for line in errors], tmp)


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_fuzzed_fabric_files_are_refused_or_run(data: st.DataObject) -> None:
    run_fabric(data, max_mutations=3)


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_fuzzed_traffic_on_valid_fabrics_is_refused_or_runs(data: st.DataObject) -> None:
    run_fabric(data, max_mutations=0)


@settings(FUZZ, max_examples=150)
@given(st.data())
def test_fabrics_anywhere_in_range_run(data: st.DataObject) -> None:
    """Valid but extreme fabrics (every field anywhere in its range) run, or are refused."""
    run_fabric(data, max_mutations=6, in_range_only=True)


@settings(FUZZ, max_examples=60)
@given(st.data())
def test_fuzzed_files_through_the_command(data: st.DataObject) -> None:
    run_command(data)


@pytest.mark.slow
@settings(FUZZ, max_examples=10_000, derandomize=False, print_blob=True)
@given(st.data())
def test_fuzz_long(data: st.DataObject) -> None:
    way = data.draw(st.integers(0, 9), label="way")
    if way == 0:
        run_command(data)
    elif way <= 3:
        run_fabric(data, max_mutations=data.draw(st.integers(1, 8)), in_range_only=True)
    else:
        run_fabric(data, max_mutations=data.draw(st.integers(0, 4), label="mutations"))


def test_time_limit_interrupts_a_hang() -> None:
    with pytest.raises(ExampleTimedOut), time_limit(0.05):
        while True:
            pass
