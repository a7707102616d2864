"""Public GPU cluster traces replayed as demand.

Philly, Helios, Alibaba PAI 2020 and Alibaba's 2026 spot-GPU trace.

:func:`read_trace` reads a job table into :class:`TraceJobs`, one format's reader
per module; a scenario's workload may replay one instead of drawing from
distributions.
"""

from sim.traces.formats import TRACE_FORMATS, read_trace
from sim.traces.jobs import TraceJobs

__all__ = ["TRACE_FORMATS", "TraceJobs", "read_trace"]
