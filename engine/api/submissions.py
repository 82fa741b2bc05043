"""``/api/v1/reports/a11/submissions``: file a quarter, list the filings, read the filed files back (SPEC §6).

All need a key with the ``reports`` scope, and a key sees only its own services: filing or listing another
service is 403; a submission of another service is 404, as an unknown id. Filing stores the §6.1 CSV, JSON and
XLSX and the §6.2 CSV with the key's name and the time (``engine.reporting.submissions``); reading returns those
bytes, unchanged by anything that arrives later.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from engine.api.auth import require_scope
from engine.api.reports import parse_query
from engine.common.errors import FieldError
from engine.intake.validation import shown
from engine.reporting import submissions
from engine.reporting.fiscal import FiscalQuarter
from engine.store.db import unit_of_work
from engine.store.models import Scope, Submission
from engine.webapp.problems import Problem
from engine.webapp.support import json_body, runtime

bp = Blueprint("submissions", __name__, url_prefix="/api/v1/reports/a11")

POST_FIELDS = {"fiscal_year", "quarter", "service"}
LIST_PARAMS = {"fiscal_year", "quarter", "service"}


def _whole(body: dict[str, Any], name: str, low: int, high: int, errors: list[FieldError]) -> int:
    value = body.get(name)
    if value is None:
        errors.append(FieldError(name, "is required"))
    elif isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.append(FieldError(name, f"must be a whole number {low}-{high}"))
    else:
        return value
    return 0


@bp.post("/submissions")
@require_scope(Scope.REPORTS)
def post_submission() -> Any:
    body = json_body()
    if not isinstance(body, dict):
        raise Problem(400, 'The body must be a JSON object such as {"fiscal_year": 2027, "quarter": 1, '
                      '"service": "passport-renewal"}.', kind="invalid-submission")  # fmt: skip
    errors = [FieldError(shown(k), "unknown field") for k in sorted(set(body) - POST_FIELDS)]
    year = _whole(body, "fiscal_year", 2000, 2999, errors)
    quarter = _whole(body, "quarter", 1, 4, errors)
    rt = runtime()
    service = body.get("service")
    if service is None:
        errors.append(FieldError("service", "is required"))
    elif not isinstance(service, str) or service not in rt.catalog.services:
        errors.append(FieldError("service", "is not a configured service"))
    if errors:
        raise Problem(422, "The submission is invalid; each error names its field.", kind="invalid-submission",
                      errors=errors)  # fmt: skip
    assert isinstance(service, str)
    if not g.caller.may_use(service):
        raise Problem(403, f"This API key may not file reports of {service!r}.", kind="service-out-of-reach")
    with unit_of_work(rt.sessions) as session:
        try:
            row = submissions.submit(rt, session, FiscalQuarter(year, quarter), service, f"api-key:{g.caller.name}")
        except submissions.NotBegun:
            not_yet = "names a quarter that has not begun; a quarter is filed once it has started"
            raise Problem(422, "The submission is invalid; each error names its field.", kind="invalid-submission",
                          errors=[FieldError("fiscal_year", not_yet), FieldError("quarter", not_yet)]) from None  # fmt: skip
        view = submissions.view(rt, row)
    response = jsonify(view)
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/reports/a11/submissions/{view['id']}"
    return response


@bp.get("/submissions")
@require_scope(Scope.REPORTS)
def list_submissions() -> Any:
    quarter, services, _, _ = parse_query(LIST_PARAMS, ("json",))
    rt = runtime()
    with rt.sessions() as session:
        rows = [submissions.view(rt, r) for r in submissions.listed(rt, session, quarter, services)]
    return jsonify({"submissions": rows})


@bp.get("/submissions/<id>")
@require_scope(Scope.REPORTS)
def get_submission(id: str) -> Any:
    errors = [FieldError(shown(k), "unknown parameter") for k in sorted(set(request.args) - {"format"})]
    if len(request.args.getlist("format")) > 1:  # two files asked for at once: neither is served
        errors.append(FieldError("format", "is given more than once"))
    fmt = request.args.get("format", "csv")
    if fmt not in submissions.FILES:
        errors.append(FieldError("format", f"must be one of {', '.join(submissions.FILES)}"))
    if errors:
        raise Problem(400, "The parameters are invalid; each error names its parameter.",
                      kind="invalid-report-parameters", errors=errors)  # fmt: skip
    rt = runtime()
    try:
        key = uuid.UUID(id)
    except ValueError:
        key = None
    with rt.sessions() as session:
        row = session.get(Submission, key) if key is not None else None
        slug = next((s for s, i in rt.service_ids.items() if row is not None and i == row.service_id), None)
        if row is None or slug is None or not g.caller.may_use(slug):
            raise Problem(404, "No submission with this id that this API key may read.", kind="not-found")
        body = submissions.served(getattr(row, submissions.FILES[fmt]))
        name = f"a11-{'responses' if fmt == 'responses' else 'collection'}-{slug}-fy{row.fiscal_year}-q{row.quarter}"
    ext = "csv" if fmt == "responses" else fmt
    response = Response(body, content_type=submissions.MEDIA_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{ext}"'
    return response
