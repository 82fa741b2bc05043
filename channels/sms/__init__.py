"""The ``sms`` channel (SPEC §4): Twilio Programmable Messaging, conversational or with the web survey link.

* Conversational (``sms_mode: conversational``, the default): the first text says who is asking, why, how long,
  the OMB control number and "Reply STOP to opt out", followed by the first question; each reply is read and
  answered with the next question (``webhooks`` and ``conversation``).
* Link (``sms_mode: link``): one text with the invitation and the web survey link.

Sending is :mod:`channels.sms.sender`; the webhooks (``POST /channels/sms/inbound`` and ``/status``, both signed by
Twilio) are :mod:`channels.sms.webhooks`; reading replies is :mod:`channels.sms.replies`, with its words as data
in ``locales/sms/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from flask import Blueprint

from channels.sms.sender import Sender
from channels.twilio_api import REQUEST_TIMEOUT, TwilioSettings, settle_by_lookup
from engine.channels import Outcome, Outgoing, SendResult, Unsettled
from engine.store.models.enums import ContactKind


class SmsChannel:
    name: ClassVar[str] = "sms"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.PHONE,)
    consent: ClassVar[str | None] = "sms"
    quiet_hours: ClassVar[bool] = True
    # An SMS opt-out stops texts; so does an opt-out recorded on "sms" by the IVR channel's carrier codes.
    suppressed_by: ClassVar[tuple[str, ...] | None] = ("sms",)
    test_only: ClassVar[bool] = False
    # One invitation a hand-over: the dispatcher records a hand-over's provider ids only once the whole batch is
    # sent, and a status callback for a sid not yet recorded is held until it lands (``engine.delivery.provider_reports``). One
    # at a time keeps that gap to milliseconds; each message is one API call anyway.
    batch_size: ClassVar[int] = 1

    def __init__(self, settings: Any, timeout: float = REQUEST_TIMEOUT) -> None:
        self.config = TwilioSettings.from_providers(settings.providers)
        self.sender = Sender(self.config, settings.public_url, timeout) if self.config is not None else None

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        if self.sender is None:
            return [SendResult(item.invitation_id, Outcome.FAILED, detail="twilio not configured") for item in batch]
        return self.sender.send(batch)

    def settle(self, items: Sequence[Unsettled]) -> dict[uuid.UUID, str]:
        """The messages Twilio did send to each number since the claim (SPEC §2 rule 10); one each at most."""
        if self.sender is None:
            return {}
        return settle_by_lookup(items, lambda item: self.sender.client.messages.list(  # type: ignore[union-attr]
            to=item.address, date_sent_after=item.since, limit=20))  # fmt: skip

    def blueprint(self) -> Blueprint | None:
        from channels.sms.webhooks import bp

        return bp


__all__ = ["SmsChannel"]
