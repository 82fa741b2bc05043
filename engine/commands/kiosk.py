"""Kiosk devices: register (prints a one-time enrollment URL), list, revoke."""

from __future__ import annotations

import click


@click.group()
def kiosk() -> None:
    """Kiosk devices for field offices: register, list, revoke."""
