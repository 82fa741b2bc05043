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
from engine.common.i18n import N_
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
    a11_channel: ClassVar[str | None] = "sms_text_messages"
    label: ClassVar[str] = N_("Text messages (SMS)")
    short_label: ClassVar[str] = "SMS"
    suppresses_by: ClassVar[ContactKind | None] = ContactKind.PHONE
    reminds: ClassVar[bool] = True  # in link mode only: see wants_reminder
    wording_key: ClassVar[str | None] = "sms"
    # Texts a second per sender: a US long code sends about 1 a second. Toll-free numbers (~3/s), short codes
    # (~100/s) and Messaging Services (the sum of their numbers) set SURVEY_ENGINE_SEND_RATE_SMS to their grant.
    default_send_rate: ClassVar[float | None] = 1.0

    def __init__(self, settings: Any, timeout: float = REQUEST_TIMEOUT) -> None:
        self.config = TwilioSettings.from_providers(settings.providers)
        self.outbox = Sender(self.config, settings.public_url, timeout) if self.config is not None else None

    def not_configured(self) -> str | None:
        """Why every text would fail with these settings (the start-up says so), else None."""
        if self.config is None:
            return "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set"
        if not (self.config.messaging_service_sid or self.config.from_number):
            return "neither TWILIO_FROM_NUMBER nor TWILIO_MESSAGING_SERVICE_SID is set"
        return None

    def wants_reminder(self, service: Any) -> bool:
        """The one reminder goes in link mode only: a conversation is not nagged."""
        return bool(service.sms_mode == "link")

    def sender(self, settings: Any) -> str | None:
        """Texts leave from the Messaging Service, else the number (the pacing key; as the sender chooses)."""
        providers = settings.providers
        return providers.get("TWILIO_MESSAGING_SERVICE_SID") or providers.get("TWILIO_FROM_NUMBER") or None

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        if self.outbox is None:
            return [SendResult(item.invitation_id, Outcome.FAILED, detail="twilio not configured") for item in batch]
        return self.outbox.send(batch)

    def settle(self, items: Sequence[Unsettled]) -> dict[uuid.UUID, str]:
        """The messages Twilio did send to each number since the claim (SPEC §2 rule 10); one each at most."""
        if self.outbox is None:
            return {}
        return settle_by_lookup(items, lambda item: self.outbox.client.messages.list(  # type: ignore[union-attr]
            to=item.address, date_sent_after=item.since, limit=20))  # fmt: skip

    def blueprint(self) -> Blueprint | None:
        from channels.sms.webhooks import bp

        return bp


__all__ = ["SmsChannel"]
