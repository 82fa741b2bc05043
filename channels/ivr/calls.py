"""One survey call, turn by turn: the language menu, the opening and PRA notice, the questions, the thank-you.

The opening names the agency and the service, says why, that the survey is voluntary and how long it takes (the
effective PRA block's burden minutes), and reads the OMB control number (9: the full statement). An outbound call
also offers the stop key (0) at every prompt: pressed, it records an ``ivr`` opt-out of the number at once, ends
the survey, says goodbye and hangs up. 0 is never an answer: ratings use 1-5 and choices 1-9.

Where the call stands lives in the response's ``state`` beside the conversation engine's own keys
(:mod:`engine.surveys.conversations`): ``ivr_phase`` (``language`` → ``notice`` → ``questions`` → ``done``) and ``ivr_step``,
which numbers the prompts of the call. Each prompt's ``<Gather>`` posts back with its step, so a request is applied
once by (CallSid, step) and a retried one gets the first answer (the webhook keeps the receipts).

The words are the flow's (question wording, intro, thanks, burden statement: translated by the catalogs) and the
engine strings marked below with ``N_``; nothing spoken is written in Python otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from channels.ivr import keys, twiml
from channels.ivr.data import ivr_data
from engine.catalog.services import ServiceConfig
from engine.common.i18n import N_, translate
from engine.common.limits import whole_number
from engine.delivery.suppressions import suppress_hash
from engine.runtime import Runtime
from engine.store.models import Contact, ContactKind, Response, SuppressionReason
from engine.surveys.conversations import Turn, ask, no_input, take
from engine.surveys.flows import Question
from engine.surveys.messages import duration, flow_message, pra_of
from engine.surveys.sessions import Given, SurveySessions

CHANNEL = "ivr"
LANGUAGE, NOTICE, QUESTIONS, DONE = "language", "notice", "questions", "done"
FULL_STATEMENT_KEY = keys.FULL_STATEMENT_KEY
STOP_CALLS_KEY = keys.STOP_CALLS_KEY

# Engine strings (translated by the catalogs in locales/).
# The language menu reads each offered language's own line in that language: a catalog translates this msgid as
# the line of its own language ("Para español, oprima {key}."), never as a translation of "English".
LANGUAGE_OPTION = N_("For English, press {key}.")
# Every call opens by naming the agency and the service, why, that it is voluntary and how long (SPEC §4 ivr).
OPENING_OUTBOUND = N_("Hello, this is {agency}, calling about your recent {service}.")
OPENING_POST_CALL = N_("{agency} would like your feedback on your recent {service}.")
WHY_AND_HOW_LONG = N_("Your answers help us improve this service. The survey is voluntary and takes about {duration}.")
PRA_NOTICE = N_("This survey is approved by OMB under control number {omb}. Press 9 to hear the full statement.")
# Outbound calls only: the interactive opt-out, offered at every prompt of the call.
STOP_OFFER = N_("To stop survey calls to this number, press 0 at any time.")
STOPPED = N_("You will get no more survey calls at this number. Goodbye.")
NOT_UNDERSTOOD = N_("Sorry, I didn't get that.")
THANKS_FOR_CALLING = N_("Thank you for calling. Goodbye.")
UNAVAILABLE = N_("Sorry, this survey is not available. Goodbye.")
SOMETHING_WRONG = N_("Sorry, something went wrong on our side. Goodbye.")


class ServiceGone(LookupError):
    """The call's service is no longer in the configuration (taken out of services.yaml): the call ends with the
    polite 'not available' goodbye (the webhook rolls back and logs a warning, no traceback)."""


def configured_service(rt: Runtime, service_id: int) -> ServiceConfig | None:
    """The configured service of ``service_id``, or None once it left the configuration."""
    try:
        return rt.catalog.services.get(SurveySessions(rt).service_slug(service_id))
    except KeyError:  # a service the database does not know either
        return None


def goodbye(message: str, language: str) -> str:
    """An engine message in ``language``, then hang up."""
    return twiml.farewell([translate(language, message)], language)


class Call:
    """The survey call of one response (a post-call session or an outbound invitation's)."""

    def __init__(self, rt: Runtime, session: Session, response: Response, now: datetime) -> None:
        self.rt = rt
        self.session = session
        self.response = response
        self.now = now
        self.sessions = SurveySessions(rt)
        service = configured_service(rt, response.service_id)
        if service is None:
            raise ServiceGone(f"response {response.id}: its service is no longer configured")
        self.service = service
        self.flow = self.sessions.flow_of(response)

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        return dict(self.response.state or {})

    def _save(self, **changes: Any) -> None:
        self.response.state = {**self.state, **changes}  # a new dict, so the JSON column is seen as changed

    @property
    def step(self) -> int:
        return int(self.state.get("ivr_step", 0))

    @property
    def phase(self) -> str:
        return str(self.state.get("ivr_phase", ""))

    @property
    def language(self) -> str:
        return self.response.language

    def _next(self, phase: str) -> None:
        self._save(ivr_step=self.step + 1, ivr_phase=phase)

    def url(self, endpoint: str) -> str:
        query = urlencode({"response": str(self.response.id), "step": str(self.step)})
        return f"{self.rt.settings.public_url}/channels/ivr/{endpoint}?{query}"

    # -- what is said -----------------------------------------------------------------------------------------

    @property
    def outbound(self) -> bool:
        """A call the channel placed for an invitation (a post-call survey has none)."""
        return self.response.invitation_id is not None

    def _flow_message(self, name: str) -> str:
        return flow_message(self.flow, name, CHANNEL, self.language, self.service)

    def _opening(self, language: str) -> str:
        names = {"agency": translate(language, self.service.agency), "service": translate(language, self.service.name)}
        return translate(language, OPENING_OUTBOUND if self.outbound else OPENING_POST_CALL, **names)

    def _language_menu(self) -> str:
        """The call opens by naming the agency and the service (in the service's language), then each offered
        language's own line."""
        first = self.service.default_language if self.service.default_language in self.flow.languages else None
        opening_language = first or self.flow.default_language
        options = [(opening_language, self._opening(opening_language))]
        options += [
            (language, translate(language, LANGUAGE_OPTION, key=str(key)))
            for key, language in enumerate(self.flow.languages, start=1)
        ]
        return twiml.menu(options, self.url("language"), ivr_data().timeout("language_menu"))

    def _notice(self) -> str:
        """Who calls and about what, why, voluntary, how long, the OMB control number (the full statement on 9),
        on an outbound call the stop key; then the flow's intro."""
        language, pra = self.language, pra_of(self.service, self.flow)
        lines = [
            self._opening(language),
            translate(language, WHY_AND_HOW_LONG, duration=duration(language, pra.burden_minutes)),
            translate(language, PRA_NOTICE, omb=pra.omb_control_number),
        ]
        if self.outbound:
            lines.append(translate(language, STOP_OFFER))
        lines.append(self._flow_message("intro"))
        return twiml.prompt(lines, language, self.url("notice"), timeout=ivr_data().timeout("notice"))

    def wants_to_stop(self, digits: str) -> bool:
        return self.outbound and digits.replace(keys.FINISH_KEY, "") == STOP_CALLS_KEY

    def stop_calls(self) -> str:
        """The stop key: an ``ivr`` opt-out of this number, recorded at once; the survey ends; goodbye."""
        contact = self.session.get(Contact, self.response.transaction_id) if self.response.transaction_id else None
        if contact is not None and contact.phone_hash:
            suppress_hash(self.session, contact.phone_hash, ContactKind.PHONE, [CHANNEL], SuppressionReason.OPTED_OUT,
                          CHANNEL, f"pressed {STOP_CALLS_KEY} on a survey call", self.now)  # fmt: skip
        self._save(ivr_phase=DONE, pending=None, ended="opted_out")
        return twiml.farewell([translate(self.language, STOPPED)], self.language)

    def _hints(self, question: Question, labels: Sequence[tuple[str, str]]) -> list[str]:
        words = ivr_data().words_for(self.language)
        hints = [label for _, label in labels]
        keyed = keys.keypad(self.flow, question) if question.is_rating else keys.choice_keys(question)
        spoken = [word for word, n in words.numbers.items() if str(n) in keyed]
        if question.type in ("thumbs", "yes_no"):
            spoken += [*words.yes, *words.no]
        return hints + [words.hint(word) for word in spoken]

    def _question(self, question: Question, before: Sequence[str] = ()) -> str:
        wording = self.sessions.wording(self.flow, question, CHANNEL, self.language, self.service.name)
        labels = self.sessions.labels(self.flow, question, self.language)
        multiple = question.type == "choose_all"
        return twiml.prompt(
            [*before, wording],
            self.language,
            self.url("gather"),
            timeout=ivr_data().timeout("question"),
            speech=True,
            hints=self._hints(question, labels),
            num_digits=len(keys.choice_keys(question)) if multiple else 1,
            finish_on_key=keys.FINISH_KEY if multiple else "",
        )

    def _thanks(self) -> str:
        return twiml.farewell([self._flow_message("thanks")], self.language)

    def _turn(self, turn: Turn, before: Sequence[str] = ()) -> str:
        if turn.question is None:
            self._save(ivr_phase=DONE)
            return self._thanks()
        if turn.reprompt:
            before = [*before, translate(self.language, NOT_UNDERSTOOD)]
        return self._question(turn.question, before)

    def current(self) -> str:
        """The prompt of where the call stands, said again (nothing changes but a pending question being set)."""
        if self.phase == LANGUAGE:
            return self._language_menu()
        if self.phase == NOTICE:
            return self._notice()
        if self.phase == QUESTIONS:
            return self._turn(ask(self.session, self.sessions, self.response, CHANNEL))
        return self._thanks()

    # -- the turns --------------------------------------------------------------------------------------------

    def begin(self, choose_language: bool) -> str:
        """The first prompt: the language menu where the caller has a choice to make, else the PRA notice."""
        if not self.phase:
            self._save(ivr_step=1, ivr_phase=LANGUAGE if choose_language else NOTICE)
        return self.current()

    def on_language(self, digits: str) -> str:
        """A key of the menu picks a language; anything else (or nothing) keeps the service's default."""
        if self.wants_to_stop(digits):
            return self.stop_calls()
        offered = self.flow.languages
        if (key := whole_number(digits, 1, len(offered))) is not None:
            self.response.language = offered[key - 1]
        else:
            default = self.service.default_language
            self.response.language = default if default in offered else self.flow.default_language
        self._next(NOTICE)
        return self._notice()

    def on_notice(self, digits: str) -> str:
        """9 reads the full burden statement; then (or on anything else) the first question."""
        if self.wants_to_stop(digits):
            return self.stop_calls()
        statement = pra_of(self.service, self.flow).burden_statement
        before = [translate(self.language, statement)] if digits == FULL_STATEMENT_KEY else []
        self._next(QUESTIONS)
        return self._turn(ask(self.session, self.sessions, self.response, CHANNEL), before)

    def on_answer(self, digits: str, speech: str) -> str:
        """An answer to the pending question: ``*`` repeats it, nothing (twice) or an unreadable answer (twice)
        skips it, anything readable is recorded at once."""
        if self.wants_to_stop(digits):
            return self.stop_calls()
        self._next(QUESTIONS)
        if keys.wants_repeat(digits, speech, self.language):
            return self._turn(ask(self.session, self.sessions, self.response, CHANNEL))
        if not digits.replace(keys.FINISH_KEY, "") and not speech.strip():
            return self._turn(no_input(self.session, self.sessions, self.response, CHANNEL))

        def read(question: Question) -> Given:
            labels = self.sessions.labels(self.flow, question, self.language)
            return keys.read(self.flow, question, digits, speech, self.language, labels)

        return self._turn(take(self.session, self.sessions, self.response, CHANNEL, read, self.now))
