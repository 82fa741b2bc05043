"""The ``console`` channel: the embedded default for development and demos (SPEC §4).

It prints the masked recipient and the exact text it would send, marks the invitation delivered, and its
invitations are test data, never counted in reports. No provider account is needed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, ClassVar, TextIO

from flask import Blueprint

from engine.channels import Outcome, Outgoing, SendResult
from engine.common.crypto import mask_email, mask_phone
from engine.common.i18n import N_
from engine.store.models.enums import ContactKind
from engine.surveys.messages import invitation_text


class ConsoleChannel:
    name: ClassVar[str] = "console"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.EMAIL, ContactKind.PHONE)
    consent: ClassVar[str | None] = None
    quiet_hours: ClassVar[bool] = False
    suppressed_by: ClassVar[tuple[str, ...] | None] = None
    test_only: ClassVar[bool] = True
    batch_size: ClassVar[int] = 100
    a11_channel: ClassVar[str | None] = None  # test data: in no A-11 row
    label: ClassVar[str] = N_("Console (test channel)")
    short_label: ClassVar[str] = N_("Console")
    suppresses_by: ClassVar[ContactKind | None] = None
    reminds: ClassVar[bool] = False
    wording_key: ClassVar[str | None] = None
    default_send_rate: ClassVar[float | None] = None  # never paced

    def __init__(self, settings: Any, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        stream = self._stream or sys.stdout
        results = []
        for item in batch:
            masked = mask_email(item.address) if item.contact_kind is ContactKind.EMAIL else mask_phone(item.address)
            text = invitation_text(item)
            stream.write(f"[console] to {masked} ({item.service.slug}, invitation {item.invitation_id}):\n{text}\n\n")
            stream.flush()  # each hand-over is on the console before the engine records it
            results.append(
                SendResult(item.invitation_id, Outcome.DELIVERED, provider_id=f"console-{item.invitation_id}")
            )
        return results

    def blueprint(self) -> Blueprint | None:
        return None
