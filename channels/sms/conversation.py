"""One incoming text, answered: keywords first (STOP, START, HELP), then the survey conversation.

The conversation is the engine's (``engine.surveys.conversations``): this module finds the invitation the text answers,
starts its response on the first reply (the invitation's first text already asked the first question), reads the
reply for the pending question (:mod:`channels.sms.replies`) and says what comes next. The caller owns the unit
of work and the webhook receipt; everything here happens inside that one database transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from channels.sms import texts
from channels.sms.replies import Keyword, keyword, reader
from engine.catalog.services import ServiceConfig
from engine.delivery import lifecycle
from engine.delivery.suppressions import restore, suppress
from engine.runtime import Runtime
from engine.store.db import utcnow
from engine.store.models import (
    ContactKind,
    Invitation,
    InvitationState,
    Response,
    Suppression,
    SuppressionReason,
)
from engine.surveys import conversations
from engine.surveys.flows import Flow, Question
from engine.surveys.sessions import SurveyClosed, SurveySessions

CHANNEL = "sms"
# An SMS opt-out also stops outbound calls to that phone (SPEC §2 rule 3); START lifts both.
OPT_OUT_CHANNELS = ["sms", "ivr"]
SOURCE = "sms:inbound"

# Built once: whether this phone's texts are opted out (STOP, not yet lifted by START).
_OPTED_OUT_NOW = exists().where(
    Suppression.contact_hash == bindparam("contact_hash"),
    Suppression.channel == CHANNEL,
    Suppression.reason == SuppressionReason.OPTED_OUT,
    Suppression.restored_at.is_(None),
)
_OPTED_OUT = select(_OPTED_OUT_NOW)
# One turn at a time per invitation: the row lock a second text arriving at once waits on (PostgreSQL).
_LOCK_INVITATION = select(Invitation.id).where(Invitation.id == bindparam("id")).with_for_update()
# A turn's first read, one statement: the phone's open invitation, locked (so a second text of the same
# conversation waits here until this turn is stored), and whether the phone is opted out.
_OPEN_LOCKED_AND_OPTED_OUT = conversations.OPEN_INVITATION.add_columns(
    _OPTED_OUT_NOW.label("opted_out")
).with_for_update(of=Invitation)


@dataclass(frozen=True)
class Said:
    """What to answer: a text, or nothing (empty TwiML)."""

    text: str | None


@dataclass(frozen=True)
class Context:
    """The invitation a text is about, with its service, flow and language."""

    invitation: Invitation
    service: ServiceConfig
    flow: Flow
    language: str


def context_of(rt: Runtime, sessions: SurveySessions, invitation: Invitation | None) -> Context | None:
    if invitation is None:
        return None
    try:
        service = rt.catalog.services[sessions.service_slug(invitation.service_id)]
    except KeyError:  # the service was removed from the configuration
        return None
    flow = rt.catalog.flow_of(service)
    return Context(invitation, service, flow, texts.flow_language(flow, invitation.language, service.default_language))


class Conversation:
    """Answers the texts of one phone number."""

    def __init__(self, rt: Runtime, session: Session, phone: str, now: datetime | None = None) -> None:
        self.rt = rt
        self.session = session
        self.phone = phone
        self.now = now or utcnow()
        self.contact_hash = rt.cipher.lookup_hash(ContactKind.PHONE.value, phone)
        self.sessions = SurveySessions(rt)
        self._opted_out: bool | None = None  # read with the open invitation, when there is one
        self._locked: object = None  # the id of the invitation this turn holds locked

    def answer(self, body: str) -> Said:
        params = conversations.open_invitation_params(self.contact_hash, [CHANNEL], self.now)
        row = self.session.execute(_OPEN_LOCKED_AND_OPTED_OUT, params).first()
        open_one: Invitation | None = None
        if row is not None:
            open_one, self._opted_out, self._locked = row[0], bool(row[1]), row[0].id
        latest = open_one or conversations.latest_invitation(self.session, self.contact_hash, [CHANNEL])
        if open_one is None and latest is not None and self.settle_unknown(latest):
            open_one = latest
        context = context_of(self.rt, self.sessions, latest)
        found = keyword(body)
        if found is not None:
            kind, word_language = found
            language = context.language if context else texts.spoken(word_language)
            if kind is Keyword.OPT_OUT:
                return self.opt_out(open_one, context, language, body)
            if kind is Keyword.START:
                return self.start(context, language)
            return Said(texts.help_text(context.service if context else None, context.flow if context else None,
                                        language))  # fmt: skip
        if self.opted_out():
            return Said(None)  # no survey texts until START
        if open_one is None or context is None:
            if context is not None:
                return Said(texts.closed(context.language))
            return Said(texts.unknown_sender(texts.spoken(texts.DEFAULT_LANGUAGE)))
        return self.survey(context, body)

    def opted_out(self) -> bool:
        if self._opted_out is None:
            self._opted_out = bool(self.session.execute(_OPTED_OUT, {"contact_hash": self.contact_hash}).scalar())
        return self._opted_out

    def settle_unknown(self, invitation: Invitation) -> bool:
        """A reply to an invitation whose send timed out proves the text arrived: it is delivered (SPEC §2 rule 10)."""
        if invitation.expires_at <= self.now:
            return False
        changes = {"sent_at": invitation.sent_at or invitation.claimed_at or self.now, "reason": None}
        if not lifecycle.move(self.session, invitation, InvitationState.DELIVERED, lifecycle.Event.REPLIED,
                              now=self.now, detail="the customer replied, so the text was delivered", changes=changes):  # fmt: skip
            return False
        self.session.flush()
        return True

    # -- keywords ---------------------------------------------------------------------------------------------

    def opt_out(self, open_one: Invitation | None, context: Context | None, language: str, word: str) -> Said:
        suppress(self.session, self.rt.cipher, ContactKind.PHONE, self.phone, OPT_OUT_CHANNELS,
                 SuppressionReason.OPTED_OUT, SOURCE, f"texted {word.strip()[:40]!r}", self.now)  # fmt: skip
        if open_one is not None:
            response = self.sessions.response_for_invitation(self.session, open_one)
            if response is not None and response.completed_at is None:
                end(response, "opted_out")
        if self.twilio_confirms(context):
            return Said(None)
        return Said(texts.opted_out(context.service if context else None, language))

    def start(self, context: Context | None, language: str) -> Said:
        restore(self.session, self.rt.cipher, ContactKind.PHONE, self.phone, OPT_OUT_CHANNELS,
                "customer texted START", SOURCE, self.now)  # fmt: skip
        if self.twilio_confirms(context):
            return Said(None)
        return Said(texts.resubscribed(language))

    def twilio_confirms(self, context: Context | None) -> bool:
        """Whether Twilio's own opt-out handling answers STOP and START for this sender (then we stay silent)."""
        if context is not None:
            return context.service.twilio_opt_out_handling
        texting = [s for s in self.rt.catalog.services.values() if CHANNEL in s.channels]
        return bool(texting) and all(s.twilio_opt_out_handling for s in texting)

    # -- the survey -------------------------------------------------------------------------------------------

    def survey(self, context: Context, body: str) -> Said:
        # One turn at a time per invitation: a second text arriving at once waits (PostgreSQL). The open invitation
        # was locked as it was read; one found otherwise (a send that timed out, settled by this reply) is locked
        # here by a narrow statement.
        if self._locked != context.invitation.id:
            self.session.execute(_LOCK_INVITATION, {"id": context.invitation.id})
        invitation = self.session.get(Invitation, context.invitation.id)
        assert invitation is not None
        response = self.sessions.response_for_invitation(self.session, invitation)
        if invitation.state is InvitationState.SENT or (
            invitation.state is InvitationState.DELIVERED and context.service.sms_mode == "link" and response is None
        ):
            # The reply proves the text arrived: delivered (or, delivered already, the reply recorded), so that a
            # late "undelivered" report cannot take the opportunity from a customer who replied (SPEC §6). A
            # conversation keeps it by its response, begun at the first reply.
            lifecycle.replied(self.session, invitation, now=self.now)
        if context.service.sms_mode == "link":  # the web page asks the questions
            if response is not None and response.completed_at is not None:
                return Said(texts.thanks(context.flow, context.service, context.language))
            return Said(texts.use_the_link(context.language))
        if response is None:
            try:
                response = self.sessions.start_for_invitation(self.session, invitation, context.language, CHANNEL,
                                                              self.now)  # fmt: skip
            except SurveyClosed:
                return Said(texts.closed(context.language))
            # The invitation's text carried the first question: it is the one this reply answers.
            conversations.ask(self.session, self.sessions, response, CHANNEL)
        flow = self.sessions.flow_of(response)  # the version the conversation began on
        language = texts.flow_language(flow, response.language)
        if (response.state or {}).get("ended"):
            return Said(texts.closed(language))
        if response.completed_at is not None:
            return Said(texts.thanks(flow, context.service, language))

        def labels(question: Question) -> list[tuple[str, str]]:
            found = self.sessions.labels(flow, question, language)
            return found if language == "en" else found + self.sessions.labels(flow, question, "en")

        turn = conversations.take(self.session, self.sessions, response, CHANNEL, reader(body, language, labels),
                                  self.now)  # fmt: skip
        if turn.completed or turn.question is None:
            return Said(texts.thanks(flow, context.service, language))
        if turn.reprompt:
            return Said(texts.reprompt(turn.question, language, context.service))
        return Said(texts.question_text(turn.question, language, context.service))


def end(response: Response, reason: str) -> None:
    """Stop a conversation where it stands: the response stays partial and takes no further answers."""
    state = dict(response.state or {})
    state.update(pending=None, ended=reason)
    response.state = state
