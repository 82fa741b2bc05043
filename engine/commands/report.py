"""The A-11 reports on the command line: the §6.1 quarterly file and the §6.2 response-level file.

They write the same bytes as ``GET /api/v1/reports/a11`` and ``/api/v1/reports/a11/responses`` (to standard
output, or ``--output FILE``). Without ``--service`` the files cover every configured service.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import IO

import click

from engine.commands.common import _runtime
from engine.reporting.fiscal import FiscalQuarter

YEAR = click.IntRange(2000, 2999)
QUARTER = click.IntRange(1, 4)


@click.group()
def report() -> None:
    """A-11 reports: the quarterly collection (a11) and the response-level file (responses)."""


def _quarter(fiscal_year: int, quarter: int) -> FiscalQuarter:
    return FiscalQuarter(fiscal_year, quarter)


def _services(rt: object, services: tuple[str, ...]) -> list[str] | None:
    catalog = getattr(rt, "catalog")  # noqa: B009 - the runtime is imported lazily by _runtime
    unknown = [s for s in services if s not in catalog.services]
    if unknown:
        raise click.BadParameter(f"unknown services: {', '.join(unknown)}", param_hint="--service")
    return sorted(set(services)) or None


def _write(chunks: Iterable[str | bytes], output: str | None) -> None:
    """Write text or bytes to ``output`` (a file, replaced) or to standard output, byte for byte."""
    try:
        stream: IO[bytes] = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115 - closed below
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    try:
        for chunk in chunks:
            stream.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        stream.flush()
    finally:
        if output:
            stream.close()


@report.command("a11")
@click.option("--fiscal-year", type=YEAR, required=True, help="Federal fiscal year (FY2027 starts 2026-10-01).")
@click.option("--quarter", type=QUARTER, required=True, help="Fiscal quarter 1-4.")
@click.option("--service", "services", multiple=True, help="Limit to these services (repeat); default all.")
@click.option("--by", type=click.Choice(["office"]), default=None, help="One row per office too.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "xlsx"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="File to write.")
def report_a11(fiscal_year: int, quarter: int, services: tuple[str, ...], by: str | None, fmt: str,
               output: str | None) -> None:  # fmt: skip
    """The §6.1 quarterly collection: one row per service × channel (× office with --by office)."""
    from engine.reporting import a11, formats, submissions

    rt = _runtime()
    chosen = _services(rt, services)
    with rt.sessions() as session:
        submissions.one_snapshot(session)
        collection = a11.collection(rt, session, _quarter(fiscal_year, quarter), chosen, by == "office")
    if fmt == "csv":
        _write([formats.to_csv(collection)], output)
    elif fmt == "json":
        _write([json.dumps(formats.to_json(collection), ensure_ascii=False) + "\n"], output)
    else:
        if not output and sys.stdout.isatty():
            raise click.UsageError("an XLSX file is binary: give --output FILE or redirect standard output")
        _write([formats.to_xlsx(collection)], output)


@report.command("responses")
@click.option("--fiscal-year", type=YEAR, required=True, help="Federal fiscal year (FY2027 starts 2026-10-01).")
@click.option("--quarter", type=QUARTER, required=True, help="Fiscal quarter 1-4.")
@click.option("--service", "services", multiple=True, help="Limit to these services (repeat); default all.")
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="File to write.")
def report_responses(fiscal_year: int, quarter: int, services: tuple[str, ...], fmt: str,
                     output: str | None) -> None:  # fmt: skip
    """The §6.2 response-level file (Touchpoints' 17 upload columns), streamed as CSV."""
    from engine.reporting import formats, responses_file

    rt = _runtime()
    chosen = _services(rt, services)
    with rt.sessions() as session:
        rows = responses_file.rows(rt, session, _quarter(fiscal_year, quarter), chosen)
        _write(formats.csv_lines(responses_file.COLUMNS, rows), output)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): say so rather than fail
        return "unknown-os-user"


@report.command("submit")
@click.option("--fiscal-year", type=YEAR, required=True, help="Federal fiscal year (FY2027 starts 2026-10-01).")
@click.option("--quarter", type=QUARTER, required=True, help="Fiscal quarter 1-4.")
@click.option("--service", required=True, help="The service whose quarter is filed.")
@click.option("--by", "by", default=None, help="Who files it (default: the operating-system user).")
def report_submit(fiscal_year: int, quarter: int, service: str, by: str | None) -> None:
    """File a quarter: freeze the service's §6.1 CSV, JSON and XLSX and §6.2 CSV; prints the submission id."""
    from engine.common.limits import text_problem
    from engine.reporting import submissions
    from engine.store.db import unit_of_work

    rt = _runtime()
    (slug,) = _services(rt, (service,)) or [service]
    who = (by if by is not None else _os_user()).strip()
    problem = "must not be empty" if not who else text_problem(who)
    if problem is None and len(who) > submissions.MAX_SUBMITTER:
        problem = f"must be at most {submissions.MAX_SUBMITTER} characters"
    if problem:
        raise click.BadParameter(problem, param_hint="--by")
    with unit_of_work(rt.sessions) as session:
        try:
            row = submissions.submit(rt, session, _quarter(fiscal_year, quarter), slug, who)
        except submissions.NotBegun as exc:
            raise click.ClickException(f"{exc}: a quarter is filed once it has started") from None
        view = submissions.view(rt, row)
    click.echo(f"Filed FY{fiscal_year} Q{quarter} of {slug} as {who} at {view['submitted_at']}.")
    click.echo(view["id"])
