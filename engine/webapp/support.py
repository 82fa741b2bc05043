"""Helpers every blueprint shares: the runtime of the current app, strict JSON bodies, and access marks.

``json_body`` holds every JSON endpoint to SPEC §2 rule 11: at most ``MAX_JSON_DEPTH`` levels of nesting (400,
never a ``RecursionError``); ``NaN``, ``Infinity`` and numbers too large for a float come through as non-finite or
out-of-range numbers, so that validation refuses them naming the field (422). Its two halves serve a view that
needs the raw bytes first (a signed webhook): ``check_json_request`` refuses a wrong media type (415) or an
oversize body (413) before reading it, ``read_json_request`` reads at most the limit.

Every view carries an ``access`` mark: ``public`` (with the reason it is public on purpose) or the guard that
checks its caller. ``tests/test_routes_guarded.py`` walks the URL map and refuses any view without one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, request

from engine.common.errors import FieldError
from engine.common.limits import MAX_JSON_DEPTH, MAX_NUMBER, DuplicateKey, duplicate_key_path, json_depth, unique_keys
from engine.runtime import Runtime
from engine.webapp.problems import Problem

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


def checks_own_form(view: F) -> F:
    """Mark a view that checks its own form fields for unstorable text (so it can name the question), or takes no
    form at all and refuses one unread (a JSON webhook: the before-request check would read the body to parse it)."""
    view.checks_own_form = True  # type: ignore[attr-defined]
    return view


def _integer(literal: str) -> int:
    """A JSON integer; one of more than 40 digits stands as out of range (validation names the field)."""
    if len(literal) > 40:
        return -(MAX_NUMBER + 1) if literal.startswith("-") else MAX_NUMBER + 1
    return int(literal)


def _too_deep() -> Problem:
    return Problem(400, f"The body nests objects and lists deeper than {MAX_JSON_DEPTH} levels.", kind="too-deep")


def parse_json(data: bytes | str) -> Any:
    """Parse a JSON document under rule 11's limits, or raise a 400 :class:`Problem`.

    An object that names a key twice is refused (``duplicate-key``, naming the key and where it is) rather than
    letting the last one win unseen."""
    try:
        value = json.loads(data, parse_int=_integer, object_pairs_hook=unique_keys)
    except RecursionError:
        raise _too_deep() from None
    except DuplicateKey as exc:
        key, path = duplicate_key_path(data) or (exc.key, exc.key)
        key, path = key[:100], path[:300]  # a key may be long: name it, do not echo a megabyte
        raise Problem(400, f"The key {key!r} appears more than once in one object (at {path}); send each key once.",
                      kind="duplicate-key", errors=[FieldError(path, "appears more than once in its object")]) from None  # fmt: skip
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}", kind="malformed-json") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    return value


def _too_large(max_bytes: int) -> Problem:
    return Problem(413, f"The body is larger than {max_bytes} bytes; send smaller batches.", kind="too-large")


def check_json_request(max_bytes: int) -> None:
    """Refuse, before a byte of the body is read, what the headers already show: a media type other than JSON
    (415; parameters such as ``charset`` are not looked at) or a ``Content-Length`` over ``max_bytes`` (413).

    A body that declares no length (``Transfer-Encoding: chunked``) is then read at most ``max_bytes + 1`` bytes,
    enough to tell that it is too large (the app-wide ``MAX_CONTENT_LENGTH`` stays the ceiling)."""
    if request.mimetype != "application/json":
        raise Problem(
            415, "Send the body as JSON with 'Content-Type: application/json'.", kind="unsupported-media-type"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    ceiling = request.max_content_length
    request.max_content_length = max_bytes + 1 if ceiling is None else min(ceiling, max_bytes + 1)


def read_json_request(max_bytes: int) -> bytes:
    """The body of a request :func:`check_json_request` passed, or 413 when it holds more than ``max_bytes``."""
    data = request.get_data(cache=False)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def json_body(max_bytes: int = 4 * 1024 * 1024) -> Any:
    """The request's JSON, or a precise 4xx: wrong media type, too large, malformed, nested too deep."""
    check_json_request(max_bytes)
    return parse_json(read_json_request(max_bytes))
