"""Surplus: a simulator of a GPU capacity marketplace.

A provider owns GPU clusters for its own training and inference and sells its
surplus to outside tenants under reserved, on-demand and spot contracts. SimPy
processes model the marketplace; a vectorised fabric model, solved once per
change of the running set, turns placements into delivered compute and latency.
"""

__version__ = "0.1.0"
