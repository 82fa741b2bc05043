"""Kiosk devices and their sync (SPEC §4 'kiosk'): register, enroll, authenticate, revoke, and store batches.

A device belongs to one service and one office, so every kiosk answer is coded by office (A-11 280.7).
``register`` makes a one-time enrollment code (192 random bits, kept only as its SHA-256, valid 24 hours);
``enroll`` consumes it once and gives the device a long-lived credential (256 random bits, kept only as its
SHA-256) that the kiosk page holds in a cookie. ``revoke`` ends a device: its credential stops working at once.

``store_batch`` takes the sessions a device queued (often offline, sometimes days old) and stores each exactly
once by its client UUID, each in its own savepoint: ``stored``, ``duplicate`` (the server has it already: a retry)
or ``rejected`` with the reason (an unknown flow version, a flow its service never used, an answer the question
cannot take, a time in the future, an answer given after the survey's PRA approval expired, text with NUL or an
unpaired surrogate, a time outside 1970-9999, anything the store refuses). Only an unreachable database fails a batch, so one session never stalls a device. Every answer
goes through the survey-session engine, validated against the flow version the device showed. Office, service
and channel come from the device, never from the body. Completed sessions beyond the service's
``kiosk_max_sessions_per_minute`` within 60 seconds of device time on one device are stored flagged
``suspected_spam`` (left out of every figure).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from engine.catalog.services import ServiceConfig
from engine.common.crypto import token_hash
from engine.common.errors import FieldError, ValidationFailed
from engine.common.limits import EARLIEST, moment_problem, text_problem
from engine.runtime import Runtime
from engine.store.db import utcnow
from engine.store.models import KioskDevice, Office, Response, Service
from engine.surveys.flow_store import published_flow
from engine.surveys.flows import Flow, Question
from engine.surveys.messages import pra_of
from engine.surveys.sessions import Given, InvalidAnswer, SurveySessions, check_answer

CHANNEL = "kiosk"
logger = logging.getLogger("survey_engine.kiosk")
# The database is unreachable or busy: the batch answers 503 and the device keeps its queue (nothing is dropped).
UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
ENROLLMENT_VALID = timedelta(hours=24)
# How far a device's clock may run ahead of the server's (the same tolerance as a transaction's completed_at).
CLOCK_SKEW = timedelta(minutes=5)
# How far a device's clock may step back during one session (a network time correction between two taps): an answer
# dated that much before the session's start, or after its end, is the same visitor's, not a forgery.
CLOCK_STEP = CLOCK_SKEW
# A session older than this is refused (a device clock that is badly wrong, not an offline queue).
MAX_AGE = timedelta(days=366)
SPAM_WINDOW = timedelta(seconds=60)
MAX_SESSIONS = 100
MAX_ANSWERS = 50
MAX_CHOICES = 50
MAX_TEXT_CHARS = 10_000
MAX_BODY_BYTES = 1024 * 1024


class KioskError(Exception):
    """A device operation that cannot be done; the message says why."""


class EnrollmentRefused(KioskError):
    """The enrollment code is unknown, already used, expired, or its device was revoked; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # unknown | used | expired | revoked


class DeviceRefused(KioskError):
    """No device answers to this credential (``revoked`` True when it did, and was revoked)."""

    def __init__(self, revoked: bool) -> None:
        super().__init__("this kiosk was revoked" if revoked else "no enrolled kiosk has this credential")
        self.revoked = revoked


# -- the device registry ----------------------------------------------------------------------------------------


def register(
    session: Session, rt: Runtime, service: str, office: str, name: str | None = None,
    languages: Sequence[str] = (), now: datetime | None = None,
) -> tuple[KioskDevice, str]:  # fmt: skip
    """A new device and its one-time enrollment code (returned once; only its hash is kept)."""
    now = now or utcnow()
    if service not in rt.catalog.services:
        raise KioskError(f"unknown service {service!r} (known: {', '.join(sorted(rt.catalog.services))})")
    config = rt.catalog.services[service]
    if CHANNEL not in config.channels:
        raise KioskError(f"service {service!r} does not list the kiosk channel in its channels (config/services.yaml)")
    if office not in rt.catalog.offices:
        raise KioskError(f"unknown office {office!r} (known: {', '.join(sorted(rt.catalog.offices))})")
    flow = rt.catalog.flow_of(config)
    wanted = list(dict.fromkeys(languages)) or list(flow.languages)
    missing = [lang for lang in wanted if lang not in flow.languages]
    if missing:
        raise KioskError(f"flow {flow.id} does not offer {', '.join(missing)} (it offers {', '.join(flow.languages)})")
    code = secrets.token_urlsafe(24)
    device = KioskDevice(
        id=uuid.uuid4(),
        service_id=rt.service_ids[service],
        office_id=rt.office_ids[office],
        name=(name or f"Kiosk at {rt.catalog.offices[office].name}")[:120],
        languages=wanted,
        enrollment_hash=token_hash(code),
        enrollment_expires_at=now + ENROLLMENT_VALID,
        created_at=now,
    )
    session.add(device)
    session.flush()
    return device, code


def enrollable(session: Session, code: str, now: datetime | None = None) -> KioskDevice:
    """The device a one-time code would enroll, without using the code up (the page a GET of the link shows),
    or :class:`EnrollmentRefused` saying why it cannot."""
    now = now or utcnow()
    device = session.execute(
        select(KioskDevice).where(KioskDevice.enrollment_hash == token_hash(code))
    ).scalar_one_or_none()
    reason = _refusal(device, now)
    if reason is not None or device is None:
        raise EnrollmentRefused(reason or "unknown")
    return device


def _refusal(device: KioskDevice | None, now: datetime) -> str | None:
    """Why ``device``'s enrollment code cannot be used at ``now`` (unknown, revoked, used, expired), or ``None``."""
    if device is None:
        return "unknown"
    if device.revoked_at is not None:
        return "revoked"
    if device.enrolled_at is not None:
        return "used"
    if device.enrollment_expires_at is None or device.enrollment_expires_at <= now:
        return "expired"
    return None


def enroll(session: Session, code: str, now: datetime | None = None) -> tuple[KioskDevice, str]:
    """Consume a one-time code: the device and its new credential (returned once). A second use is refused."""
    now = now or utcnow()
    hashed = token_hash(code)
    credential = secrets.token_urlsafe(32)
    consumed = session.execute(
        update(KioskDevice)
        .where(
            KioskDevice.enrollment_hash == hashed,
            KioskDevice.enrolled_at.is_(None),
            KioskDevice.revoked_at.is_(None),
            KioskDevice.enrollment_expires_at > now,
        )
        .values(credential_hash=token_hash(credential), enrolled_at=now, last_seen_at=now)
    )
    device = session.execute(select(KioskDevice).where(KioskDevice.enrollment_hash == hashed)).scalar_one_or_none()
    if consumed.rowcount == 1 and device is not None:  # type: ignore[attr-defined]
        return device, credential
    raise EnrollmentRefused(_refusal(device, now) or "expired")


def authenticate(session: Session, credential: str | None, now: datetime | None = None) -> KioskDevice:
    """The enrolled, unrevoked device holding ``credential``; its last contact is updated."""
    if not credential:
        raise DeviceRefused(revoked=False)
    device = session.execute(
        select(KioskDevice).where(KioskDevice.credential_hash == token_hash(credential))
    ).scalar_one_or_none()
    if device is None:
        raise DeviceRefused(revoked=False)
    if device.revoked_at is not None:
        raise DeviceRefused(revoked=True)
    device.last_seen_at = now or utcnow()
    return device


def revoke(session: Session, device_id: str, now: datetime | None = None) -> KioskDevice:
    try:
        key = uuid.UUID(device_id)
    except ValueError:
        raise KioskError(f"{device_id!r} is not a device id (see `survey-engine kiosk list`)") from None
    device = session.get(KioskDevice, key)
    if device is None:
        raise KioskError(f"no kiosk device {device_id} (see `survey-engine kiosk list`)")
    if device.revoked_at is None:
        device.revoked_at = now or utcnow()
    return device


@dataclass(frozen=True)
class DeviceRow:
    id: uuid.UUID
    service: str
    office: str
    name: str
    state: str  # awaiting enrollment | enrollment expired | enrolled | revoked
    last_seen_at: datetime | None
    languages: tuple[str, ...]


def state_of(device: KioskDevice, now: datetime) -> str:
    if device.revoked_at is not None:
        return "revoked"
    if device.enrolled_at is not None:
        return "enrolled"
    if device.enrollment_expires_at is not None and device.enrollment_expires_at <= now:
        return "enrollment expired"
    return "awaiting enrollment"


def list_devices(session: Session, now: datetime | None = None) -> list[DeviceRow]:
    now = now or utcnow()
    rows = session.execute(
        select(KioskDevice, Service.slug, Office.code)
        .join(Service, Service.id == KioskDevice.service_id)
        .join(Office, Office.id == KioskDevice.office_id)
        .order_by(KioskDevice.created_at, KioskDevice.id)
    ).all()
    return [
        DeviceRow(d.id, slug, code, d.name, state_of(d, now), d.last_seen_at, tuple(d.languages))
        for d, slug, code in rows
    ]


class ServiceGone(KioskError):
    """The device's service is no longer configured (or no longer offers the kiosk channel)."""


def device_context(rt: Runtime, device: KioskDevice) -> tuple[str, str]:
    """The device's service slug and office code; :class:`ServiceGone` if the service left the configuration."""
    slug = next((s for s, i in rt.service_ids.items() if i == device.service_id), None)
    code = next((c for c, i in rt.office_ids.items() if i == device.office_id), "")
    if slug is None or slug not in rt.catalog.services or CHANNEL not in rt.catalog.services[slug].channels:
        raise ServiceGone(f"kiosk {device.id}: its service is no longer configured with the kiosk channel")
    return slug, code


def max_sessions_per_minute(rt: Runtime, service: str) -> int:
    return rt.catalog.services[service].kiosk_max_sessions_per_minute


# -- the batch: structure first (all or nothing), then each session ---------------------------------------------

SESSION_KEYS = {"client_uuid", "flow", "language", "started_at", "completed_at", "answers"}
ANSWER_KEYS = {"question_id", "answered_at"}
VALUE_KEYS = ("value", "choices", "text")


@dataclass(frozen=True)
class GivenAnswer:
    question_id: str
    given: Given
    answered_at: datetime


@dataclass(frozen=True)
class QueuedSession:
    client_uuid: uuid.UUID
    flow_id: str
    flow_version: str
    language: str
    started_at: datetime
    completed_at: datetime | None
    answers: tuple[GivenAnswer, ...]
    # Why this session can never be stored (text a database cannot keep, a time no calendar holds), naming the
    # field; the session is then answered ``rejected`` and the rest of the batch is stored.
    rejection: str | None = None


class _Spoiled:
    """The fields of one session whose values no store can keep: they make that session ``rejected``, not the
    whole batch malformed (SPEC §2 rule 11)."""

    def __init__(self, where: str) -> None:
        self.prefix = f"{where}."
        self.problems: list[str] = []

    def add(self, field: str, problem: str) -> None:
        self.problems.append(f"{field.removeprefix(self.prefix)} {problem}")

    def text(self, value: str, field: str) -> None:
        problem = text_problem(value)
        if problem:
            self.add(field, problem)


def _timestamp(value: Any, where: str, errors: list[FieldError], spoiled: _Spoiled) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        errors.append(FieldError(where, "must be an ISO 8601 date-time string with a time zone"))
        return None
    unstorable = text_problem(value)
    if unstorable:
        spoiled.add(where, unstorable)
        return EARLIEST
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(where, f"{value!r} is not an ISO 8601 date-time"))
        return None
    if parsed.tzinfo is None:
        errors.append(FieldError(where, "must carry a time zone (Z or an offset such as -05:00)"))
        return None
    problem = moment_problem(parsed)
    if problem:
        spoiled.add(where, problem)
        return EARLIEST
    return parsed.astimezone(UTC)


def _text_field(value: Any, where: str, errors: list[FieldError], limit: int, spoiled: _Spoiled) -> str | None:
    if not isinstance(value, str) or not value or len(value) > limit:
        errors.append(FieldError(where, f"must be a non-empty string of at most {limit} characters"))
        return None
    spoiled.text(value, where)
    return value


def _answer(raw: Any, where: str, errors: list[FieldError], spoiled: _Spoiled) -> GivenAnswer | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(where, "must be an object"))
        return None
    found = len(errors)
    unknown = sorted(set(raw) - ANSWER_KEYS - set(VALUE_KEYS))
    if unknown:
        errors.append(FieldError(where, f"unknown fields {', '.join(unknown)}"))
    for key in ANSWER_KEYS - set(raw):
        errors.append(FieldError(f"{where}.{key}", "is required"))
    present = [k for k in VALUE_KEYS if k in raw]
    if len(present) != 1:
        errors.append(FieldError(where, "needs exactly one of value, choices or text"))
    qid = (
        _text_field(raw.get("question_id"), f"{where}.question_id", errors, 64, spoiled)
        if "question_id" in raw
        else None
    )
    at = _timestamp(raw["answered_at"], f"{where}.answered_at", errors, spoiled) if "answered_at" in raw else None
    given = Given()
    if present == ["value"]:
        value = raw["value"]
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(FieldError(f"{where}.value", "must be a whole number (a rating, 1 = worst … 5 = best)"))
        else:
            given = Given(value=value)
    elif present == ["choices"]:
        choices = raw["choices"]
        if (
            not isinstance(choices, list)
            or not choices
            or len(choices) > MAX_CHOICES
            or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in choices)
        ):
            errors.append(FieldError(f"{where}.choices", f"must be a list of 1 to {MAX_CHOICES} choice ids"))
        else:
            for n, choice in enumerate(choices):
                spoiled.text(choice, f"{where}.choices[{n}]")
            given = Given(choices=tuple(choices))
    elif present == ["text"]:
        text = raw["text"]
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            errors.append(FieldError(f"{where}.text", f"must be a string of at most {MAX_TEXT_CHARS} characters"))
        else:
            spoiled.text(text, f"{where}.text")
            given = Given(text=text)
    if len(errors) > found or qid is None or at is None:
        return None
    return GivenAnswer(qid, given, at)


def _session(raw: Any, where: str, errors: list[FieldError]) -> QueuedSession | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(where, "must be an object"))
        return None
    found = len(errors)
    spoiled = _Spoiled(where)
    unknown = sorted(set(raw) - SESSION_KEYS)
    if unknown:
        errors.append(FieldError(where, f"unknown fields {', '.join(unknown)}"))
    for key in sorted(SESSION_KEYS - set(raw)):
        errors.append(FieldError(f"{where}.{key}", "is required (completed_at may be null)"))
    client_uuid = None
    if "client_uuid" in raw:
        try:
            if not isinstance(raw["client_uuid"], str):
                raise ValueError
            client_uuid = uuid.UUID(raw["client_uuid"])
        except ValueError:
            errors.append(FieldError(f"{where}.client_uuid", "must be a UUID string"))
    flow = raw.get("flow")
    flow_id = flow_version = None
    if "flow" in raw:
        if not isinstance(flow, dict) or set(flow) != {"id", "version"}:
            errors.append(FieldError(f"{where}.flow", "must be {id, version}"))
        else:
            flow_id = _text_field(flow["id"], f"{where}.flow.id", errors, 100, spoiled)
            flow_version = _text_field(flow["version"], f"{where}.flow.version", errors, 32, spoiled)
    language = _text_field(raw.get("language"), f"{where}.language", errors, 35, spoiled) if "language" in raw else None
    started = _timestamp(raw["started_at"], f"{where}.started_at", errors, spoiled) if "started_at" in raw else None
    completed = None
    if raw.get("completed_at") is not None:
        completed = _timestamp(raw["completed_at"], f"{where}.completed_at", errors, spoiled)
    answers: list[GivenAnswer] = []
    raw_answers = raw.get("answers")
    if "answers" in raw:
        if not isinstance(raw_answers, list) or len(raw_answers) > MAX_ANSWERS:
            errors.append(FieldError(f"{where}.answers", f"must be a list of at most {MAX_ANSWERS} answers"))
        else:
            for i, item in enumerate(raw_answers):
                answer = _answer(item, f"{where}.answers[{i}]", errors, spoiled)
                if answer is not None:
                    answers.append(answer)
    if len(errors) > found or client_uuid is None or flow_id is None or flow_version is None:
        return None
    assert language is not None and started is not None
    rejection = "; ".join(spoiled.problems) or None
    return QueuedSession(client_uuid, flow_id, flow_version, language, started, completed, tuple(answers), rejection)


def parse_batch(body: Any) -> list[QueuedSession]:
    """The whole batch checked before anything is stored; every structural error is named (``ValidationFailed``)."""
    errors: list[FieldError] = []
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("(body)", 'must be an object {"sessions": [...]}')])
    unknown = sorted(set(body) - {"sessions"})
    if unknown:
        errors.append(FieldError("(body)", f"unknown fields {', '.join(unknown)}"))
    raw = body.get("sessions")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_SESSIONS:
        errors.append(FieldError("sessions", f"must be a list of 1 to {MAX_SESSIONS} sessions"))
        raise ValidationFailed(errors)
    parsed = [_session(item, f"sessions[{i}]", errors) for i, item in enumerate(raw)]
    seen: set[uuid.UUID] = set()
    for i, item in enumerate(parsed):
        if item is not None and item.client_uuid in seen:
            errors.append(FieldError(f"sessions[{i}].client_uuid", "appears twice in this batch"))
        if item is not None:
            seen.add(item.client_uuid)
    if errors:
        raise ValidationFailed(errors)
    return [p for p in parsed if p is not None]


# -- storing ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    client_uuid: uuid.UUID
    status: str  # stored | duplicate | rejected
    reason: str | None = None
    suspected_spam: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"client_uuid": str(self.client_uuid), "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.status == "stored":
            out["suspected_spam"] = self.suspected_spam
        return out


class Rejected(Exception):
    """One session cannot be stored; the message is the reason the device is told."""


def _check(item: QueuedSession, flow: Flow, now: datetime) -> list[tuple[GivenAnswer, Question, Given]]:
    """The session's answers paired with their questions, or :class:`Rejected` with the reason."""
    if item.language not in flow.languages:
        raise Rejected(f"language {item.language!r} is not offered by flow {flow.id} v{flow.version}")
    if not item.answers:
        raise Rejected("the session has no answers: nothing to store")
    times = [item.started_at, *(a.answered_at for a in item.answers)]
    if item.completed_at is not None:
        times.append(item.completed_at)
    if max(times) > now + CLOCK_SKEW:
        raise Rejected("a time is in the future: check the device's clock")
    if min(times) < now - MAX_AGE:
        raise Rejected("a time is more than a year old: check the device's clock")
    if any(a.answered_at < item.started_at - CLOCK_STEP for a in item.answers):
        raise Rejected("an answer is dated before the session started")
    if item.completed_at is not None and any(a.answered_at > item.completed_at + CLOCK_STEP for a in item.answers):
        raise Rejected("an answer is dated after the session was completed")
    pairs: list[tuple[GivenAnswer, Question, Given]] = []
    seen: dict[str, Given] = {}
    for answer in item.answers:
        if answer.question_id in seen:
            if answer.given == seen[answer.question_id]:
                continue  # the same answer again (a double tap on the kiosk's button): the first stands
            raise Rejected(f"question {answer.question_id!r} is answered twice")
        seen[answer.question_id] = answer.given
        try:
            question = flow.question(answer.question_id)
        except KeyError:
            raise Rejected(f"flow {flow.id} v{flow.version} has no question {answer.question_id!r}") from None
        if not question.asked_on(CHANNEL):
            raise Rejected(f"question {question.id!r} is not asked on a kiosk")
        try:
            pairs.append((answer, question, check_answer(question, answer.given)))
        except InvalidAnswer as exc:
            raise Rejected(f"question {question.id!r}: {exc.message}") from None
    if all(g.empty for _, _, g in pairs):
        raise Rejected("the session has no answers: nothing to store")
    ratings = {a.question_id: g.value for a, _, g in pairs}
    for _, question, _ in pairs:
        if not flow.applies(question, CHANNEL, ratings):
            raise Rejected(f"question {question.id!r} is not asked after the answers given before it")
    return pairs


def _within_approval(item: QueuedSession, service: ServiceConfig, flow: Flow) -> None:
    """:class:`Rejected` when an answer was given after the PRA approval that stood for the survey had expired (rule
    9: nothing is asked under a lapsed control number); a session answered while it stood is kept, however late it
    syncs."""
    pra = pra_of(service, flow)
    if pra.lapsed_at(max(a.answered_at for a in item.answers), service.timezone):
        raise Rejected(f"the PRA approval of this survey (OMB {pra.omb_control_number}) expired on "
                       f"{pra.expiration_date.isoformat()}, before this session was answered")  # fmt: skip


def _spam(session: Session, device_id: uuid.UUID, completed_at: datetime, limit: int) -> bool:
    """Whether some 60 s window around ``completed_at`` would hold more than ``limit`` completed sessions of this
    device with this one: it is the excess. Works whatever order the sessions arrive in."""
    times = sorted(
        [
            *session.execute(
                select(Response.completed_at).where(
                    Response.kiosk_device_id == device_id,
                    Response.completed_at > completed_at - SPAM_WINDOW,
                    Response.completed_at < completed_at + SPAM_WINDOW,
                )
            ).scalars(),
            completed_at,
        ]
    )
    for start in times:
        if start > completed_at:
            break
        if start > completed_at - SPAM_WINDOW:
            inside = sum(1 for t in times if start <= t < start + SPAM_WINDOW)
            if inside > limit:
                return True
    return False


def store_batch(
    session: Session, rt: Runtime, device: KioskDevice, batch: Sequence[QueuedSession], now: datetime | None = None
) -> list[Outcome]:
    """Store each session once, in its own savepoint; the caller commits. Results keep the batch's order.

    Whatever one session holds, it ends ``stored``, ``duplicate`` or ``rejected``: only an unreachable or busy
    database (:data:`UNAVAILABLE`) fails the batch, so that the device keeps its queue and retries.
    """
    now = now or utcnow()
    # One sync of one device at a time (PostgreSQL): the spam window and the duplicate check see each other.
    session.execute(select(KioskDevice.id).where(KioskDevice.id == device.id).with_for_update())
    service, _ = device_context(rt, device)
    batch_of = _Batch(rt, device, service, max_sessions_per_minute(rt, service), now)
    results: dict[uuid.UUID, Outcome] = {}
    # Completed sessions in device time order, so the spam window counts them as they happened.
    order = sorted(batch, key=lambda s: (s.completed_at or s.started_at, s.started_at))
    for item in order:
        results[item.client_uuid] = _store_one(session, batch_of, item)
    return [results[item.client_uuid] for item in batch]


@dataclass
class _Batch:
    """What every session of one sync shares: the device, its service, and the flow versions looked up so far."""

    rt: Runtime
    device: KioskDevice
    service: str
    limit: int
    now: datetime
    flows: dict[tuple[str, str], tuple[int, Flow] | None] = field(default_factory=dict)
    used: dict[int, bool] = field(default_factory=dict)

    @property
    def sessions(self) -> SurveySessions:
        return SurveySessions(self.rt)


def _service_used(session: Session, batch: _Batch, flow_id: str, flow_version_id: int) -> bool:
    """Whether the device's service shows this flow version: its current flow (any published version of it, so
    that a kiosk that was offline across an update still syncs), or a version it has responses on (a flow the
    service used before it moved to another). Another service's flow is not this kiosk's to answer."""
    if flow_id == batch.rt.catalog.flow_of(batch.rt.catalog.services[batch.service]).id:
        return True
    if flow_version_id not in batch.used:
        batch.used[flow_version_id] = (
            session.execute(
                select(Response.id)
                .where(
                    Response.service_id == batch.rt.service_ids[batch.service],
                    Response.flow_version_id == flow_version_id,
                )
                .limit(1)
            ).first()
            is not None
        )
    return batch.used[flow_version_id]


def _store_one(session: Session, batch: _Batch, item: QueuedSession) -> Outcome:
    if item.rejection is not None:
        return Outcome(item.client_uuid, "rejected", item.rejection)
    try:
        with session.begin_nested():
            return _attempt(session, batch, item)
    except UNAVAILABLE:
        raise
    except IntegrityError:
        # The same session stored at this moment by a concurrent retry stands; any other constraint is this
        # session's own fault and retrying it would never help.
        owner = session.execute(
            select(Response.kiosk_device_id).where(Response.client_uuid == item.client_uuid)
        ).first()
        if owner is not None and owner[0] == batch.device.id:
            return Outcome(item.client_uuid, "duplicate")
        logger.warning("kiosk session refused by the store", extra={"reason": "IntegrityError"})
        return Outcome(item.client_uuid, "rejected", "the server's store refused this session's values")
    except Exception as exc:  # one session must never stall the device's queue (SPEC §2 rule 11)
        logger.warning(
            "kiosk session could not be stored", extra={"reason": type(exc).__name__, "device": str(batch.device.id)}
        )
        return Outcome(item.client_uuid, "rejected", f"the server cannot store this session ({type(exc).__name__})")


def _attempt(session: Session, batch: _Batch, item: QueuedSession) -> Outcome:
    """Check and store one session inside its savepoint (a return keeps what it wrote, an exception undoes it)."""
    device = batch.device
    existing = session.execute(select(Response.kiosk_device_id).where(Response.client_uuid == item.client_uuid)).first()
    if existing is not None:
        if existing[0] == device.id:
            return Outcome(item.client_uuid, "duplicate")
        return Outcome(item.client_uuid, "rejected", "this client_uuid belongs to another device's session")
    key = (item.flow_id, item.flow_version)
    if key not in batch.flows:
        batch.flows[key] = published_flow(session, *key)
    published = batch.flows[key]
    if published is None:
        return Outcome(item.client_uuid, "rejected", f"flow {item.flow_id} v{item.flow_version} was never published")
    flow_version_id, flow = published
    if not _service_used(session, batch, item.flow_id, flow_version_id):
        return Outcome(
            item.client_uuid,
            "rejected",
            f"flow {item.flow_id} v{item.flow_version} is not a flow of this kiosk's service ({batch.service})",
        )
    try:
        checked = _check(item, flow, batch.now)
        _within_approval(item, batch.rt.catalog.services[batch.service], flow)
    except Rejected as exc:
        return Outcome(item.client_uuid, "rejected", str(exc))
    spam = item.completed_at is not None and _spam(session, device.id, item.completed_at, batch.limit)
    sessions = batch.sessions
    response = sessions.start_session(
        session, batch.service, CHANNEL, item.language,
        kiosk_device_id=device.id, office_id=device.office_id, client_uuid=item.client_uuid,
        started_at=min(a.answered_at for a in item.answers), flow_version_id=flow_version_id,
    )  # fmt: skip
    response.suspected_spam = spam
    for answer, question, given in checked:
        sessions.record(session, response, question, given, now=answer.answered_at)
    if item.completed_at is not None:  # never before its last answer (the device's clock may have stepped back)
        sessions.complete(session, response, now=max(item.completed_at, *(a.answered_at for a in item.answers)))
    session.flush()
    return Outcome(item.client_uuid, "stored", suspected_spam=spam)
