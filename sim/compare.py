"""Compare tenancy policies over seeds: common random numbers, intervals, paired differences.

A *policy* here is the scenario with some overrides (``policies.placement.kind=first_fit``,
``tenants.0.contract.gpus=512``, ...). Every policy runs on the same seeds, so for one seed
every policy sees the same arrivals, job sizes and failures (common random numbers: each
random stream is spawned from the root seed by name, not drawn in the order events happen).
The difference between two policies is then measured seed by seed, and its confidence
interval is far narrower than the two policies' own intervals.

For each metric (every number of ``summary.json``, per tenant as ``tenants.NAME.key``) the
comparison gives the mean over seeds with a Student-t 95 % confidence interval, and for
every policy but the baseline the mean paired difference against the baseline with its
own interval.

For every tenant with SLA terms (see :mod:`sim.metrics.sla`) it also gives, per policy,
the probability over seeds that all its terms held (``sla_held`` true), with a Wilson
95 % score interval: a proportion near 0 or 1 over a few seeds is where a Student-t
interval fails (it can leave [0, 1], and is empty when every seed agrees). Seeds whose
verdict is null (a term could not be measured and none broke) are left out of ``n``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.scenario import Scenario, ScenarioError, load_scenario

CONFIDENCE = 0.95
"""Level of every confidence interval."""

NOT_METRICS = frozenset({"scenario", "seed", "horizon_hours", "wall_seconds"})
"""Keys of ``summary.json`` that describe the run rather than measure it."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Policy:
    """One arm of a comparison: a name and the overrides that make it.

    Attributes:
        name: Label in tables and file names.
        overrides: ``dotted.path=value`` strings, applied after the command's ``--set``.
    """

    name: str
    overrides: tuple[str, ...] = ()


def parse_policies(values: Sequence[str]) -> list[Policy]:
    """Policies from ``--policy`` options: ``NAME`` or ``NAME=dotted.path=value``.

    Repeating a name adds overrides to it; policies keep the order they first appear in.

    Raises:
        ScenarioError: On a malformed option or name.
    """
    overrides: dict[str, list[str]] = {}
    problems: list[str] = []
    for value in values:
        name, sep, override = value.partition("=")
        if not _NAME.match(name):
            problems.append(
                f"--policy {value}: expected NAME or NAME=dotted.path=value, with NAME made of "
                "letters, digits, '_', '-' and '.'"
            )
            continue
        if sep and "=" not in override:
            problems.append(f"--policy {value}: the override must be dotted.path=value")
            continue
        overrides.setdefault(name, [])
        if sep:
            overrides[name].append(override)
    if problems:
        raise ScenarioError(problems)
    return [Policy(name, tuple(items)) for name, items in overrides.items()]


def policies_from_block(block: Any) -> list[Policy]:
    """Policies of a scenario's ``compare`` block, values turned back into overrides."""
    import yaml

    policies = []
    for name, fields in block.policies.items():
        overrides = tuple(
            f"{path}={yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()}"
            for path, value in fields.items()
        )
        # yaml.safe_dump ends plain scalars with a document-end marker.
        policies.append(Policy(name, tuple(o.removesuffix("\n...") for o in overrides)))
    return policies


MAX_SEEDS = 10_000
"""Seeds per policy a comparison may run (as ``compare.seeds`` in a scenario)."""

MAX_SEED = 2**63 - 1
"""The largest root seed a scenario takes."""


def seed_list(root_seed: int, count: int) -> list[int]:
    """The seeds every policy runs on: ``root_seed``, ``root_seed + 1``, ..."""
    return [root_seed + i for i in range(count)]


def metric_values(summary: dict[str, Any]) -> dict[str, float]:
    """Every number of a run summary, per tenant as ``tenants.NAME.key``; nulls left out.

    A tenant's SLA verdict counts as a number: ``tenants.NAME.sla_held`` is 1.0 when its
    terms held, 0.0 when one broke (a null verdict is left out), so its mean over seeds is
    the share of runs in which they held.
    """
    values: dict[str, float] = {}
    for key, value in summary.items():
        if key in NOT_METRICS:
            continue
        if key == "tenants":
            for tenant, figures in value.items():
                for name, figure in figures.items():
                    if _is_number(figure):
                        values[f"tenants.{tenant}.{name}"] = float(figure)
                    elif name == "sla_held" and isinstance(figure, bool):
                        values[f"tenants.{tenant}.{name}"] = 1.0 if figure else 0.0
        elif _is_number(value):
            values[key] = float(value)
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def mean_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and Student-t confidence interval (:data:`CONFIDENCE`) of independent samples.

    Returns:
        ``(mean, low, high)``; the interval is None with fewer than two samples.
    """
    from scipy.stats import t

    sample = np.asarray(values, dtype=float)
    mean = float(sample.mean())
    if sample.size < 2:
        return mean, None, None
    half = float(t.ppf(0.5 + CONFIDENCE / 2, sample.size - 1) * sample.std(ddof=1))
    half /= math.sqrt(sample.size)
    return mean, mean - half, mean + half


def wilson_interval(successes: int, n: int) -> tuple[float | None, float | None, float | None]:
    """Proportion and Wilson score interval (:data:`CONFIDENCE`) of ``successes`` in ``n``.

    Returns:
        ``(proportion, low, high)``; all None when ``n`` is 0.
    """
    from scipy.stats import norm

    if n <= 0:
        return None, None, None
    z = float(norm.ppf(0.5 + CONFIDENCE / 2))
    p = successes / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, max(0.0, centre - half), min(1.0, centre + half)


def sla_table(
    summaries: dict[tuple[str, int], dict[str, Any]],
    policies: Sequence[Policy],
    seeds: Sequence[int],
) -> list[dict[str, Any]]:
    """Per policy and tenant with SLA terms: how often its terms all held, with a Wilson interval.

    ``internal`` is among them when the provider's served model has terms
    (``internal.inference.serving.sla``).

    Rows: ``policy, tenant, n`` (seeds with a verdict), ``held`` (seeds where they held),
    ``probability``, ``ci_low``, ``ci_high``; tenants in name order.
    """
    rows = []
    for policy in policies:
        verdicts: dict[str, list[bool]] = {}
        for seed in seeds:
            tenants = summaries[(policy.name, seed)].get("tenants", {})
            for tenant, figures in tenants.items():
                if figures.get("sla_terms") is None:
                    continue
                own = verdicts.setdefault(tenant, [])
                if figures.get("sla_held") is not None:
                    own.append(bool(figures["sla_held"]))
        for tenant in sorted(verdicts):
            held, n = sum(verdicts[tenant]), len(verdicts[tenant])
            probability, low, high = wilson_interval(held, n)
            rows.append({"policy": policy.name, "tenant": tenant, "n": n, "held": held,
                         "probability": probability, "ci_low": low, "ci_high": high})  # fmt: skip
    return rows


def _run(job: tuple[str, tuple[str, ...], int]) -> tuple[dict[str, Any], Any]:
    """Run one (scenario file, overrides, seed): its summary and its request latency
    histograms (None if it served nothing); a module function so workers can pickle it."""
    from sim.runner import simulate

    path, overrides, seed = job
    result = simulate(load_scenario(path, overrides, seed))
    return result.summary, result.inference_latency


@dataclass
class Comparison:
    """The outcome of :func:`compare`.

    Attributes:
        scenario: The scenario's name.
        policies: The policies, the baseline first.
        seeds: The seeds every policy ran on.
        summaries: Per ``(policy, seed)``, the run's ``summary.json``.
        results: Tidy rows: ``policy, seed, metric, value``.
        table: Per policy and metric: ``n``, ``mean``, ``ci_low``, ``ci_high``, and
            against the baseline ``diff_mean``, ``diff_ci_low``, ``diff_ci_high``.
    """

    scenario: str
    policies: list[Policy]
    seeds: list[int]
    summaries: dict[tuple[str, int], dict[str, Any]]
    results: list[dict[str, Any]]
    table: list[dict[str, Any]]
    latencies: dict[tuple[str, int], Any] = field(default_factory=dict)
    """Per ``(policy, seed)`` that served a model, its request latency histograms."""
    sla: list[dict[str, Any]] = field(default_factory=list)
    """Per policy and tenant with SLA terms, the probability its terms held (:func:`sla_table`)."""

    @property
    def baseline(self) -> str:
        """The policy every other is measured against."""
        return self.policies[0].name


def prepare(
    path: str | Path,
    policies: Sequence[Policy],
    seeds: int | None,
    baseline: str | None = None,
    overrides: Sequence[str] = (),
    root_seed: int | None = None,
) -> tuple[list[Policy], list[int]]:
    """Check every policy's scenario before anything runs, and fix the order and seeds.

    Policies come from the arguments, or else from the scenario's ``compare`` block.

    Returns:
        The policies with the baseline first, and the seeds.

    Raises:
        ScenarioError: Naming every problem found.
    """
    scenario: Scenario = load_scenario(path, overrides, root_seed)
    block = scenario.compare
    chosen = list(policies) or (policies_from_block(block) if block is not None else [])
    problems: list[str] = []
    if not chosen:
        problems.append(f"{path}: no policies to compare: give --policy, or a compare block")
    names = [p.name for p in chosen]
    if baseline is None and block is not None and not policies:
        baseline = block.baseline
    if baseline is not None and baseline not in names:
        problems.append(f"--baseline: no policy named {baseline!r} (policies: {', '.join(names)})")
    count = seeds if seeds is not None else (block.seeds if block is not None else None)
    if count is None:
        problems.append("--seeds: how many seeds? (or set compare.seeds in the scenario)")
    elif count < 1:
        problems.append(f"--seeds: need at least 1, got {count}")
    elif count > MAX_SEEDS:
        problems.append(f"--seeds: at most {MAX_SEEDS:,} seeds per policy, got {count:,}")
    elif scenario.seed + count - 1 > MAX_SEED:
        problems.append(
            f"--seeds: seeds {scenario.seed} to {scenario.seed + count - 1} go past the "
            f"largest seed, {MAX_SEED}"
        )
    from sim.runner import Simulation

    for policy in chosen:
        try:
            # Building the simulation finds what the file alone cannot (e.g. too few pods).
            Simulation(load_scenario(path, [*overrides, *policy.overrides], root_seed))
        except ScenarioError as exc:
            problems.extend(f"policy {policy.name}: {problem}" for problem in exc.problems)
    if problems:
        raise ScenarioError(problems)
    if baseline is not None:
        chosen.sort(key=lambda p: p.name != baseline)
    assert count is not None
    return chosen, seed_list(scenario.seed, count)


def compare(
    path: str | Path,
    policies: Sequence[Policy],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Run every policy on every seed, then summarise (see the module docstring).

    Args:
        path: The scenario file.
        policies: The policies, the baseline first (see :func:`prepare`).
        seeds: Seeds, the same for every policy.
        overrides: Overrides applied to every policy before its own.
        workers: Worker processes (default: one per CPU); 1 runs in this process.
        progress: Called with ``(done, total)`` after each run.

    Returns:
        The comparison. Results do not depend on the number of workers.
    """
    jobs = [
        (str(path), (*overrides, *policy.overrides), seed) for policy in policies for seed in seeds
    ]
    keys = [(policy.name, seed) for policy in policies for seed in seeds]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    summaries: dict[tuple[str, int], dict[str, Any]] = {}
    latencies: dict[tuple[str, int], Any] = {}

    def gather(outcomes: Iterable[tuple[dict[str, Any], Any]]) -> None:
        for done, (key, (summary, latency)) in enumerate(zip(keys, outcomes, strict=True), 1):
            summaries[key] = summary
            if latency is not None:
                latencies[key] = latency
            if progress is not None:
                progress(done, len(jobs))

    if workers == 1:
        gather(map(_run, jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            gather(pool.map(_run, jobs))
    name = next(iter(summaries.values()))["scenario"]
    results = [
        {"policy": policy, "seed": seed, "metric": metric, "value": value}
        for (policy, seed), summary in summaries.items()
        for metric, value in sorted(metric_values(summary).items())
    ]
    table = _table(results, policies, seeds)
    sla = sla_table(summaries, policies, seeds)
    return Comparison(name, list(policies), list(seeds), summaries, results, table, latencies, sla)


def _table(
    results: list[dict[str, Any]], policies: Sequence[Policy], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Mean and interval per policy and metric, and the paired difference to the baseline."""
    value: dict[tuple[str, str, int], float] = {
        (r["policy"], r["metric"], r["seed"]): r["value"] for r in results
    }
    metrics = sorted({r["metric"] for r in results})
    baseline = policies[0].name
    rows = []
    for policy in policies:
        for metric in metrics:
            own = [value[k] for s in seeds if (k := (policy.name, metric, s)) in value]
            if not own:
                continue
            mean, low, high = mean_interval(own)
            row: dict[str, Any] = {
                "policy": policy.name,
                "metric": metric,
                "n": len(own),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "diff_mean": None,
                "diff_ci_low": None,
                "diff_ci_high": None,
            }
            paired = [
                value[(policy.name, metric, s)] - value[(baseline, metric, s)]
                for s in seeds
                if (policy.name, metric, s) in value and (baseline, metric, s) in value
            ]
            if policy.name != baseline and paired:
                row["diff_mean"], row["diff_ci_low"], row["diff_ci_high"] = mean_interval(paired)
            rows.append(row)
    return rows


def write_comparison(comparison: Comparison, out_dir: str | Path) -> Path:
    """Write a comparison directory whole: the old directory or the new one, never a mix.

    Files (see :func:`write_comparison_files`) are written beside ``out_dir`` and put in
    its place together, replacing an earlier comparison there (see :mod:`sim.outputs`).

    Returns:
        ``out_dir``.

    Raises:
        sim.outputs.OutputError: If ``out_dir`` holds something other than a comparison,
            or cannot be written; nothing is changed.
    """
    from sim.outputs import write_directory

    return write_directory(
        out_dir, "comparison", lambda directory: write_comparison_files(comparison, directory)
    )


def write_comparison_files(comparison: Comparison, directory: Path) -> None:
    """Write a comparison's files into an existing, empty directory.

    Files: ``results.parquet`` (tidy: policy, seed, metric, value), ``comparison.parquet``
    and ``comparison.json`` (the summary table, with the policies, seeds and baseline; its
    ``sla`` list holds :func:`sla_table`'s rows),
    ``runs/POLICY-sSEED.json``, each run's ``summary.json``, and when models are served
    ``latency.parquet``: every run's request latency histograms (policy, seed, tenant,
    latency_ms_low, latency_ms_high, requests).
    """
    import pandas as pd

    out = Path(directory)
    (out / "runs").mkdir()
    for (policy, seed), summary in comparison.summaries.items():
        text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
        (out / "runs" / f"{policy}-s{seed}.json").write_text(text, encoding="utf-8")
    results = pd.DataFrame(comparison.results, columns=["policy", "seed", "metric", "value"])
    results.to_parquet(out / "results.parquet", index=False)
    if comparison.latencies:
        latency = pd.concat(
            [
                frame.assign(policy=policy, seed=seed)
                for (policy, seed), frame in comparison.latencies.items()
            ],
            ignore_index=True,
        )[["policy", "seed", "tenant", "latency_ms_low", "latency_ms_high", "requests"]]
        latency.to_parquet(out / "latency.parquet", index=False)
    pd.DataFrame(comparison.table).to_parquet(out / "comparison.parquet", index=False)
    document = {
        "scenario": comparison.scenario,
        "baseline": comparison.baseline,
        "policies": {p.name: list(p.overrides) for p in comparison.policies},
        "seeds": comparison.seeds,
        "confidence": CONFIDENCE,
        "table": comparison.table,
        "sla": comparison.sla,
    }
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    (out / "comparison.json").write_text(text, encoding="utf-8")
