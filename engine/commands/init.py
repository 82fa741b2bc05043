"""`survey-engine init [DIR]`: a starter ``config/`` (services.yaml, offices.yaml) and the shipped ``flows/``.

For an install from a wheel: ``config/``, ``flows/`` and ``instance/`` default to the current directory, so
``survey-engine init && survey-engine serve`` starts the embedded default there. Existing files are never
overwritten: if any would be, nothing is written and the command says which.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from engine.settings import shipped

STARTER = (("config", ("services.yaml", "offices.yaml")), ("flows", None))  # None: every shipped flow


def starter_files() -> list[tuple[Path, Path]]:
    """(source, path relative to the target folder) of every file ``init`` writes."""
    files: list[tuple[Path, Path]] = []
    for folder, names in STARTER:
        source = shipped(folder)
        chosen = [source / n for n in names] if names else sorted(source.glob("*.yaml"))
        files.extend((path, Path(folder) / path.name) for path in chosen)
    return files


@click.command("init")
@click.argument("directory", metavar="[DIR]", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Write a starter config/ (the demo services and offices) and the shipped flows/ into DIR (default: here)."""
    files = starter_files()
    missing = [str(source) for source, _ in files if not source.is_file()]
    if missing:
        raise click.ClickException(f"this installation lacks its starter files: {', '.join(missing)}")
    existing = [str(directory / target) for _, target in files if (directory / target).exists()]
    if existing:
        raise click.ClickException(
            f"nothing written: these exist already (move them away first): {', '.join(existing)}"
        )
    for source, target in files:
        path = directory / target
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        click.echo(f"wrote {path}")
    click.echo(
        f"Next: cd {directory} && survey-engine serve   (the database and generated secrets go to {directory / 'instance'})"
    )
