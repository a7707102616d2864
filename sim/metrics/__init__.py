"""Metrics: time-weighted GPU-hour accounting, timeseries and run summaries."""
