"""The ``survey-engine`` command line (click, as Flask uses it): serve, web, worker, db, api-key, flows, demo.

The kiosk, report and user groups live in ``engine/commands/``, one module each.
"""

from __future__ import annotations

import os
import shlex
import sys

import click

from engine.commands.api_key import api_key
from engine.commands.common import _runtime, _settings
from engine.commands.init import init
from engine.commands.kiosk import kiosk
from engine.commands.report import report
from engine.commands.user import user
from engine.common.errors import ConfigError
from engine.settings import DEFAULT_PUBLIC_URL, Settings, local_origin
from engine.store import migrate

WEB_THREADS = 4


class _Commands(click.Group):
    """The command group: a database that cannot be reached while a command runs ends it with one line, the
    password hidden (SPEC §2 rule 11), as ``serve``, ``web`` and ``worker`` refuse to start, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from engine.store.db import UNREACHABLE, unreachable_line

        try:
            return super().invoke(ctx)
        except UNREACHABLE as exc:  # the errors the web app answers with a 503
            url = os.environ.get("SURVEY_ENGINE_DATABASE_URL") or "sqlite:///(the instance folder)"
            raise click.ClickException(unreachable_line(exc, url)) from None


@click.group(cls=_Commands)
def main() -> None:
    """Survey delivery engine: A-11 CX feedback for public services."""


def _refuse_unreachable(settings: Settings) -> None:
    """Stop the start with one line when the database cannot be reached (SPEC §2 rule 11), not a traceback."""
    from engine.store.db import unreachable_reason

    reason = unreachable_reason(settings.database_url)
    if reason:
        raise click.ClickException(reason)


def _demo_command(settings: Settings) -> str:
    """The demo's command line as the person can paste it: the program as they started ``serve`` (``.venv/bin/
    survey-engine`` after the README's install, where a bare ``survey-engine`` is not on the PATH), and this process's
    public URL when it is not the default, or the demo's links would point at port 8000 where nothing answers."""
    program = sys.argv[0] if os.path.basename(sys.argv[0]) == "survey-engine" else "survey-engine"
    url = (
        ""
        if settings.public_url == DEFAULT_PUBLIC_URL
        else f"SURVEY_ENGINE_PUBLIC_URL={shlex.quote(settings.public_url)} "
    )
    return f"{url}{shlex.quote(program)} demo"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Web and scheduler in one process (the embedded default); creates or upgrades the database."""
    from engine.app import create_app
    from engine.common.logs import configure_logging
    from engine.scheduler import start_background
    from engine.webapp.server import serve_waitress

    # Without SURVEY_ENGINE_PUBLIC_URL, the links this process makes (survey links, the console's messages) point
    # where it listens, not at the default port.
    settings = _settings(default_public_url=local_origin(host, port))
    # JSON lines from the first one: building the runtime may already log (a channel's unusable setting, such as a
    # SENDGRID_WEBHOOK_PUBLIC_KEY that is no key), and Python's fallback wrote that as bare text.
    configure_logging(settings.log_level)
    if not settings.is_sqlite:
        _refuse_unreachable(settings)

    rt = _runtime(migrate_database=True, settings=settings)
    app = create_app(runtime=rt)
    jobs = start_background(rt)
    click.echo(f"survey-engine serving on http://{host}:{port} (database: {rt.engine.url.render_as_string()})")
    click.echo(f"  start page: http://{host}:{port}/  (says where things are)")
    click.echo(f"  dashboard: http://{host}:{port}/dashboard")
    click.echo(f"  a demo survey: run `{_demo_command(settings)}` in another terminal, in this folder; it prints a survey "
               "link for each invitation it sends")  # fmt: skip
    try:
        serve_waitress(app, host, port)
    finally:
        jobs.stop()  # the batch a dispatch job holds is sent and recorded before the process ends


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256))
def web(bind: str, workers: int) -> None:
    """The web role under gunicorn (no scheduled jobs: run `survey-engine worker` beside it)."""
    from engine.app import report_expired_flows, report_unconfigured_channels
    from engine.common.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    _refuse_unreachable(settings)
    # What serve and worker refuse, web refuses before gunicorn starts, in the same one line: a schema not current, a
    # configuration that cannot load, a published flow changed. gunicorn loads the app in each worker, where the same
    # error was a traceback, "Worker failed to boot" and exit status 3.
    rt = _runtime(settings=settings)
    # Said once here, not by each worker (create_app would say them as many times as there are workers).
    report_expired_flows(rt)
    report_unconfigured_channels(rt)
    rt.engine.dispose()  # nothing of this process's pool is carried into gunicorn
    # Threaded workers (gthread, 4 threads each): a request waiting on PostgreSQL's commit does not hold the worker,
    # and kept-alive connections are served (bench/README.md). Requests are logged as the same masked JSON lines as
    # serve's by gunicorn's logger class engine.webapp.gunicorn_logging.JsonLogger. No control socket: gunicorn's
    # default is one fixed path per user ($HOME/.gunicorn/gunicorn.ctl), which a second `web` on the host took over
    # and, stopping, removed.
    args = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers), "--worker-class", "gthread",
            "--threads", str(WEB_THREADS), "--access-logfile", "-", "--logger-class",
            "engine.webapp.gunicorn_logging.JsonLogger", "--no-control-socket",
            "engine.app:create_app(start_up_reports=False)"]  # fmt: skip
    os.execv(sys.executable, args)


@main.command()
def worker() -> None:
    """Scheduled jobs only (dispatch, expiry, recovery, retention); run as many as you like on PostgreSQL."""
    settings = _settings()
    if settings.is_sqlite:
        raise click.ClickException(
            "`worker` needs PostgreSQL (SURVEY_ENGINE_DATABASE_URL): SQLite cannot claim rows across processes. "
            "On the embedded default, `survey-engine serve` runs the jobs itself."
        )
    import logging

    from sqlalchemy.engine import make_url

    from engine.common.logs import configure_logging, log
    from engine.scheduler import run_blocking

    configure_logging(settings.log_level)
    _refuse_unreachable(settings)
    rt = _runtime()
    from engine.app import report_expired_flows, report_unconfigured_channels

    report_expired_flows(rt)  # this role is the one that would send, or not, for them
    report_unconfigured_channels(rt)
    # A JSON line like every other of this role (SPEC §2 rule 12), the database's password hidden.
    log(logging.getLogger("survey_engine.worker"), "worker started", pid=os.getpid(),
        database=make_url(settings.database_url).render_as_string(hide_password=True))  # fmt: skip
    run_blocking(rt)


@main.group()
def db() -> None:
    """The database schema (Alembic)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration."""
    from engine.store.db import make_engine

    settings = _settings()
    if settings.is_sqlite:
        settings.instance_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    click.echo(f"database at revision {migrate.current(engine)}")


@main.group()
def flows() -> None:
    """Survey flows."""


@flows.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def flows_validate(paths: tuple[str, ...]) -> None:
    """Check flows (default: every flow in the flows directory, every configured service's effective PRA block,
    and the catalogue as the start-up loads it); exit non-zero on any broken rule."""
    from engine.surveys.flow_rules import validate_paths, validate_services

    settings = _settings()
    problems, warnings, checked = validate_paths([*paths] or [str(settings.flows_dir)])
    problems += _published_changes(settings, [*paths] or [str(settings.flows_dir)])
    if not paths:  # the configured flows: the services' own PRA blocks stand beside them (SPEC §2 rule 9)
        found, warned = validate_services(settings.config_dir, settings.flows_dir)
        problems += found
        warnings += warned
        if not problems and (settings.config_dir / "services.yaml").is_file():
            problems += _catalogue_problems(settings)
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    for line in problems:
        click.echo(f"error: {line}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{checked} flow(s) valid")


def _catalogue_problems(settings: Settings) -> list[str]:
    """The catalogue as the start-up loads it (services, offices, and every value fitting its column), once the
    flows and the PRA blocks are found sound: what would stop the start, in its one line."""
    from engine.catalog.services import load_catalog

    try:
        load_catalog(settings.config_dir, settings.flows_dir)
    except ConfigError as exc:
        return [str(exc)]
    return []


def _published_changes(settings: Settings, paths: list[str]) -> list[str]:
    """Against the store, when there is one: a published version whose content changed is refused."""
    from pathlib import Path

    import yaml

    from engine.store.db import make_engine
    from engine.surveys.flow_store import changed_published
    from engine.surveys.flows import parse_flow

    engine = make_engine(settings.database_url)
    try:
        if not migrate.is_current(engine):
            return []
    except Exception:  # no database yet (a fresh checkout): nothing is published
        return []
    flows = []
    for given in map(Path, paths):
        for path in sorted(given.glob("*.yaml")) if given.is_dir() else [given]:
            try:
                flows.append(parse_flow(yaml.safe_load(path.read_text(encoding="utf-8")), path.name, path))
            except (ConfigError, yaml.YAMLError):
                continue  # already reported by the rule check
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return changed_published(session, flows)


@main.command()
# --count and --answer-rate are read as text and checked in the command, so a bad value is one line (like every
# other refusal of the demo) before the database is touched, not click's usage error.
@click.option("--count", default="20", show_default=True, metavar="INTEGER",
              help="How many synthetic transactions to feed a service (1 to 1000).")  # fmt: skip
@click.option("--service", "services", multiple=True, help="Services to feed (default: every configured one).")
@click.option("--answer-rate", default="0.5", show_default=True, metavar="FLOAT",
              help="Share of the sent invitations the demo answers itself (0 to 1); open the other links in a browser.")  # fmt: skip
def demo(count: str, services: tuple[str, ...], answer_rate: str) -> None:
    """Feed synthetic transactions through the real intake, send them, answer some (all test data)."""
    from engine.catalog.services import load_catalog
    from engine.commands.demo import check_services, feed, parse_answer_rate, parse_count

    try:  # every refusal before the database is touched
        how_many, rate = parse_count(count), parse_answer_rate(answer_rate)
        settings = _settings()
        if services:
            check_services(load_catalog(settings.config_dir, settings.flows_dir), list(services))
    except (ValueError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    rt = _runtime(migrate_database=True, settings=settings)
    try:
        summary = feed(rt, how_many, list(services) or None, rate)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary:
        click.echo(line)


main.add_command(api_key)
main.add_command(init)
main.add_command(kiosk)
main.add_command(report)
main.add_command(user)


if __name__ == "__main__":  # pragma: no cover
    main()
