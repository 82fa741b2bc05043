"""The ``ivr`` channel: outbound survey calls and the post-call IVR survey, over Twilio Programmable Voice (SPEC §4).

* :class:`IvrChannel` places an outbound call per invitation (Calls create through the official SDK, answering
  machine detection on); the call then fetches its TwiML from ``/channels/ivr/voice?invitation=<id>``.
* :mod:`channels.ivr.webhooks` answers Twilio: the entry of a call (post-call hand-offs and outbound calls), the
  ``<Gather>`` callbacks of each prompt, and call status callbacks.
* :mod:`channels.ivr.handoff` finds who is on the line; :mod:`channels.ivr.calls` runs the survey turn by turn;
  :mod:`channels.ivr.keys` reads keys and speech as answers; :mod:`channels.ivr.twiml` writes TwiML;
  ``ivr.yaml`` holds the voices, timeouts and spoken words (:mod:`channels.ivr.data`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from flask import Blueprint

from channels.twilio_api import TwilioSettings, classify, make_client, settle_by_lookup
from engine.channels import Outcome, Outgoing, SendResult, Unsettled
from engine.common.i18n import N_
from engine.store.models.enums import ContactKind

CALL_RING_SECONDS = 30


class IvrChannel:
    name: ClassVar[str] = "ivr"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.PHONE,)
    consent: ClassVar[str | None] = "voice"
    quiet_hours: ClassVar[bool] = True
    # An SMS opt-out also stops outbound calls to that phone (SPEC §2 rule 3).
    suppressed_by: ClassVar[tuple[str, ...] | None] = ("ivr", "sms")
    test_only: ClassVar[bool] = False
    batch_size: ClassVar[int] = 20
    a11_channel: ClassVar[str | None] = "automated_phone"
    label: ClassVar[str] = N_("Automated phone (IVR)")
    short_label: ClassVar[str] = "IVR"
    suppresses_by: ClassVar[ContactKind | None] = ContactKind.PHONE
    reminds: ClassVar[bool] = False  # a call is not repeated
    wording_key: ClassVar[str | None] = "ivr"
    # Calls a second per number: Twilio places 1 call a second per account by default.
    default_send_rate: ClassVar[float | None] = 1.0

    def sender(self, settings: Any) -> str | None:
        """Calls leave from the number (the pacing key)."""
        return settings.providers.get("TWILIO_FROM_NUMBER") or None

    def __init__(self, settings: Any) -> None:
        self._config = TwilioSettings.from_providers(settings.providers)
        self._public_url = str(settings.public_url).rstrip("/")
        self._client: Any = None

    def not_configured(self) -> str | None:
        """Why every outbound call would fail with these settings (the start-up says so), else None."""
        if self._config is None:
            return "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set"
        if not self._config.from_number:
            return "TWILIO_FROM_NUMBER is not set (calls are placed from it)"
        return None

    def _twilio(self) -> Any:
        if self._client is None:
            assert self._config is not None
            self._client = make_client(self._config)
        return self._client

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        """Place one call per invitation; each outcome classified (SPEC §2 rule 10)."""
        if self._config is None:
            return [SendResult(i.invitation_id, Outcome.FAILED, detail="twilio not configured") for i in batch]
        if not self._config.from_number:
            return [SendResult(i.invitation_id, Outcome.FAILED, detail="TWILIO_FROM_NUMBER is needed to place calls")
                    for i in batch]  # fmt: skip
        results = []
        for item in batch:
            try:
                call = self._twilio().calls.create(
                    to=item.address,
                    from_=self._config.from_number,
                    url=f"{self._public_url}/channels/ivr/voice?invitation={item.invitation_id}",
                    method="POST",
                    status_callback=f"{self._public_url}/channels/ivr/status?invitation={item.invitation_id}",
                    status_callback_method="POST",
                    machine_detection="Enable",
                    timeout=CALL_RING_SECONDS,
                )
            except Exception as exc:
                c = classify(exc)
                results.append(SendResult(item.invitation_id, c.outcome, detail=c.detail, suppress=c.suppress,
                                          suppress_channels=c.suppress_channels,
                                          retry_after_seconds=c.retry_after_seconds))  # fmt: skip
                continue
            results.append(SendResult(item.invitation_id, Outcome.SENT, provider_id=call.sid, detail="call placed"))
        return results

    def settle(self, items: Sequence[Unsettled]) -> dict[uuid.UUID, str]:
        """The calls Twilio did place to each number since the claim (SPEC §2 rule 10); one each at most."""
        if self._config is None:
            return {}
        return settle_by_lookup(items, lambda item: self._twilio().calls.list(
            to=item.address, start_time_after=item.since, limit=20))  # fmt: skip

    def blueprint(self) -> Blueprint | None:
        from channels.ivr.webhooks import bp

        return bp
