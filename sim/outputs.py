"""Output directories written whole: a reader sees the old output or the new one, never a mix.

What this module guarantees for a run, a comparison and a fabric run directory (and for each
point directory of a sweep):

- **Whole or not at all.** The directory is written into a hidden temporary sibling
  (``.NAME.surplus-XXXXXXXX``, beside the target, so on the same file system) and put in
  place only once every file is written: renamed in if the target is new, else swapped with
  the old directory in one atomic step (Linux ``renameat2`` with ``RENAME_EXCHANGE``), after
  which the old copy is removed. Where the swap is not available the old directory is
  renamed aside, the new one renamed in and the old one removed: for an instant the target
  is missing, but it never holds a mix of the two.
- **Nothing left on failure.** If anything fails before the new directory is in place,
  ``KeyboardInterrupt`` included, the temporary directory (and any parent directory made
  for it) is removed and the target is untouched.
- **One kind per directory.** Each directory records what it holds in ``.surplus.json``
  (``{"kind": "run"}``; kinds: ``run``, ``comparison``, ``sweep``, ``fabric``). Before any
  work, writing refuses a target that holds another kind of output, several kinds mixed,
  or files Surplus did not write (an empty directory is fine). Directories written before
  the marker existed are recognised by their files (:data:`SIGNATURES`). Images at the top
  level (``*.png``, ``*.svg``, as ``surplus plot`` draws them) belong to the output they
  sit in and are replaced with it; an earlier output of the same kind is replaced, never
  merged.
- **Checked before work.** :func:`check_directory` and :func:`check_file` find out whether
  a target can be written, by creating the temporary sibling (or a probe file) there and
  removing it again, so a command can refuse a bad ``--out`` before it simulates anything.

A sweep directory is the exception to "whole": it is resumable, so it is claimed in place
(:func:`claim_directory`) while each of its point directories is written whole and its
top-level files atomically (:func:`sim.files.atomic_write`).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

KINDS = ("run", "comparison", "sweep", "plan", "fabric")
"""The kinds of output directory Surplus writes."""

MARKER = ".surplus.json"
"""The file in an output directory that records its kind."""

LABELS = {
    "run": "a run (surplus run)",
    "comparison": "a comparison (surplus compare)",
    "sweep": "a sweep (surplus sweep)",
    "plan": "a capacity plan (surplus plan)",
    "fabric": "a fabric run (surplus fabric)",
}
"""How messages name each kind."""

FILES = {
    "run": frozenset(
        {
            "resolved.yaml",
            "summary.json",
            "jobs.parquet",
            "timeseries.parquet",
            "inference_latency.parquet",
            "power.parquet",
            "pfc.parquet",
            "credit.parquet",
        }
    ),
    "comparison": frozenset(
        {"comparison.json", "comparison.parquet", "results.parquet", "latency.parquet", "runs"}
    ),
    "sweep": frozenset(
        {"sweep.json", "points.parquet", "results.parquet", "table.parquet", "points"}
    ),
    "plan": frozenset(
        {"plan.json", "points.parquet", "results.parquet", "table.parquet", "points"}
    ),
    "fabric": frozenset({"flows.csv", "latency.csv", "summary.json"}),
}
"""The top-level names each kind writes (besides the marker and images)."""

SIGNATURES = {
    "run": (("resolved.yaml", "summary.json"),),
    "comparison": (("comparison.json",),),
    "sweep": (("sweep.json",), ("points",)),
    "plan": (("plan.json",),),
    "fabric": (("flows.csv", "summary.json"),),
}
"""How a directory without a marker is recognised: any one group of names, all present."""

IMAGE_SUFFIXES = (".png", ".svg")
"""Top-level files with these suffixes are plots of the output they sit in."""

_TEMP_DIR = re.compile(r"^\..+\.surplus-(old-)?[A-Za-z0-9_]+$")
_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}$")  # atomic_write's leftovers
_POINT = re.compile(r"^[0-9a-f]{8,64}$")  # a sweep point's directory: its key
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputError(Exception):
    """An output target that cannot be written; the message is one line naming the path."""


# --------------------------------------------------------------------------- kinds


def _marker_kind(directory: Path) -> str | None:
    try:
        document = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = document.get("kind") if isinstance(document, dict) else None
    return kind if kind in KINDS else None


def _signature_kinds(directory: Path) -> list[str]:
    return [
        kind
        for kind, groups in SIGNATURES.items()
        if any(all((directory / name).exists() for name in group) for group in groups)
    ]


def output_kind(directory: str | Path) -> str | None:
    """The kind of Surplus output a directory holds.

    Args:
        directory: The directory to look at.

    Returns:
        The kind its marker records, else the one kind its files show, else None (not an
        output directory, or the files of several kinds mixed).
    """
    path = Path(directory)
    kind = _marker_kind(path)
    if kind is not None:
        return kind
    kinds = _signature_kinds(path)
    return kinds[0] if len(kinds) == 1 else None


def _is_temporary(name: str, kind: str) -> bool:
    """Whether a hidden name is a leftover of Surplus's own temporary files."""
    if _TEMP_DIR.match(name):
        return True
    found = _TEMP_FILE.match(name)
    return found is not None and _belongs(found["name"], kind, images=True)


def _belongs(name: str, kind: str, images: bool) -> bool:
    """Whether a top-level name is one output of this kind writes (or, if so, its plots)."""
    if name == MARKER or name in FILES[kind]:
        return True
    return images and name.lower().endswith(IMAGE_SUFFIXES)


def _foreign(directory: Path, kind: str, names: list[str], recognised: bool) -> list[str]:
    """The entries of a directory that an output of this kind did not write.

    Images count as the output's own only in a directory recognised as one (by marker or
    signature): a directory of nothing but pictures is the user's.

    Raises:
        OSError: If ``points/`` of a sweep cannot be read.
    """
    foreign = [n for n in names if not _belongs(n, kind, recognised) and not _is_temporary(n, kind)]
    points = directory / "points"
    if kind in ("sweep", "plan") and points.is_dir():
        foreign.extend(
            f"points/{name}"
            for name in sorted(os.listdir(points))
            if not (_POINT.match(name) and (points / name).is_dir()) and not _TEMP_DIR.match(name)
        )
    return foreign


def _refusal(target: Path, shown: str, kind: str) -> str | None:
    """Why ``target`` must not take output of this kind, or None if it may."""
    if target.exists() and not target.is_dir():
        return f"{shown}: exists and is not a directory"
    if not target.is_dir():
        return None
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current directory was removed
        cwd = None
    if cwd is not None and (target.resolve() == cwd or target.resolve() in cwd.parents):
        return f"{shown}: is the current directory or holds it; choose a new directory"
    try:
        names = sorted(os.listdir(target))
    except OSError as exc:
        return f"{shown}: cannot read it ({_reason(exc)})"
    if not names:
        return None
    found = _marker_kind(target)
    if found is None:
        kinds = _signature_kinds(target)
        if len(kinds) > 1:
            mix = " and ".join(LABELS[k] for k in kinds)
            return f"{shown}: holds {mix} mixed; choose another directory or remove it"
        found = kinds[0] if kinds else None
    if found is not None and found != kind:
        return (
            f"{shown}: holds {LABELS[found]}, not {LABELS[kind].split(' (')[0]}; "
            "choose another directory or remove it"
        )
    try:
        foreign = _foreign(target, kind, names, recognised=found is not None)
    except OSError as exc:
        return f"{shown}: cannot read its points ({_reason(exc)})"
    if foreign:
        listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        return (
            f"{shown}: holds files Surplus did not write ({listed}); "
            "choose another directory or move them"
        )
    if not os.access(target, os.W_OK | os.X_OK):
        return f"{shown}: cannot replace it (Permission denied)"
    return None


# --------------------------------------------------------------------------- paths


def _absolute(path: str | Path) -> Path:
    """The path made absolute, a symbolic link to a directory followed."""
    absolute = Path(os.path.abspath(path))
    return absolute.resolve() if absolute.is_symlink() else absolute


def _display(path: Path) -> str:
    """A path as messages show it: relative to the current directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except (OSError, ValueError):
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _make_parents(directory: Path, shown: str) -> list[Path]:
    """Create ``directory`` and its missing ancestors; return those made, deepest first.

    Raises:
        OutputError: If an ancestor is not a directory or one cannot be made.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        if current.is_symlink():  # a dangling link
            raise OutputError(f"{shown}: {_display(current)} is a broken symbolic link")
        missing.append(current)
        current = current.parent
    if not current.is_dir():
        raise OutputError(f"{shown}: {_display(current)} is not a directory")
    made: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_empty(made)
            raise OutputError(f"{shown}: cannot create {_display(path)} ({_reason(exc)})") from None
        made.insert(0, path)
    return made


def _remove_empty(directories: list[Path]) -> None:
    """Remove directories made for an output that was not written, if they are still empty."""
    for path in directories:
        try:
            path.rmdir()
        except OSError:
            return


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """libc's ``renameat2``, or None where there is none (not Linux, old C library)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        rename = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    rename.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rename.restype = ctypes.c_int
    return rename


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the system cannot.

    Raises:
        OSError: If the swap is supported but fails.
    """
    rename = _renameat2()
    if rename is None:
        return False
    a, b = os.fsencode(first), os.fsencode(second)
    if rename(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _swap_in(new: Path, target: Path) -> None:
    """Put the directory ``new`` at ``target``, replacing what is there, then remove the old."""
    if not os.path.lexists(target):
        try:
            os.rename(new, target)
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old directory
        return
    aside = target.with_name(f".{target.name[:100]}.surplus-old-{secrets.token_hex(4)}")
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


# --------------------------------------------------------------------------- directories


class StagedDirectory:
    """An output directory being written beside its target; a context manager.

    Entering checks the target (see the module docstring), makes the missing parents and
    the temporary sibling, and returns the sibling's path to write into. Leaving without an
    exception records the kind and puts the directory in place; leaving with one (or
    :meth:`discard`) removes the sibling and leaves the target as it was.

    Args:
        target: The directory to create or replace.
        kind: One of :data:`KINDS`; None for a directory its caller owns outright (a
            sweep's point), which is neither checked nor marked.
    """

    def __init__(self, target: str | Path, kind: str | None):
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        self.shown = str(target)
        self.target = _absolute(target)
        self.kind = kind
        self.path: Path | None = None
        self._made: list[Path] = []

    def _check(self) -> None:
        if self.kind is None:
            if self.target.exists() and not self.target.is_dir():
                raise OutputError(f"{self.shown}: exists and is not a directory")
            return
        problem = _refusal(self.target, self.shown, self.kind)
        if problem is not None:
            raise OutputError(problem)

    def open(self) -> Path:
        """Check the target and make the temporary sibling; return its path.

        Raises:
            OutputError: If the target must not or cannot be written.
        """
        self._check()
        parent = self.target.parent
        self._made = _make_parents(parent, self.shown)
        try:
            path = Path(tempfile.mkdtemp(prefix=f".{self.target.name[:100]}.surplus-", dir=parent))
        except OSError as exc:
            _remove_empty(self._made)
            problem = f"{self.shown}: cannot write in {_display(parent)} ({_reason(exc)})"
            raise OutputError(problem) from None
        self.path = path
        try:
            os.chmod(path, 0o777 & ~_UMASK)  # as mkdir would make it, not mkdtemp's 0700
        except BaseException:
            self.discard()
            raise
        return path

    def commit(self) -> Path:
        """Record the kind and put the written directory in place of the target.

        Returns:
            The target.

        Raises:
            OutputError: If the target has meanwhile come to hold something else.
        """
        if self.path is None:
            raise RuntimeError("commit before open")
        try:
            if self.kind is not None:
                text = json.dumps({"kind": self.kind}) + "\n"
                (self.path / MARKER).write_text(text, encoding="utf-8")
            self._check()  # the target may have changed while the output was computed
            _swap_in(self.path, self.target)
        except OSError as exc:
            self.discard()
            problem = f"{self.shown}: cannot put the new output in place ({_reason(exc)})"
            raise OutputError(problem) from None
        except BaseException:
            self.discard()
            raise
        self.path = None
        return Path(self.shown)

    def discard(self) -> None:
        """Remove the temporary directory and any parent made for it; keep the target."""
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
        _remove_empty(self._made)
        self._made = []

    def __enter__(self) -> Path:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def check_directory(target: str | Path, kind: str) -> None:
    """Find out, before any work, whether output of ``kind`` can be written to ``target``.

    Makes the temporary sibling (and missing parents) as writing would, then removes them.

    Raises:
        OutputError: If not, naming the target and why.
    """
    staged = StagedDirectory(target, kind)
    staged.open()
    staged.discard()


def write_directory(target: str | Path, kind: str | None, fill: Callable[[Path], object]) -> Path:
    """Write an output directory whole: ``fill(tmp)`` writes every file into ``tmp``.

    Args:
        target: The directory to create or replace.
        kind: One of :data:`KINDS`, or None (see :class:`StagedDirectory`).
        fill: Writes the directory's files into the path it is given.

    Returns:
        The target.

    Raises:
        OutputError: If the target must not or cannot be written; nothing is changed.
    """
    with StagedDirectory(target, kind) as path:
        fill(path)
    return Path(target)


def claim_directory(target: str | Path, kind: str) -> Path:
    """Take a directory to be written in place (a sweep), after the checks of writing it.

    Makes it (and its parents) if needed and writes its marker.

    Returns:
        The target.

    Raises:
        OutputError: If the target must not or cannot be written.
    """
    check_directory(target, kind)
    shown, path = str(target), _absolute(target)
    _make_parents(path, shown)
    if _marker_kind(path) != kind:
        text = json.dumps({"kind": kind}) + "\n"
        try:
            _write_file(path / MARKER, text)
        except OSError as exc:
            raise OutputError(f"{shown}: cannot write in it ({_reason(exc)})") from None
    return Path(target)


def _write_file(path: Path, text: str) -> None:
    from sim.files import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def remove_temporaries(directory: str | Path) -> None:
    """Remove the temporary directories a killed writer left in ``directory``.

    Only for a directory one writer owns (a sweep's ``points/``): another writer's
    directory in progress would be removed too.
    """
    path = Path(directory)
    if not path.is_dir():
        return
    for name in os.listdir(path):
        if _TEMP_DIR.match(name):
            shutil.rmtree(path / name, ignore_errors=True)


# --------------------------------------------------------------------------- files


def check_file(target: str | Path) -> None:
    """Find out, before any work, whether a file can be written at ``target``.

    The file's directory (or its nearest existing ancestor, the rest being made when the
    file is written) must be a directory a probe file can be made in; ``target`` must not
    be a directory.

    Raises:
        OutputError: If not, naming the target and why.
    """
    shown = str(target)
    path = Path(os.path.abspath(target))
    if path.is_dir():
        raise OutputError(f"{shown}: is a directory; give the file to write")
    current = path.parent
    while not current.exists():
        current = current.parent
    if not current.is_dir():
        raise OutputError(f"{shown}: {_display(current)} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name[:100]}.", dir=current)
    except OSError as exc:
        problem = f"{shown}: cannot write in {_display(current)} ({_reason(exc)})"
        raise OutputError(problem) from None
    os.close(fd)
    os.unlink(probe)
