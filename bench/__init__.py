"""Benchmarks: `python -m bench` runs them all, `python -m bench NAME` one of them.

Each benchmark module is named ``*_bench.py`` and has a ``main(argv) -> int``; it measures its
baseline in the same run and prints ratios, never asserts timings.
"""
