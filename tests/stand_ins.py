"""Stand-ins the tests register through the channel registry (configuration, never patching our modules)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import ClassVar

from engine.channels import Outcome, Outgoing, SendResult
from engine.store.models import ContactKind, SuppressionReason


class ScriptedChannel:
    """A texting-like channel (phone, SMS consent, quiet hours) whose provider answers are scripted by the test."""

    name: ClassVar[str] = "quiet-stub"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.PHONE,)
    consent: ClassVar[str | None] = "sms"
    quiet_hours: ClassVar[bool] = True
    suppressed_by: ClassVar[tuple[str, ...] | None] = ("sms",)
    test_only: ClassVar[bool] = False
    batch_size: ClassVar[int] = 50
    a11_channel: ClassVar[str | None] = None
    label: ClassVar[str] = "Scripted stand-in"
    suppresses_by: ClassVar[ContactKind | None] = ContactKind.PHONE
    reminds: ClassVar[bool] = False
    wording_key: ClassVar[str | None] = None

    def __init__(self, settings: object = None) -> None:
        self.script: deque[Outcome] = deque()
        self.handed: list[Outgoing] = []
        self.raise_next = False

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        if self.raise_next:
            self.raise_next = False
            self.handed.extend(batch)
            raise ConnectionResetError("provider connection reset after the request went out")
        results = []
        for item in batch:
            self.handed.append(item)
            outcome = self.script.popleft() if self.script else Outcome.SENT
            suppress = SuppressionReason.CARRIER_BLOCK if outcome is Outcome.FAILED else None
            results.append(SendResult(item.invitation_id, outcome, provider_id=f"SM{item.invitation_id.hex[:30]}",
                                      detail=f"scripted {outcome.value}", suppress=suppress))  # fmt: skip
        return results

    def blueprint(self) -> None:
        return None
