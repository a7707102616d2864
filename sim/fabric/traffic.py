"""FLOWS.csv: the traffic ``surplus fabric`` pushes through a fabric, and generators for it.

A flow is one message: ``size_bytes`` bytes sent from host ``src`` to host
``dst``, starting at ``start_us`` microseconds. Hosts are numbered
``0 .. n_hosts-1`` in topology order (:mod:`sim.fabric.topology`). The file is
plain CSV with a header line::

    src,dst,start_us,size_bytes
    1,0,0.0,2000000
    2,0,0.0,2000000

Columns may come in any order and extra columns (a ``flow_id``, a tag) are
allowed and ignored. Lines that are entirely empty are skipped. Every problem
is reported as ``FILE:LINE: COLUMN: what is wrong``, the way scenario problems
are.

Two optional columns pin flows to paths (:data:`PATH_COLUMNS`): ``path_index``
is the equal-cost path a flow's packets take and ``ack_path_index`` the one
its ACKs take back, numbered as :func:`sim.fabric.paths.path_links`
numbers them (same pod: the aggregation switch ``a``; across pods:
``a * J + j``, core ``j`` of plane ``a``). A blank cell leaves that flow to
the transport's routing. They replay the paths another simulator's or a real
fabric's hash chose, so two models can be compared flow by flow on the same
collisions.

The generators build the classic stress patterns of data-centre fabrics:

* :func:`incast`: many senders, one receiver, all at once: the pattern that
  fills the receiver's last-hop queue, triggers PFC pauses and spreads them
  upstream to innocent flows.
* :func:`permutation`: every host sends to exactly one other host and receives
  from exactly one: no host link is overloaded, so any slowdown comes from
  ECMP collisions in the core.
* :func:`alltoall`: every ordered pair of a group of hosts, as in the
  all-to-all exchange of mixture-of-experts training.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.fabric.limits import (
    MAX_FLOW_BYTES,
    MAX_FLOWS,
    MAX_FLOWS_FILE_BYTES,
    MAX_HOSTS,
    MAX_START_US,
)
from sim.files import atomic_write
from sim.scenario.yaml_input import ScenarioError

if TYPE_CHECKING:  # pandas is imported where used: it takes longer to import than a fabric run
    import pandas as pd

__all__ = [
    "MAX_GENERATED_FLOWS",
    "MAX_PROBLEMS",
    "MAX_SIZE_BYTES",
    "MAX_START_US",
    "PATH_COLUMNS",
    "TRAFFIC_COLUMNS",
    "alltoall",
    "incast",
    "parse_size_bytes",
    "permutation",
    "read_flow_arrays",
    "read_flows",
    "write_flows",
]

TRAFFIC_COLUMNS = ("src", "dst", "start_us", "size_bytes")
"""The required columns of FLOWS.csv, in the order they are written."""

PATH_COLUMNS = ("path_index", "ack_path_index")
"""Optional columns of FLOWS.csv: the equal-cost path of a flow's packets and of its ACKs."""

PathCount = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Per (src, dst) pair, its number of equal-cost paths (e.g.
:func:`sim.fabric.paths.equal_cost_path_count` bound to a topology)."""

MAX_PROBLEMS = 20
"""At most this many problems of a bad traffic file are listed; the rest are counted."""

MAX_SIZE_BYTES = MAX_FLOW_BYTES
"""Largest flow size accepted: 1 TB (see :data:`sim.fabric.limits.MAX_FLOW_BYTES`)."""

MAX_GENERATED_FLOWS = MAX_FLOWS
"""Largest traffic a generator builds or a file may hold (about 320 MB in memory):
alltoall of 3,162 hosts."""

_DTYPES = {"src": np.int64, "dst": np.int64, "start_us": np.float64, "size_bytes": np.int64}

_NAN_WORDS = ("nan", "+nan", "-nan")

_MAX_PATH_INDEX = 2**31
"""Path indices at or above this are refused as not whole numbers (no fabric has so many)."""


# --------------------------------------------------------------------------- reading


def _clip(text: str, limit: int = 24) -> str:
    """``text`` cut to ``limit`` characters: a long cell keeps a problem on one short line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line."""
    return " ".join(str(exc).split())


def _quoted(cell: str) -> str:
    """A cell as a problem quotes it: its repr, escapes included, clipped."""
    return repr(cell) if len(repr(cell)) <= 26 else repr(_clip(cell, 20))


class _Problems:
    """Problems of one file, kept sorted by line and capped at :data:`MAX_PROBLEMS`."""

    def __init__(self, source: str, lines: np.ndarray):
        self.source = source
        self.lines = lines
        self.found: list[tuple[int, int, str]] = []
        self.total = 0

    def add(self, mask: np.ndarray, order: int, render: Callable[[int], str]) -> None:
        """Record a problem for every row where ``mask`` is true.

        Args:
            mask: One boolean per row.
            order: Rank among the problems of one line (column order).
            render: The text of the problem of row ``i`` (after ``FILE:LINE: ``).
        """
        rows = np.flatnonzero(mask)
        self.total += rows.size
        for row in rows[:MAX_PROBLEMS]:
            line = int(self.lines[row])
            self.found.append((line, order, f"{self.source}:{line}: {render(int(row))}"))

    def raise_if_any(self) -> None:
        """Raise the problems found so far, if any.

        Raises:
            ScenarioError: With at most :data:`MAX_PROBLEMS` lines plus a count of the rest.
        """
        if not self.total:
            return
        shown = [text for _, _, text in sorted(self.found)[:MAX_PROBLEMS]]
        if self.total > len(shown):
            more = self.total - len(shown)
            shown.append(f"... and {more} more problem{'s' if more > 1 else ''} in {self.source}")
        raise ScenarioError(shown)


def _read_table(path: Path, source: str) -> pd.DataFrame:
    """Read the CSV as stripped strings, one row per line after the header, blank lines kept."""
    import pandas as pd

    try:
        with path.open("rb") as handle:
            start = handle.read(4096)
    except FileNotFoundError:
        raise ScenarioError([f"{source}: no such file"]) from None
    except OSError as exc:
        raise ScenarioError([f"{source}: cannot read: {_clip(_one_line(exc), 120)}"]) from None
    header_hint = f"expected a header line {','.join(TRAFFIC_COLUMNS)}"
    if not start.strip():
        raise ScenarioError([f"{source}: empty file; {header_hint}"])
    try:
        table = pd.read_csv(
            path,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise ScenarioError([f"{source}: empty file; {header_hint}"]) from None
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found is None:
            raise ScenarioError(
                [f"{source}: not valid CSV: {_clip(_one_line(exc), 120)}"]
            ) from None
        expected, line, saw = found.groups()
        raise ScenarioError(
            [f"{source}:{line}: {saw} fields, but the header has {expected} columns"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{source}: cannot read: {_clip(_one_line(exc), 120)}"]) from None
    table.columns = [str(name).strip() for name in table.columns]
    known = (*TRAFFIC_COLUMNS, *PATH_COLUMNS)
    twice = [name for name in known if list(table.columns).count(name) > 1]
    if twice:
        raise ScenarioError([f"{source}:1: column {name} appears twice" for name in twice])
    missing = [name for name in TRAFFIC_COLUMNS if name not in table.columns]
    if missing:
        present = _clip(", ".join(_quoted(name) for name in table.columns), 60)
        raise ScenarioError(
            [
                f"{source}:1: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}; the header has {present} ({header_hint})"
            ]
        )
    return pd.DataFrame({name: table[name].str.strip() for name in known if name in table})


def _parse_numbers(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a column of strings.

    Returns:
        The values as float64 (NaN where unreadable), a mask of empty cells and
        a mask of cells that are not numbers at all.
    """
    import pandas as pd

    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    empty = (raw == "").to_numpy()
    unreadable = np.isnan(values) & ~empty & ~raw.str.lower().isin(_NAN_WORDS).to_numpy()
    return values, empty, unreadable


_Check = tuple[int, np.ndarray, Callable[[int], str]]
"""A row check: rank among a line's problems, the rows that fail, their message."""


def _value_checks(
    values: dict[str, np.ndarray],
    readable: dict[str, np.ndarray],
    text: dict[str, np.ndarray],
    n_hosts: int,
) -> list[_Check]:
    """Checks of the parsed numbers of every column and of src against dst.

    Every column must be a finite number; then ``src`` and ``dst`` a host,
    ``start_us`` from 0 to :data:`MAX_START_US` (one day) and ``size_bytes`` a
    whole number from 1 to :data:`MAX_SIZE_BYTES` (1 TB).

    Args:
        values: Every required column as float64.
        readable: Per column, the rows whose cell is a number (possibly NaN or inf).
        text: Per column, the cells as written, for the messages.
        n_hosts: Number of hosts of the fabric.

    Returns:
        The checks; a row is good if it fails none of them.
    """
    checks: list[_Check] = []
    finite: dict[str, np.ndarray] = {}
    for order, name in enumerate(TRAFFIC_COLUMNS):
        v, read, cells = values[name], readable[name], text[name]
        finite[name] = read & np.isfinite(v)
        checks.append(
            (
                order,
                read & ~finite[name],
                lambda i, n=name, t=cells: f"{n}: must be a finite number, got {_quoted(t[i])}",
            )
        )
    good: dict[str, np.ndarray] = {}
    for order, name in enumerate(("src", "dst")):
        v, cells = values[name], text[name]
        whole = finite[name] & (np.floor(v) == v)
        outside = whole & ((v < 0) | (v >= n_hosts))
        checks.append(
            (
                order,
                finite[name] & ~whole,
                lambda i, n=name, t=cells: f"{n}: a host is a whole number, got {_quoted(t[i])}",
            )
        )
        checks.append(
            (
                order,
                outside,
                lambda i, n=name, t=cells: (
                    f"{n}: no host {_clip(t[i])}; the fabric has {n_hosts} hosts, "
                    f"numbered 0 to {n_hosts - 1}"
                ),
            )
        )
        good[name] = whole & ~outside
    v, cells = values["start_us"], text["start_us"]
    ok = finite["start_us"]
    checks.append(
        (2, ok & (v < 0), lambda i, t=cells: f"start_us: must not be negative, got {_quoted(t[i])}")
    )
    checks.append(
        (
            2,
            ok & (v > MAX_START_US),
            lambda i, t=cells: (
                f"start_us: {_clip(t[i])} is past one day (at most {MAX_START_US:,.0f} us)"
            ),
        )
    )
    v, cells = values["size_bytes"], text["size_bytes"]
    ok = finite["size_bytes"]
    whole = ok & (np.floor(v) == v) & (v >= 1)
    checks.append(
        (
            3,
            ok & ~whole,
            lambda i, t=cells: f"size_bytes: must be a positive whole number, got {_quoted(t[i])}",
        )
    )
    checks.append(
        (
            3,
            whole & (v > MAX_SIZE_BYTES),
            lambda i, t=cells: (
                f"size_bytes: {_clip(t[i])} is too large (at most {MAX_SIZE_BYTES:,}, 1 TB)"
            ),
        )
    )
    src = values["src"]
    checks.append(
        (
            4,
            good["src"] & good["dst"] & (src == values["dst"]),
            lambda i: f"src, dst: both are host {int(src[i])}; a flow needs two different hosts",
        )
    )
    return checks


def _path_checks(
    values: dict[str, np.ndarray],
    readable: dict[str, np.ndarray],
    text: dict[str, np.ndarray],
    n_hosts: int,
    path_count: PathCount | None,
) -> list[_Check]:
    """Checks of the path columns present: a whole number from 0, below the pair's path count.

    A blank cell (not readable, not a problem) pins nothing. The count is
    checked on rows whose hosts are good, for the packets' direction
    (``src`` to ``dst``) or the ACKs' (``dst`` to ``src``).
    """
    checks: list[_Check] = []
    hosts_ok = np.ones(len(values["src"]), dtype=bool)
    for name in ("src", "dst"):
        v = values[name]
        hosts_ok &= readable[name] & np.isfinite(v) & (np.floor(v) == v) & (v >= 0) & (v < n_hosts)
    src = np.where(hosts_ok, values["src"], 0).astype(np.int64)
    dst = np.where(hosts_ok, values["dst"], 1).astype(np.int64)
    hosts_ok &= src != dst
    for order, name in enumerate(PATH_COLUMNS, start=len(TRAFFIC_COLUMNS) + 1):
        if name not in values:
            continue
        v, read, cells = values[name], readable[name], text[name]
        whole = read & np.isfinite(v) & (np.floor(v) == v) & (v >= 0) & (v < _MAX_PATH_INDEX)
        checks.append(
            (
                order,
                read & ~whole,
                lambda i, n=name, t=cells: (
                    f"{n}: an equal-cost path is a whole number from 0 (blank: not pinned), "
                    f"got {_quoted(t[i])}"
                ),
            )
        )
        if path_count is None:
            continue
        ack = name == "ack_path_index"
        counts = np.asarray(path_count(dst, src) if ack else path_count(src, dst))
        checks.append(
            (
                order,
                whole & hosts_ok & (v >= counts),
                lambda i, n=name, t=cells, c=counts, a=ack: (
                    f"{n}: {_clip(t[i])} is no path: "
                    + (
                        f"the ACKs' way back ({int(dst[i])} -> {int(src[i])})"
                        if a
                        else f"the flow ({int(src[i])} -> {int(dst[i])})"
                    )
                    + (
                        " has one path, 0"
                        if c[i] == 1
                        else f" has {int(c[i])} equal-cost paths, 0 to {int(c[i]) - 1}"
                    )
                ),
            )
        )
    return checks


def _flow_arrays(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays = {name: values[name].astype(_DTYPES[name]) for name in TRAFFIC_COLUMNS}
    for name in PATH_COLUMNS:
        if name in values:
            v = values[name]
            arrays[name] = np.where(np.isfinite(v), v, -1).astype(np.int64)
    return arrays


def _read_clean(
    path: Path, n_hosts: int, path_count: PathCount | None
) -> dict[str, np.ndarray] | None:
    """Fast path: the flows if the file is clean, else ``None`` (the slow path explains why).

    A clean file has a header naming each required column once and rows of
    plain numbers, as many as the header names; :func:`numpy.loadtxt` reads
    it directly. Reading
    every cell as a string first, as :func:`_read_table` does, is several
    times slower.
    """
    try:
        with path.open(encoding="utf-8-sig") as handle:
            header = [name.strip() for name in handle.readline().rstrip("\r\n").split(",")]
            if any(header.count(name) != 1 for name in TRAFFIC_COLUMNS):
                return None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # no rows: the slow path says so
                table = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if table.shape[0] == 0 or table.shape[1] != len(header) or np.isnan(table).any():
        return None
    names = [*TRAFFIC_COLUMNS, *(name for name in PATH_COLUMNS if header.count(name) == 1)]
    if any(header.count(name) > 1 for name in PATH_COLUMNS):
        return None
    values = {name: table[:, header.index(name)] for name in names}
    everywhere = np.ones(table.shape[0], dtype=bool)
    readable = dict.fromkeys(names, everywhere)
    text = dict.fromkeys(names, np.empty(0, dtype=object))
    checks = [
        *_value_checks(values, readable, text, n_hosts),
        *_path_checks(values, readable, text, n_hosts, path_count),
    ]
    if any(mask.any() for _, mask, _ in checks):
        return None
    return _flow_arrays(values)


def read_flow_arrays(
    path: str | Path, n_hosts: int, path_count: PathCount | None = None
) -> dict[str, np.ndarray]:
    """Read and check a FLOWS.csv file against a fabric of ``n_hosts`` hosts.

    Args:
        path: The CSV file.
        n_hosts: Number of hosts of the fabric; hosts are ``0 .. n_hosts-1``.
        path_count: Per (src, dst), its number of equal-cost paths, to check
            the path columns against; without it they are checked to be whole
            numbers from 0 only (routing checks the rest).

    Returns:
        The columns ``src``, ``dst`` (int64), ``start_us`` (float64) and
        ``size_bytes`` (int64), one entry per flow in file order, and those
        of :data:`PATH_COLUMNS` the file has (int64, -1 where blank).

    Raises:
        ScenarioError: One line per problem (at most :data:`MAX_PROBLEMS`, then
            a count), each naming the file, the line and the column; or the
            file is larger than :data:`sim.fabric.limits.MAX_FLOWS_FILE_BYTES`
            or has more than :data:`MAX_GENERATED_FLOWS` rows.
        ValueError: If ``n_hosts`` is not a positive integer.
    """
    n_hosts = _count("n_hosts", n_hosts, minimum=1)
    path = Path(path)
    source = str(path)
    try:
        file_bytes = path.stat().st_size
    except OSError:
        file_bytes = 0  # missing or unreadable: reading says which
    if file_bytes > MAX_FLOWS_FILE_BYTES:
        raise ScenarioError(
            [
                f"{source}: {file_bytes:,} bytes; at most {MAX_FLOWS_FILE_BYTES:,} "
                f"({MAX_FLOWS:,} flows) are read"
            ]
        )
    clean = _read_clean(path, n_hosts, path_count)
    if clean is not None:
        _check_count(clean["src"].size, source)
        return clean
    raw = _read_table(path, source)
    blank = np.logical_and.reduce([(raw[name] == "").to_numpy() for name in raw.columns])
    raw = raw.loc[~blank].reset_index(drop=True)
    if raw.empty:
        raise ScenarioError([f"{source}: no flows; the file has a header but no rows"])
    _check_count(len(raw), source)
    problems = _Problems(source, np.flatnonzero(~blank) + 2)  # the header is line 1
    values: dict[str, np.ndarray] = {}
    readable: dict[str, np.ndarray] = {}
    text: dict[str, np.ndarray] = {}
    for order, name in enumerate(TRAFFIC_COLUMNS):
        cells = raw[name].to_numpy(dtype=object)
        values[name], empty, unreadable = _parse_numbers(raw[name])
        problems.add(empty, order, lambda i, n=name: f"{n}: missing value")
        problems.add(
            unreadable, order, lambda i, n=name, t=cells: f"{n}: {_quoted(t[i])} is not a number"
        )
        readable[name], text[name] = ~(empty | unreadable), cells
    for name in PATH_COLUMNS:
        if name in raw:
            cells = raw[name].to_numpy(dtype=object)
            values[name], empty, unreadable = _parse_numbers(raw[name])
            problems.add(
                unreadable,
                len(TRAFFIC_COLUMNS) + 1 + PATH_COLUMNS.index(name),
                lambda i, n=name, t=cells: f"{n}: {_quoted(t[i])} is not a number",
            )
            values[name] = np.where(empty, np.nan, values[name])
            readable[name], text[name] = ~(empty | unreadable), cells
    checks = [
        *_value_checks(values, readable, text, n_hosts),
        *_path_checks(values, readable, text, n_hosts, path_count),
    ]
    for order, mask, render in checks:
        problems.add(mask, order, render)
    problems.raise_if_any()
    return _flow_arrays(values)


def _check_count(n_flows: int, source: str) -> None:
    """Refuse a traffic file of more than :data:`MAX_FLOWS` flows."""
    if n_flows > MAX_FLOWS:
        raise ScenarioError([f"{source}: {n_flows:,} flows; at most {MAX_FLOWS:,} are supported"])


def read_flows(path: str | Path, n_hosts: int, path_count: PathCount | None = None) -> pd.DataFrame:
    """:func:`read_flow_arrays` as a DataFrame with a fresh index.

    Raises:
        ScenarioError: As :func:`read_flow_arrays`.
        ValueError: If ``n_hosts`` is not a positive integer.
    """
    import pandas as pd

    return pd.DataFrame(read_flow_arrays(path, n_hosts, path_count))


# --------------------------------------------------------------------------- writing


def write_flows(frame: pd.DataFrame, path: str | Path) -> None:
    """Write flows as FLOWS.csv, atomically; :func:`read_flows` reads it back.

    The required columns come first, in the order of :data:`TRAFFIC_COLUMNS`,
    followed by any other columns of ``frame``. The parent directory is
    created if needed.

    Args:
        frame: Flows with at least the columns of :data:`TRAFFIC_COLUMNS`.
        path: The file to create or replace.

    Raises:
        ValueError: If a required column is missing.
    """
    missing = [name for name in TRAFFIC_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"flows lack column(s) {missing}; columns: {list(frame.columns)}")
    columns = [*TRAFFIC_COLUMNS, *(c for c in frame.columns if c not in TRAFFIC_COLUMNS)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: frame[columns].to_csv(tmp, index=False))


# --------------------------------------------------------------------------- generators


def _count(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """Check that ``value`` is an integer from ``minimum`` to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value:.6g}")
    return int(value)


def _start(start_us: Any) -> float:
    if isinstance(start_us, bool) or not isinstance(start_us, int | float | np.number):
        raise ValueError(f"start_us must be a number, got {start_us!r}")
    if not math.isfinite(start_us) or not 0 <= start_us <= MAX_START_US:
        raise ValueError(
            f"start_us must be a finite number from 0 to {MAX_START_US:,.0f}, got {start_us!r}"
        )
    return float(start_us)


def _size(size_bytes: Any) -> int:
    size = _count("size_bytes", size_bytes, minimum=1)
    if size > MAX_SIZE_BYTES:
        raise ValueError(f"size_bytes must be at most {MAX_SIZE_BYTES}, got {size}")
    return size


def _flows(src: np.ndarray, dst: np.ndarray, start_us: float, size_bytes: int) -> pd.DataFrame:
    import pandas as pd

    n = len(src)
    return pd.DataFrame(
        {
            "src": np.asarray(src, dtype=np.int64),
            "dst": np.asarray(dst, dtype=np.int64),
            "start_us": np.full(n, start_us, dtype=np.float64),
            "size_bytes": np.full(n, size_bytes, dtype=np.int64),
        }
    )


def incast(
    n_hosts: int,
    senders: int,
    receiver: int,
    size_bytes: int,
    start_us: float = 0.0,
    *,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Many-to-one: ``senders`` hosts each send ``size_bytes`` to ``receiver`` at once.

    Args:
        n_hosts: Number of hosts of the fabric.
        senders: How many senders, chosen at random among the other hosts.
        receiver: The host everybody sends to.
        size_bytes: Size of every flow.
        start_us: Start time of every flow.
        rng: Source of the choice of senders.

    Returns:
        One flow per sender, in increasing sender order.

    Raises:
        ValueError: If a host does not exist, there are not enough other hosts, or
            more than :data:`sim.fabric.limits.MAX_HOSTS`.
    """
    n_hosts = _count("n_hosts", n_hosts, minimum=2, maximum=MAX_HOSTS)
    senders = _count("senders", senders, minimum=1)
    receiver = _count("receiver", receiver, minimum=0)
    if receiver >= n_hosts:
        raise ValueError(f"receiver must be a host, 0 to {n_hosts - 1}, got {receiver}")
    if senders > n_hosts - 1:
        raise ValueError(
            f"senders must be at most {n_hosts - 1} (every host but the receiver), got {senders}"
        )
    size, start = _size(size_bytes), _start(start_us)
    others = np.delete(np.arange(n_hosts, dtype=np.int64), receiver)
    chosen = np.sort(rng.choice(others, size=senders, replace=False))
    return _flows(chosen, np.full(senders, receiver), start, size)


def permutation(
    n_hosts: int, size_bytes: int, start_us: float = 0.0, *, rng: np.random.Generator
) -> pd.DataFrame:
    """Random derangement: every host sends to one other host and receives from one.

    Drawn uniformly among the permutations without a fixed point (by
    rejection: about e ≈ 2.7 draws on average).

    Args:
        n_hosts: Number of hosts; each is a sender once and a receiver once.
        size_bytes: Size of every flow.
        start_us: Start time of every flow.
        rng: Source of the permutation.

    Returns:
        ``n_hosts`` flows, one per sender in increasing order.

    Raises:
        ValueError: If there are fewer than two hosts, or more than
            :data:`sim.fabric.limits.MAX_HOSTS`.
    """
    n_hosts = _count("n_hosts", n_hosts, minimum=2, maximum=MAX_HOSTS)
    size, start = _size(size_bytes), _start(start_us)
    if n_hosts > MAX_GENERATED_FLOWS:
        raise ValueError(f"permutation of {n_hosts} hosts exceeds {MAX_GENERATED_FLOWS} flows")
    hosts = np.arange(n_hosts, dtype=np.int64)
    while True:
        dst = rng.permutation(n_hosts)
        if not np.any(dst == hosts):
            return _flows(hosts, dst, start, size)


def alltoall(
    hosts: Sequence[int] | np.ndarray, size_bytes: int, start_us: float = 0.0
) -> pd.DataFrame:
    """Every host of a group sends ``size_bytes`` to every other host of the group.

    Args:
        hosts: The group, distinct host numbers; their order is the flow order.
        size_bytes: Size of every flow.
        start_us: Start time of every flow.

    Returns:
        ``n·(n−1)`` flows for ``n`` hosts, ordered by sender (in the order of
        ``hosts``), then receiver.

    Raises:
        ValueError: Fewer than two hosts, a repeated or negative host, or more
            than :data:`MAX_GENERATED_FLOWS` flows.
    """
    group = np.asarray(hosts)
    if group.ndim != 1 or (group.size and not np.issubdtype(group.dtype, np.integer)):
        raise ValueError(f"hosts must be a list of host numbers, got {hosts!r}")
    n = int(group.size)
    if n < 2:
        raise ValueError(f"alltoall needs at least 2 hosts, got {n}")
    if np.any(group < 0):
        raise ValueError(f"hosts must not be negative, got {int(group.min())}")
    if np.unique(group).size != n:
        values, counts = np.unique(group, return_counts=True)
        raise ValueError(f"hosts must be distinct; repeated: {values[counts > 1].tolist()}")
    if n * (n - 1) > MAX_GENERATED_FLOWS:
        raise ValueError(
            f"alltoall among {n} hosts is {n * (n - 1):,} flows, "
            f"more than the {MAX_GENERATED_FLOWS:,} a generator builds"
        )
    size, start = _size(size_bytes), _start(start_us)
    src_index = np.repeat(np.arange(n), n - 1)
    # Receiver j of sender i skips i itself: j < i keeps j, j >= i takes j + 1.
    slot = np.tile(np.arange(n - 1), n)
    dst_index = slot + (slot >= src_index)
    return _flows(group[src_index], group[dst_index], start, size)


# --------------------------------------------------------------------------- sizes

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$")


def parse_size_bytes(text: str | int) -> int:
    """Parse a message size such as ``4096``, ``64KiB``, ``2MB`` or ``1.5GB``.

    ``KB``, ``MB`` and ``GB`` are decimal (10³, 10⁶, 10⁹ bytes), ``KiB``,
    ``MiB`` and ``GiB`` binary (2¹⁰, 2²⁰, 2³⁰); ``B`` or no unit means bytes.

    Args:
        text: The size, or an integer number of bytes.

    Returns:
        The size in bytes, at least 1.

    Raises:
        ValueError: If the text is not a positive whole number of bytes; the
            message quotes it.
    """
    usage = "expected a positive whole number of bytes such as 4096, 64KiB, 2MB or 1.5GB"
    if isinstance(text, int | np.integer) and not isinstance(text, bool):
        if text < 1:
            raise ValueError(f"invalid size {text!r}: {usage}")
        return int(text)
    match = _SIZE.match(text) if isinstance(text, str) else None
    if match is None or match.group(2) not in _UNITS:
        units = ", ".join(unit for unit in _UNITS if unit)
        raise ValueError(f"invalid size {text!r}: {usage} (units: {units})")
    number, unit = match.groups()
    if "." in number and unit in ("", "B"):
        raise ValueError(f"invalid size {text!r}: bytes must be a whole number")
    try:
        size = Decimal(number) * _UNITS[unit]
    except InvalidOperation:
        raise ValueError(f"invalid size {text!r}: {usage}") from None
    if size != size.to_integral_value():
        raise ValueError(f"invalid size {text!r}: {size} is not a whole number of bytes")
    if size < 1:
        raise ValueError(f"invalid size {text!r}: must be at least 1 byte")
    return int(size)
