"""The A-11 report endpoints (SPEC §6.3): the §6.1 quarterly collection and the §6.2 response-level file.

Both need a key with the ``reports`` scope; a key sees only its own services (``service=`` naming another one is
403; without ``service=`` the file covers every service of the key). Bad parameters are a 400 problem naming
each one. The CSV bodies are exactly the bytes ``survey-engine report a11`` / ``report responses`` print.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request, stream_with_context

from engine.api.auth import require_scope
from engine.common.errors import FieldError
from engine.common.limits import whole_number
from engine.intake.validation import shown
from engine.reporting import a11, formats, responses_file, submissions
from engine.reporting.fiscal import FiscalQuarter
from engine.store.models import Scope
from engine.webapp.problems import Problem
from engine.webapp.support import runtime

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")

A11_PARAMS = {"fiscal_year", "quarter", "service", "by", "format"}
RESPONSES_PARAMS = {"fiscal_year", "quarter", "service", "format"}


def _int(name: str, errors: list[FieldError], low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        errors.append(FieldError(name, "is required"))
        return 0
    value = whole_number(raw, low, high)
    if value is None:
        errors.append(FieldError(name, f"must be a whole number {low}-{high}"))
        return 0
    return value


def parse_query(allowed: set[str], formats_allowed: tuple[str, ...]) -> tuple[FiscalQuarter, list[str], bool, str]:
    """(quarter, services, by_office, format) from the query string, or a 400 problem naming every bad one."""
    errors = [FieldError(shown(k), "unknown parameter") for k in sorted(set(request.args) - allowed)]
    errors += [FieldError(k, "is given more than once") for k in sorted(allowed) if len(request.args.getlist(k)) > 1]
    year = _int("fiscal_year", errors, 2000, 2999)
    quarter = _int("quarter", errors, 1, 4)
    by = request.args.get("by")
    if by not in (None, "office"):
        errors.append(FieldError("by", "must be office (or left out)"))
    fmt = request.args.get("format", formats_allowed[0])
    if fmt not in formats_allowed:
        errors.append(FieldError("format", f"must be one of {', '.join(formats_allowed)}"))
    rt = runtime()
    service = request.args.get("service")
    if service is not None and service not in rt.catalog.services:
        errors.append(FieldError("service", "is not a configured service"))
    if errors:
        raise Problem(400, "The report parameters are invalid; each error names its parameter.",
                      kind="invalid-report-parameters", errors=errors)  # fmt: skip
    caller = g.caller
    if service is not None:
        if not caller.may_use(service):
            raise Problem(403, f"This API key may not read reports of {service!r}.", kind="service-out-of-reach")
        services = [service]
    else:
        services = sorted(s for s in caller.services if s in rt.catalog.services)
        if not services:
            raise Problem(403, "This API key covers no configured service.", kind="service-out-of-reach")
    return FiscalQuarter(year, quarter), services, by == "office", fmt


def _filename(kind: str, quarter: FiscalQuarter, ext: str) -> str:
    return f"a11-{kind}-fy{quarter.fiscal_year}-q{quarter.quarter}.{ext}"


@bp.get("/a11")
@require_scope(Scope.REPORTS)
def get_a11() -> Any:
    quarter, services, by_office, fmt = parse_query(A11_PARAMS, ("json", "csv", "xlsx"))
    rt = runtime()
    with rt.sessions() as session:
        submissions.one_snapshot(session)  # a file whose counts agree with each other, as a filing's do
        collection = a11.collection(rt, session, quarter, services, by_office)
    if fmt == "json":
        return jsonify(formats.to_json(collection))
    if fmt == "csv":
        body: str | bytes = formats.to_csv(collection)
        media = formats.CSV_MEDIA_TYPE
    else:
        body = formats.to_xlsx(collection)
        media = formats.XLSX_MEDIA_TYPE
    response = Response(body, mimetype=media.split(";")[0], content_type=media)
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename("collection", quarter, fmt)}"'
    return response


@bp.get("/a11/responses")
@require_scope(Scope.REPORTS)
def get_a11_responses() -> Any:
    quarter, services, _, _ = parse_query(RESPONSES_PARAMS, ("csv",))
    rt = runtime()
    with rt.engine.connect() as connection:  # a database that is away is a 503 now, not a cut-off stream later
        connection.exec_driver_sql("SELECT 1")

    def generate() -> Any:
        with rt.sessions() as session:
            yield from formats.csv_lines(responses_file.COLUMNS, responses_file.rows(rt, session, quarter, services))

    response = Response(stream_with_context(generate()), content_type=formats.CSV_MEDIA_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename("responses", quarter, "csv")}"'
    return response
