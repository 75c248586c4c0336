"""Benchmarks: each module runs as `python -m bench.NAME`, prints a table and, last, one JSON line."""
