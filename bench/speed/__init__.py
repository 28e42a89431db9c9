"""Benchmarks: speed (bench/README.md)."""
