"""One survey call, turn by turn: the language menu, the PRA notice, the questions, the thank-you.

Where the call stands lives in the response's ``state`` beside the conversation engine's own keys
(:mod:`engine.conversations`): ``ivr_phase`` (``language`` → ``notice`` → ``questions`` → ``done``) and ``ivr_step``,
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
from engine.conversations import Turn, ask, no_input, take
from engine.flows import Question
from engine.i18n import N_, translate
from engine.models import Response
from engine.runtime import Runtime
from engine.sessions import Given, SurveySessions

CHANNEL = "ivr"
LANGUAGE, NOTICE, QUESTIONS, DONE = "language", "notice", "questions", "done"
FULL_STATEMENT_KEY = "9"

# Engine strings (translated by the catalogs in locales/).
# The language menu reads each offered language's own line in that language: a catalog translates this msgid as
# the line of its own language ("Para español, oprima {key}."), never as a translation of "English".
LANGUAGE_OPTION = N_("For English, press {key}.")
PRA_NOTICE = N_("This survey is approved by OMB under control number {omb}. Press 9 to hear the full statement.")
NOT_UNDERSTOOD = N_("Sorry, I didn't get that.")
THANKS_FOR_CALLING = N_("Thank you for calling. Goodbye.")
UNAVAILABLE = N_("Sorry, this survey is not available. Goodbye.")
SOMETHING_WRONG = N_("Sorry, something went wrong on our side. Goodbye.")


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
        self.flow = self.sessions.flow_of(response)
        self.service = rt.catalog.services[self.sessions.service_slug(response.service_id)]

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

    def _flow_message(self, name: str) -> str:
        templates = self.flow.message(name)
        text = str(templates.get(CHANNEL) or templates["default"]).strip()
        return translate(self.language, text, service=translate(self.language, self.service.name))

    def _language_menu(self) -> str:
        options = [
            (language, translate(language, LANGUAGE_OPTION, key=str(key)))
            for key, language in enumerate(self.flow.languages, start=1)
        ]
        return twiml.menu(options, self.url("language"), ivr_data().timeout("language_menu"))

    def _notice(self) -> str:
        lines = [self._flow_message("intro"),
                 translate(self.language, PRA_NOTICE, omb=self.flow.pra.omb_control_number)]  # fmt: skip
        return twiml.prompt(lines, self.language, self.url("notice"), timeout=ivr_data().timeout("notice"))

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
        offered = self.flow.languages
        if digits.isdigit() and 1 <= int(digits) <= len(offered):
            self.response.language = offered[int(digits) - 1]
        else:
            default = self.service.default_language
            self.response.language = default if default in offered else self.flow.default_language
        self._next(NOTICE)
        return self._notice()

    def on_notice(self, digits: str) -> str:
        """9 reads the full burden statement; then (or on anything else) the first question."""
        before = [translate(self.language, self.flow.pra.burden_statement)] if digits == FULL_STATEMENT_KEY else []
        self._next(QUESTIONS)
        return self._turn(ask(self.session, self.sessions, self.response, CHANNEL), before)

    def on_answer(self, digits: str, speech: str) -> str:
        """An answer to the pending question: ``*`` repeats it, nothing (twice) or an unreadable answer (twice)
        skips it, anything readable is recorded at once."""
        self._next(QUESTIONS)
        if keys.wants_repeat(digits, speech, self.language):
            return self._turn(ask(self.session, self.sessions, self.response, CHANNEL))
        if not digits.replace(keys.FINISH_KEY, "") and not speech.strip():
            return self._turn(no_input(self.session, self.sessions, self.response, CHANNEL))

        def read(question: Question) -> Given:
            labels = self.sessions.labels(self.flow, question, self.language)
            return keys.read(self.flow, question, digits, speech, self.language, labels)

        return self._turn(take(self.session, self.sessions, self.response, CHANNEL, read, self.now))
