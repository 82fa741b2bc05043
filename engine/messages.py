"""Invitation wording: the flow's message templates filled in for one invitation.

The words come from the flow (``messages`` in ``flows/*.yaml``), never from Python; this module only picks the
template for the channel and fills in the placeholders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.i18n import translate

if TYPE_CHECKING:
    from engine.channels import Outgoing


def invitation_text(item: Outgoing, channel: str = "console") -> str:
    """The invitation message for ``channel`` (falling back to the flow's default wording)."""
    templates = item.flow.message("invitation")
    template = str(templates.get(channel) or templates["default"]).strip()
    language = item.language
    values = dict(
        service=translate(language, item.service.name),
        agency=translate(language, item.service.agency),
        omb_control_number=item.flow.pra.omb_control_number,
        pra_expiration=item.flow.pra.expiration_date.isoformat(),
        link=item.survey_url or "",
        minutes=str(item.flow.raw.get("minutes", 2)),
    )
    return translate(language, template, **values).strip()
