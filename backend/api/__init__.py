"""The HTTP API under /api: one route module per resource, typed dependencies in deps.py."""
