"""Policies, each family a plain dict registry keyed by the scenario's ``kind``."""
