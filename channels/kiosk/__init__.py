"""The ``kiosk`` channel (SPEC §4): a full-screen touch survey on an enrolled tablet by a field office's exit.

It sends nothing (``contact_kinds = ()``: the visitor is there). Its blueprint (:mod:`channels.kiosk.routes`)
serves the one-time enrollment link ``/kiosk/enroll/<code>``, the page ``/kiosk``, its service worker, assets and
flow JSON, and the device-authenticated sync ``POST /api/v1/kiosk/responses``. The device registry and the
exactly-once storing of queued sessions are the engine's (:mod:`engine.kiosk.devices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from flask import Blueprint

from engine.channels import Outcome, Outgoing, SendResult
from engine.common.i18n import N_
from engine.store.models.enums import ContactKind


class KioskChannel:
    name: ClassVar[str] = "kiosk"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = ()
    consent: ClassVar[str | None] = None
    quiet_hours: ClassVar[bool] = False
    suppressed_by: ClassVar[tuple[str, ...] | None] = ("kiosk",)
    test_only: ClassVar[bool] = False
    batch_size: ClassVar[int] = 1
    a11_channel: ClassVar[str | None] = "self_service_kiosk"
    label: ClassVar[str] = N_("Kiosk")
    suppresses_by: ClassVar[ContactKind | None] = None  # it reaches nobody at an address
    reminds: ClassVar[bool] = False
    wording_key: ClassVar[str | None] = "kiosk"
    default_send_rate: ClassVar[float | None] = None  # sends nothing

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        # Never chosen for an invitation (it takes no contact); answered only by visitors at the device.
        return [SendResult(i.invitation_id, Outcome.FAILED, detail="the kiosk channel sends nothing") for i in batch]

    def blueprint(self) -> Blueprint | None:
        from channels.kiosk.routes import bp

        return bp


__all__ = ["KioskChannel"]
