"""What the SMS channel says: the flow's wording for texts, and the channel's own engine strings.

Survey wording (the invitation, each question, the thanks) comes from the flow and its translations; the few
sentences that belong to the channel itself (HELP, the opt-out confirmation, "this survey has closed", the
re-prompt) are engine strings marked with ``N_`` and translated where they are sent, so a translator adds a
language to the catalogs alone.
"""

from __future__ import annotations

from engine.catalog.services import ServiceConfig
from engine.channels import Outgoing
from engine.common.i18n import N_, available_languages, best_language, translate
from engine.surveys.flows import Flow, Question
from engine.surveys.messages import duration, flow_message, invitation_text, pra_of

CHANNEL = "sms"
DEFAULT_LANGUAGE = "en"

NOT_UNDERSTOOD = N_("Sorry, I didn't understand.")
CLOSED = N_("Sorry, this survey has closed. Thank you for your time.")
USE_THE_LINK = N_("Please answer the survey at the link in our message. Reply HELP for help or STOP to opt out.")
UNKNOWN_SENDER = N_(
    "This number only sends customer feedback surveys and cannot answer other messages. Reply STOP to opt out."
)
OPTED_OUT = N_(
    "{agency}: you are unsubscribed and will get no more survey texts or calls. Reply START to subscribe again."
)
OPTED_OUT_UNKNOWN = N_(
    "You are unsubscribed and will get no more survey texts or calls. Reply START to subscribe again."
)
RESUBSCRIBED = N_("You can get survey texts again. Reply HELP for help or STOP to opt out.")
HELP_WHO = N_("{agency}: a short customer feedback survey about your {service}.")
HELP_CONTACT_BOTH = N_("For help, call {phone} or visit {url}.")
HELP_CONTACT_PHONE = N_("For help, call {phone}.")
HELP_CONTACT_URL = N_("For help, visit {url}.")
HELP_PRA = N_(
    "OMB control number {omb_control_number}, expires {expiration_date}. It takes about {duration}; "
    "taking part is voluntary. You need not respond unless a valid OMB control number is shown."
)
HELP_STOP = N_("Reply STOP to opt out.")


def spoken(language: str) -> str:
    """``language`` if the engine has its catalog, else English (a keyword's language may have none)."""
    primary = language.split("-")[0].lower()
    return primary if primary == "en" or primary in available_languages() else "en"


def flow_language(flow: Flow, *wanted: str | None) -> str:
    return best_language(flow.languages, *wanted, flow.default_language)


def service_name(service: ServiceConfig, language: str) -> str:
    return translate(language, service.name)


def question_text(question: Question, language: str, service: ServiceConfig) -> str:
    """A question's SMS wording, translated, ``{service}`` filled in."""
    return translate(language, question.text_for(CHANNEL), service=service_name(service, language))


def first_question(flow: Flow) -> Question | None:
    """The question the first message carries: the first one asked on SMS before any answer."""
    return next((q for q in flow.questions if flow.applies(q, CHANNEL, {})), None)


def invitation_body(item: Outgoing) -> str:
    """The first text of an invitation.

    Both modes open with the flow's SMS invitation (who is asking, why, that it is voluntary, how long from the
    effective PRA block, the OMB control number, how to opt out). Conversational mode: the first question follows.
    Link mode: the web survey link follows (or the flow's ``sms_link`` wording, which places ``{link}`` itself).
    """
    templates = item.flow.message("invitation")
    if item.service.sms_mode == "link":
        if templates.get("sms_link"):
            return invitation_text(item, "sms_link")
        return f"{invitation_text(item, CHANNEL)} {item.survey_url}"
    text = invitation_text(item, CHANNEL)
    question = first_question(item.flow)
    if question is None:
        return text
    return f"{text}\n\n{question_text(question, flow_language(item.flow, item.language), item.service)}"


def message_of(flow: Flow, name: str, language: str, service: ServiceConfig) -> str:
    return flow_message(flow, name, CHANNEL, language, service)


def thanks(flow: Flow, service: ServiceConfig, language: str) -> str:
    return message_of(flow, "thanks", language, service)


def reprompt(question: Question, language: str, service: ServiceConfig) -> str:
    return f"{translate(language, NOT_UNDERSTOOD)} {question_text(question, language, service)}"


def closed(language: str) -> str:
    return translate(language, CLOSED)


def use_the_link(language: str) -> str:
    return translate(language, USE_THE_LINK)


def unknown_sender(language: str) -> str:
    return translate(language, UNKNOWN_SENDER)


def resubscribed(language: str) -> str:
    return translate(language, RESUBSCRIBED)


def opted_out(service: ServiceConfig | None, language: str) -> str:
    if service is None:
        return translate(language, OPTED_OUT_UNKNOWN)
    return translate(language, OPTED_OUT, agency=translate(language, service.agency))


def help_text(service: ServiceConfig | None, flow: Flow | None, language: str) -> str:
    """HELP: who is asking, the service's support contact, and the PRA information (SPEC §2 rule 9, §4)."""
    if service is None or flow is None:
        return translate(language, UNKNOWN_SENDER)
    parts = [
        translate(language, HELP_WHO, agency=translate(language, service.agency),
                  service=service_name(service, language)),
    ]  # fmt: skip
    phone, url = service.support.get("phone"), service.support.get("url")
    if phone and url:
        parts.append(translate(language, HELP_CONTACT_BOTH, phone=str(phone), url=str(url)))
    elif phone:
        parts.append(translate(language, HELP_CONTACT_PHONE, phone=str(phone)))
    elif url:
        parts.append(translate(language, HELP_CONTACT_URL, url=str(url)))
    pra = pra_of(service, flow)
    parts.append(
        translate(
            language,
            HELP_PRA,
            omb_control_number=pra.omb_control_number,
            expiration_date=pra.expiration_date.isoformat(),
            duration=duration(language, pra.burden_minutes),
        )
    )
    parts.append(translate(language, HELP_STOP))
    return " ".join(parts)
