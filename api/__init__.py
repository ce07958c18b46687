"""The HTTP edge: one FastAPI app per service, all built by one factory from one shared core."""
