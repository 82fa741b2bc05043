"""The reporting tests' stack: their own services, stand-in SMS and email providers, and a quarter built through
the real engine (intake, dispatch, delivery reports, survey sessions) at simulated times.

``report_stack`` builds the runtime and app on the test database (SQLite and PostgreSQL through
``database_url``) with scripted stand-ins registered as the ``sms`` and ``email`` channels (configuration through
the channel registry, as the other channel tests do), so invitations go through the real dispatcher.
:class:`QuarterBuilder` then reports transactions, sends, answers, fails and flags exactly what a test says.

The oracle (``*_from_rows``, :func:`ratings_from_answers`): the figures :mod:`engine.reporting.what_counts` reads
from the summaries kept by triggers, computed again from the raw rows with the same filters and constants. The
engine has one definition; these exist only so ``tests/test_reports_summary.py`` can prove the summaries right.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from channels.email import EmailChannel
from channels.sms import SmsChannel
from engine.api.auth import create_api_key
from engine.app import create_app
from engine.channels import load_channels
from engine.delivery.dispatch import Dispatcher
from engine.delivery.provider_reports import Report, apply_status
from engine.intake.submit import Intake
from engine.reporting.what_counts import (
    FAILED_STATES,
    RATING_TAGS,
    TEST_CHANNELS,
    Key,
    Rating,
    Scope,
    Volumes,
    _group_columns,
    _key,
    _not_test,
    _response_sums,
    counted_responses,
    counted_transactions,
    reportable,
)
from engine.runtime import Runtime, build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work
from engine.store.models import (
    Answer,
    ContactKind,
    Invitation,
    InvitationState,
    KioskDevice,
    Response,
    ServiceLevel,
    Transaction,
)
from engine.surveys.sessions import Given, SurveySessions
from tests.helpers import FAST_SENDING, write_config
from tests.stand_ins import ScriptedChannel

ROOT = Path(__file__).resolve().parent.parent
SECRET = "reports-test-secret-key-that-is-long-enough-0123456789"
ENCRYPTION = "reports-test-encryption-key-that-is-long-enough-98765"
NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")

_COMMON = {
    "agency": "Department of State",
    "service_type": "administrative",
    "send_delay": "PT0S",
    "contact_cooldown_days": 0,
    "default_language": "en",
    "sample_rate": 1.0,
}
SERVICES = {
    "rpt-mixed": {**_COMMON, "name": "Passport Renewal", "service_stage": "renewal", "flow": "a11-standard",
                  "channels": ["sms", "email"], "timezone": "America/New_York", "ivr_numbers": ["+12025550199"]},
    "rpt-thumbs": {**_COMMON, "name": "Benefits Contact Center", "agency": "Social Security Administration",
                   "service_type": "benefits", "flow": "a11-drivers", "channels": ["email"],
                   "timezone": "America/Chicago"},
    "rpt-other": {**_COMMON, "name": "Other Service", "flow": "a11-standard", "channels": ["email"],
                  "timezone": "America/Denver"},
    "rpt-console": {**_COMMON, "name": "Console Service", "flow": "a11-standard", "channels": ["console"],
                    "timezone": "America/New_York"},
}  # fmt: skip
OFFICES = {
    "NYC-01": {"name": "New York Passport Agency", "timezone": "America/New_York"},
    "HNL-01": {"name": "Honolulu Passport Agency", "timezone": "Pacific/Honolulu"},
}


class StandInSms(ScriptedChannel):
    """The provider of texts, scripted: a stand-in registered under the real channel's name."""

    name: ClassVar[str] = "sms"
    a11_channel: ClassVar[str | None] = SmsChannel.a11_channel
    label: ClassVar[str] = SmsChannel.label
    reminds: ClassVar[bool] = SmsChannel.reminds
    wording_key: ClassVar[str | None] = SmsChannel.wording_key
    wants_reminder = SmsChannel.wants_reminder


class StandInEmail(ScriptedChannel):
    name: ClassVar[str] = "email"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.EMAIL,)
    consent: ClassVar[str | None] = None
    quiet_hours: ClassVar[bool] = False
    suppressed_by: ClassVar[tuple[str, ...] | None] = ()
    a11_channel: ClassVar[str | None] = EmailChannel.a11_channel
    label: ClassVar[str] = EmailChannel.label
    suppresses_by: ClassVar[ContactKind | None] = ContactKind.EMAIL
    reminds: ClassVar[bool] = EmailChannel.reminds


@pytest.fixture(scope="session")
def report_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("report-config"), SERVICES, OFFICES)


@dataclass
class ReportStack:
    rt: Runtime
    app: Any
    client: Any
    env: dict[str, str]

    def key(self, services: Sequence[str], scopes: Sequence[str] = ("reports",)) -> dict[str, str]:
        with unit_of_work(self.rt.sessions) as session:
            key = create_api_key(session, f"rpt-{uuid.uuid4().hex[:6]}", services, scopes)
        return {"Authorization": f"Bearer {key}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """``survey-engine <args>`` in a child process on the same database and configuration."""
        return subprocess.run([sys.executable, "-m", "engine.cli", *args], env={**os.environ, **self.env}, cwd=ROOT,
                              capture_output=True, timeout=120, check=False)  # fmt: skip


def build_stack(database_url: str, flows_dir: Path, config_dir: Path, instance_dir: Path) -> ReportStack:
    """The runtime and app on ``database_url`` with the stand-in providers, for the services in ``config_dir``."""
    env = {
        "SURVEY_ENGINE_DATABASE_URL": database_url,
        "SURVEY_ENGINE_INSTANCE_DIR": str(instance_dir),
        "SURVEY_ENGINE_CONFIG_DIR": str(config_dir),
        "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
        "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
        **FAST_SENDING,
    }
    settings = load_settings(env)
    registry = load_channels(settings)
    for name in ("sms", "email"):
        registry.channels.pop(name, None)
    registry.register(StandInSms())
    registry.register(StandInEmail())
    rt = build_runtime(settings, channels=registry)
    rt.sync_catalog()
    app = create_app(runtime=rt)
    app.testing = True
    return ReportStack(rt, app, app.test_client(), env)


@pytest.fixture
def report_stack(database_url: str, flows_dir: Path, report_config_dir: Path, tmp_path: Path) -> Iterator[ReportStack]:
    stack = build_stack(database_url, flows_dir, report_config_dir, tmp_path / "instance")
    yield stack
    stack.rt.engine.dispose()


def local(zone: ZoneInfo, *parts: int) -> datetime:
    """An aware moment given as local wall time in ``zone``."""
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


class QuarterBuilder:
    """Feeds one scenario through the real engine, each step at its own simulated time."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.sessions = SurveySessions(rt)
        self._phones = iter(range(100, 10_000))

    def phone(self) -> str:
        return f"+1202555{next(self._phones):04d}"

    def report(self, service: str, external_id: str, completed_at: datetime, *, phone: bool = False,
               email: bool = False, office: str | None = None, sli: dict[str, float] | None = None,
               test: bool = False, source: str = "api", send: bool = True) -> dict[str, Any]:  # fmt: skip
        """Report one transaction at ``completed_at`` + 1 minute and run the dispatcher a minute later."""
        contact: dict[str, str] = {}
        if phone:
            contact["phone"] = self.phone()
        if email:
            contact["email"] = f"{external_id.lower()}@example.com"
        item: dict[str, Any] = {"id": external_id, "service": service, "completed_at": completed_at.isoformat()}
        if contact:
            item["contact"] = contact
            item["consent"] = {"sms": True}
        if office:
            item["office"] = office
        if sli:
            item["service_level"] = sli
        if test:
            item["test"] = True
        now = completed_at.astimezone(UTC) + timedelta(minutes=1)
        with unit_of_work(self.rt.sessions) as session:
            (result,) = Intake(self.rt).submit(session, [item], None, now=now, source=source)
        if send:
            Dispatcher(self.rt).drain(now=now + timedelta(minutes=1))
        return result

    def transaction(self, service: str, external_id: str) -> Transaction:
        with self.rt.sessions() as session:
            return session.execute(
                select(Transaction).where(
                    Transaction.service_id == self.rt.service_ids[service], Transaction.external_id == external_id
                )
            ).scalar_one()

    def invitation(self, service: str, external_id: str) -> Invitation:
        tx = self.transaction(service, external_id)
        with self.rt.sessions() as session:
            return session.execute(select(Invitation).where(Invitation.transaction_id == tx.id)).scalar_one()

    def fail(self, service: str, external_id: str, at: datetime) -> None:
        """A later delivery report: the provider says the message never arrived."""
        invitation = self.invitation(service, external_id)
        assert invitation.provider_id, invitation
        with unit_of_work(self.rt.sessions) as session:
            applied = apply_status(session, Report(invitation.provider_id, f"{invitation.provider_id}:undelivered",
                                                   "undelivered", InvitationState.FAILED, "30003 unreachable"),
                                   at.astimezone(UTC))  # fmt: skip
        assert applied

    def deliver(self, service: str, external_id: str, at: datetime) -> None:
        invitation = self.invitation(service, external_id)
        with unit_of_work(self.rt.sessions) as session:
            assert apply_status(session, Report(invitation.provider_id or "", f"{invitation.provider_id}:delivered",
                                                "delivered", InvitationState.DELIVERED), at.astimezone(UTC))  # fmt: skip

    def _answer(self, session: Any, response: Response, answers: dict[str, Any], at: datetime, complete: bool) -> None:
        flow = self.sessions.flow_of(response)
        for qid, value in answers.items():
            question = flow.question(qid)
            if isinstance(value, int):
                given = Given(value=value)
            elif isinstance(value, tuple):
                given = Given(choices=value)
            else:
                given = Given(text=value)
            self.sessions.record(session, response, question, given, at)
        if complete:
            self.sessions.complete(session, response, at)

    def answer_invitation(self, service: str, external_id: str, answers: dict[str, Any], at: datetime,
                          channel: str | None = None, complete: bool = True) -> uuid.UUID:  # fmt: skip
        """Answer the transaction's invitation at ``at`` (``channel`` None: as the web page does, the invitation's)."""
        invitation = self.invitation(service, external_id)
        now = at.astimezone(UTC)
        with unit_of_work(self.rt.sessions) as session:
            invitation = session.get(Invitation, invitation.id)
            assert invitation is not None
            response = self.sessions.start_for_invitation(session, invitation, "en", channel, now=now)
            self._answer(session, response, answers, now, complete)
            return response.id

    def post_call(self, service: str, external_id: str, phase: str, answers: dict[str, Any],
                  at: datetime) -> uuid.UUID:  # fmt: skip
        """A post-call IVR survey of a reported transaction that reached ``phase`` (notice, questions, done)."""
        tx = self.transaction(service, external_id)
        now = at.astimezone(UTC)
        with unit_of_work(self.rt.sessions) as session:
            response = self.sessions.start_session(session, service, "ivr", "en", transaction_id=tx.id,
                                                   office_id=tx.office_id, provider_ref=f"CA{uuid.uuid4().hex}",
                                                   started_at=now, test=tx.test)  # fmt: skip
            response.state = {"ivr_phase": phase, "ivr_step": 3}
            self._answer(session, response, answers, now, complete=phase == "done")
            return response.id

    def kiosk(self, service: str, office: str, answers: dict[str, Any], at: datetime, spam: bool = False,
              test: bool = False) -> uuid.UUID:  # fmt: skip
        now = at.astimezone(UTC)
        with unit_of_work(self.rt.sessions) as session:
            device = session.execute(
                select(KioskDevice).where(KioskDevice.service_id == self.rt.service_ids[service])
            ).scalar_one_or_none()
            if device is None:
                device = KioskDevice(service_id=self.rt.service_ids[service], office_id=self.rt.office_ids[office],
                                     name="Lobby tablet", languages=["en"], created_at=now, enrolled_at=now)  # fmt: skip
                session.add(device)
                session.flush()
            response = self.sessions.start_session(session, service, "kiosk", "en", kiosk_device_id=device.id,
                                                   office_id=self.rt.office_ids[office], client_uuid=uuid.uuid4(),
                                                   started_at=now, test=test)  # fmt: skip
            response.suspected_spam = spam
            self._answer(session, response, answers, now, complete=True)
            return response.id


# -- the oracle: every summary figure again from the raw rows ------------------------------------------------


def transaction_pass_from_rows(rt: Runtime, session: Session, scope: Scope, by: Sequence[str]) -> dict[Key, Volumes]:
    """What ``what_counts._transaction_pass`` gives, from the transactions joined to their invitation (the raw rows;
    intake makes at most one invitation per transaction, on the transaction's channel)."""
    tx = counted_transactions(rt, scope)
    cols = _group_columns(tx, by)
    inv = Invitation
    opportunity = and_(
        inv.sent_at.is_not(None),
        inv.state.not_in(FAILED_STATES),
        _not_test(scope.include_test, inv.test.is_(False), inv.channel.not_in(TEST_CHANNELS)),
    )
    query = (
        select(*cols, func.count(), func.sum(case((opportunity, 1), else_=0)))
        .select_from(tx)
        .outerjoin(inv, inv.transaction_id == tx.c.transaction_id)
        .group_by(*cols)
    )
    return {_key(row): Volumes(int(row[4]), int(row[5] or 0), 0) for row in session.execute(query)}


def response_pass_from_rows(
    session: Session, scope: Scope, by: Sequence[str], tags: Sequence[str] = RATING_TAGS
) -> dict[Key, tuple[Volumes, dict[str, Rating]]]:
    """What ``what_counts._response_pass`` gives, from the responses joined to their transaction (the raw rows; the
    ratings and answer counts still come from the tallies, proven equal to the answers apart)."""
    resp = counted_responses(scope)
    no_tx = resp.c.transaction_id.is_(None)
    opportunity = and_(resp.c.invitation_id.is_(None), or_(no_tx, resp.c.heard_first))
    return _response_sums(session, resp, by, tags, no_tx, opportunity)


def ratings_from_answers(
    session: Session, scope: Scope, by: Sequence[str] = ("channel",), tags: Sequence[str] = RATING_TAGS
) -> dict[Key, dict[str, Rating]]:
    """``what_counts.ratings`` computed from the raw ``answers`` rows."""
    resp = counted_responses(scope)
    cols = _group_columns(resp, by)
    query = (
        select(*cols, Answer.a11_tag, Answer.value, func.count())
        .select_from(resp)
        .join(Answer, Answer.response_id == resp.c.response_id)
        .where(Answer.a11_tag.in_(tags), Answer.value.is_not(None))
        .group_by(*cols, Answer.a11_tag, Answer.value)
    )
    out: dict[Key, dict[str, Rating]] = {}
    for row in session.execute(query):
        rating = out.setdefault(_key(row), {}).setdefault(row[4], Rating({}))
        rating.counts[int(row[5])] = rating.counts.get(int(row[5]), 0) + int(row[6])
    return out


def service_level_sums_from_rows(
    rt: Runtime, session: Session, scope: Scope, by: Sequence[str] = ("channel",)
) -> dict[Key, dict[str, tuple[float, int]]]:
    """``what_counts.service_level_sums`` from the counted transactions joined to their service-level indicators."""
    tx = counted_transactions(rt, scope)
    cols = _group_columns(tx, by)
    query = (
        select(*cols, ServiceLevel.name, func.sum(ServiceLevel.value), func.count())
        .select_from(tx)
        .join(ServiceLevel, ServiceLevel.transaction_id == tx.c.transaction_id)
        .where(reportable(ServiceLevel.value))
        .group_by(*cols, ServiceLevel.name)
    )
    out: dict[Key, dict[str, tuple[float, int]]] = {}
    for row in session.execute(query):
        out.setdefault(_key(row), {})[row[4]] = (float(row[5]), int(row[6]))
    return out


def database_triggers(connection: Any) -> dict[str, str]:
    """The triggers in the database (and on PostgreSQL their functions), by name: on SQLite the SQL stored for
    each; on PostgreSQL each trigger as the server prints it back and each function's body."""
    if connection.dialect.name == "postgresql":
        triggers = connection.exec_driver_sql(
            "SELECT 'trigger ' || tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
        )
        functions = connection.exec_driver_sql(
            "SELECT 'function ' || p.proname, p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
            "WHERE l.lanname = 'plpgsql' AND p.pronamespace = 'public'::regnamespace"
        )
        return {name: sql for name, sql in [*triggers, *functions]}
    triggers = connection.exec_driver_sql("SELECT 'trigger ' || name, sql FROM sqlite_master WHERE type = 'trigger'")
    return {name: sql for name, sql in triggers}
