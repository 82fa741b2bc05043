"""The ``website`` channel (SPEC §4): surveys reached from the agency's own site (A-11 280.7).

Two ways in, both counted under ``website``:

* **The button.** ``GET/POST /f/<service>`` is an anonymous single-screen survey for a service that lists
  ``website`` in its channels; ``GET /f/<service>/button.js`` puts a persistent "Feedback" button on the pages of
  the service's ``website: {origins: [...]}`` that opens it in a dialog (:mod:`channels.website.routes`).
* **The end-of-engagement prompt.** A transaction reported with ``"touchpoint": "web"`` and ``"prompt": true``
  gets, when scheduled, an invitation on this channel that is handed over at once as the result's
  ``survey_url`` (intake does that, :mod:`engine.intake.submit`); dispatch never sends it.

It sends nothing: ``contact_kinds = ()`` keeps it out of every channel choice, and ``send`` refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from flask import Blueprint

from engine.channels import Outcome, Outgoing, SendResult
from engine.common.i18n import N_
from engine.store.models.enums import ContactKind


class WebsiteChannel:
    name: ClassVar[str] = "website"
    a11_channel: ClassVar[str] = "website"
    label: ClassVar[str] = N_("Website")
    short_label: ClassVar[str] = N_("Website")
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = ()
    consent: ClassVar[str | None] = None
    quiet_hours: ClassVar[bool] = False
    suppressed_by: ClassVar[tuple[str, ...] | None] = None
    suppresses_by: ClassVar[ContactKind | None] = None
    reminds: ClassVar[bool] = False
    wording_key: ClassVar[str | None] = None
    test_only: ClassVar[bool] = False
    batch_size: ClassVar[int] = 1

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        # Nothing to send: a prompt's link is handed to the agency's application in the intake result.
        return [SendResult(i.invitation_id, Outcome.FAILED, detail="the website channel sends nothing") for i in batch]

    def blueprint(self) -> Blueprint | None:
        from channels.website.routes import bp

        return bp


__all__ = ["WebsiteChannel"]
