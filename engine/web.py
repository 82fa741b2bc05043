"""Helpers every blueprint shares: the runtime of the current app, strict JSON bodies, and access marks.

Every view carries an ``access`` mark: ``public`` (with the reason it is public on purpose) or the guard that
checks its caller. ``tests/test_routes_guarded.py`` walks the URL map and refuses any view without one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, request

from engine.api.problems import Problem
from engine.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["survey_engine"]
    return rt


def public(reason: str) -> Callable[[F], F]:
    """Mark a view as public on purpose; ``reason`` says why."""

    def mark(view: F) -> F:
        view.access = f"public: {reason}"  # type: ignore[attr-defined]
        return view

    return mark


def guarded_by(guard: str) -> Callable[[F], F]:
    """Mark a view as checked by ``guard`` (a provider signature, a device credential, a sign-in)."""

    def mark(view: F) -> F:
        view.access = guard  # type: ignore[attr-defined]
        return view

    return mark


def json_body(max_bytes: int = 4 * 1024 * 1024) -> Any:
    """The request's JSON, or a precise 4xx: wrong media type, too large, malformed."""
    if request.mimetype != "application/json":
        raise Problem(
            415, "Send the body as JSON with 'Content-Type: application/json'.", kind="unsupported-media-type"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise Problem(413, f"The body is larger than {max_bytes} bytes; send smaller batches.", kind="too-large")
    data = request.get_data(cache=False)
    if len(data) > max_bytes:
        raise Problem(413, f"The body is larger than {max_bytes} bytes; send smaller batches.", kind="too-large")
    try:
        import json

        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}", kind="malformed-json") from None
