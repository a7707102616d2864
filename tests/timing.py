"""A time limit for fuzzed examples: a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

TIME_LIMIT_S = 10.0
"""Longest one fuzzed example may run."""


class ExampleTimedOut(BaseException):
    """An example ran past its time limit: a hang, or work that should be refused."""


@contextmanager
def time_limit(seconds: float = TIME_LIMIT_S) -> Iterator[None]:
    """Raise :class:`ExampleTimedOut` in the body if it runs longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise ExampleTimedOut(f"example ran longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
