"""Fabric models: topologies, routing, rate allocation and congestion.

The marketplace talks to the fabric through :mod:`sim.fabric.model`; everything
else in this package is pure numpy and knows nothing of SimPy.
"""
