"""What the kiosk page shows, as JSON: the flow version's questions and every word in each of the device's languages.

The page renders itself from this (it must work offline from its cache), so the words are translated here from
the gettext catalogs: the flow's kiosk wording and labels, the effective PRA block (the service's own clearance,
else the flow's) with how long the survey takes, and the page's own strings below.
``{number}``/``{total}``/``{count}`` placeholders are filled by the page.
"""

from __future__ import annotations

from typing import Any

from babel.dates import format_date

from engine.catalog.services import ServiceConfig
from engine.common.i18n import N_, catalog, translate
from engine.store.models import KioskDevice
from engine.surveys.flows import Flow, Question
from engine.surveys.messages import duration, pra_of

CHANNEL = "kiosk"

UI = {
    "start": N_("Start"),
    "progress": N_("Question {number} of {total}"),
    "skip": N_("Skip"),
    "next": N_("Next"),
    "finish": N_("Finish"),
    "choose_all": N_("Tap all that apply, then tap Next."),
    "text_hint": N_("Type your answer, then tap Finish. Please do not include your name, phone number or email."),
    "thanks_title": N_("Thank you"),
    "restart": N_("Done"),
    "restart_hint": N_("This screen returns to the start in a few seconds."),
    "language": N_("Language"),
    "queued": N_("Answers saved on this device, waiting to be sent: {count}"),
    "unavailable": N_("This kiosk cannot show the survey right now. Please tell a member of staff."),
    "revoked": N_("This kiosk is no longer enrolled. Please tell a member of staff."),
    "pra_title": N_("Paperwork Reduction Act statement"),
}
# How long, from the effective PRA block's burden minutes (SPEC §2 rule 9).
START_HINT = N_("It takes about {duration}. Taking part is voluntary, and your answers are anonymous.")


def kind_of(question: Question) -> str:
    if question.is_rating:
        return "rating"
    return question.type if question.type in ("choose_all", "choose_one") else "text"


def _question(flow: Flow, question: Question) -> dict[str, Any]:
    out: dict[str, Any] = {"id": question.id, "kind": kind_of(question), "required": question.required}
    if question.is_rating:
        out["values"] = list(question.points)
    else:
        out["values"] = [c.id for c in question.choices]
    if question.show_if:
        parent = flow.question(question.show_if["question"])
        out["show_if"] = {
            "question": parent.id,
            "rating": question.show_if.get("rating"),
            "positive_values": [p for p in parent.points if flow.is_positive(parent, p)],
        }
    return out


def _message(flow: Flow, name: str) -> str:
    try:
        wording = flow.message(name)
    except KeyError:
        return ""
    return str(wording.get(CHANNEL) or wording.get("default") or "").strip()


def _words(flow: Flow, service: ServiceConfig, language: str) -> dict[str, Any]:
    service_name = translate(language, service.name)
    labels: dict[str, dict[str, str]] = {}
    texts: dict[str, str] = {}
    for q in flow.questions:
        if not q.asked_on(CHANNEL):
            continue
        texts[q.id] = translate(language, q.text_for(CHANNEL), service=service_name)
        if q.is_rating:
            scale = flow.scale_labels(q)
            labels[q.id] = {str(p): translate(language, scale.get(p, str(p))) for p in q.points}
        else:
            labels[q.id] = {c.id: translate(language, c.label) for c in q.choices}
    pra = pra_of(service, flow)
    pra_line = catalog(language).gettext("OMB control number: %(number)s. Expires %(date)s.") % {
        "number": pra.omb_control_number,
        "date": format_date(pra.expiration_date, format="long", locale=language),
    }
    ui = {key: translate(language, text) for key, text in UI.items()}
    ui["start_hint"] = translate(language, START_HINT, duration=duration(language, pra.burden_minutes))
    return {
        "ui": ui,
        "title": translate(language, flow.title),
        "agency": translate(language, service.agency),
        "service": service_name,
        "intro": translate(language, _message(flow, "intro"), service=service_name),
        "thanks": translate(language, _message(flow, "thanks"), service=service_name),
        "pra": {"line": pra_line, "burden": translate(language, pra.burden_statement)},
        "questions": texts,
        "labels": labels,
    }


def kiosk_document(
    flow: Flow, service: ServiceConfig, device: KioskDevice, language_names: dict[str, str]
) -> dict[str, Any]:
    """The JSON the page runs on: the device, the service's idle reset, the flow version, and every word."""
    languages = [lang for lang in device.languages if lang in flow.languages] or [flow.default_language]
    return {
        "device": {"id": str(device.id), "name": device.name},
        "idle_reset_seconds": service.kiosk_idle_reset.total_seconds(),
        "languages": [{"code": lang, "name": language_names.get(lang, lang)} for lang in languages],
        "flow": {
            "id": flow.id,
            "version": flow.version,
            "questions": [_question(flow, q) for q in flow.questions if q.asked_on(CHANNEL)],
        },
        "text": {lang: _words(flow, service, lang) for lang in languages},
    }
