"""The ``email`` channel (SPEC §4): SendGrid Mail Send, the one-click unsubscribe, and SendGrid's signed events.

* Sending (:mod:`channels.email.mailer`): up to 1,000 invitations a request, one personalization each, the
  message rendered by the engine from its own templates and catalogs (:mod:`channels.email.message`), each
  recipient's links as substitutions, click/open/subscription tracking off, ``List-Unsubscribe`` with
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058) per personalization.
* ``GET/POST /u/<token>`` (:mod:`channels.email.unsubscribe`): a GET only shows a confirm page; a POST (the mail
  client's one-click, or the page's button) suppresses the address on ``email`` at once.
* ``POST /channels/email/events`` (:mod:`channels.email.events`): SendGrid's signed event webhook, each event
  applied once by its ``sg_event_id``; bounces, drops, spam reports and unsubscribes suppress the address.

Prerequisite, outside the engine: a sending domain authenticated in SendGrid (aligned DKIM; .gov domains publish
DMARC ``p=reject``), its address in ``SENDGRID_FROM_EMAIL``, and the Signed Event Webhook switched on with its
verification key in ``SENDGRID_WEBHOOK_PUBLIC_KEY``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from flask import Blueprint

from channels.email.config import SendGridConfig
from channels.email.mailer import REQUEST_TIMEOUT, Mailer
from channels.email.signature import EventVerifier
from engine.channels import Outcome, Outgoing, SendResult
from engine.common.i18n import N_
from engine.store.models.enums import ContactKind

NOT_CONFIGURED = "sendgrid not configured: set SENDGRID_API_KEY and SENDGRID_FROM_EMAIL"


class EmailChannel:
    name: ClassVar[str] = "email"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.EMAIL,)
    consent: ClassVar[str | None] = None
    quiet_hours: ClassVar[bool] = False
    suppressed_by: ClassVar[tuple[str, ...] | None] = ("email",)
    test_only: ClassVar[bool] = False
    # SendGrid takes up to 1,000 personalizations in one Mail Send request.
    batch_size: ClassVar[int] = 1000
    # The dispatcher issues an unsubscribe token per invitation and passes ``Outgoing.unsubscribe_url``.
    wants_unsubscribe_link: ClassVar[bool] = True
    a11_channel: ClassVar[str | None] = "email"
    label: ClassVar[str] = N_("Email")
    suppresses_by: ClassVar[ContactKind | None] = ContactKind.EMAIL
    reminds: ClassVar[bool] = True
    wording_key: ClassVar[str | None] = None  # the message links to the web page, which has its own wording
    # Personalizations a second per From address: SendGrid's own limit is far higher, and 100/s keeps a burst of
    # reminders from crowding the address's reputation (SURVEY_ENGINE_SEND_RATE_EMAIL sets another).
    default_send_rate: ClassVar[float | None] = 100.0

    def sender(self, settings: Any) -> str | None:
        """Messages leave from the From address (the pacing key)."""
        return settings.providers.get("SENDGRID_FROM_EMAIL") or None

    def __init__(self, settings: Any, timeout: float = REQUEST_TIMEOUT) -> None:
        self.config = SendGridConfig.from_providers(settings.providers)
        self.mailer = Mailer(self.config, timeout) if self.config.can_send else None
        self.events = EventVerifier(self.config.webhook_public_key)

    def not_configured(self) -> str | None:
        """Why every email would fail with these settings (the start-up says so), else None."""
        missing = [name for name, value in (("SENDGRID_API_KEY", self.config.api_key),
                                            ("SENDGRID_FROM_EMAIL", self.config.from_email)) if not value]  # fmt: skip
        return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set" if missing else None

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        if self.mailer is None:
            return [SendResult(item.invitation_id, Outcome.FAILED, detail=NOT_CONFIGURED) for item in batch]
        return self.mailer.send(batch)

    def blueprint(self) -> Blueprint | None:
        from channels.email.routes import bp

        return bp


__all__ = ["EmailChannel"]
