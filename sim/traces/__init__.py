"""Public GPU cluster traces replayed as demand.

Philly, Helios, Alibaba PAI 2020 and Alibaba's 2026 spot-GPU trace.

:func:`read_trace` reads a job table into :class:`TraceJobs`, one format's reader
per module; a scenario's workload may replay one instead of drawing from
distributions. :func:`read_nodes` reads a trace's node list (to build a cluster from).
"""

from sim.traces.formats import TRACE_FORMATS, read_trace
from sim.traces.jobs import TraceJobs
from sim.traces.nodes import NODE_FORMATS, NodeList, read_nodes

__all__ = ["NODE_FORMATS", "TRACE_FORMATS", "NodeList", "TraceJobs", "read_nodes", "read_trace"]
