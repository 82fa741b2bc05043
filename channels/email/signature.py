"""Checking SendGrid's Signed Event Webhook: ECDSA P-256 over ``timestamp + payload``, fresh timestamps only.

The check is the official SDK's (:class:`sendgrid.helpers.eventwebhook.EventWebhook`): the verification key from
``SENDGRID_WEBHOOK_PUBLIC_KEY`` (base64 DER, as SendGrid shows it) is converted once; each request's
``X-Twilio-Email-Event-Webhook-Signature`` must verify over ``X-Twilio-Email-Event-Webhook-Timestamp`` followed
by the raw body, and the timestamp must be within five minutes of now (a replayed old batch is refused).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

logger = logging.getLogger("survey_engine.channels.email")
SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE  # X-Twilio-Email-Event-Webhook-Signature
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP  # X-Twilio-Email-Event-Webhook-Timestamp
MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str = ""


class EventVerifier:
    """Verifies event batches against the configured key (None: no key, every batch refused)."""

    def __init__(self, public_key: str | None) -> None:
        self.webhook = EventWebhook()
        self.key: Any = None
        self.problem: str | None = None
        if not public_key:
            self.problem = "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: signed events cannot be verified"
            return
        try:
            self.key = self.webhook.convert_public_key_to_ecdsa(public_key.strip())
        except Exception as exc:  # a key pasted wrongly: say so, accept nothing
            self.problem = f"SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key ({type(exc).__name__})"
            logger.error(self.problem)

    def check(self, payload: bytes, signature: str | None, timestamp: str | None, now: float | None = None) -> Check:
        if self.key is None:
            return Check(False, self.problem or "no verification key")
        if not signature or not timestamp:
            return Check(False, f"the request is not signed ({SIGNATURE_HEADER}, {TIMESTAMP_HEADER})")
        try:
            moment = int(timestamp.strip())
        except ValueError:
            return Check(False, f"{TIMESTAMP_HEADER} is not a Unix time")
        try:
            age = abs((now if now is not None else time.time()) - moment)
        except OverflowError:  # an integer of hundreds of digits: no float holds it, and no clock is near it
            age = float("inf")
        if age > MAX_AGE_SECONDS:
            return Check(False, "the signature's timestamp is more than 5 minutes away from now")
        try:
            text = payload.decode("utf-8")
            valid = self.webhook.verify_signature(text, signature.strip(), timestamp.strip(), self.key)
        except Exception:  # undecodable body, signature not base64 or not DER: not a valid signature
            valid = False
        return Check(True) if valid else Check(False, "the signature does not match the body")
