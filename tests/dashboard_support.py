"""The dashboard's test stack: its own services, the real runtime and app, accounts, and a quarter built by hand.

* ``DashboardEmail`` — a stand-in for the email provider, registered through the channel registry under the name
  ``email`` (the SendGrid channel itself is not loaded): it accepts every message and remembers it, so invitations
  go out through the real dispatcher and count as ``email`` opportunities in the A-11 file.
* ``dash_runtime`` / ``dash_app`` / ``dash_client`` — the engine on the test database (both backends through
  ``database_url``), with this module's services (``dash-email``, ``dash-drivers``, ``dash-other``).
* :func:`build_quarter` — a small quarter fed through the real intake, dispatcher and survey-session engine; the
  figures a person would compute by hand from it are in :data:`EXPECTED`.
* :func:`make_account` — an account whose password is set through its one-time link; :func:`sign_in`.
* :func:`table` — the cells of one ``<table id=…>`` of a page, as text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from channels.email import EmailChannel
from engine.app import create_app
from engine.channels import load_channels
from engine.dashboard.accounts import create_user, use_token
from engine.delivery.dispatch import Dispatcher
from engine.intake.submit import Intake
from engine.runtime import Runtime, build_runtime
from engine.settings import Settings, load_settings
from engine.store.db import unit_of_work, utcnow
from engine.store.models import ContactKind, Invitation, Transaction
from engine.surveys.sessions import Given, SurveySessions
from tests.helpers import FAST_SENDING, write_config
from tests.stand_ins import ScriptedChannel

PUBLIC_URL = "https://surveys.example.gov"
SECRET = "dashboard-test-secret-key-that-is-long-enough-01234"
ENCRYPTION = "dashboard-test-encryption-key-that-is-long-enough-987"
PASSWORD = "violet-harbor-lantern-42"
_COMMON = {
    "agency": "Department of State",
    "service_type": "administrative",
    "send_delay": "PT0S",
    "contact_cooldown_days": 0,
    "timezone": "America/New_York",
}
SERVICES = {
    "dash-email": {**_COMMON, "name": "Passport Renewal", "flow": "a11-standard", "channels": ["email", "console"]},
    "dash-drivers": {**_COMMON, "name": "Benefits Line", "flow": "a11-drivers", "channels": ["email"]},
    "dash-other": {**_COMMON, "name": "Other Service", "agency": "Other Agency", "flow": "a11-standard",
                   "channels": ["email"]},
}  # fmt: skip
OFFICES = {
    "NYC-01": {"name": "New York Passport Agency", "timezone": "America/New_York"},
    "HNL-01": {"name": "Honolulu Passport Agency", "timezone": "Pacific/Honolulu"},
}


class DashboardEmail(ScriptedChannel):
    """The email provider's stand-in: every message accepted (``sent``), nothing else to script."""

    name: ClassVar[str] = "email"
    contact_kinds: ClassVar[tuple[ContactKind, ...]] = (ContactKind.EMAIL,)
    consent: ClassVar[str | None] = None
    quiet_hours: ClassVar[bool] = False
    suppressed_by: ClassVar[tuple[str, ...] | None] = ("email",)
    a11_channel: ClassVar[str | None] = EmailChannel.a11_channel
    label: ClassVar[str] = EmailChannel.label
    suppresses_by: ClassVar[ContactKind | None] = ContactKind.EMAIL
    reminds: ClassVar[bool] = EmailChannel.reminds


@pytest.fixture(scope="session")
def dash_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("dashboard-config"), SERVICES, OFFICES)


@pytest.fixture
def dash_settings(database_url: str, flows_dir: Path, dash_config_dir: Path, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(dash_config_dir),
            "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
            "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
            **FAST_SENDING,
        }
    )


@pytest.fixture
def dash_runtime(dash_settings: Settings) -> Iterator[Runtime]:
    channels = load_channels(dash_settings, entry_point_names=["console"])
    channels.register(DashboardEmail())
    rt = build_runtime(dash_settings, channels=channels)
    rt.sync_catalog()
    yield rt
    rt.engine.dispose()


@pytest.fixture
def dash_app(dash_runtime: Runtime) -> Any:
    application = create_app(runtime=dash_runtime)
    application.testing = True
    return application


@pytest.fixture
def dash_client(dash_app: Any) -> Any:
    return dash_app.test_client()


# -- accounts ---------------------------------------------------------------------------------------------------


def make_account(rt: Runtime, email: str, services: tuple[str, ...], password: str | None = PASSWORD) -> str:
    """Create an account and (unless ``password`` is None) set its password through its link; return the link."""
    with unit_of_work(rt.sessions) as session:
        link = create_user(session, email, services, rt.settings.public_url)
    if password is not None:
        with unit_of_work(rt.sessions) as session:
            assert use_token(session, link_token(link.url), password) is not None
    return link.url


def link_token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: Any, email: str, password: str = PASSWORD, address: str = "127.0.0.1") -> Any:
    page = client.get("/dashboard/sign-in", environ_base={"REMOTE_ADDR": address})
    return client.post("/dashboard/sign-in", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
                       environ_base={"REMOTE_ADDR": address})  # fmt: skip


# -- a quarter built through the real engine -------------------------------------------------------------------

# dash-email: 6 counted transactions (4 NYC-01, 2 HNL-01) and 2 test ones; every one invited by email.
# Answers (satisfaction, trust, effectiveness, comment) of 4 counted invitations (answered counts as delivered); a 5th counted invitation is opened and left
# without an answer (a started response that is no respondent); one test invitation is answered too.
EMAIL_ANSWERS = [  # office, satisfaction, trust, effectiveness, comment
    ("NYC-01", 5, 4, 4, "Quick and kind. Call me at (202) 555-0199 or write to pat@example.com"),
    ("NYC-01", 4, 4, None, None),
    ("NYC-01", 2, 1, None, "Too slow."),
    ("HNL-01", 5, 3, 4, None),
]
TEST_ANSWER = (1, 1, "test data: must never show in the counted view")
# dash-drivers: 3 counted transactions, all answered: thumbs up + 2 positive drivers, up + 1, down + 2 negative.
DRIVER_ANSWERS = [
    (5, ["effectiveness", "ease"], None),
    (5, ["ease"], None),
    (1, None, ["efficiency", "ease"]),
]
EXPECTED = {
    "dash-email": {
        "customers": 6, "opportunities": 6, "respondents": 4, "response_rate": "67\u00a0%",
        "funnel": {"Transactions": 6, "Sampled": 6, "Sent": 6, "Delivered": 4, "Started": 4, "Completed": 4},
        # satisfaction points 5,4,2,5: n 4, agree 3 → 75 %, mean 4.00; trust 4,4,1,3: n 4, agree 2 → 50 %, 3.00
        "satisfaction": (4, "75\u00a0%", "4.00"), "trust": (4, "50\u00a0%", "3.00"),
        "offices": {"NYC-01": (4, 4, 3), "HNL-01": (2, 2, 1)},  # customers, opportunities, respondents
        "comments": ["Too slow.", "Quick and kind. Call me at [phone] or write to [email]"],
    },
    "dash-drivers": {
        "customers": 3, "opportunities": 3, "respondents": 3,
        "trust": (3, "67\u00a0%"),
        "drivers": {"Effectiveness": (1, 0), "Ease": (2, 1), "Efficiency": (0, 1), "Transparency": (0, 0)},
    },
}  # fmt: skip


def _intake(rt: Runtime, slug: str, items: list[dict[str, Any]]) -> None:
    with unit_of_work(rt.sessions) as session:
        results = Intake(rt).submit(session, items, None, source="api")
    assert [r["decision"] for r in results] == ["scheduled"] * len(items), results


def _tx(slug: str, n: int, office: str | None, test: bool = False) -> dict[str, Any]:
    return {"id": f"{slug}-{'T' if test else 'C'}{n}-{uuid.uuid4().hex[:6]}", "service": slug,
            "completed_at": (utcnow() - timedelta(minutes=10)).isoformat(), "office": office,
            "contact": {"email": f"customer-{uuid.uuid4().hex[:8]}@example.com"}, "test": test}  # fmt: skip


def _invitations(rt: Runtime, slug: str, test: bool) -> list[Invitation]:
    with rt.sessions() as session:
        return list(
            session.execute(
                select(Invitation).join(Transaction, Transaction.id == Invitation.transaction_id)
                .where(Transaction.service_id == rt.service_ids[slug], Transaction.test.is_(test))
                .order_by(Transaction.external_id)
            ).scalars()
        )  # fmt: skip


def _answer(rt: Runtime, invitation_id: Any, values: dict[str, Given]) -> None:
    sessions = SurveySessions(rt)
    with unit_of_work(rt.sessions) as session:
        invitation = session.get(Invitation, invitation_id)
        assert invitation is not None
        response = sessions.start_for_invitation(session, invitation, "en")
        flow = sessions.flow_of(response)
        for question_id, given in values.items():
            sessions.record(session, response, flow.question(question_id), given)
        if values:
            sessions.complete(session, response)


def build_quarter(rt: Runtime) -> None:
    """The data of :data:`EXPECTED`, fed through intake, the dispatcher and the survey-session engine."""
    offices = [office for office, *_ in EMAIL_ANSWERS] + ["NYC-01", "HNL-01"]
    _intake(rt, "dash-email", [_tx("dash-email", n, office) for n, office in enumerate(offices)])
    _intake(rt, "dash-email", [_tx("dash-email", n, "NYC-01", test=True) for n in range(2)])
    _intake(rt, "dash-drivers", [_tx("dash-drivers", n, "NYC-01") for n in range(3)])
    Dispatcher(rt).drain()
    counted = _invitations(rt, "dash-email", test=False)
    by_office: dict[str, list[Invitation]] = {}
    for invitation in counted:
        with rt.sessions() as session:
            tx = session.get(Transaction, invitation.transaction_id)
            assert tx is not None and invitation.state.value == "sent"
            code = next(c for c, i in rt.office_ids.items() if i == tx.office_id)
        by_office.setdefault(code, []).append(invitation)
    for office, satisfaction, trust, effectiveness, comment in EMAIL_ANSWERS:
        invitation = by_office[office].pop(0)
        values = {"satisfaction": Given(value=satisfaction), "trust": Given(value=trust)}
        if effectiveness:
            values["effectiveness"] = Given(value=effectiveness)
        if comment:
            values["comments"] = Given(text=comment)
        _answer(rt, invitation.id, values)
    _answer(rt, by_office["NYC-01"].pop(0).id, {})  # opened, never answered
    satisfaction, trust, comment = TEST_ANSWER
    _answer(rt, _invitations(rt, "dash-email", test=True)[0].id, {"satisfaction": Given(value=satisfaction),
            "trust": Given(value=trust), "comments": Given(text=comment)})  # fmt: skip
    for invitation, (thumb, positive, negative) in zip(_invitations(rt, "dash-drivers", False), DRIVER_ANSWERS,
                                                      strict=True):  # fmt: skip
        values = {"trust": Given(value=thumb)}
        if positive:
            values["went_well"] = Given(choices=tuple(positive))
        if negative:
            values["could_be_better"] = Given(choices=tuple(negative))
        _answer(rt, invitation.id, values)


# -- reading pages ----------------------------------------------------------------------------------------------


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: str | None = None
        self.cell: list[str] | None = None
        self.row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.current = dict(attrs).get("id") or f"table-{len(self.tables)}"
            self.tables[self.current] = []
        elif tag == "tr" and self.current:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(re.sub(r"[ \t\r\n]+", " ", "".join(self.cell)).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None and self.current:
            self.tables[self.current].append(self.row)
            self.row = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table(html: str, table_id: str) -> list[list[str]]:
    """The rows (header rows included) of ``<table id=table_id>``, each cell's text with runs of spaces and newlines
    collapsed (no-break spaces are kept)."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables[table_id]


def rows_by_first_cell(html: str, table_id: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table(html, table_id)[1:] if row}
