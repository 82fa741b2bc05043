"""Handing invitations to Twilio: one Messages create per invitation, its outcome classified (SPEC §2 rule 10).

The dispatcher has already committed ``sending`` when this runs. A refused connection, a 429 or a 5xx surely sent
nothing and is retried; a timeout after the request went out is ``unknown`` (never resent blind); a permanent
error fails the invitation, with the suppression its Twilio error code calls for (21610: the customer texted
STOP to this sender, which stops texts and outbound calls alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twilio.rest import Client

from channels.sms.texts import invitation_body
from channels.twilio_api import SUPPRESSING_CODES, RebasedHttpClient, TwilioSettings, classify
from engine.channels import Outcome, Outgoing, SendResult

STATUS_PATH = "/channels/sms/status"


class Sender:
    """One Twilio client and the sender identity (a From number or a Messaging Service)."""

    def __init__(self, config: TwilioSettings, public_url: str, timeout: float) -> None:
        self.config = config
        self.status_callback = public_url.rstrip("/") + STATUS_PATH
        self.client = Client(
            config.account_sid, config.auth_token, http_client=RebasedHttpClient(config.api_base_url, timeout)
        )

    def identity(self) -> dict[str, str] | None:
        if self.config.messaging_service_sid:
            return {"messaging_service_sid": self.config.messaging_service_sid}
        if self.config.from_number:
            return {"from_": self.config.from_number}
        return None

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        identity = self.identity()
        if identity is None:
            detail = "twilio sender not configured (TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID)"
            return [SendResult(item.invitation_id, Outcome.FAILED, detail=detail) for item in batch]
        return [self.send_one(item, identity) for item in batch]

    def send_one(self, item: Outgoing, identity: dict[str, str]) -> SendResult:
        if item.service.sms_mode == "link" and not item.survey_url:
            return SendResult(item.invitation_id, Outcome.FAILED, detail="link mode without a survey link")
        try:
            body = invitation_body(item)
        except Exception as exc:  # a wording problem: nothing went out
            return SendResult(item.invitation_id, Outcome.FAILED, detail=f"message not composed: {exc!r}"[:200])
        try:
            message = self.client.messages.create(
                to=item.address, body=body, status_callback=self.status_callback, **identity
            )
        except Exception as exc:
            found = classify(exc)
            return SendResult(
                item.invitation_id,
                found.outcome,
                detail=found.detail,
                suppress=found.suppress,
                suppress_channels=found.suppress_channels,
                retry_after_seconds=found.retry_after_seconds,
            )
        return accepted(item, message)


def accepted(item: Outgoing, message: Any) -> SendResult:
    """Twilio took the message; it may still say at once that it failed (with an error code)."""
    sid = str(message.sid) if message.sid else None
    if str(message.status or "") in ("failed", "undelivered"):
        code = int(message.error_code or 0)
        detail = f"twilio {message.status} code {code}: {message.error_message or ''}".strip()[:200]
        reason, channels = SUPPRESSING_CODES.get(code, (None, ()))
        return SendResult(item.invitation_id, Outcome.FAILED, provider_id=sid, detail=detail, suppress=reason,
                          suppress_channels=channels)  # fmt: skip
    return SendResult(item.invitation_id, Outcome.SENT, provider_id=sid, detail=f"twilio {message.status}")
