"""Routers, one module per service area."""
