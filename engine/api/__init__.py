"""The public HTTP API under ``/api/v1`` and the operations endpoints."""
