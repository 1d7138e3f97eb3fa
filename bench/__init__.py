"""Micro-benchmarks with budgets (``python -m bench.<name>``)."""
