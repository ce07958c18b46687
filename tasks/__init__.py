"""Prefect tasks: one coarse unit of work each, calling the lakehouse domain."""
