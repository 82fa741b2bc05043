"""The invitation email: subject, HTML and plain text rendered by the engine from its own templates.

One rendering serves every recipient of a Mail Send request (same service, flow version and language); what
differs per recipient — the survey link, the rating links of the first question, the unsubscribe link — stands in
the content as SendGrid substitution tags (``-survey_link-``, ``-rating_link_4-``, ``-unsubscribe_link-``) and is
filled per personalization by SendGrid. :func:`personalize` does the same filling locally (previews, tests).

The words come from the flow (its title, its ``invitation`` and ``use_of_answers`` messages, the first rating
question and its scale), the effective PRA block (the service's own clearance, else the flow's), and from this
module's own strings, all through :func:`engine.common.i18n.translate` in the invitation's language. The
templates under ``templates/email_message/`` only lay them out: a table layout with ``role="presentation"``, real
text and no images, colours with AA contrast in light and dark mode (``color-scheme``), and a plain-text part
with the same content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from engine.catalog.services import ServiceConfig
from engine.common.i18n import N_, best_language, translate
from engine.surveys.flows import Flow, Question
from engine.surveys.messages import flow_message, pra_of, use_of_answers

TEMPLATES = Path(__file__).resolve().parent / "templates"
SURVEY_TAG = "-survey_link-"
UNSUBSCRIBE_TAG = "-unsubscribe_link-"
# The channel the flow's wording is chosen for (``wording.email`` where a flow has one, else the web text).
WORDING_CHANNEL = "email"

# The email's own strings (engine strings: extracted from this module, translated in locales/).
SUBJECT = N_("How was your experience with {service}?")
REMINDER_SUBJECT = N_("Reminder: how was your experience with {service}?")
REMINDER_NOTE = N_("A reminder: the survey is still open, and your answers help.")
RATING_HINT = N_("Choose an answer to open the survey with it selected. Nothing is recorded until you submit.")
TAKE_SURVEY = N_("Take the survey")
NO_TRACKING = N_("We do not track whether you open this email or which links you select.")
WHY_RECEIVED = N_("You received this email because you recently used {service}.")
UNSUBSCRIBE = N_("Unsubscribe from survey emails")
# Strings the web survey pages already use (same msgids, same translations).
PRA_TITLE = "Paperwork Reduction Act statement"
PRA_LINE = "OMB control number: %(number)s. Expires %(date)s."
QUESTIONS_ABOUT = "Questions about %(service)s?"
CONTACT_US = "Contact us"


def rating_tag(value: int) -> str:
    return f"-rating_link_{value}-"


@dataclass(frozen=True)
class RatingLink:
    value: int
    text: str
    tag: str


@dataclass(frozen=True)
class EmbeddedQuestion:
    id: str
    text: str
    hint: str
    ratings: tuple[RatingLink, ...]


@dataclass(frozen=True)
class Rendered:
    """One message for a group of recipients, with substitution tags where each recipient's links go."""

    language: str
    subject: str
    html: str
    text: str
    question_id: str | None
    rating_values: tuple[int, ...]


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def message_language(flow: Flow, language: str | None) -> str:
    """The language the message is written in: the invitation's, where the flow offers it, else the flow's first."""
    return best_language(flow.languages, language, flow.default_language)


def first_rating_question(flow: Flow) -> Question | None:
    """The question embedded in the email: the flow's first rating question asked on the web, unconditional."""
    for question in flow.questions:
        if (
            question.is_rating
            and question.asked_on("web")
            and question.asked_on(WORDING_CHANNEL)
            and not question.show_if
        ):
            return question
    return None


def _embedded(flow: Flow, question: Question, language: str, service_name: str) -> EmbeddedQuestion:
    labels = flow.scale_labels(question)
    numbered = len(question.points) > 2  # "4 – Agree"; a thumbs or yes/no question shows its label alone
    ratings = []
    for value in question.points:
        label = translate(language, labels.get(value, str(value)))
        ratings.append(RatingLink(value, f"{value} – {label}" if numbered else label, rating_tag(value)))
    return EmbeddedQuestion(
        id=question.id,
        text=translate(language, question.text_for(WORDING_CHANNEL), service=service_name),
        hint=translate(language, RATING_HINT),
        ratings=tuple(ratings),
    )


def _invitation_text(service: ServiceConfig, flow: Flow, language: str) -> str:
    text = flow_message(flow, "invitation", WORDING_CHANNEL, language, service)  # the links are the buttons below
    return " ".join(text.split())


def _long_date(day: date, language: str) -> str:
    try:
        return str(format_date(day, format="long", locale=language))
    except Exception:  # an unknown locale: the ISO date reads everywhere
        return day.isoformat()


def render(service: ServiceConfig, flow: Flow, language: str, *, unsubscribe: bool, reminder: bool = False) -> Rendered:
    """The subject, HTML and text of the invitation (or its reminder) in ``language``, tags in place of links."""
    language = message_language(flow, language)
    service_name = translate(language, service.name)
    agency = translate(language, service.agency)
    question = first_rating_question(flow)
    embedded = _embedded(flow, question, language, service_name) if question is not None else None
    support = service.support or {}
    pra = pra_of(service, flow)
    subject = translate(language, REMINDER_SUBJECT if reminder else SUBJECT, service=service_name)
    context: dict[str, object] = {
        "language": language,
        "subject": subject,
        "agency": agency,
        "service_name": service_name,
        "title": translate(language, flow.title),
        "invitation": _invitation_text(service, flow, language),
        "reminder_note": translate(language, REMINDER_NOTE) if reminder else "",
        "question": embedded,
        "take_survey": translate(language, TAKE_SURVEY),
        "survey_tag": SURVEY_TAG,
        "pra_title": translate(language, PRA_TITLE),
        "pra_line": translate(language, PRA_LINE)
        % {"number": pra.omb_control_number, "date": _long_date(pra.expiration_date, language)},
        "pra_burden": translate(language, pra.burden_statement),
        "privacy": use_of_answers(flow, WORDING_CHANNEL, language, service),
        "no_tracking": translate(language, NO_TRACKING),
        "questions_about": translate(language, QUESTIONS_ABOUT) % {"service": service_name},
        "contact_us": translate(language, CONTACT_US),
        "support_url": support.get("url") or "",
        "support_phone": support.get("phone") or "",
        "why_received": translate(language, WHY_RECEIVED, service=service_name),
        "unsubscribe": unsubscribe,
        "unsubscribe_text": translate(language, UNSUBSCRIBE),
        "unsubscribe_tag": UNSUBSCRIBE_TAG,
    }
    env = _environment()
    return Rendered(
        language=language,
        subject=subject,
        html=env.get_template("email_message/body.html").render(context),
        text=env.get_template("email_message/body.txt").render(context),
        question_id=question.id if question is not None else None,
        rating_values=question.points if question is not None else (),
    )


def substitutions(rendered: Rendered, survey_url: str, unsubscribe_url: str | None) -> dict[str, str]:
    """One recipient's links, by substitution tag."""
    values = {SURVEY_TAG: survey_url}
    if rendered.question_id is not None:
        for value in rendered.rating_values:
            values[rating_tag(value)] = f"{survey_url}?{urlencode({'q': rendered.question_id, 'a': value})}"
    if unsubscribe_url:
        values[UNSUBSCRIBE_TAG] = unsubscribe_url
    return values


def personalize(content: str, values: dict[str, str]) -> str:
    """What SendGrid does with a personalization's substitutions: each tag replaced by its value."""
    for tag in sorted(values, key=len, reverse=True):
        content = content.replace(tag, values[tag])
    return content
