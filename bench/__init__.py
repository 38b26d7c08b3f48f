"""Benchmarks: ``python -m bench`` runs them all side by side (see bench/__main__.py); single ones
run as modules too (``python -m bench.sealing``, ``python -m bench.rpc``). Never part of the test
suite: they print figures and assert nothing about time."""
