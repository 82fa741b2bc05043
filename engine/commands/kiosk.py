"""Kiosk devices: register (prints a one-time enrollment URL), list, revoke."""

from __future__ import annotations

import click

from engine.commands.common import _runtime


@click.group()
def kiosk() -> None:
    """Kiosk devices for field offices: register, list, revoke."""


@kiosk.command("register")
@click.option("--service", required=True, help="The service slug (its channels must include kiosk).")
@click.option("--office", required=True, help="The office code the device stands in (config/offices.yaml).")
@click.option("--name", default=None, help="A name staff recognise, e.g. 'NYC-01 exit, left'.")
@click.option("--language", "languages", multiple=True,
              help="A language the kiosk offers; repeat for more (default: every language of the flow).")  # fmt: skip
def register(service: str, office: str, name: str | None, languages: tuple[str, ...]) -> None:
    """Register a device; its one-time enrollment URL (valid 24 hours) is printed alone on the last line."""
    from engine.kiosk import devices as registry
    from engine.store.db import unit_of_work

    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            device, code = registry.register(session, rt, service, office, name, languages)
            device_id, device_name, langs = device.id, device.name, ", ".join(device.languages)
            expires = device.enrollment_expires_at
    except registry.KioskError as exc:
        raise click.ClickException(str(exc)) from None
    assert expires is not None
    click.echo(f"kiosk {device_id} ({device_name}; {service} at {office}; languages {langs})")
    click.echo(
        f'Open this link on the tablet before {expires.strftime("%Y-%m-%d %H:%M UTC")} and tap "Enroll this '
        'device"; it works once:'
    )
    click.echo(f"{rt.settings.public_url.rstrip('/')}/kiosk/enroll/{code}")


@kiosk.command("list")
def list_() -> None:
    """Every device, one a line, tab-separated: id first, then service, office, name, state and last contact.

    The column names go to standard error, so ``kiosk list | cut -f1`` gives the ids alone.
    """
    from engine.kiosk import devices as registry

    rt = _runtime()
    with rt.sessions() as session:
        rows = registry.list_devices(session)
    if not rows:
        click.echo("no kiosk devices (register one with `survey-engine kiosk register`)", err=True)
        return
    click.echo("\t".join(["id", "service", "office", "name", "state", "last contact (UTC)"]), err=True)
    for row in rows:
        seen = row.last_seen_at.strftime("%Y-%m-%d %H:%M:%S") if row.last_seen_at else "never"
        click.echo("\t".join([str(row.id), row.service, row.office, row.name, row.state, seen]))


@kiosk.command("revoke")
@click.argument("device_id")
def revoke(device_id: str) -> None:
    """End a device: its page and its submissions are refused from now on."""
    from engine.kiosk import devices as registry
    from engine.store.db import unit_of_work

    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            device = registry.revoke(session, device_id)
            name = device.name
    except registry.KioskError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"kiosk {device_id} ({name}) revoked")
