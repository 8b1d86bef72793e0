"""Benchmarks, run on demand (`make bench` or `python -m bench NAME`), never in `make test`.

Every figure is a ratio against the raw library doing the same work in the same run, so
results compare across machines. Record them in BENCHMARKS.md with the command used.
"""
