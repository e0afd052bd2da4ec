"""Benchmarks (`python -m harmony_core bench ...`): ratios measured within one run."""
