"""What every request is held to before any view runs, and how the app answers when the database is away.

SPEC §2 rule 11: text no database can keep (NUL, an unpaired surrogate) in the URL path, the query or a form is
refused before it reaches a view (422: the API names the field, a page says so); a form body that is not UTF-8 is
a 400 wherever it is first read (:mod:`engine.webapp.utf8_forms`), never text the sender did not send; a database
that cannot be reached is a 503 with ``Retry-After`` (problem+json for the API, a "try again shortly" page for
people).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, render_template, request

from engine.common.errors import FieldError
from engine.common.i18n import available_languages, best_language
from engine.common.limits import text_problem
from engine.store.db import UNREACHABLE
from engine.webapp.problems import problem_response
from engine.webapp.utf8_forms import NotUtf8, Utf8Request

RETRY_AFTER_SECONDS = 30


def is_api(path: str) -> bool:
    """Whether a machine reads the answer to ``path`` (problem+json), not a person (an HTML page)."""
    return path.startswith(("/api/", "/channels/")) or path.endswith(".json")


def _unstorable() -> list[FieldError]:
    """Field errors for unstorable text in the path, the query or (unless the view checks it) the form."""
    errors: list[FieldError] = []
    if text_problem(request.path):
        args = request.view_args or {}
        named = [name for name, value in args.items() if isinstance(value, str) and text_problem(value)]
        errors.extend(FieldError(name, "(in the URL path) " + (text_problem(args[name]) or "")) for name in named)
        if not named:
            errors.append(FieldError("path", text_problem(request.path) or ""))
    for source, values in (("query", request.args), ("form", None)):
        if source == "form":
            view = current_app.view_functions.get(request.endpoint or "")
            if getattr(view, "checks_own_form", False) or request.mimetype not in (
                "application/x-www-form-urlencoded", "multipart/form-data"
            ):  # fmt: skip
                continue
            values = request.form
        assert values is not None
        for key, value in values.items(multi=True):
            problem = text_problem(key) or text_problem(value)
            if problem:
                safe = key if text_problem(key) is None else key.encode("unicode_escape").decode("ascii")
                errors.append(FieldError(safe, f"(in the {source}) {problem}"))
    return errors


def page_language() -> str:
    offered = available_languages()
    language: str = g.get("language") or best_language(
        offered, request.args.get("lang"), request.accept_languages.best_match(offered)
    )
    return language


def _page(template: str, status: int, headers: dict[str, str] | None = None) -> Response:
    g.language = language = page_language()
    response = Response(render_template(template, language=language), status=status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def refuse_unstorable() -> Any:
    """``before_request``: answer 400 when the URL path or the query is not UTF-8 (see :func:`form_not_utf8`), then
    422: a problem (API) or a page when the request holds text no database can keep."""
    if isinstance(request, Utf8Request) and request.path_not_utf8:
        return form_not_utf8(NotUtf8(["path"], "URL path"))
    if isinstance(request, Utf8Request) and request.query_not_utf8:
        return form_not_utf8(NotUtf8(request.query_not_utf8, "query"))
    errors = _unstorable()
    if not errors:
        return None
    if is_api(request.path):
        return problem_response(422, "The request holds text no database can keep; each error names its field.",
                                kind="unstorable-text", errors=errors)  # fmt: skip
    return _page("survey/bad_request.html", 422)


def form_not_utf8(refusal: NotUtf8) -> Response:
    """A form body, a query or a URL path that is not UTF-8: 400, a problem naming the fields (the API, webhooks) or the page
    that says the link or form cannot be read (people); nothing was read further, nothing stored."""
    if is_api(request.path):
        where = refusal.source
        errors = [FieldError(name, f"(in the {where}) is not valid UTF-8 text") for name in refusal.fields]
        return problem_response(400, f"The {where} is not valid UTF-8 text; send it encoded as UTF-8. Nothing was "
                                "changed.", kind="not-utf-8", errors=errors)  # fmt: skip
    return _page("survey/bad_request.html", 400)


def database_unreachable(exc: Exception) -> Response:
    """The database could not be reached: 503 with ``Retry-After``, for machines and for people."""
    import logging

    from engine.common.logs import log

    log(logging.getLogger("survey_engine"), "database unreachable", logging.ERROR, endpoint=request.endpoint or "",
        error=type(exc).__name__)  # fmt: skip
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if is_api(request.path):
        return problem_response(503, "The database cannot be reached right now; nothing was stored. Try again "
                                f"in {RETRY_AFTER_SECONDS} seconds.", kind="database-unreachable", headers=headers)  # fmt: skip
    return _page("survey/unavailable.html", 503, headers)


def schema_not_current() -> Response:
    """The database's schema is behind this code (the app started by ``gunicorn`` directly, ``db upgrade`` not yet
    run): 503 with ``Retry-After``, as ``/readyz`` says, for machines and for people. Every view answered 500 from
    its missing table or column before, and nothing of it was the caller's fault."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if is_api(request.path):
        return problem_response(503, "The service is being upgraded; nothing was stored. Try again in "
                                f"{RETRY_AFTER_SECONDS} seconds.", kind="migrations-pending", headers=headers)  # fmt: skip
    return _page("survey/unavailable.html", 503, headers)


def install(app: Flask) -> None:
    app.request_class = Utf8Request
    app.before_request(refuse_unstorable)
    app.register_error_handler(NotUtf8, form_not_utf8)
    for error in UNREACHABLE:
        app.register_error_handler(error, database_unreachable)
