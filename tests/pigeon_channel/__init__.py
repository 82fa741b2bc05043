"""A channel package of the tests' own (carrier pigeons), installed by tests/test_channel_package.py through an
entry point and nothing else: it proves a channel is one package, with no edit to the engine.

It states its facts as every channel does and keeps what it was handed, so a test can see what reached it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from engine.channels import Outcome, Outgoing, SendResult
from engine.store.models.enums import ContactKind

LOFT = "loft-7"


class PigeonChannel:
    name: ClassVar[str] = "pigeon"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.EMAIL,)
    consent: ClassVar[str | None] = None
    quiet_hours: ClassVar[bool] = False
    suppressed_by: ClassVar[tuple[str, ...] | None] = ("pigeon",)
    test_only: ClassVar[bool] = False
    batch_size: ClassVar[int] = 10
    a11_channel: ClassVar[str | None] = "email"  # A-11 has no pigeon; it counts where written messages do
    label: ClassVar[str] = "Carrier pigeon"
    short_label: ClassVar[str] = "Pigeon"
    suppresses_by: ClassVar[ContactKind | None] = ContactKind.EMAIL
    reminds: ClassVar[bool] = False
    wording_key: ClassVar[str | None] = "pigeon"
    default_send_rate: ClassVar[float | None] = 50.0

    def __init__(self, settings: Any) -> None:
        self.handed: list[Outgoing] = []

    def sender(self, settings: Any) -> str | None:
        return LOFT

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        self.handed.extend(batch)
        return [
            SendResult(item.invitation_id, Outcome.SENT, provider_id=f"PG{item.invitation_id.hex}") for item in batch
        ]

    def blueprint(self) -> None:
        return None
