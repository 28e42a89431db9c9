"""Benchmarks: interop (bench/README.md)."""
