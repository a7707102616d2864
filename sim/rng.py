"""One root seed, many named random streams.

Each component asks for a stream by name ("arrivals/acme", "sizes/acme",
"internal/training/durations"). A stream is a numpy ``Generator`` seeded from
``SeedSequence(root_seed, spawn_key=digest(name))``, so it depends only on the
root seed and its own name: adding a tenant, or changing a policy that draws
nothing, never shifts another component's draws. There is no global random
state anywhere in Surplus.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _spawn_key(name: str) -> tuple[int, ...]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class Streams:
    """Named, independent random streams derived from one root seed.

    Args:
        root_seed: The scenario's seed (a non-negative integer).
    """

    def __init__(self, root_seed: int):
        if root_seed < 0:
            raise ValueError(f"seed must not be negative, got {root_seed}")
        self.root_seed = int(root_seed)
        self._streams: dict[str, np.random.Generator] = {}

    def get(self, name: str) -> np.random.Generator:
        """The stream called ``name``, created on first use."""
        stream = self._streams.get(name)
        if stream is None:
            seq = np.random.SeedSequence(self.root_seed, spawn_key=_spawn_key(name))
            stream = np.random.Generator(np.random.PCG64(seq))
            self._streams[name] = stream
        return stream
