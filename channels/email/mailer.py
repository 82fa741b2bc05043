"""Handing invitations to SendGrid: one Mail Send request per group, each invitation its own personalization.

The dispatcher has already committed ``sending`` when this runs (SPEC §2 rule 10). A batch is grouped by service,
flow version and language (one rendering each); every group goes out as ONE request through the official SDK
(``SendGridAPIClient(api_key, host=SENDGRID_API_HOST)``) with up to 1,000 personalizations. What comes back
decides every invitation of the request:

* 202 — SENT; ``provider_id`` is the invitation id (see below), the detail keeps SendGrid's ``X-Message-Id``;
* a refused connection (nothing went out), 429 or 5xx — RETRY for the whole request, with ``Retry-After``;
* 400 or 413 — the request was refused as a whole: where SendGrid names the bad personalizations
  (``personalizations.<n>.…``) those fail and the rest go again; otherwise the request is split in halves, each
  sent again (recursively), until the bad personalization stands alone and fails. An error about the request
  itself (``from``, ``content``…) fails the whole request: splitting would not help;
* 401/403 — FAILED, a configuration problem (the API key or its Mail Send permission);
* a timeout or a dropped connection after the request went out — UNKNOWN for the whole request, never resent.

``provider_id`` is the invitation id (its string form), for every invitation SendGrid may hold (SENT and UNKNOWN):
SendGrid's event webhook reports each recipient's events with the personalization's ``custom_args``, so the
invitation id comes back with each event and :func:`engine.delivery.provider_reports.apply_status` finds the invitation by it —
also one left UNKNOWN by a timeout, which its first event then settles. ``X-Message-Id`` is one id for the whole
request (SendGrid's per-recipient ``sg_message_id`` only starts with it), so it could not tell recipients apart.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    ClickTracking,
    CustomArg,
    From,
    Header,
    Mail,
    OpenTracking,
    Personalization,
    ReplyTo,
    SubscriptionTracking,
    Substitution,
    TrackingSettings,
)

from channels.email.config import SendGridConfig
from channels.email.message import Rendered, message_language, render, substitutions
from engine.channels import Outcome, Outgoing, SendResult
from engine.common.i18n import translate

logger = logging.getLogger("survey_engine.channels.email")
REQUEST_TIMEOUT = 20.0
CATEGORY = "survey-invitation"
_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)(\.|$)")
EMAIL_ADDRESS = re.compile(r"[^\s<>\"'@]+@[^\s<>\"'@]+")
GroupKey = tuple[str, str, str, str, bool, bool]


@dataclass(frozen=True)
class Verdict:
    """What one Mail Send request came to."""

    outcome: Outcome | None  # None: refused as a whole (400/413): find the bad personalizations
    detail: str
    message_id: str | None = None
    retry_after_seconds: float | None = None
    # Personalization indices SendGrid named in a 400 (``personalizations.<n>.…``), with its messages.
    bad: dict[int, str] | None = None
    request_level: bool = False


def group_key(item: Outgoing) -> GroupKey:
    return (
        item.service.slug,
        item.flow.id,
        item.flow.version,
        message_language(item.flow, item.language),
        bool(item.unsubscribe_url),
        is_reminder(item),
    )


def is_reminder(item: Outgoing) -> bool:
    """Whether the item is the service's one reminder (``reminder_after``), not the invitation."""
    return item.reminder


def tracking_off() -> TrackingSettings:
    """Click, open and subscription tracking off: tracking would rewrite the survey and unsubscribe links."""
    return TrackingSettings(
        click_tracking=ClickTracking(enable=False, enable_text=False),
        open_tracking=OpenTracking(enable=False),
        subscription_tracking=SubscriptionTracking(enable=False),
    )


def personalization(item: Outgoing, rendered: Rendered) -> Personalization:
    p = Personalization()
    p.tos = [{"email": item.address}]  # validated and normalized at intake: passed on as it is
    for tag, value in substitutions(rendered, item.survey_url or "", item.unsubscribe_url).items():
        p.add_substitution(Substitution(tag, value))
    p.add_custom_arg(CustomArg("invitation_id", str(item.invitation_id)))
    if item.unsubscribe_url:
        p.add_header(Header("List-Unsubscribe", f"<{item.unsubscribe_url}>"))
        p.add_header(Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return p


def build_request(config: SendGridConfig, items: Sequence[Outgoing]) -> dict[str, Any]:
    """The Mail Send body for one group (same service, flow version, language): one personalization each."""
    first = items[0]
    rendered = render(first.service, first.flow, first.language, unsubscribe=bool(first.unsubscribe_url),
                      reminder=is_reminder(first))  # fmt: skip
    sender = first.service.sender or {}
    sender_name = translate(rendered.language, sender.get("name") or first.service.agency)
    mail = Mail(
        from_email=From(config.from_email, sender_name),
        subject=rendered.subject,
        plain_text_content=rendered.text,
        html_content=rendered.html,
    )
    if sender.get("reply_to"):
        mail.reply_to = ReplyTo(sender["reply_to"], sender_name)
    for n, item in enumerate(items):
        mail.add_personalization(personalization(item, rendered), index=n)
    mail.tracking_settings = tracking_off()
    body: dict[str, Any] = mail.get()
    body["categories"] = [CATEGORY, first.service.slug[:255]]
    return body


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    raw = headers.get("Retry-After")
    if raw:
        raw = str(raw).strip()
        if raw.isdigit():
            return float(raw)
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    reset = headers.get("X-RateLimit-Reset")
    if reset and str(reset).strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def _errors(body: Any) -> list[dict[str, Any]]:
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body or "")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _messages(errors: list[dict[str, Any]]) -> str:
    """SendGrid's error messages, without any address they quote (details are stored in plain text)."""
    said = "; ".join(str(e.get("message") or "") for e in errors if e.get("message"))
    return EMAIL_ADDRESS.sub("[address]", said)[:150]


def classify_http_error(exc: HTTPError) -> Verdict:
    status = int(exc.status_code)
    errors = _errors(exc.body)
    said = _messages(errors)
    detail = f"sendgrid {status}" + (f": {said}" if said else "")
    if status == 429 or status >= 500:
        return Verdict(Outcome.RETRY, detail[:200], retry_after_seconds=_retry_after(exc.headers))
    if status in (401, 403):
        return Verdict(Outcome.FAILED, f"{detail} (check SENDGRID_API_KEY and its Mail Send permission)"[:200])
    if status in (400, 413):
        bad: dict[int, str] = {}
        request_level = False
        for error in errors:
            field = str(error.get("field") or "")
            match = _PERSONALIZATION_FIELD.match(field)
            if match:
                bad[int(match.group(1))] = EMAIL_ADDRESS.sub("[address]", str(error.get("message") or field))[:150]
            elif field and field != "null":
                request_level = True
        if request_level:
            return Verdict(Outcome.FAILED, f"{detail} (the request itself was refused)"[:200], request_level=True)
        return Verdict(None, detail[:200], bad=bad or None)
    return Verdict(Outcome.FAILED, detail[:200])


def classify_exception(exc: BaseException) -> Verdict:
    """A call that got no HTTP answer: did the request go out?"""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        if isinstance(reason, OSError) and not isinstance(reason, TimeoutError):
            # Raised while connecting or writing the request (refused, DNS, unreachable, TLS): nothing was taken.
            return Verdict(Outcome.RETRY, f"sendgrid unreachable: {reason!r}"[:200])
        return Verdict(Outcome.UNKNOWN, f"sendgrid call did not complete: {reason!r}"[:200])
    if isinstance(exc, TimeoutError | socket.timeout):
        return Verdict(Outcome.UNKNOWN, "sendgrid did not answer in time after the request went out")
    if isinstance(exc, ConnectionError | HTTPException | OSError):
        return Verdict(Outcome.UNKNOWN, f"sendgrid connection lost after the request went out: {exc!r}"[:200])
    return Verdict(Outcome.UNKNOWN, f"sendgrid call failed: {exc!r}"[:200])


class Mailer:
    """The SDK client and the batching, splitting and classifying around it."""

    def __init__(self, config: SendGridConfig, timeout: float = REQUEST_TIMEOUT) -> None:
        self.config = config
        self.client = SendGridAPIClient(api_key=config.api_key, host=config.api_host)
        # The SDK's HTTP client takes a timeout (python-http-client ``Client.timeout``); without one it would wait.
        self.client.client.timeout = timeout

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        groups: dict[GroupKey, list[Outgoing]] = {}
        for item in batch:
            groups.setdefault(group_key(item), []).append(item)
        results: dict[Any, SendResult] = {}
        for key, items in groups.items():
            if not key[4]:
                logger.warning("email sent without a List-Unsubscribe link: the dispatcher gave no unsubscribe URL",
                               extra={"service": key[0], "count": len(items)})  # fmt: skip
            missing = [i for i in items if not i.survey_url]
            for item in missing:
                results[item.invitation_id] = SendResult(item.invitation_id, Outcome.FAILED,
                                                         detail="no survey link to send")  # fmt: skip
            items = [i for i in items if i.survey_url]
            if not items:
                continue
            try:
                body = build_request(self.config, items)
            except Exception as exc:  # a template or wording problem: nothing went out
                logger.exception("email not composed", extra={"service": key[0], "flow": key[1]})
                for item in items:
                    results[item.invitation_id] = SendResult(item.invitation_id, Outcome.FAILED,
                                                             detail=f"message not composed: {exc!r}"[:200])  # fmt: skip
                continue
            personalizations = body.pop("personalizations")
            self._deliver(body, list(zip(items, personalizations, strict=True)), results)
        return [results[item.invitation_id] for item in batch]

    def _post(self, body: dict[str, Any]) -> Verdict:
        try:
            response = self.client.send(body)
        except HTTPError as exc:
            return classify_http_error(exc)
        except Exception as exc:
            return classify_exception(exc)
        status = int(response.status_code)
        message_id = response.headers.get("X-Message-Id") if response.headers is not None else None
        if 200 <= status < 300:
            return Verdict(Outcome.SENT, f"sendgrid {status}", message_id=message_id)
        return Verdict(Outcome.UNKNOWN, f"sendgrid answered {status}")

    def _deliver(
        self, base: dict[str, Any], part: list[tuple[Outgoing, dict[str, Any]]], results: dict[Any, SendResult]
    ) -> None:
        verdict = self._post({**base, "personalizations": [p for _, p in part]})
        if verdict.outcome is not None:
            for n, (item, _) in enumerate(part):
                results[item.invitation_id] = self._result(item, verdict, n)
            return
        if verdict.bad:  # SendGrid named the bad personalizations: they fail, the others go again
            named = {n for n in verdict.bad if 0 <= n < len(part)}
            for n in sorted(named):
                item = part[n][0]
                detail = f"sendgrid refused: {verdict.bad[n]}"[:200]
                results[item.invitation_id] = SendResult(item.invitation_id, Outcome.FAILED, detail=detail)
            rest = [pair for n, pair in enumerate(part) if n not in named]
            if named and rest:
                self._deliver(base, rest, results)
                return
            if named:
                return
        if len(part) == 1:
            item = part[0][0]
            results[item.invitation_id] = SendResult(item.invitation_id, Outcome.FAILED, detail=verdict.detail)
            return
        middle = len(part) // 2
        self._deliver(base, part[:middle], results)
        self._deliver(base, part[middle:], results)

    @staticmethod
    def _result(item: Outgoing, verdict: Verdict, n: int) -> SendResult:
        outcome = verdict.outcome
        assert outcome is not None
        provider_id = str(item.invitation_id) if outcome in (Outcome.SENT, Outcome.UNKNOWN) else None
        detail = verdict.detail
        if outcome is Outcome.SENT and verdict.message_id:
            detail = f"{detail} X-Message-Id {verdict.message_id} personalization {n}"
        return SendResult(item.invitation_id, outcome, provider_id=provider_id, detail=detail[:200],
                          retry_after_seconds=verdict.retry_after_seconds)  # fmt: skip
