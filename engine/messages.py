"""Invitation wording: the flow's message templates filled in for one invitation.

The words come from the flow (``messages`` in ``flows/*.yaml``), never from Python; this module only picks the
template for the channel and fills in the placeholders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.channels import Outgoing


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def invitation_text(item: Outgoing, channel: str = "console") -> str:
    """The invitation message for ``channel`` (falling back to the flow's default wording)."""
    templates = item.flow.message("invitation")
    template = templates.get(channel) or templates["default"]
    values = _Placeholders(
        service=item.service.name,
        agency=item.service.agency,
        omb_control_number=item.flow.pra.omb_control_number,
        pra_expiration=item.flow.pra.expiration_date.isoformat(),
        link=item.survey_url or "",
        minutes=str(item.flow.raw.get("minutes", 2)),
    )
    return template.format_map(values).strip()
