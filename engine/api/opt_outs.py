"""``/api/v1/opt-outs``: suppress a contact (``intake``) or restore one (``admin``, with a reason, audited)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from engine.api.auth import require_scope
from engine.common.errors import FieldError
from engine.delivery.suppressions import addressed_channels, channels_for, restore, suppress
from engine.intake.submit import iso
from engine.intake.validation import normalize_email, normalize_phone, shown, text_error
from engine.store.db import unit_of_work
from engine.store.models import ContactKind, Scope, SuppressionReason
from engine.webapp.problems import Problem
from engine.webapp.support import json_body, runtime

bp = Blueprint("opt_outs", __name__, url_prefix="/api/v1")

POST_FIELDS = {"phone", "email", "channel", "reason", "note"}
DELETE_FIELDS = {"phone", "email", "channel", "reason"}
MAX_TEXT = 1000


def _address(body: dict[str, Any], allowed: set[str]) -> tuple[ContactKind, str, list[str], list[FieldError]]:
    errors = [FieldError(shown(k), "unknown field") for k in sorted(set(body) - allowed)]
    errors += [FieldError(k, "must not be null: leave the field out instead") for k in allowed if k in body
               and body[k] is None]  # fmt: skip
    kind = ContactKind.PHONE
    address = ""
    given = [k for k in ("phone", "email") if body.get(k) is not None]
    if len(given) != 1:
        errors.append(FieldError("phone", "give exactly one of phone or email"))
    else:
        kind = ContactKind(given[0])
        try:
            address = (
                normalize_phone(body["phone"], "phone")
                if kind is ContactKind.PHONE
                else normalize_email(body["email"], "email")
            )
        except FieldError as exc:
            errors.append(exc)
    channels = channels_for(kind)
    channel = body.get("channel")
    if channel is not None:
        addressed = addressed_channels()
        if not isinstance(channel, str) or channel not in addressed:
            errors.append(FieldError("channel", f"must be one of {', '.join(addressed)}"))
        elif addressed[channel] is not kind:
            errors.append(FieldError("channel", f"a {kind.value} is not reached on {channel}"))
        else:
            channels = [channel]
    return kind, address, channels, errors


def _check(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Problem(400, 'The body must be a JSON object such as {"phone": "+12025550123"}.')
    return body


@bp.post("/opt-outs")
@require_scope(Scope.INTAKE)
def post_opt_out() -> Any:
    body = _check(json_body())
    kind, address, channels, errors = _address(body, POST_FIELDS)
    reason = SuppressionReason.OPTED_OUT
    if body.get("reason") is not None:
        try:
            if not isinstance(body["reason"], str):
                raise ValueError(body["reason"])
            reason = SuppressionReason(body["reason"])
        except ValueError:
            errors.append(FieldError("reason", f"must be one of {', '.join(r.value for r in SuppressionReason)}"))
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_TEXT):
        errors.append(FieldError("note", f"must be a string of at most {MAX_TEXT} characters"))
    elif unstorable := text_error(note, "note"):
        errors.append(unstorable)
    if errors:
        raise Problem(422, "The opt-out is invalid; each error names its field.", kind="invalid-opt-out", errors=errors)
    rt = runtime()
    with unit_of_work(rt.sessions) as session:
        recorded = suppress(session, rt.cipher, kind, address, channels, reason, g.caller.actor, note)
    body_out = {
        "suppressions": [{"channel": r.channel, "reason": r.reason, "created_at": iso(r.created_at)} for r in recorded]
    }
    return jsonify(body_out), 201


@bp.delete("/opt-outs")
@require_scope(Scope.ADMIN)
def delete_opt_out() -> Any:
    body = _check(json_body())
    kind, address, channels, errors = _address(body, DELETE_FIELDS)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        errors.append(FieldError("reason", "is required: say why the contact may be asked again (it is audited)"))
    elif len(reason) > MAX_TEXT:
        errors.append(FieldError("reason", f"must be a string of at most {MAX_TEXT} characters"))
    elif unstorable := text_error(reason, "reason"):
        errors.append(unstorable)
    if errors:
        raise Problem(422, "The restore is invalid; each error names its field.", kind="invalid-restore", errors=errors)
    rt = runtime()
    with unit_of_work(rt.sessions) as session:
        count = restore(session, rt.cipher, kind, address, channels, str(reason).strip(), g.caller.actor)
    return jsonify({"restored": count})
