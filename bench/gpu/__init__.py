"""Benchmarks: gpu (bench/README.md)."""
