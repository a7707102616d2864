"""Reading a trace's CSV file row by row, with the line of every row for messages."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sim.scenario.yaml_input import ScenarioError
from sim.traces.jobs import row_problem

__all__ = ["MAX_PROBLEMS", "Rows", "clock_seconds", "header_of", "number"]

MAX_PROBLEMS = 20
"""Most problems one file reports before the reader stops (the rest are alike)."""


def number(text: str) -> float | None:
    """A cell as a finite float, None if empty or NaN; ``ValueError`` if it is not a number."""
    text = text.strip()
    if not text or text.lower() in ("nan", "null", "none"):
        return None
    value = float(text)
    if math.isinf(value):
        raise ValueError(text)
    return None if math.isnan(value) else value


_EPOCH = datetime(1970, 1, 1)


def clock_seconds(text: str) -> float | None:
    """A date and time (``2017-10-07 01:11:39``, ISO 8601) as seconds on its own clock.

    Times without a zone (Philly's, Helios's) are taken as written, so their time of
    day is the trace's own; times with one are converted to UTC. None if the cell is
    empty, ``None`` or NaN; ``ValueError`` if it is not a time.
    """
    text = text.strip()
    if not text or text.lower() in ("nan", "nat", "null", "none"):
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH).total_seconds()


def header_of(path: Path, columns: Sequence[str]) -> tuple[str, ...] | None:
    """The column names of a CSV file that may lack a header row (PAI 2020's released CSVs).

    In order: a ``FILE.header`` beside the file (``pai_task_table.header`` for
    ``pai_task_table.csv``, or ``pai_task_table.csv.header``), whose first line
    names the columns; None if the file's own first line is a header row (its
    first cell is ``columns[0]``); else the documented order ``columns``.

    Raises:
        ScenarioError: If a ``.header`` file cannot be read or lacks a column.
    """
    path = Path(path)
    for beside in (path.with_suffix(".header"), path.with_name(path.name + ".header")):
        if beside.is_file():
            try:
                first = beside.read_text(encoding="utf-8").splitlines()[:1]
            except (OSError, UnicodeDecodeError) as exc:
                raise ScenarioError([f"{beside}: cannot read: {exc}"]) from None
            names = tuple(n.strip() for n in next(csv.reader(first), []))
            missing = [c for c in columns if c not in names]
            if missing:
                raise ScenarioError(
                    [
                        f"{beside}:1: header lacks column(s) "
                        f"{', '.join(repr(c) for c in missing)}; it has "
                        f"{', '.join(repr(n) for n in names)}"
                    ]
                )
            return names
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            first_row = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None  # Rows reports it, with the line
    if first_row and first_row[0].strip() == columns[0]:
        return None
    return tuple(columns)


class Rows:
    """The rows of a CSV file as dicts, each with its line, collecting problems.

    Args:
        path: The file.
        required: Columns the format needs.
        header: The column names when the file has no header row (PAI's released
            CSVs); None if its first line is the header.
    """

    def __init__(self, path: Path, required: Sequence[str], header: Sequence[str] | None = None):
        self.path = Path(path)
        self.source = str(path)
        self.required = tuple(required)
        self.header = tuple(header) if header is not None else None
        self.problems: list[str] = []
        self.names: tuple[str, ...] = self.header or ()
        """The file's columns (known once iteration has started)."""

    def problem(self, line: int, column: str, what: str) -> None:
        """Note a problem with one cell; stop reading once there are too many."""
        self.problems.append(row_problem(self.source, line, column, what))
        if len(self.problems) >= MAX_PROBLEMS:
            self.raise_problems()

    def numbers(
        self, line: int, row: dict[str, str], columns: Sequence[str]
    ) -> dict[str, float | None] | None:
        """The named cells of a row as non-negative numbers (None where empty).

        Returns None, after noting a problem per bad cell, if any is not a number
        or is negative.
        """
        cells: dict[str, float | None] = {}
        bad = False
        for column in columns:
            try:
                cells[column] = number(row[column])
            except ValueError:
                self.problem(line, column, f"{row[column]!r} is not a number")
                bad = True
                continue
            if cells[column] is not None and cells[column] < 0:
                self.problem(line, column, f"{row[column]!r} is negative")
                bad = True
        return None if bad else cells

    def raise_problems(self) -> None:
        """Raise the problems noted so far, if any."""
        if self.problems:
            raise ScenarioError(self.problems)

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        try:
            handle = self.path.open(newline="", encoding="utf-8")
        except OSError as exc:
            raise ScenarioError([f"{self.source}: cannot read: {exc.strerror or exc}"]) from None
        with handle:
            reader = csv.reader(handle)
            first_line = 1
            if self.header is None:
                try:
                    names = [n.strip() for n in next(reader)]
                except StopIteration:
                    raise ScenarioError([f"{self.source}: empty file, no header row"]) from None
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise ScenarioError([f"{self.source}:1: not CSV: {exc}"]) from None
                first_line = 2
                missing = [c for c in self.required if c not in names]
                if missing:
                    raise ScenarioError(
                        [
                            f"{self.source}:1: header lacks column(s) "
                            f"{', '.join(repr(c) for c in missing)}; it has "
                            f"{', '.join(repr(n) for n in names)}"
                        ]
                    )
            else:
                names = list(self.header)
            self.names = tuple(names)
            line = first_line - 1
            try:
                for row in reader:
                    line = reader.line_num
                    if not row or all(not cell.strip() for cell in row):
                        continue
                    if len(row) != len(names):
                        self.problem(
                            line,
                            names[min(len(row), len(names)) - 1],
                            f"{len(row)} cells where the header has {len(names)}",
                        )
                        continue
                    yield line, dict(zip(names, row, strict=True))
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ScenarioError([f"{self.source}:{line + 1}: not CSV: {exc}"]) from None
