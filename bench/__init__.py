"""Benchmarks: run each from the repository root as a module, `python -m bench.GROUP.NAME` (bench/README.md)."""
