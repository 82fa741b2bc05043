"""Dashboard accounts: create (prints a one-time link to set a password)."""

from __future__ import annotations

import click


@click.group()
def user() -> None:
    """Dashboard accounts for program managers."""
