"""Runs physical plans: our own pruned, projected scans into Arrow, DuckDB over them (external
access off), fragments on the Dask workers when the plan is distributed."""
