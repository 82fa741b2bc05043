"""Dashboard accounts: create (prints a one-time link to set a password), reset, disable, enable, list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from engine.commands.common import _runtime


@click.group()
def user() -> None:
    """Dashboard accounts for program managers."""


def _in_session(work: Callable[[Any, Any], Any]) -> Any:
    from engine.dashboard.accounts import AccountError
    from engine.store.db import unit_of_work

    rt = _runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            return work(rt, session)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


def _print_link(link: Any, what: str) -> None:
    click.echo(f"{what} {link.email}. Send this link to them; it works once, until "
               f"{link.expires_at:%Y-%m-%d %H:%M} UTC:")  # fmt: skip
    click.echo(link.url)


@user.command("create")
@click.option("--email", required=True, help="The program manager's email address (the sign-in name).")
@click.option("--service", "services", multiple=True, required=True, help="A service slug; repeat for more.")
def user_create(email: str, services: tuple[str, ...]) -> None:
    """Create an account; its one-time set-password link is printed alone on the last line."""
    from engine.dashboard.accounts import create_user

    link = _in_session(lambda rt, s: create_user(s, email, services, rt.settings.public_url))
    _print_link(link, "Account created for")


@user.command("reset")
@click.option("--email", required=True)
def user_reset(email: str) -> None:
    """A new one-time set-password link (earlier links stop working); printed alone on the last line."""
    from engine.dashboard.accounts import reset_link

    link = _in_session(lambda rt, s: reset_link(s, email, rt.settings.public_url))
    _print_link(link, "New set-password link for")


@user.command("disable")
@click.option("--email", required=True)
def user_disable(email: str) -> None:
    """Disable an account: its sessions end at their next request and it cannot sign in."""
    from engine.dashboard.accounts import set_disabled

    _in_session(lambda rt, s: set_disabled(s, email, True))
    click.echo(f"disabled {email.strip().lower()}")


@user.command("enable")
@click.option("--email", required=True)
def user_enable(email: str) -> None:
    """Enable a disabled account again."""
    from engine.dashboard.accounts import set_disabled

    _in_session(lambda rt, s: set_disabled(s, email, False))
    click.echo(f"enabled {email.strip().lower()}")


@user.command("services")
@click.option("--email", required=True)
@click.option("--service", "services", multiple=True, required=True, help="A service slug; repeat for more.")
def user_services(email: str, services: tuple[str, ...]) -> None:
    """Replace the services an account sees."""
    from engine.dashboard.accounts import set_services

    _in_session(lambda rt, s: set_services(s, email, services))
    click.echo(f"{email.strip().lower()} now sees: {', '.join(sorted(set(services)))}")


@user.command("list")
def user_list() -> None:
    """Every account: email, state, services, last sign-in."""
    from sqlalchemy import select

    from engine.store.models import Service
    from engine.store.models.accounts import User

    def rows(rt: Any, session: Any) -> list[str]:
        slugs = dict(session.execute(select(Service.id, Service.slug)).tuples().all())
        out = []
        for u in session.execute(select(User).order_by(User.email)).scalars():
            state = "disabled" if u.disabled_at else ("active" if u.password_hash else "link not used yet")
            last = f"{u.last_sign_in_at:%Y-%m-%d %H:%M} UTC" if u.last_sign_in_at else "never signed in"
            services = ",".join(sorted(slugs.get(s.service_id, "?") for s in u.services))
            out.append(f"{u.email}\t{state}\t{services}\t{last}")
        return out

    for line in _in_session(rows):
        click.echo(line)
