"""Writing output files safely: a half-written file never takes a finished one's name."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file over ``path``.

    Args:
        path: The file to create or replace.
        write: Writes the whole content to the path it is given.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would create it, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cells(column: np.ndarray) -> list[str]:
    """A column's cells as CSV text: whole numbers as such, floats in shortest round-trip form."""
    if column.dtype.kind == "f":
        return [repr(x) for x in column.tolist()]
    return [str(x) for x in column.tolist()]


def write_csv(path: Path, table: Mapping[str, np.ndarray]) -> None:
    """Write columns of equal length as a CSV file with a header line, atomically.

    Floats are written in their shortest form that reads back exactly, so a
    table survives the round trip. Text cells must not hold commas, quotes or
    line breaks.

    Args:
        path: The file to create or replace.
        table: Column name to values, in the order they are written.
    """
    columns = [_cells(np.asarray(values)) for values in table.values()]
    lines = [",".join(table), *map(",".join, zip(*columns, strict=True))]
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
