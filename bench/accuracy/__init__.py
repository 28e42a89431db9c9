"""Benchmarks: accuracy (bench/README.md)."""
