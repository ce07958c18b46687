"""The `lakehouse` command: an edge like api/, so it may use flows and deployments."""
