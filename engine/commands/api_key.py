"""API keys from the command line: create (printed once), list, revoke (audited).

A key is stored only as its SHA-256 and its first characters (``prefix``), so ``list`` can show which key is
which without showing the key. ``revoke`` stamps ``revoked_at`` and writes an ``audit_log`` row; every web
process looks a key up again once its cache entry is older than ``SURVEY_ENGINE_API_KEY_CACHE_SECONDS``, so a
revoked key stops working everywhere within that time (at once in a process that had not used it).
"""

from __future__ import annotations

import click

from engine.commands.common import _runtime

DEFAULT_SCOPES = ("intake", "reports")


@click.group("api-key")
def api_key() -> None:
    """API keys for systems of record, report readers and administrators."""


@api_key.command("create")
@click.option("--name", required=True, help="Who uses the key (shown in audits).")
@click.option("--service", "services", multiple=True, required=True, help="A service slug; repeat for more.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["intake", "reports", "admin"]),
              help="Repeat for more; default intake and reports.")  # fmt: skip
def create(name: str, services: tuple[str, ...], scopes: tuple[str, ...]) -> None:
    """Create a key; it is printed once, alone on the last line."""
    from engine.api.auth import MAX_NAME, create_api_key
    from engine.common.limits import text_problem
    from engine.store.db import unit_of_work

    problem = text_problem(name)
    if problem or not name.strip() or len(name) > MAX_NAME:
        raise click.BadParameter(problem or f"must be 1 to {MAX_NAME} characters", param_hint="--name")
    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            key = create_api_key(session, name, services, scopes or DEFAULT_SCOPES)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"API key for {name} ({', '.join(sorted(set(services)))}; {', '.join(scopes or DEFAULT_SCOPES)}):")
    click.echo(key)


@api_key.command("list")
def list_() -> None:
    """Every key, one a line, tab-separated: id, name, prefix, services, scopes, created, revoked.

    The column names go to standard error, so ``api-key list | cut -f1`` gives the ids alone. When a key was
    last used is not recorded (verified keys are cached per process), so it is not shown.
    """
    from sqlalchemy import select

    from engine.store.models import ApiKey, ApiKeyService, Service

    rt = _runtime()
    with rt.sessions() as session:
        keys = session.execute(select(ApiKey).order_by(ApiKey.id)).scalars().all()
        slugs: dict[int, list[str]] = {}
        for key_id, slug in session.execute(
            select(ApiKeyService.api_key_id, Service.slug)
            .join(Service, Service.id == ApiKeyService.service_id)
            .order_by(Service.slug)
        ).tuples():
            slugs.setdefault(key_id, []).append(slug)
    if not keys:
        click.echo("no API keys (create one with `survey-engine api-key create`)", err=True)
        return
    click.echo("\t".join(["id", "name", "prefix", "services", "scopes", "created (UTC)", "revoked (UTC)"]), err=True)
    for key in keys:
        click.echo("\t".join([
            str(key.id), key.name, f"{key.prefix}…", ",".join(slugs.get(key.id, [])), ",".join(key.scopes),
            key.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-",
        ]))  # fmt: skip


@api_key.command("revoke")
@click.argument("key_id", metavar="ID", type=click.IntRange(1, 2**31 - 1))  # ids are database integers
def revoke(key_id: int) -> None:
    """Revoke a key (by the id `api-key list` shows): refused from now on, within the cache time elsewhere."""
    from engine.store.db import unit_of_work, utcnow
    from engine.store.models import ApiKey, AuditEntry

    rt = _runtime()
    with unit_of_work(rt.sessions) as session:
        key = session.get(ApiKey, key_id, with_for_update=True)
        if key is None:
            raise click.ClickException(f"no API key with id {key_id} (see `survey-engine api-key list`)")
        name = key.name
        if key.revoked_at is not None:
            click.echo(f"API key {key_id} ({name}) was already revoked", err=True)
            return
        key.revoked_at = utcnow()
        session.add(AuditEntry(actor="cli", action="api_key.revoke", subject=name,
                               detail={"id": key.id, "prefix": key.prefix}))  # fmt: skip
    seconds = rt.settings.api_key_cache_seconds
    click.echo(f"API key {key_id} ({name}) revoked; web processes refuse it within {seconds:g} s")
