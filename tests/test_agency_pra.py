"""The agency's own PRA clearance (SPEC §2 rule 9, §5 ``pra``) on every surface, and what the public hears is true.

Two services share the ``a11-standard`` flow (OMB 1090-0011) but carry their own clearances: the Department of
State's (1405-0299, 2 minutes) and the Social Security Administration's (0960-0899, 1 minute). Each surface must
show the service's own control number, never the flow's, and say how long from that block's burden minutes with
the right plural form: the web page, the console and email invitation, the first SMS and HELP, the IVR opening,
the kiosk's flow.json; an expired own block decides ``pra_expired`` and is said at start-up and by
``flows validate``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml
from sqlalchemy import select

from channels.website.routes import new_form
from engine.api.auth import create_api_key
from engine.app import create_app, report_expired_flows
from engine.delivery.dispatch import Dispatcher
from engine.runtime import Runtime, build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work
from engine.store.models import Invitation, Response, Suppression, SuppressionReason
from tests import email_support, sms_support, twilio_support
from tests.conftest import ENCRYPTION, ROOT, SECRET
from tests.helpers import SSA_PRA, STATE_PRA, ago, tx, write_config
from tests.ivr_support import IvrStack, ivr_stack  # noqa: F401  (the ivr fixture)
from tests.kiosk_support import COOKIE, enrolled, post_batch, session_of
from tests.sms_support import created
from tests.twilio_support import ACCOUNT_SID, TwilioErrorStub

# The fixtures these tests take (pytest finds them by name in the module).
sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
twilio_stub = twilio_support.twilio_stub
shared_twilio_stub = sms_support.shared_twilio_stub
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
_shared_mail_stand_in = email_support._shared_mail_stand_in
webhook_signer = email_support.webhook_signer
prism_proxy = email_support.prism_proxy
_shared_prism_proxy = email_support._shared_prism_proxy
sendgrid_prism = email_support.sendgrid_prism
twilio_prism = twilio_support.twilio_prism

FLOW_NUMBER = "1090-0011"  # a11-standard's own
STATE, SSA = STATE_PRA["omb_control_number"], SSA_PRA["omb_control_number"]
LINK = re.compile(r"https://surveys\.example\.gov/s/([A-Za-z0-9_-]+)")
_COMMON: dict[str, Any] = {"service_type": "administrative", "flow": "a11-standard", "channels": ["console", "kiosk"],
                           "send_delay": "PT0S", "contact_cooldown_days": 0, "timezone": "UTC"}  # fmt: skip
SERVICES: dict[str, Any] = {
    "state-passports": {**_COMMON, "name": "Passport Renewal", "agency": "Department of State", "pra": STATE_PRA},
    "ssa-benefits": {**_COMMON, "name": "Benefits Contact Center", "agency": "Social Security Administration",
                     "service_type": "benefits", "pra": SSA_PRA},
    # An own clearance that expired, on a current flow; and a current own clearance on the expired flow.
    "own-expired": {**_COMMON, "name": "Expired Clearance", "agency": "Test Agency",
                    "channels": ["console", "kiosk", "website"],
                    "website": {"origins": ["https://www.example.gov"], "min_fill_seconds": 0},
                    "pra": {**SSA_PRA, "omb_control_number": "0960-0001", "expiration_date": "2024-01-31"}},
    "own-current": {**_COMMON, "name": "Current Clearance", "agency": "Test Agency", "flow": "expired-pra",
                    "pra": STATE_PRA},
    # A flow whose use_of_answers sentence the agency reworded.
    "own-words": {**_COMMON, "name": "Own Words", "agency": "Test Agency", "flow": "a11-own-words"},
}  # fmt: skip
OFFICES = {"NYC-01": {"name": "New York Passport Agency", "timezone": "America/New_York"}}


OWN_WORDS = "Your answers reach the office that served you; they never change a decision about your benefits."


@pytest.fixture
def agency(database_url: str, flows_dir: Path, tmp_path: Path) -> Iterator[Runtime]:
    flows = tmp_path / "flows"
    shutil.copytree(flows_dir, flows)
    own = yaml.safe_load((flows / "a11-standard.yaml").read_text())
    own["id"], own["messages"]["use_of_answers"] = "a11-own-words", {"default": OWN_WORDS}
    (flows / "a11-own-words.yaml").write_text(yaml.safe_dump(own, sort_keys=False))
    rt = _runtime(database_url, tmp_path, SERVICES, flows)
    rt.sync_catalog()
    yield rt
    rt.engine.dispose()


def _runtime(database_url: str, tmp_path: Path, services: dict[str, Any], flows: Path) -> Runtime:
    """A runtime on these services (and OFFICES) and the flows in ``flows``."""
    settings = load_settings({
        "SURVEY_ENGINE_DATABASE_URL": database_url, "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(write_config(tmp_path / "config", services, OFFICES)),
        "SURVEY_ENGINE_FLOWS_DIR": str(flows), "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION, "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
    })  # fmt: skip
    return build_runtime(settings)


def _client_and_key(rt: Runtime) -> tuple[Any, dict[str, str]]:
    app = create_app(runtime=rt)
    app.testing = True
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, f"pra-{uuid.uuid4().hex[:6]}", tuple(SERVICES), ("intake",))
    return app.test_client(), {"Authorization": f"Bearer {key}"}


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- console invitation, web page, pra_expired ------------------------------------------------------------------


def test_each_service_shows_its_own_control_number_and_minutes_in_the_invitation_and_on_the_web_page(agency, capsys):
    client, auth = _client_and_key(agency)
    for slug in ("state-passports", "ssa-benefits"):
        reply = client.post("/api/v1/transactions", json=tx(f"{slug}-1", slug, contact={"email": "p@example.gov"}),
                            headers=auth)  # fmt: skip
        assert reply.get_json()["decision"] == "scheduled", reply.get_json()
    Dispatcher(agency).drain(datetime.now(UTC) + timedelta(minutes=1))
    printed = capsys.readouterr().out
    blocks = {slug: block for block in printed.split("[console] ") for slug in ("state-passports", "ssa-benefits")
              if f"({slug}," in block}  # fmt: skip
    state, ssa = blocks["state-passports"], blocks["ssa-benefits"]
    assert f"OMB control number {STATE}" in state and "takes about 2 minutes" in state
    assert f"OMB control number {SSA}" in ssa and "takes about 1 minute." in ssa
    assert FLOW_NUMBER not in printed and "1 minutes" not in printed
    links = LINK.findall(printed)
    assert len(links) == 2
    pages = {}
    for token in links:
        page = _text(client.get(f"/s/{token}").get_data(as_text=True))
        pages["state" if "Passport Renewal" in page else "ssa"] = page
    assert f"OMB control number: {STATE}. Expires March 31, 2029." in pages["state"]
    assert "This survey is voluntary and takes about 2 minutes." in pages["state"]
    assert STATE_PRA["burden_statement"] in pages["state"]
    assert f"OMB control number: {SSA}. Expires September 30, 2028." in pages["ssa"]
    assert "This survey is voluntary and takes about 1 minute." in pages["ssa"]
    assert SSA_PRA["burden_statement"] in pages["ssa"]
    assert all(FLOW_NUMBER not in page for page in pages.values())
    # The flow's use_of_answers message stands in the footer (an agency words it in its flow).
    assert "They do not affect any benefit or decision about you." in pages["ssa"]


def test_the_effective_block_decides_pra_expired_whichever_way_round(agency, caplog):
    client, auth = _client_and_key(agency)
    expired = client.post("/api/v1/transactions", json=tx("E-1", "own-expired", contact={"email": "e@example.gov"}),
                          headers=auth).get_json()  # fmt: skip
    assert expired["decision"] == "pra_expired", expired
    current = client.post("/api/v1/transactions", json=tx("C-1", "own-current", contact={"email": "c@example.gov"}),
                          headers=auth).get_json()  # fmt: skip
    assert current["decision"] == "scheduled", current  # its flow's approval expired, its own is current
    with caplog.at_level(logging.WARNING, logger="survey_engine"):
        report_expired_flows(agency)
    loud = [(r.getMessage(), r.__dict__.get("service"), r.__dict__.get("omb_control_number"), r.__dict__.get("pra_of"))
            for r in caplog.records if r.levelno == logging.ERROR]  # fmt: skip
    assert set(loud) == {("PRA APPROVAL EXPIRED: nothing is sent for this service; transactions are decided pra_expired",
                         "own-expired", "0960-0001", "service")}  # fmt: skip
    # own-current is not named: its own clearance stands, not its flow's expired one


def test_the_start_up_log_reads_an_approval_s_last_day_in_the_service_s_time_zone_as_intake_does(
    database_url, flows_dir, tmp_path, caplog
):
    """The approval stands through its last day where the service is (rule 9). At any moment of the UTC day one of
    two services sits on a calendar day other than UTC's: one at UTC+14 (from 10:00 UTC it is tomorrow there), one
    at UTC-11 (before 11:00 UTC it is yesterday there). Each approval ends on the UTC day that differs: the
    start-up log says EXPIRED for exactly the services whose transactions intake decides ``pra_expired``."""
    utc_today = datetime.now(UTC).date()
    services = {
        "east": {**_COMMON, "name": "East", "agency": "Test Agency", "timezone": "Pacific/Kiritimati",
                 "pra": {**SSA_PRA, "expiration_date": utc_today.isoformat()}},
        "west": {**_COMMON, "name": "West", "agency": "Test Agency", "timezone": "Pacific/Pago_Pago",
                 "pra": {**SSA_PRA, "expiration_date": (utc_today - timedelta(days=1)).isoformat()}},
    }  # fmt: skip
    rt = _runtime(database_url, tmp_path, services, flows_dir)
    try:
        rt.sync_catalog()
        with caplog.at_level(logging.WARNING, logger="survey_engine"):
            report_expired_flows(rt)
        app = create_app(runtime=rt)
        app.testing = True
        client = app.test_client()
        with unit_of_work(rt.sessions) as session:
            auth = {"Authorization": f"Bearer {create_api_key(session, 'zones', tuple(services), ('intake',))}"}
        decided = {
            slug: client.post("/api/v1/transactions", json=tx(f"{slug}-1", slug, contact={"email": "p@example.gov"}),
                              headers=auth).get_json()["decision"]
            for slug in services
        }  # fmt: skip
    finally:
        rt.engine.dispose()
    refused = {slug for slug, decision in decided.items() if decision == "pra_expired"}
    loud = {r.__dict__.get("service") for r in caplog.records if r.getMessage().startswith("PRA APPROVAL EXPIRED")}
    assert loud == refused, (loud, decided)
    # ``flows validate`` judges each service's approval by the same day.
    checked = subprocess.run([sys.executable, "-m", "engine.cli", "flows", "validate"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, env={**os.environ, **{k: str(v) for k, v in {
                                 "SURVEY_ENGINE_INSTANCE_DIR": tmp_path / "cli", "SURVEY_ENGINE_DATABASE_URL": "",
                                 "SURVEY_ENGINE_CONFIG_DIR": tmp_path / "config",
                                 "SURVEY_ENGINE_FLOWS_DIR": flows_dir}.items()}})  # fmt: skip
    said = set(re.findall(r"services\.yaml: service '(\w+)': rule pra .* expired on", checked.stderr))
    assert said == refused, checked.stderr
    # Whatever the hour, one of the two is judged by a calendar day that is not UTC's.
    assert decided["east"] == "pra_expired" or decided["west"] == "scheduled", decided


def test_the_website_feedback_page_of_an_expired_clearance_takes_no_answers(agency):
    """A service whose PRA approval expired asks nobody (rule 9): its feedback page ``/f/<service>`` shows no form
    under the lapsed control number, and a form loaded before the lapse stores nothing when it is sent (410)."""
    app = create_app(runtime=agency)
    app.testing = True
    client = app.test_client()
    page = client.get("/f/own-expired")
    assert page.status_code == 410, page.status_code
    assert "<form" not in page.text and "0960-0001" not in page.text
    assert "This survey has closed" in page.text
    with app.test_request_context():
        form = new_form("own-expired")  # a genuine form token, as a page loaded before the lapse carried
    sent = client.post("/f/own-expired", data={**form, "q-satisfaction": "5", "q-trust": "4"})
    assert sent.status_code == 410, sent.status_code
    with agency.sessions() as session:
        assert session.execute(select(Response)).first() is None
    assert client.get("/f/state-passports").status_code == 404  # (no website channel: not listed, as before)


def test_a_kiosk_of_an_expired_clearance_shows_no_survey_and_keeps_no_answer_given_after_it(agency):
    """Rule 9 on the kiosk: once the approval that stands for its service expired, the tablet gets no flow to show
    (503, so the page says it cannot show the survey and asks again later) and a session answered after the
    expiration date is ``rejected`` with the reason (the device drops it), while another service's kiosk syncs."""
    client, _ = _client_and_key(agency)
    _, credential = enrolled(agency, "own-expired")
    client.set_cookie(COOKIE, credential, domain="localhost")
    document = client.get("/kiosk/flow.json")
    assert document.status_code == 503, document.status_code
    assert document.headers.get("Retry-After") and "0960-0001" not in document.text
    answered = post_batch(client, credential, [session_of([("satisfaction", 5), ("trust", 4)])])
    assert answered.status_code == 200, answered.text
    (result,) = answered.get_json()["results"]
    assert result["status"] == "rejected" and "PRA approval" in result["reason"], result
    _, current = enrolled(agency, "ssa-benefits")
    kept = post_batch(client, current, [session_of([("satisfaction", 5)])]).get_json()["results"]
    assert [r["status"] for r in kept] == ["stored"]
    with agency.sessions() as session:
        assert len(session.execute(select(Response)).all()) == 1


def test_dispatch_cancels_an_invitation_whose_own_clearance_expired_before_it_went_out(agency):
    client, auth = _client_and_key(agency)
    reply = client.post("/api/v1/transactions", json=tx("L-1", "ssa-benefits", contact={"email": "l@example.gov"}),
                        headers=auth).get_json()  # fmt: skip
    assert reply["decision"] == "scheduled"
    expiry = datetime(2028, 10, 1, 12, tzinfo=UTC)  # the day after SSA_PRA's expiration date
    with unit_of_work(agency.sessions) as session:  # as if it had been scheduled to go out that day
        invitation = session.execute(select(Invitation)).scalar_one()
        invitation.send_at, invitation.send_by = expiry - timedelta(minutes=1), expiry + timedelta(hours=1)
    Dispatcher(agency).drain(expiry)
    with agency.sessions() as session:
        invitation = session.execute(select(Invitation)).scalar_one()
    assert (invitation.state.value, invitation.reason) == ("cancelled", "pra_expired")


def test_a_survey_link_opened_after_the_clearance_expired_takes_no_answers(agency, capsys, tmp_path):
    """An email sent while the agency's approval stood, opened after it expired (the answer window runs on): the page
    shows no form under the lapsed control number and a form loaded before stores nothing (410, rule 9)."""
    client, auth = _client_and_key(agency)
    reply = client.post("/api/v1/transactions", json=tx("X-1", "ssa-benefits", contact={"email": "x@example.gov"}),
                        headers=auth)  # fmt: skip
    assert reply.get_json()["decision"] == "scheduled"
    Dispatcher(agency).drain(datetime.now(UTC) + timedelta(minutes=1))
    (token,) = LINK.findall(capsys.readouterr().out)
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', client.get(f"/s/{token}").text))
    # The same store, now configured with the approval lapsed (its expiration date has passed).
    lapsed_services = {**SERVICES, "ssa-benefits": {**SERVICES["ssa-benefits"],
                                                    "pra": {**SSA_PRA, "expiration_date": "2024-01-31"}}}  # fmt: skip
    settings = load_settings({
        "SURVEY_ENGINE_DATABASE_URL": agency.settings.database_url,
        "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(write_config(tmp_path / "lapsed", lapsed_services, OFFICES)),
        "SURVEY_ENGINE_FLOWS_DIR": str(tmp_path / "flows"), "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION, "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
    })  # fmt: skip
    lapsed = build_runtime(settings)
    try:
        lapsed.sync_catalog()
        app = create_app(runtime=lapsed)
        app.testing = True
        later = app.test_client()
        page = later.get(f"/s/{token}")
        assert page.status_code == 410, page.status_code
        assert "<form" not in page.text and SSA not in page.text
        sent = later.post(f"/s/{token}", data={**form, "q-satisfaction": "5", "q-trust": "4"})
        assert sent.status_code == 410, sent.status_code
        with lapsed.sessions() as session:
            assert session.execute(select(Response)).first() is None
    finally:
        lapsed.engine.dispose()


def test_the_use_of_answers_sentence_is_the_agencys_flow_wording(agency, capsys):
    client, auth = _client_and_key(agency)
    reply = client.post("/api/v1/transactions", json=tx("W-1", "own-words", contact={"email": "w@example.gov"}),
                        headers=auth)  # fmt: skip
    assert reply.get_json()["decision"] == "scheduled"
    Dispatcher(agency).drain(datetime.now(UTC) + timedelta(minutes=1))
    (token,) = LINK.findall(capsys.readouterr().out)
    page = _text(client.get(f"/s/{token}").get_data(as_text=True))
    assert OWN_WORDS in page and "They do not affect any benefit" not in page


# -- kiosk ------------------------------------------------------------------------------------------------------


def test_the_kiosk_shows_its_services_own_block_and_how_long(agency):
    client, _ = _client_and_key(agency)
    for slug, number, minutes, minutos in (("state-passports", STATE, "2 minutes", "2 minutos"),
                                          ("ssa-benefits", SSA, "1 minute.", "1 minuto.")):  # fmt: skip
        _, credential = enrolled(agency, slug)
        client.set_cookie(COOKIE, credential, domain="localhost")
        document = client.get("/kiosk/flow.json").get_json()
        english, spanish = document["text"]["en"], document["text"]["es"]
        assert english["pra"]["line"].startswith(f"OMB control number: {number}.")
        assert english["pra"]["burden"] == (STATE_PRA if slug == "state-passports" else SSA_PRA)["burden_statement"]
        assert english["ui"]["start_hint"].startswith(f"It takes about {minutes}"), english["ui"]["start_hint"]
        assert "voluntary" in english["ui"]["start_hint"]
        assert spanish["ui"]["start_hint"].startswith(f"Toma aproximadamente {minutos}"), spanish["ui"]["start_hint"]
        assert FLOW_NUMBER not in str(document)
        assert "about a minute" not in str(document)


# -- flows validate ---------------------------------------------------------------------------------------------


def _validate(config: Path, flows: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"), "SURVEY_ENGINE_DATABASE_URL": "",
           "SURVEY_ENGINE_SECRET_KEY": "", "SURVEY_ENGINE_ENCRYPTION_KEY": "",
           "SURVEY_ENGINE_CONFIG_DIR": str(config), "SURVEY_ENGINE_FLOWS_DIR": str(flows)}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "engine.cli", "flows", "validate"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_flows_validate_checks_every_configured_services_effective_block(tmp_path):
    flows = ROOT / "flows"
    services = {
        "state-passports": SERVICES["state-passports"],
        "own-expired": SERVICES["own-expired"],
        "no-burden": {**SERVICES["ssa-benefits"], "pra": {k: v for k, v in SSA_PRA.items() if k != "burden_statement"}},
        "two-figures": {**SERVICES["ssa-benefits"], "pra": {**SSA_PRA, "burden_minutes": 5}},
        "no-figure": {
            **SERVICES["ssa-benefits"],
            "pra": {
                **{k: v for k, v in SSA_PRA.items() if k != "burden_minutes"},
                "burden_statement": "Taking part is voluntary.",
            },
        },
    }
    result = _validate(write_config(tmp_path / "config", services, OFFICES), flows, tmp_path)
    assert result.returncode == 1, result.stdout
    errors = result.stderr
    assert "services.yaml: service 'own-expired': rule pra (5 CFR 1320.8(b)(3)): the PRA approval that stands for " \
           "it (its own, OMB 0960-0001) expired on 2024-01-31" in errors  # fmt: skip
    assert "service 'no-burden'" in errors and "burden_statement" in errors
    assert "service 'two-figures'" in errors and "burden_minutes 5 disagrees with the burden statement" in errors
    assert "service 'no-figure'" in errors and "says nowhere how long the survey takes" in errors
    assert "state-passports" not in errors
    # The shipped configuration: both demo services carry their own, current clearances.
    shipped = _validate(ROOT / "config", flows, tmp_path)
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stderr == ""


def test_the_demo_services_carry_their_own_distinct_clearances():
    from engine.catalog.services import load_catalog

    catalog = load_catalog(ROOT / "config", ROOT / "flows")
    numbers = {slug: catalog.pra_of(service).omb_control_number for slug, service in catalog.services.items()}
    assert numbers["passport-renewal"].startswith("1405-") and numbers["benefits-contact-center"].startswith("0960-")
    assert len(set(numbers.values())) == len(numbers)
    assert FLOW_NUMBER not in numbers.values()


# -- SMS (Twilio stand-in: the SDK's real requests) ---------------------------------------------------------------


def _body(stub: TwilioErrorStub, index: int = 0) -> str:
    method, _, body = stub.requests[index]
    assert method == "POST"
    return {k: v[0] for k, v in parse_qs(body).items()}["Body"]


def test_the_first_text_and_help_carry_the_services_own_number_and_minutes(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url)
    twilio_stub.script += [created(), created()]
    stack.schedule("S-1", "+12025550181", service="sms-state")
    stack.schedule("S-2", "+12025550182", service="sms-ssa")
    stack.dispatch()
    state, ssa = sorted((_body(twilio_stub, 0), _body(twilio_stub, 1)), key=lambda b: "Social" in b)
    # Who asks, why, voluntary, how long, the control number, how to stop.
    assert state.startswith("Department of State asks how your Passport Renewal went, to help improve it. "
                            f"Voluntary, about 2 minutes. OMB {STATE}. Reply STOP to opt out.")  # fmt: skip
    assert ssa.startswith("Social Security Administration asks how your Benefits Contact Center went, to help "
                          f"improve it. Voluntary, about 1 minute. OMB {SSA}. Reply STOP to opt out. "
                          "https://surveys.example.gov/s/")  # fmt: skip
    assert "follows" not in ssa  # link mode promises no text that never comes
    assert FLOW_NUMBER not in state + ssa
    help_state = stack.reply("+12025550181", "HELP")
    help_ssa = stack.reply("+12025550182", "HELP")
    assert f"OMB control number {STATE}, expires 2029-03-31. It takes about 2 minutes;" in help_state
    assert f"OMB control number {SSA}, expires 2028-09-30. It takes about 1 minute;" in help_ssa
    assert "1 minutes" not in help_ssa


def test_both_agencies_texts_pass_twilios_contract(sms_stack, twilio_prism):
    stack = sms_stack(twilio_prism)
    ids = [stack.schedule("P-1", "+12025550184", service="sms-state"),
           stack.schedule("P-2", "+12025550185", service="sms-ssa")]  # fmt: skip
    assert stack.dispatch().outcomes == {"sent": 2}
    assert all(stack.invitation(i).provider_id.startswith("SM") for i in ids)  # Prism's sids, from the contract


def test_the_spanish_first_text_says_the_same_in_spanish(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url)
    twilio_stub.script.append(created())
    stack.schedule("S-3", "+12025550183", service="sms-ssa", language="es")
    stack.dispatch()
    body = _body(twilio_stub)
    assert "Encuesta voluntaria de aproximadamente 1 minuto." in body and f"OMB {SSA}" in body and "ALTO" in body


# -- email (SendGrid stand-in: the SDK's real requests) -----------------------------------------------------------


def test_each_email_carries_its_services_own_block(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    stack.schedule("M-1", "state@example.com", service="email-state")
    stack.schedule("M-2", "ssa@example.com", service="email-ssa")
    stack.dispatch()
    sends = mail_stand_in.mail_sends()
    assert len(sends) == 2
    texts = {}
    for seen in sends:
        content = {c["type"]: c["value"] for c in seen.json()["content"]}
        plain = " ".join(content["text/plain"].split())
        texts["ssa" if "Social Security" in plain else "state"] = (plain, _text(content["text/html"]))
    for key, number, minutes, pra in (("state", STATE, "about 2 minutes", STATE_PRA), ("ssa", SSA, "about 1 minute.",
                                                                                          SSA_PRA)):  # fmt: skip
        for part in texts[key]:
            assert f"OMB control number: {number}." in part and f"OMB control number {number}." in part
            assert pra["burden_statement"] in part and minutes in part and "voluntary" in part
            assert FLOW_NUMBER not in part
            assert "They do not affect any benefit or decision about you." in part  # the flow's use_of_answers


def test_both_agencies_emails_pass_sendgrids_contract_with_their_own_numbers(email_stack, prism_proxy):
    stack = email_stack(prism_proxy.base_url)
    stack.schedule("PM-1", "state2@example.com", service="email-state")
    stack.schedule("PM-2", "ssa2@example.com", service="email-ssa")
    assert stack.dispatch().outcomes.get("sent") == 2
    sends = prism_proxy.mail_sends()
    assert {s.status for s in sends} == {202}
    numbers = {n for seen in sends for n in (STATE, SSA, FLOW_NUMBER) if n in seen.body.decode()}
    assert numbers == {STATE, SSA}


# -- IVR: the opening, the own control number, the stop key ----------------------------------------------------


def _daytime_now() -> datetime:
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC)
    local_hour = now.astimezone(ZoneInfo("America/New_York")).hour
    return now if 8 <= local_hour < 20 else now + timedelta(hours=(13 - local_hour) % 24)


def _outbound_call(
    ivr: IvrStack, service: str, external_id: str, phone: str, placed: list[Any], language: str | None = "en"
) -> Any:
    """An outbound call as the channel places it (the Calls create goes nowhere here: the invitation is marked as
    placed by hand), answered by a person. Without a language the call starts at the language menu."""
    body = {"id": external_id, "service": service, "completed_at": ago(minutes=5), "contact": {"phone": phone},
            "consent": {"voice": True}, **({"language": language} if language else {})}  # fmt: skip
    reported = ivr.report(body)
    assert reported["decision"] == "scheduled" and reported["invitation"]["channel"] == "ivr", reported
    sid = "CA" + uuid.uuid4().hex
    with unit_of_work(ivr.rt.sessions) as session:
        invitation = session.get(Invitation, uuid.UUID(reported["invitation"]["id"]))
        invitation.state, invitation.provider_id, invitation.sent_at = invitation.state.SENT, sid, datetime.now(UTC)
    call = ivr.call(sid=sid, caller="+12025550100", called=phone, direction="outbound-api", AnsweredBy="human")
    placed.append(reported["invitation"]["id"])
    return call.dial(f"/channels/ivr/voice?invitation={reported['invitation']['id']}")


def test_an_outbound_call_opens_with_who_why_voluntary_how_long_and_its_own_number(ivr):
    placed: list[Any] = []
    state = _outbound_call(ivr, "ivr-state", "V-1", "+12025550191", placed)
    ssa = _outbound_call(ivr, "ivr-ssa", "V-2", "+12025550192", placed)
    assert state.text.startswith("Hello, this is Department of State, calling about your recent Passport Renewal. "
                                 "Your answers help us improve this service. The survey is voluntary and takes "
                                 f"about 2 minutes. This survey is approved by OMB under control number {STATE}.")  # fmt: skip
    assert "To stop survey calls to this number, press 0 at any time." in state.text
    assert ssa.text.startswith("Hello, this is Social Security Administration, calling about your recent Benefits "
                               "Contact Center.")  # fmt: skip
    assert "takes about 1 minute." in ssa.text and f"control number {SSA}." in ssa.text
    assert FLOW_NUMBER not in state.text + ssa.text
    ssa.press("9")  # the full statement is the service's own
    assert ssa.text.startswith(SSA_PRA["burden_statement"])


@pytest.mark.parametrize("where", ["language-menu", "notice", "question"])
def test_the_stop_key_records_an_ivr_opt_out_at_once_says_goodbye_and_hangs_up(ivr, where):
    placed: list[Any] = []
    language = None if where == "language-menu" else "en"
    call = _outbound_call(ivr, "ivr-state", f"X-{where}", "+12025550193", placed, language)
    if where == "language-menu":
        assert "For English, press 1." in call.text
    if where == "question":
        call.wait()  # to the first question
        call.press("4")  # satisfaction answered
    call.press("0")
    assert call.engine_hung_up
    assert "You will get no more survey calls at this number. Goodbye." in call.text
    suppressions = ivr.rows(Suppression)
    assert [(s.channel, s.reason, s.source) for s in suppressions] == [("ivr", SuppressionReason.OPTED_OUT, "ivr")]
    response = ivr.rows(Response)[0]
    assert response.completed_at is None and (response.state or {}).get("ended") == "opted_out"
    # The number gets no further survey call: a new transaction finds no channel it may use.
    again = ivr.report({"id": f"X-{where}-again", "service": "ivr-state", "completed_at": ago(minutes=5),
                        "contact": {"phone": "+12025550193"}, "consent": {"voice": True}})  # fmt: skip
    assert again["decision"] == "opted_out", again


def test_a_post_call_survey_names_the_agency_but_offers_no_stop_key(ivr):
    from tests.ivr_support import POST_CALL_NUMBER

    call = ivr.call(caller="+12025550194", called=POST_CALL_NUMBER)
    call.dial(f"/channels/ivr/voice?service=ivr-standard&transaction=PC-{uuid.uuid4().hex[:6]}&language=en")
    assert call.text.startswith("Department of State would like your feedback on your recent Passport Renewal.")
    assert "press 0" not in call.text
    call.press("0")  # not a stop key here: the notice moves on to the first question
    assert not call.engine_hung_up and ivr.rows(Suppression) == []


def test_the_stop_key_is_signed_like_every_webhook(ivr):
    """An unsigned request pressing 0 changes nothing (the webhook's signature check comes first)."""
    placed: list[Any] = []
    call = _outbound_call(ivr, "ivr-ssa", "U-1", "+12025550195", placed)
    action = call.gather.get("action")
    reply = ivr.client.post(action.replace("https://surveys.example.gov", ""),
                            data={"CallSid": call.sid, "AccountSid": ACCOUNT_SID, "Digits": "0"})  # fmt: skip
    assert reply.status_code == 403 and ivr.rows(Suppression) == []
    assert ivr.rows(Response)[0].completed_at is None and (ivr.rows(Response)[0].state or {}).get("ended") is None


def test_an_outbound_call_with_a_language_menu_names_the_agency_before_it(ivr):
    reported = ivr.report({"id": "M-1", "service": "ivr-ssa", "completed_at": ago(minutes=5),
                           "contact": {"phone": "+12025550196"}, "consent": {"voice": True}})  # fmt: skip
    sid = "CA" + uuid.uuid4().hex
    with unit_of_work(ivr.rt.sessions) as session:
        invitation = session.get(Invitation, uuid.UUID(reported["invitation"]["id"]))
        invitation.state, invitation.provider_id, invitation.sent_at = invitation.state.SENT, sid, datetime.now(UTC)
    call = ivr.call(sid=sid, called="+12025550196", direction="outbound-api", AnsweredBy="human")
    call.dial(f"/channels/ivr/voice?invitation={reported['invitation']['id']}")
    assert call.text.startswith("Hello, this is Social Security Administration, calling about your recent Benefits "
                                "Contact Center. For English, press 1.")  # fmt: skip
    call.press("2")
    assert call.text.startswith(
        "Hola, le llama Administración del Seguro Social sobre su trámite reciente: Centro de Atención de Beneficios. "
        "Sus respuestas nos ayudan a mejorar este servicio. La encuesta es voluntaria y toma aproximadamente 1 minuto. "
        f"Esta encuesta está aprobada por la OMB con el número de control {SSA}. "
    )
    assert "Para no recibir más llamadas de encuestas en este número, oprima 0 en cualquier momento." in call.text
