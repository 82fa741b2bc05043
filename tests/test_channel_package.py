"""A channel is one package and one entry point (issue 17): the tests' own carrier-pigeon channel
(tests/pigeon_channel), installed only by a ``*.dist-info`` with an ``entry_points.txt`` on ``sys.path`` — no edit
to the engine — is dispatched, paced, suppressed, reported under its A-11 name and shown on the dashboard by its
label, and its flow wording key is accepted. Without the folder on the path, the engine knows no pigeon."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from sqlalchemy import select

from engine.api.auth import create_api_key
from engine.app import create_app
from engine.catalog.services import load_catalog
from engine.channels import ENTRY_POINT_GROUP, installed_channels, load_channels
from engine.common.errors import ConfigError
from engine.delivery.dispatch import Dispatcher
from engine.reporting.fiscal import fiscal_quarter
from engine.runtime import Runtime, build_runtime
from engine.settings import Settings, load_settings
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Invitation, SendPacing, Transaction
from engine.surveys.flow_rules import check_flow
from engine.surveys.flows import parse_flow
from engine.surveys.sessions import Given, SurveySessions
from tests.conftest import ENCRYPTION, ROOT, SECRET
from tests.dashboard_support import make_account, rows_by_first_cell, sign_in
from tests.helpers import FAST_SENDING, write_config
from tests.pigeon_channel import LOFT, PigeonChannel

SERVICE = "pigeon-post"
SERVICES = {
    SERVICE: {
        "name": "Pigeon Post",
        "agency": "Department of Lofts",
        "service_type": "administrative",
        "flow": "a11-standard",
        "channels": ["pigeon"],
        "send_delay": "PT0S",
        "contact_cooldown_days": 0,
        "timezone": "America/New_York",
    }
}
ZONE = ZoneInfo("America/New_York")


def _install(folder: Path) -> Path:
    """A distribution's metadata declaring the pigeon under the channels' entry-point group, as pip would write it."""
    info = folder / "pigeon_channel-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pigeon-channel\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\npigeon = tests.pigeon_channel:PigeonChannel\n")
    return folder


@pytest.fixture
def pigeon_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(_install(tmp_path / "site")))
    yield


def _settings(database_url: str, flows_dir: Path, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(write_config(tmp_path / "config", SERVICES, {})),
            "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
            "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
            **FAST_SENDING,  # the shipped channels' rates: none names the pigeon, which keeps its own default
        }
    )


@pytest.fixture
def pigeon_settings(database_url: str, flows_dir: Path, tmp_path: Path) -> Settings:
    return _settings(database_url, flows_dir, tmp_path)


@pytest.fixture
def config_only(flows_dir: Path, tmp_path: Path) -> Settings:
    """Settings for reading the configuration alone (the database is never opened)."""
    return _settings(f"sqlite:///{tmp_path / 'unused.db'}", flows_dir, tmp_path)


@pytest.fixture
def pigeon_runtime(pigeon_installed: None, pigeon_settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(pigeon_settings, channels=load_channels(pigeon_settings))
    rt.sync_catalog()
    yield rt
    rt.engine.dispose()


@pytest.fixture
def pigeon_client(pigeon_runtime: Runtime) -> Any:
    app = create_app(runtime=pigeon_runtime)
    app.testing = True
    return app.test_client()


def _intake(client: Any, auth: dict[str, str], email: str) -> dict[str, Any]:
    body = {"id": f"P-{uuid.uuid4().hex[:8]}", "service": SERVICE, "contact": {"email": email},
            "completed_at": (utcnow() - timedelta(minutes=10)).isoformat()}  # fmt: skip
    answer = client.post("/api/v1/transactions", json=body, headers=auth)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.get_json())


def _state(rt: Runtime, invitation_id: str) -> tuple[str, str | None]:
    with rt.sessions() as session:
        invitation = session.get(Invitation, uuid.UUID(invitation_id))
        assert invitation is not None
        return invitation.state.value, invitation.reason


def _answer(rt: Runtime, invitation_id: str) -> None:
    sessions = SurveySessions(rt)
    with unit_of_work(rt.sessions) as session:
        invitation = session.get(Invitation, uuid.UUID(invitation_id))
        assert invitation is not None
        response = sessions.start_for_invitation(session, invitation, "en")
        flow = sessions.flow_of(response)
        sessions.record(session, response, flow.question("satisfaction"), Given(value=5))
        sessions.record(session, response, flow.question("trust"), Given(value=4))
        sessions.complete(session, response)


def test_a_channel_package_is_dispatched_suppressed_reported_and_shown(pigeon_runtime, pigeon_client):
    rt, client = pigeon_runtime, pigeon_client
    pigeon = rt.channels.get("pigeon")
    assert isinstance(pigeon, PigeonChannel)
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, "loft-keeper", (SERVICE,), ("intake", "reports"))
    auth = {"Authorization": f"Bearer {key}"}

    # Dispatched: the invitation goes to the pigeon, paced under the sender it names.
    first = _intake(client, auth, "ada@example.com")
    assert (first["decision"], first["invitation"]["channel"]) == ("scheduled", "pigeon"), first
    assert Dispatcher(rt).drain().handed == 1
    assert [(str(o.invitation_id), o.address, o.contact_kind.value) for o in pigeon.handed] == [
        (first["invitation"]["id"], "ada@example.com", "email")
    ]
    assert _state(rt, first["invitation"]["id"])[0] == "sent"
    with rt.sessions() as session:
        paced = session.execute(select(SendPacing.channel, SendPacing.sender)).all()
    assert [tuple(row) for row in paced] == [("pigeon", LOFT)]

    # Suppressed: an opt-out on the pigeon (it reaches an email) cancels the queued invitation and refuses the next.
    queued = _intake(client, auth, "grace@example.com")
    assert queued["decision"] == "scheduled"
    opt_out = client.post("/api/v1/opt-outs", json={"email": "grace@example.com", "channel": "pigeon"}, headers=auth)
    assert opt_out.status_code == 201, opt_out.text
    assert [s["channel"] for s in opt_out.get_json()["suppressions"]] == ["pigeon"]
    wrong_kind = client.post("/api/v1/opt-outs", json={"phone": "+12025550123", "channel": "pigeon"}, headers=auth)
    assert wrong_kind.status_code == 422 and "not reached on pigeon" in wrong_kind.text
    Dispatcher(rt).drain()
    assert _state(rt, queued["invitation"]["id"]) == ("cancelled", "opted_out")
    assert len(pigeon.handed) == 1
    assert _intake(client, auth, "grace@example.com")["decision"] == "opted_out"

    # Reported: the answered pigeon invitation lands in the A-11 row of the pigeon's A-11 name.
    _answer(rt, first["invitation"]["id"])
    with rt.sessions() as session:
        customers = len(session.execute(select(Transaction.id)).all())
    quarter = fiscal_quarter(utcnow() - timedelta(minutes=10), ZONE)
    report = client.get(f"/api/v1/reports/a11?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
                        f"&service={SERVICE}&format=json", headers=auth)  # fmt: skip
    assert report.status_code == 200, report.text
    rows = report.get_json()["rows"]
    assert [r["channel"] for r in rows] == ["email"]
    (row,) = rows
    assert (row["volume_of_customers"], row["volume_of_customers_provided_survey_opportunity"],
            row["volume_of_respondents"], row["satisfaction_5"]) == (customers, 1, 1, 1)  # fmt: skip
    assert customers == 3

    # Shown: the dashboard names the channel by its label, with the figures of the A-11 row.
    make_account(rt, "keeper@example.gov", (SERVICE,))
    assert sign_in(client, "keeper@example.gov").status_code == 302
    page = client.get(f"/dashboard/services/{SERVICE}?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}")
    assert page.status_code == 200
    by_channel = rows_by_first_cell(page.text, "table-channel")
    assert list(by_channel) == ["Carrier pigeon"]
    assert [int(c) for c in by_channel["Carrier pigeon"][:3]] == [customers, 1, 1]


def _accepts(document: dict[str, Any], schema: str, body: dict[str, Any]) -> bool:
    """Whether the served document's ``schema`` accepts ``body`` (its ``$ref``s resolved within the document)."""
    wrapped = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    return Draft202012Validator(wrapped).is_valid(body)


def test_the_served_openapi_document_lists_the_pigeon_among_the_opt_out_channels(pigeon_client):
    document = pigeon_client.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert document["components"]["schemas"]["SuppressionChannel"]["enum"] == ["email", "ivr", "pigeon", "sms"]
    for schema in ("OptOutRequest", "OptOutRestoreRequest"):
        restore = {"reason": "asked again"} if schema == "OptOutRestoreRequest" else {}
        assert _accepts(document, schema, {"email": "ada@example.com", "channel": "pigeon", **restore})
        assert not _accepts(document, schema, {"phone": "+12025550123", "channel": "pigeon", **restore})
        assert _accepts(document, schema, {"phone": "+12025550123", "channel": "ivr", **restore})
        assert not _accepts(document, schema, {"email": "ada@example.com", "channel": "owl", **restore})


def test_without_the_package_the_opt_out_channels_are_the_shipped_ones(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["components"]["schemas"]["SuppressionChannel"]["enum"] == ["email", "ivr", "sms"]
    assert not _accepts(document, "OptOutRequest", {"email": "ada@example.com", "channel": "pigeon"})


def _flow_with_pigeon_wording() -> Any:
    data = yaml.safe_load((ROOT / "flows" / "a11-standard.yaml").read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    question = next(q for q in data["questions"] if q["id"] == "comments")
    question["wording"] = {"pigeon": "Tie a note to the pigeon's leg with anything you want to tell us."}
    return parse_flow(data, "pigeon.yaml")


def test_the_engine_learns_the_pigeon_from_its_package_alone(pigeon_installed, config_only):
    assert installed_channels()["pigeon"] is PigeonChannel
    problems, _ = check_flow(_flow_with_pigeon_wording(), utcnow().date())
    assert problems == []
    catalog = load_catalog(config_only.config_dir, config_only.flows_dir, load_channels(config_only).names())
    assert catalog.services[SERVICE].channels == ("pigeon",)


def test_without_the_package_the_engine_knows_no_pigeon(config_only):
    assert "pigeon" not in installed_channels()
    problems, _ = check_flow(_flow_with_pigeon_wording(), utcnow().date())
    assert any("unknown wording channel 'pigeon'" in p for p in problems), problems
    with pytest.raises(ConfigError, match="unknown channels pigeon"):
        load_catalog(config_only.config_dir, config_only.flows_dir, load_channels(config_only).names())
