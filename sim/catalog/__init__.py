"""Catalog of accelerators (GPUs and inference ASICs) with their published figures.

The figures live in ``accelerators.yaml`` next to this module, shipped as package data: dense
BF16 throughput, memory capacity and bandwidth, board power, idle power and scale-out NIC
speed per accelerator, each entry with a note naming the datasheet or announcement it comes from.
:func:`accelerators` loads and validates the file once; :func:`accelerator` looks one up.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib.resources import files
from types import MappingProxyType
from typing import Any

import yaml

__all__ = [
    "KINDS",
    "Accelerator",
    "UnknownModel",
    "accelerator",
    "accelerators",
    "catalog_name",
    "parse_catalog",
]

KINDS = frozenset({"training", "inference"})
"""The allowed values of :attr:`Accelerator.kind`."""

_NUMERIC_FIELDS = (
    "tflops_bf16_dense",
    "hbm_gb",
    "hbm_tbps",
    "tdp_watts",
    "idle_watts",
    "nic_gbps",
)


@dataclass(frozen=True)
class Accelerator:
    """One accelerator's published figures.

    Attributes:
        name: Catalog key, e.g. ``"H100"``.
        tflops_bf16_dense: Dense (no structured sparsity) BF16 throughput, TFLOP/s.
        hbm_gb: On-package memory capacity, GB (LPDDR for parts without HBM; see ``source``).
        hbm_tbps: Peak bandwidth of that memory, TB/s (1e12 bytes/s); what bounds a
            memory-bound decode step (see :mod:`sim.workloads.inference`).
        tdp_watts: Board TDP / total board power, W.
        idle_watts: Typical idle draw, W; always below ``tdp_watts``.
        nic_gbps: Scale-out NIC line rate per accelerator in typical clusters, Gb/s.
        kind: ``"training"`` or ``"inference"``.
        source: Where the figures come from, with any caveat or derivation.
    """

    name: str
    tflops_bf16_dense: float
    hbm_gb: float
    hbm_tbps: float
    tdp_watts: float
    idle_watts: float
    nic_gbps: float
    kind: str
    source: str


_ENTRY_FIELDS = tuple(f.name for f in fields(Accelerator) if f.name != "name")


def _number(name: str, field: str, value: Any) -> float:
    """``value`` as a positive finite float, or ``ValueError`` naming the entry and field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"accelerator {name!r}: field {field!r} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(
            f"accelerator {name!r}: field {field!r} must be positive and finite, got {value!r}"
        )
    return number


def _parse_entry(name: Any, entry: Any) -> Accelerator:
    """Validate one catalog entry and build its :class:`Accelerator`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"accelerator names must be non-empty strings, got {name!r}")
    if not isinstance(entry, dict):
        raise ValueError(f"accelerator {name!r}: entry must be a mapping, got {entry!r}")
    missing = [f for f in _ENTRY_FIELDS if f not in entry]
    if missing:
        raise ValueError(f"accelerator {name!r}: missing field {missing[0]!r}")
    unknown = sorted(str(k) for k in entry if k not in _ENTRY_FIELDS)
    if unknown:
        raise ValueError(f"accelerator {name!r}: unknown field {unknown[0]!r}")

    numbers = {f: _number(name, f, entry[f]) for f in _NUMERIC_FIELDS}
    if numbers["idle_watts"] >= numbers["tdp_watts"]:
        raise ValueError(
            f"accelerator {name!r}: field 'idle_watts' ({numbers['idle_watts']:g}) must be "
            f"below tdp_watts ({numbers['tdp_watts']:g})"
        )
    kind = entry["kind"]
    if kind not in KINDS:
        raise ValueError(
            f"accelerator {name!r}: field 'kind' must be one of {sorted(KINDS)}, got {kind!r}"
        )
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"accelerator {name!r}: field 'source' must be a non-empty string")
    return Accelerator(name=name, kind=kind, source=" ".join(source.split()), **numbers)


def parse_catalog(data: dict[str, Any]) -> dict[str, Accelerator]:
    """Validate a parsed catalog mapping and build its accelerators.

    Args:
        data: Mapping from accelerator name to an entry with the fields ``tflops_bf16_dense``,
            ``hbm_gb``, ``hbm_tbps``, ``tdp_watts``, ``idle_watts``, ``nic_gbps``, ``kind`` and
            ``source``, as read from ``accelerators.yaml``.

    Returns:
        The accelerators by name, in the order of ``data``.

    Raises:
        ValueError: If ``data`` is not a non-empty mapping, or an entry misses a field, has an
            unknown field, a number that is not positive and finite, ``idle_watts`` not below
            ``tdp_watts``, a ``kind`` other than training/inference or an empty ``source``.
            The message names the entry and the field.
    """
    if not isinstance(data, dict) or not data:
        raise ValueError(f"accelerator catalog must be a non-empty mapping, got {data!r}")
    return {name: _parse_entry(name, entry) for name, entry in data.items()}


@functools.cache
def _catalog() -> MappingProxyType[str, Accelerator]:
    """The packaged catalog, read and validated once per process."""
    text = (files("sim.catalog") / "accelerators.yaml").read_text(encoding="utf-8")
    return MappingProxyType(parse_catalog(yaml.safe_load(text)))


def accelerators() -> dict[str, Accelerator]:
    """All accelerators in the packaged catalog.

    The data file is read and validated on the first call only; each call returns a new dict,
    so callers may modify it freely.

    Returns:
        The accelerators by name, in the order of the data file.

    Raises:
        ValueError: If the packaged data file is malformed (see :func:`parse_catalog`).
    """
    return dict(_catalog())


def accelerator(name: str) -> Accelerator:
    """One accelerator from the packaged catalog.

    Args:
        name: Catalog key, e.g. ``"H100"`` (case-sensitive).

    Returns:
        The accelerator's figures.

    Raises:
        ValueError: If ``name`` is not in the catalog; the message lists the known names.
    """
    catalog = _catalog()
    try:
        return catalog[name]
    except KeyError:
        known = ", ".join(sorted(catalog))
        raise ValueError(f"unknown accelerator {name!r}; known: {known}") from None


class UnknownModel(ValueError):
    """A trace names a GPU model the catalog does not know and no mapping maps."""


_VENDOR_PREFIXES = ("NVIDIA-", "TESLA-")
"""Words a trace or ``nvidia-smi`` puts before the model, dropped by :func:`_normalised`."""

_TRACE_NAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), key)
    for pattern, key in (
        # A100 80 GB: SXM4 (A100-SXM4-80GB, A100-SXM-80GB) and PCIe (A100 80GB PCIe).
        (r"A100(-SXM4?)?-80GB(-HBM2E)?", "A100"),
        (r"A100-80GB-PCIE|A100-PCIE-80GB", "A100"),
        # A100 40 GB: SXM4 (A100-SXM4-40GB) and PCIe (A100-PCIE-40GB).
        (r"A100(-SXM4?)?-40GB|A100-40GB-PCIE|A100-PCIE-40GB", "A100-40GB"),
        # A10 (24 GB PCIe); a full match, so no A100 name lands here.
        (r"A10(-24GB)?(-PCIE)?", "A10"),
        # V100 SXM2 32 GB (PAI: V100M32) and 16 GB.
        (r"V100M32|V100(-SXM2)?-32GB", "V100"),
        (r"V100M16|V100(-SXM2)?-16GB", "V100-16GB"),
        # P100 PCIe 16 GB.
        (r"P100(-PCIE)?(-16GB)?", "P100"),
        # T4 (16 GB).
        (r"T4(-16GB)?", "T4"),
        # H100 SXM5 80 GB (H100-SXM5-80GB, nvidia-smi's "NVIDIA H100 80GB HBM3").
        (r"H100(-SXM5?)?(-80GB)?(-HBM3)?", "H100"),
        # H800 SXM5 80 GB, its own entry (not an H100).
        (r"H800(-SXM5?)?(-80GB)?(-HBM3)?", "H800"),
    )
)
"""Trace spellings of catalog types: full-match patterns over :func:`_normalised` names."""


def _normalised(model: str) -> str:
    """``model`` upper-cased, spaces/underscores as ``-``, without "NVIDIA"/"Tesla" in front."""
    name = re.sub(r"[\s_-]+", "-", model.strip().upper()).strip("-")
    stripped = True
    while stripped:
        stripped = False
        for prefix in _VENDOR_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix) :], True
    return name


def catalog_name(model: str, mapping: Mapping[str, str] | None = None) -> str:
    """The catalog key for a GPU model as a trace or node list names it.

    Looked up in order:

    1. the scenario's own ``mapping`` (its ``accelerator_map``: exact trace name -> catalog
       key), which always wins;
    2. the catalog's keys, ignoring case (``a100`` -> ``A100``);
    3. the name normalised (upper case; runs of spaces, underscores and hyphens as one ``-``;
       a leading ``NVIDIA`` / ``Tesla`` dropped) against the normalised keys
       (``NVIDIA A10`` -> ``A10``, ``a100 40gb`` -> ``A100-40GB``);
    4. the normalised name against a small table of the spellings public traces and
       ``nvidia-smi`` use (whole-name matches, so ``A10`` never takes an A100 name):

       ============================================================  ===========
       Trace names (any case; ``NVIDIA``/``Tesla`` prefix optional)   Catalog key
       ============================================================  ===========
       ``A100-SXM4-80GB``, ``A100-SXM-80GB``, ``A100-80GB``,          ``A100``
       ``A100 80GB PCIe``, ``A100-PCIE-80GB``
       ``A100-SXM4-40GB``, ``A100-SXM-40GB``, ``A100-PCIE-40GB``      ``A100-40GB``
       ``A10``, ``NVIDIA A10``, ``A10-24GB``, ``A10 PCIe``            ``A10``
       ``V100M32`` (PAI), ``V100-32GB``, ``Tesla V100-SXM2-32GB``     ``V100``
       ``V100-16GB``, ``V100-SXM2-16GB``, ``V100M16``                 ``V100-16GB``
       ``P100``, ``P100-PCIE``, ``Tesla P100-PCIE-16GB``              ``P100``
       ``T4``, ``Tesla T4``, ``T4-16GB``                              ``T4``
       ``H100``, ``H100-SXM5-80GB``, ``H100 80GB HBM3``               ``H100``
       ``H800``, ``H800-SXM5-80GB``, ``H800 80GB HBM3``               ``H800``
       ============================================================  ===========

    A bare ``V100`` is the catalog key ``V100`` (the SXM2 32 GB part); Alibaba PAI 2020's
    plain ``V100`` machines are the 16 GB part, which differs only in memory capacity: map
    ``{V100: V100-16GB}`` for its figures. PCIe cards map to the SXM entry of the same
    memory and dense throughput (A100 PCIe), with that entry's TDP and bandwidth. Names of
    parts with other throughput (V100 PCIe, P100 SXM2, H100 PCIe, A800, A10G, ...), the
    anonymised ``GPU-series-N`` of Alibaba's 2026 spot trace and PAI's ``MISC`` are not
    recognised: they need the scenario's ``accelerator_map``.

    Args:
        model: The model as the trace writes it, e.g. ``"A100-SXM4-80GB"``.
        mapping: The scenario's explicit mapping, if any.

    Returns:
        A key of :func:`accelerators` (or, from ``mapping``, the key it names).

    Raises:
        UnknownModel: Naming the model and how to map it (the scenario's ``accelerator_map``).
    """
    catalog = _catalog()
    if mapping and model in mapping:
        return mapping[model]
    by_case = {key.lower(): key for key in catalog}
    found = by_case.get(model.strip().lower())
    if found is not None:
        return found
    name = _normalised(model)
    by_normal = {_normalised(key): key for key in catalog}
    if name in by_normal:
        return by_normal[name]
    for pattern, key in _TRACE_NAMES:
        if pattern.fullmatch(name):
            return key
    known = ", ".join(sorted(catalog))
    raise UnknownModel(
        f"GPU model {model!r} is not in the accelerator catalog; map it to one of {known} "
        f"in the scenario's accelerator_map (e.g. accelerator_map: {{{model!r}: H100}})"
    )
