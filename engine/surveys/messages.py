"""What every surface says from a flow and its service: the flow's message templates filled in, the effective PRA
block (the service's own clearance, else the flow's: SPEC §2 rule 9), and how long the survey takes.

The words come from the flow (``messages`` in ``flows/*.yaml``) and the catalogs, never from Python; this module
picks the template for the channel and fills in the placeholders: ``{agency}``, ``{service}``,
``{omb_control_number}``, ``{pra_expiration}``, ``{link}``, ``{duration}`` (the burden minutes with the language's
plural form: "1 minute", "2 minutes", "2 minutos") and ``{minutes}`` (the bare number, for older flows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.common.i18n import N_, catalog, translate
from engine.surveys.flows import Flow, Pra

if TYPE_CHECKING:
    from engine.catalog.services import ServiceConfig
    from engine.channels import Outgoing

# Where a flow has no ``messages.use_of_answers`` (the sentence an agency may change: what the answers are used for).
USE_OF_ANSWERS = N_(
    "Your answers are used to improve this service. They do not affect any benefit or decision about you."
)


def pra_of(service: ServiceConfig, flow: Flow) -> Pra:
    """The PRA block that stands for ``service`` asked with ``flow``: its agency's own clearance, else the flow's."""
    return service.pra or flow.pra


def duration(language: str, minutes: int) -> str:
    """``minutes`` as the public hears it, with the language's plural form ("1 minute", "2 minutes")."""
    return catalog(language).ngettext("{count} minute", "{count} minutes", minutes).format(count=minutes)


def values(service: ServiceConfig, flow: Flow, language: str, link: str = "") -> dict[str, str]:
    """Every placeholder a flow message may use, for ``service`` in ``language``."""
    pra = pra_of(service, flow)
    return dict(
        service=translate(language, service.name),
        agency=translate(language, service.agency),
        omb_control_number=pra.omb_control_number,
        pra_expiration=pra.expiration_date.isoformat(),
        link=link,
        minutes=str(pra.burden_minutes),
        duration=duration(language, pra.burden_minutes),
    )


def template(flow: Flow, name: str, channel: str) -> str:
    """The English template of ``messages.<name>`` for ``channel``, else its default ("" when the flow has none)."""
    try:
        templates = flow.message(name)
    except KeyError:
        return ""
    return str(templates.get(channel) or templates.get("default") or "").strip()


def flow_message(
    flow: Flow, name: str, channel: str, language: str, service: ServiceConfig, link: str = "", fallback: str = ""
) -> str:
    """``messages.<name>`` of ``flow`` for ``channel``, translated and filled in (``fallback`` where it has none)."""
    english = template(flow, name, channel) or fallback
    return translate(language, english, **values(service, flow, language, link)).strip() if english else ""


def use_of_answers(flow: Flow, channel: str, language: str, service: ServiceConfig) -> str:
    """What the answers are used for: the flow's ``messages.use_of_answers``, else the engine's sentence."""
    return flow_message(flow, "use_of_answers", channel, language, service, fallback=USE_OF_ANSWERS)


def invitation_text(item: Outgoing, channel: str = "console") -> str:
    """The invitation message for ``channel`` (falling back to the flow's default wording)."""
    return flow_message(item.flow, "invitation", channel, item.language, item.service, item.survey_url or "")
