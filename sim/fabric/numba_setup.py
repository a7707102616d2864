"""numba, imported with its compile cache in a writable directory.

The compiled kernels (:mod:`sim.fabric.backpressure_kernels`,
:mod:`sim.fabric.dcqcn_kernels`) are compiled once and cached on disk, beside
the package when its directory is writable, otherwise under the user's cache
directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then the temporary directory:
``surplus/numba``). ``NUMBA_CACHE_DIR`` overrides both. Import ``numba`` from
here, never directly, so the choice is made before numba reads it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["numba"]


def _cache_directory() -> None:
    """Point numba's cache at a writable directory if the package's is not."""
    if "NUMBA_CACHE_DIR" in os.environ or os.access(Path(__file__).parent, os.W_OK):
        return
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for root in (Path(base), Path(tempfile.gettempdir())):
        directory = root / "surplus" / "numba"
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK):
            os.environ["NUMBA_CACHE_DIR"] = str(directory)
            return


_cache_directory()

import numba  # noqa: E402  (after the cache directory is chosen)
