"""Tooling around prefect.yaml: the work pool, the deployments, the worker for `lakehouse up`."""
