"""Capacity planning: the most (or least) of one parameter at which every tenant's terms hold.

``surplus plan SCENARIO --vary PATH --range LO:HI[:STEP] --keep TERMS`` answers a
provider's question: how many GPUs can be reserved for a tenant, how fast may a
tenant's jobs arrive, how low can the power cap go, before someone's SLA terms
(:mod:`sim.scenario.sla`) break?

The candidate values are the grid ``LO, LO + STEP, ..., HI``. A value *holds*
when, for every kept tenant, the share of its measurement windows (days, weeks
or the whole run, as its ``sla.window`` says) in which all its kept terms held,
over the runs of every seed, is at least ``confidence``. So ``--confidence 0.9``
with weekly terms asks for the terms to hold in 90 % of weeks. Each share comes
with its Wilson 95 % interval; the windows of one run are counted as independent
samples, which they are not quite (a bad week tends to have bad neighbours), so
with few seeds the interval is optimistic.

Every value runs on the same seeds (common random numbers: each random stream
is spawned from the root seed by name), so two neighbouring values see the same
arrivals, job sizes and failures, and their verdicts differ by the parameter, not
by luck.

Search:

- ``bisect`` (default) assumes the verdict is monotone in the parameter: with
  ``--find max`` the terms hold up to some value and not beyond (GPUs sold, an
  arrival rate); with ``--find min`` from some value on (a power cap, GPUs kept
  back). It runs both ends of the range first, then halves the bracket: about
  ``log2(values)`` rounds of ``seeds`` runs each.
- ``grid`` runs every value, and finds the largest (or smallest) that holds
  without assuming anything; it says where the verdict is not monotone.

The answer, the *frontier*, is the value found, with the next value of the grid
beyond it (which fails) as its bracket, both with their shares and intervals.

A plan directory holds ``points/KEY/`` (one run directory per value and seed, as
in a sweep: :mod:`sim.sweep`; the key is a content hash of the resolved
scenario, so a rerun skips every finished run and resumes where it stopped),
``points.parquet`` (each run tried: key, seed, the path's value, status),
``results.parquet`` (tidy: every number of every finished run's summary),
``table.parquet`` (per value: each metric's mean over seeds with its interval,
:mod:`sim.points_table`),
``plan.json`` (the question, each value tried with its verdict, the frontier)
and the marker. At the end, point directories the plan did not try are
removed, so the directory holds one plan. Runs go to local worker processes or
an existing Dask cluster exactly as a sweep's points do.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.compare import seed_list, wilson_interval
from sim.files import atomic_write
from sim.metrics.sla import RUN_ONLY, excess
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.scenario.sla import ServedModelSla, Sla
from sim.sweep import (
    Point,
    check_backend,
    finished,
    make_point,
    read_summary,
    run_texts,
    write_point,
    write_tables,
)

FINDS = ("max", "min")
"""What a plan looks for: the largest or the smallest value that holds."""

SEARCHES = ("bisect", "grid")
"""How a plan looks for it."""

MAX_VALUES = 100_000
"""Values a range may hold."""

DEFAULT_STEPS = 32
"""A range of non-integer bounds without a STEP is cut into this many steps."""


@dataclass(frozen=True)
class Kept:
    """One tenant's terms a plan keeps: the tenant, the terms, its measurement window."""

    tenant: str
    terms: tuple[str, ...]
    window: str


@dataclass
class Verdict:
    """How one value did: per kept tenant, windows held out of windows measured.

    Attributes:
        value: The parameter's value.
        keys: Its runs' keys, one per seed.
        windows: Per tenant, ``(held, total)`` windows over every seed.
        confidence: The share of windows a tenant's terms must hold in.
        revenue_usd: Mean net revenue over the seeds (None where the runs price nothing).
        credits_usd: Mean SLA credits over the seeds (None where no bill is on record).
    """

    value: float
    keys: list[str]
    windows: dict[str, tuple[int, int]]
    confidence: float
    revenue_usd: float | None = None
    credits_usd: float | None = None

    def share(self, tenant: str) -> tuple[float | None, float | None, float | None]:
        """The tenant's share of windows held, with its Wilson 95 % interval."""
        held, total = self.windows[tenant]
        return wilson_interval(held, total)

    @property
    def binding(self) -> str:
        """The kept tenant with the lowest share (the one the verdict turns on)."""
        return min(sorted(self.windows), key=lambda t: self.share(t)[0] or 0.0)

    @property
    def holds(self) -> bool:
        """Whether every kept tenant's share reaches the confidence."""
        return all((self.share(t)[0] or 0.0) >= self.confidence for t in self.windows)

    def record(self) -> dict[str, Any]:
        """As ``plan.json`` holds it."""
        tenants = {}
        for tenant in sorted(self.windows):
            held, total = self.windows[tenant]
            share, low, high = self.share(tenant)
            tenants[tenant] = {"windows_held": held, "windows": total, "share": share,
                               "ci_low": low, "ci_high": high}  # fmt: skip
        return {"value": self.value, "holds": self.holds, "binding": self.binding,
                "revenue_usd": self.revenue_usd, "sla_credits_usd": self.credits_usd,
                "tenants": tenants, "keys": self.keys}  # fmt: skip


@dataclass
class PlanOutcome:
    """What :func:`plan` found.

    Attributes:
        out: The plan directory.
        path: The parameter varied.
        find: ``max`` or ``min``.
        verdicts: Every value tried, by increasing value.
        frontier: The value found (None: no value of the range holds).
        beyond: The next value of the grid past the frontier (it fails), None at the
            range's end or when nothing holds.
        status: ``found``, ``at_end`` (the end of the range holds: widen it) or ``none``.
        not_monotone: Values that hold beyond one that fails (grid search only).
        ran: Runs made now; ``skipped``: runs already finished; ``failed``: failed keys.
        together: Every path varied (the first is ``path``) with its values, in grid order.
    """

    out: Path
    path: str
    find: str
    verdicts: list[Verdict]
    frontier: float | None
    beyond: float | None
    status: str
    not_monotone: list[float] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    together: dict[str, list[float]] = field(default_factory=dict)

    def companions(self, value: float) -> dict[str, float]:
        """The values the other varied paths take beside ``value`` of the first."""
        index = self.together[self.path].index(value)
        return {p: v[index] for p, v in self.together.items() if p != self.path}

    def verdict(self, value: float | None) -> Verdict | None:
        """The verdict of a value tried (None if not tried)."""
        return next((v for v in self.verdicts if v.value == value), None)


def parse_range(text: str) -> list[float]:
    """The values of ``LO:HI[:STEP]``: ``LO, LO + STEP, ...`` up to ``HI``, which must be on it.

    Integers when LO, HI and STEP are (STEP defaults to 1); otherwise floats, STEP
    defaulting to (HI - LO) / 32.

    Raises:
        ScenarioError: Naming what is wrong with the range.
    """
    parts = text.split(":")
    where = f"--range {text}"
    if len(parts) not in (2, 3):
        raise ScenarioError([f"{where}: expected LO:HI or LO:HI:STEP, e.g. 1024:8192:1024"])
    numbers: list[float] = []
    for name, part in zip(("LO", "HI", "STEP"), parts, strict=False):
        try:
            number = float(part)
        except ValueError:
            raise ScenarioError([f"{where}: {name} {part!r} is not a number"]) from None
        if not math.isfinite(number):
            raise ScenarioError([f"{where}: {name} must be finite, got {part}"])
        numbers.append(number)
    integers = all(_is_integer(p) for p in parts)
    low, high = numbers[0], numbers[1]
    if high < low:
        raise ScenarioError([f"{where}: HI must be at least LO"])
    default_step = 1.0 if integers else (high - low) / DEFAULT_STEPS
    step = numbers[2] if len(numbers) == 3 else default_step
    if high > low and step <= 0:
        raise ScenarioError([f"{where}: STEP must be positive"])
    count = 0 if high == low else (high - low) / step
    if round(count) > MAX_VALUES:
        raise ScenarioError([f"{where}: {round(count) + 1:,} values; at most {MAX_VALUES:,}"])
    if abs(count - round(count)) > 1e-6 * max(1.0, count):
        raise ScenarioError(
            [f"{where}: HI must be LO plus a whole number of STEPs ({count:.3g} steps)"]
        )
    values = [low + k * step for k in range(round(count) + 1)]
    if integers:
        return [float(round(v)) for v in values]
    return [float(f"{v:.12g}") for v in values]


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def value_override(value: float) -> str:
    """A value as an override's text: an integer without a decimal point."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def sla_holders(scenario: Scenario) -> dict[str, Sla | ServedModelSla]:
    """Every party of the scenario with SLA terms, by name (``internal``: its served model)."""
    holders: dict[str, Sla | ServedModelSla] = {}
    fleet = scenario.internal.inference
    if fleet is not None and fleet.serving is not None and fleet.serving.sla is not None:
        holders["internal"] = fleet.serving.sla
    holders.update((t.name, t.contract.sla) for t in scenario.tenants if t.contract.sla)
    return holders


def parse_keep(values: Sequence[str], scenario: Scenario) -> list[Kept]:
    """The terms a plan keeps, from ``--keep``: ``all``, ``TENANT`` or ``TENANT.TERM``.

    Values may be repeated or comma-separated; none means ``all``.

    Raises:
        ScenarioError: Naming an unknown tenant or term, a tenant without terms, or a
            term the run measures over the whole run only while the tenant's window
            is a day or a week.
    """
    holders = sla_holders(scenario)
    if not holders:
        raise ScenarioError(
            [f"--keep: no tenant of {scenario.name} has SLA terms; add `sla:` to a contract"]
        )
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    chosen: dict[str, list[str]] = {}
    problems: list[str] = []
    for item in items or ["all"]:
        if item == "all":
            for name, sla in holders.items():
                chosen.setdefault(name, []).extend(sla.terms())
            continue
        tenant, _, term = item.partition(".")
        if tenant not in holders:
            problems.append(
                f"--keep {item}: no tenant {tenant!r} with SLA terms; those with terms: "
                + ", ".join(sorted(holders))
            )
            continue
        terms = holders[tenant].terms()
        if term and term not in terms:
            problems.append(
                f"--keep {item}: {tenant} has no term {term!r}; its terms: " + ", ".join(terms)
            )
            continue
        chosen.setdefault(tenant, []).extend([term] if term else list(terms))
    kept = []
    for tenant in sorted(chosen):
        window = holders[tenant].window
        terms = tuple(dict.fromkeys(chosen[tenant]))
        for term in terms:
            if term in RUN_ONLY and window != "run":
                problems.append(
                    f"--keep {tenant}.{term}: measured over the whole run only, but "
                    f"{tenant}'s window is {window}: keep its other terms, or use window: run"
                )
        kept.append(Kept(tenant, terms, window))
    if problems:
        raise ScenarioError(problems)
    return kept


def windows_held(summary: dict[str, Any], kept: Kept) -> tuple[int, int]:
    """Windows of one run in which all of a tenant's kept terms held, and windows in all.

    Raises:
        ScenarioError: If a kept term could not be measured in the run (its reason).
    """
    terms = summary["tenants"][kept.tenant]["sla_terms"]
    breached: set[int] = set()
    total = 0
    for term in kept.terms:
        figure = terms[term]
        if figure["windows"] is None or figure.get("reason"):
            raise ScenarioError(
                [f"tenants.{kept.tenant}.{term}: not measured in this run: {figure.get('reason')}"]
            )
        values = figure["windows"]
        total = len(values)
        breached.update(
            k for k, value in enumerate(values) if excess(term, figure["limit"], value) is not None
        )
    return total - len(breached), total


def judge(
    value: float, summaries: Sequence[dict[str, Any]], keys: list[str], kept: Sequence[Kept],
    confidence: float,
) -> Verdict:  # fmt: skip
    """The verdict of one value from its runs' summaries (one per seed)."""
    windows = {}
    for k in kept:
        counts = [windows_held(s, k) for s in summaries]
        windows[k.tenant] = (sum(c[0] for c in counts), sum(c[1] for c in counts))
    revenue, credits = (_mean([s.get(key) for s in summaries])
                        for key in ("revenue_usd", "sla_credits_usd"))  # fmt: skip
    return Verdict(value, keys, windows, confidence, revenue, credits)


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean of the values, None if any is None (a run that does not have the figure)."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


@dataclass
class _Search:
    """The state of one plan: its points, the verdicts so far, and how to run more."""

    paths: list[str]
    scenario_path: Path
    overrides: tuple[str, ...]
    values: list[list[float]]
    seeds: list[int]
    kept: list[Kept]
    confidence: float
    out: Path
    runner: Callable[[list[str]], Any]
    progress: Callable[[int, int], None] | None
    rounds: int
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    points: dict[str, Point] = field(default_factory=dict)
    resolved: dict[tuple[int, int], Point] = field(default_factory=dict)
    ran: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    round: int = 0

    def point(self, index: int, seed: int) -> Point:
        """The run of the index-th value at ``seed``, resolved once."""
        if (index, seed) not in self.resolved:
            parameters = {
                path: value_override(values[index])
                for path, values in zip(self.paths, self.values, strict=True)
            }
            point = make_point(self.scenario_path, self.overrides, parameters, seed)
            self.resolved[(index, seed)] = point
        return self.resolved[(index, seed)]

    def evaluate(self, indices: Sequence[int]) -> None:
        """Run every unfinished run of these values (one batch), then judge them."""
        wanted = [i for i in dict.fromkeys(indices) if i not in self.verdicts]
        if not wanted:
            return
        batch = {i: [self.point(i, seed) for seed in self.seeds] for i in wanted}
        for points in batch.values():
            self.points.update((p.key, p) for p in points)
        todo = [p for points in batch.values() for p in points if not finished(self.out, p)]
        self.skipped += sum(len(points) for points in batch.values()) - len(todo)
        for index, outcome in self.runner([p.text for p in todo]):
            write_point(self.out, todo[index], outcome)
            self.ran += 1
            if not outcome["ok"]:
                self.failed.append(todo[index].key)
        self.round += 1
        if self.progress is not None:
            self.progress(self.round, self.rounds)
        if self.failed:
            return
        for i, points in batch.items():
            summaries = [read_summary(self.out, p) for p in points]
            keys = [p.key for p in points]
            value = self.values[0][i]
            self.verdicts[i] = judge(value, summaries, keys, self.kept, self.confidence)

    def holds(self, index: int) -> bool:
        return self.verdicts[index].holds


def _bisect(search: _Search, order: list[int]) -> tuple[int | None, int | None, str]:
    """Frontier position in ``order`` (values that hold first), the one past it, status."""
    search.evaluate([order[0], order[-1]])
    if search.failed:
        return None, None, "failed"
    if not search.holds(order[0]):
        return None, None, "none"
    if search.holds(order[-1]):
        return order[-1], None, "at_end"
    low, high = 0, len(order) - 1  # holds at low, fails at high
    while high - low > 1:
        middle = (low + high) // 2
        search.evaluate([order[middle]])
        if search.failed:
            return None, None, "failed"
        if search.holds(order[middle]):
            low = middle
        else:
            high = middle
    return order[low], order[high], "found"


def _grid(search: _Search, order: list[int]) -> tuple[int | None, int | None, str, list[int]]:
    """Like :func:`_bisect` over every value; also the values that break monotony."""
    search.evaluate(order)
    if search.failed:
        return None, None, "failed", []
    holding = [position for position, i in enumerate(order) if search.holds(i)]
    if not holding:
        return None, None, "none", []
    last = holding[-1]
    first_fail = next((p for p, i in enumerate(order) if not search.holds(i)), None)
    odd = [order[p] for p in holding if first_fail is not None and p > first_fail]
    if last == len(order) - 1:
        return order[last], None, "at_end", odd
    return order[last], order[last + 1], "found", odd


def plan(
    path: str | Path,
    out: str | Path,
    vary: str | Sequence[str],
    range_text: str | Sequence[str],
    keep: Sequence[str] = (),
    confidence: float = 0.9,
    seeds: int | None = None,
    first_seed: int | None = None,
    find: str = "max",
    search: str = "bisect",
    overrides: Sequence[str] = (),
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PlanOutcome:
    """Find the largest (or smallest) value of ``vary`` at which the kept terms hold.

    Several paths may move together (``--vary A --range .. --vary B --range ..``): their
    ranges must have as many values, the k-th value of each going into the k-th point
    (a reserved block's GPUs and its pods, say); the first path is the one reported.

    Args:
        path: The scenario file.
        out: The plan directory (resumed if it holds this plan's runs).
        vary: The dotted path of the parameter (as ``--set`` takes it), or several.
        range_text: ``LO:HI[:STEP]`` (:func:`parse_range`), one per path.
        keep: Which terms must hold (:func:`parse_keep`); none: every term of every tenant.
        confidence: The share of windows (over seeds) each tenant's terms must hold in.
        seeds: Runs per value (default: the scenario's ``compare.seeds``, else 5).
        first_seed: The first seed (default: the scenario's).
        find: ``max`` or ``min``.
        search: ``bisect`` (a monotone parameter) or ``grid``.
        overrides: Applied to every run before the varied value.
        workers: Local worker processes (default: one per CPU).
        backend: ``local`` or ``dask``; ``address`` the Dask scheduler.
        progress: Called with ``(rounds done, most rounds)``.

    Raises:
        ScenarioError: If the question is malformed (a bad path, range, term, value), or
            a kept term cannot be measured; checked on both ends of the range before any
            run.
        sim.outputs.OutputError: If ``out`` holds something other than a plan.
    """
    problems = []
    if find not in FINDS:
        problems.append(f"--find: {find!r} is not one of {', '.join(FINDS)}")
    if search not in SEARCHES:
        problems.append(f"--search: {search!r} is not one of {', '.join(SEARCHES)}")
    if not 0 < confidence <= 1:
        problems.append(f"--confidence: a share of windows in (0, 1], got {confidence}")
    if seeds is not None and seeds < 1:
        problems.append(f"--seeds: at least 1, got {seeds}")
    if problems:
        raise ScenarioError(problems)
    check_backend(backend, address)
    scenario = load_scenario(path, overrides, first_seed)
    paths = [vary] if isinstance(vary, str) else list(vary)
    texts = [range_text] if isinstance(range_text, str) else list(range_text)
    columns = _ranges(paths, texts)
    values = columns[0]
    kept = parse_keep(keep, scenario)
    count = seeds if seeds is not None else (scenario.compare.seeds if scenario.compare else 5)
    seed_values = seed_list(scenario.seed, count)
    out_dir = Path(out)
    rounds = 1 if search == "grid" else 2 + math.ceil(math.log2(len(values)))
    state = _Search(paths, Path(path), tuple(overrides), columns, seed_values, kept, confidence,
                    out_dir, lambda texts: run_texts(texts, workers, backend, address),
                    progress, rounds)  # fmt: skip
    try:  # both ends resolve (a bad path or value is named before anything runs)
        state.point(0, seed_values[0])
        state.point(len(values) - 1, seed_values[0])
    except ScenarioError as exc:
        where = " ".join(f"--vary {p}" for p in paths)
        raise ScenarioError([f"{where}: {p}" for p in exc.problems]) from None
    from sim.outputs import claim_directory, remove_temporaries

    out_dir = claim_directory(out_dir, "plan")
    state.out = out_dir
    (out_dir / "points").mkdir(exist_ok=True)
    remove_temporaries(out_dir / "points")
    order = list(range(len(values)))
    if find == "min":
        order.reverse()
    odd: list[int] = []
    if search == "grid":
        frontier, beyond, status, odd = _grid(state, order)
    else:
        frontier, beyond, status = _bisect(state, order)
    together = dict(zip(paths, columns, strict=True))
    outcome = PlanOutcome(
        out_dir, paths[0], find, [state.verdicts[i] for i in sorted(state.verdicts)],
        None if frontier is None else values[frontier],
        None if beyond is None else values[beyond],
        status, [values[i] for i in sorted(odd)], state.ran, state.skipped, sorted(state.failed),
        together,
    )  # fmt: skip
    if not state.failed:
        _remove_untried(out_dir, state.points)
    question = {"scenario": scenario.name, "vary": paths, "range": texts, "values": together,
                "find": find, "search": search, "confidence": confidence,
                "seeds": seed_values, "overrides": list(overrides),
                "keep": [{"tenant": k.tenant, "terms": list(k.terms), "window": k.window}
                         for k in kept]}  # fmt: skip
    gather(out_dir, question, outcome, list(state.points.values()))
    return outcome


def _ranges(paths: list[str], texts: list[str]) -> list[list[float]]:
    """Each path's values; as many ranges as paths, each with as many values.

    Raises:
        ScenarioError: If the paths and ranges do not pair up.
    """
    if len(paths) != len(texts) or not paths:
        raise ScenarioError(
            [f"--vary and --range come in pairs: {len(paths)} --vary, {len(texts)} --range"]
        )
    if len(set(paths)) != len(paths):
        raise ScenarioError(["--vary: a path is named twice"])
    columns = [parse_range(text) for text in texts]
    counts = {len(c) for c in columns}
    if len(counts) > 1:
        sizes = ", ".join(f"{t} has {len(c)}" for t, c in zip(texts, columns, strict=True))
        raise ScenarioError([f"--range: paths that move together need as many values ({sizes})"])
    return columns


def _remove_untried(out: Path, points: dict[str, Point]) -> None:
    """Remove point directories this plan did not try (an earlier, different plan's)."""
    for child in (out / "points").iterdir():
        if child.name not in points and child.is_dir():
            shutil.rmtree(child)


def gather(out: Path, question: dict[str, Any], outcome: PlanOutcome, points: list[Point]) -> None:
    """Write points.parquet, results.parquet, table.parquet and plan.json."""
    write_tables(out, question["vary"], points)
    document = {
        **question,
        "paths": question["vary"],
        "status": outcome.status,
        "frontier": outcome.frontier,
        "beyond": outcome.beyond,
        "not_monotone": outcome.not_monotone,
        "tried": [v.record() for v in outcome.verdicts],
        "failed": outcome.failed,
    }
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(out / "plan.json", lambda p: Path(p).write_text(text, encoding="utf-8"))
