"""Benchmarks (run as modules, e.g. ``python -m bench.sealing``); never part of the test suite."""
