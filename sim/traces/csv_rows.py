"""Reading a trace's CSV file row by row, with the line of every row for messages."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from sim.scenario.yaml_input import ScenarioError
from sim.traces.jobs import row_problem

__all__ = ["MAX_PROBLEMS", "Rows", "number"]

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

    def problem(self, line: int, column: str, what: str) -> None:
        """Note a problem with one cell; stop reading once there are too many."""
        self.problems.append(row_problem(self.source, line, column, what))
        if len(self.problems) >= MAX_PROBLEMS:
            self.raise_problems()

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
