"""What every command shares: the settings and a runtime whose schema is current and catalogue synced.

Every role starts through ``_runtime``: ``serve``, ``web`` (before gunicorn forks) and ``worker``, so a configuration
or schema one refuses, all refuse, in the same one line."""

from __future__ import annotations

from typing import Any

import click

from engine.common.errors import ConfigError
from engine.settings import Settings, load_settings
from engine.store import migrate


def _settings(default_public_url: str | None = None) -> Settings:
    try:
        return load_settings(default_public_url=default_public_url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _runtime(migrate_database: bool = False, settings: Settings | None = None) -> Any:
    from engine.runtime import build_runtime

    try:
        rt = build_runtime(settings or _settings(), migrate_database=migrate_database)
        if not migrate.is_current(rt.engine):
            raise click.ClickException("the database schema is not current: run `survey-engine db upgrade`")
        rt.sync_catalog()  # a published flow whose content changed is a ConfigError here: one line too
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return rt
