"""Workloads: jobs, their sizes and run times, and how they arrive."""
