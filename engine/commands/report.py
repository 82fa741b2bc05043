"""The A-11 reports on the command line: the §6.1 quarterly file and the §6.2 response-level file."""

from __future__ import annotations

import click


@click.group()
def report() -> None:
    """A-11 reports: the quarterly collection (a11) and the response-level file (responses)."""
