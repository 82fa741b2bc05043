"""A catalog added to the locales folder is offered everywhere with no code edit (issue 17, item 3).

The app is pointed (``SURVEY_ENGINE_LOCALES_DIR``) at a temporary folder holding the shipped English and Spanish
catalogs and a French one compiled here with a handful of translated strings; the flows offer ``fr`` as a flow
author would. French is then offered, and named in its own words, on the start page, the web survey page's
language switch, the unsubscribe page, the kiosk and the dashboard; nothing in the code names it. Real stack:
Flask test client, SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from engine.app import create_app
from engine.channels import load_channels
from engine.common import i18n
from engine.common.errors import ConfigError
from engine.delivery.dispatch import Dispatcher
from engine.intake.submit import Intake
from engine.kiosk import devices as kiosk
from engine.runtime import Runtime, build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work
from engine.store.models import Invitation, InvitationState
from engine.surveys import tokens
from tests.conftest import ENCRYPTION, ROOT, SECRET, TESTS
from tests.helpers import FAST_SENDING, tx
from tests.stand_ins import ScriptedChannel

FRENCH = {
    "Survey delivery engine": "Moteur des enquêtes",
    "Submit your answers": "Envoyer vos réponses",
    "Unsubscribe from survey emails": "Se désabonner des courriels des enquêtes",
    "This kiosk is not enrolled": "Ce kiosque est sans inscription",
    "Sign in": "Se connecter",
}
SWITCH = re.compile(r'<nav aria-label="[^"]*" class="languages">(.*?)</nav>', re.S)


def switch(html: str) -> list[tuple[str, str]]:
    """The language switch of a page: (code, name) of each language it offers."""
    nav = SWITCH.search(html)
    assert nav is not None, "the page has no language switch"
    return re.findall(r'<a href="\?lang=([^"]+)" lang="[^"]+" hreflang="[^"]+">([^<]+)</a>', nav.group(1))


@pytest.fixture
def locales(tmp_path: Path) -> Iterator[Path]:
    """en and es as shipped, fr compiled here; the process's catalogs are the shipped ones again afterwards."""
    folder = tmp_path / "locales"
    for code in ("en", "es"):
        target = folder / code / "LC_MESSAGES"
        target.mkdir(parents=True)
        shutil.copy(ROOT / "locales" / code / "LC_MESSAGES" / "messages.mo", target / "messages.mo")
    french = Catalog(locale="fr", domain="messages")
    for msgid, msgstr in FRENCH.items():
        french.add(msgid, msgstr)
    (folder / "fr" / "LC_MESSAGES").mkdir(parents=True)
    with (folder / "fr" / "LC_MESSAGES" / "messages.mo").open("wb") as handle:
        write_mo(handle, french)
    yield folder
    i18n.use_locales(None)


@pytest.fixture
def french_flows(flows_dir: Path, tmp_path: Path) -> Path:
    """The test flows, each offering French as well (a flow author's one-line change)."""
    folder = tmp_path / "flows"
    folder.mkdir()
    for path in sorted(flows_dir.glob("*.yaml")):
        flow = yaml.safe_load(path.read_text(encoding="utf-8"))
        flow["languages"] = [*flow.get("languages", ["en"]), "fr"]
        (folder / path.name).write_text(yaml.safe_dump(flow, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture
def stack(
    database_url: str, locales: Path, french_flows: Path, tmp_path: Path, stub_channel: ScriptedChannel
) -> Iterator[tuple[Runtime, Any]]:
    settings = load_settings(
        {
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(TESTS / "config"),
            "SURVEY_ENGINE_FLOWS_DIR": str(french_flows),
            "SURVEY_ENGINE_LOCALES_DIR": str(locales),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
            **FAST_SENDING,
        }
    )
    channels = load_channels(settings)
    channels.register(stub_channel)
    rt = build_runtime(settings, channels=channels)
    rt.sync_catalog()
    app = create_app(runtime=rt)
    app.testing = True
    try:
        yield rt, app.test_client()
    finally:
        rt.engine.dispose()


def invitation_token(rt: Runtime, external_id: str, purpose: str = tokens.SURVEY, **fields: Any) -> str:
    """Report one transaction, let dispatch send it on the console, and issue a link token for its invitation."""
    with unit_of_work(rt.sessions) as session:
        (result,) = Intake(rt).submit(session, [tx(external_id, contact={"email": "fr@example.com"}, **fields)])
    assert result["decision"] == "scheduled", result
    Dispatcher(rt).drain(datetime.now(UTC) + timedelta(minutes=20))
    with unit_of_work(rt.sessions) as session:
        invitation = session.get(Invitation, uuid.UUID(result["invitation"]["id"]))
        assert invitation is not None and invitation.state is InvitationState.DELIVERED, invitation.state
        return tokens.issue(session, invitation.id, purpose=purpose)


def test_the_languages_offered_are_the_catalogs_in_the_configured_folder(stack, locales):
    assert i18n.locales_dir() == locales
    assert i18n.available_languages() == ["en", "es", "fr"]
    assert [i18n.language_name(code) for code in ("en", "es", "fr")] == ["English", "Español", "Français"]
    assert i18n.translate("fr", "Submit your answers") == "Envoyer vos réponses"


def test_the_start_page_offers_french_and_speaks_it(stack):
    _, client = stack
    english = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert switch(english) == [("es", "Español"), ("fr", "Français")]
    french = client.get("/", headers={"Accept-Language": "fr-CA,fr;q=0.9"}).get_data(as_text=True)
    assert '<html lang="fr">' in french and "Moteur des enquêtes" in french
    assert switch(french) == [("en", "English"), ("es", "Español")]


def test_the_survey_pages_switch_offers_french_and_the_form_speaks_it(stack):
    rt, client = stack
    path = f"/s/{invitation_token(rt, 'LANG-WEB', language='es')}"
    spanish = client.get(path).get_data(as_text=True)
    assert '<html lang="es">' in spanish and switch(spanish) == [("en", "English"), ("fr", "Français")]
    french = client.get(f"{path}?lang=fr").get_data(as_text=True)
    assert '<html lang="fr">' in french and "Envoyer vos réponses" in french
    assert switch(french) == [("en", "English"), ("es", "Español")]
    by_browser = client.get(path.replace("/s/", "/s/x"), headers={"Accept-Language": "fr"})
    assert by_browser.status_code == 404 and '<html lang="fr">' in by_browser.get_data(as_text=True)


def test_the_unsubscribe_page_offers_french(stack):
    rt, client = stack
    path = f"/u/{invitation_token(rt, 'LANG-U', purpose=tokens.UNSUBSCRIBE)}"
    english = client.get(path).get_data(as_text=True)
    assert switch(english) == [("es", "Español"), ("fr", "Français")]
    french = client.get(f"{path}?lang=fr").get_data(as_text=True)
    assert '<html lang="fr">' in french and "Se désabonner des courriels des enquêtes" in french


def test_the_kiosk_offers_french(stack):
    rt, client = stack
    refused = client.get("/kiosk", headers={"Accept-Language": "fr"})
    assert refused.status_code == 401
    assert '<html lang="fr">' in refused.get_data(
        as_text=True
    ) and "Ce kiosque est sans inscription" in refused.get_data(as_text=True)
    with unit_of_work(rt.sessions) as session:
        _, code = kiosk.register(session, rt, "kiosk-office", "NYC-01", languages=["fr", "en", "es"])
    with unit_of_work(rt.sessions) as session:
        _, credential = kiosk.enroll(session, code)
    client.set_cookie("__Host-survey-kiosk", credential)
    document = client.get("/kiosk/flow.json").get_json()
    assert document["languages"] == [
        {"code": "fr", "name": "Français"},
        {"code": "en", "name": "English"},
        {"code": "es", "name": "Español"},
    ]
    assert '<html lang="fr">' in client.get("/kiosk").get_data(as_text=True)


def test_the_dashboard_chooses_french(stack):
    _, client = stack
    page = client.get("/dashboard/sign-in", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<html lang="fr">' in html and "Se connecter" in html
    assert '<html lang="en">' in client.get("/dashboard/sign-in", headers={"Accept-Language": "de"}).get_data(
        as_text=True
    )


def test_a_locales_folder_that_is_not_there_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="SURVEY_ENGINE_LOCALES_DIR"):
        load_settings(
            {
                "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
                "SURVEY_ENGINE_LOCALES_DIR": str(tmp_path / "nowhere"),
            }
        )


def test_the_sms_reply_words_beside_the_catalogs_are_read(locales: Path):
    """A deployment's catalog folder with an ``sms/`` folder brings its own reply words: a French opt-out word and
    French number words are read with no code edit (the shipped words otherwise)."""
    from channels.sms import replies

    assert replies.keyword("arrêt") is None  # not a shipped word
    (locales / "sms").mkdir()
    for code in ("en", "es"):
        shutil.copy(ROOT / "locales" / "sms" / f"{code}.yaml", locales / "sms" / f"{code}.yaml")
    french = yaml.safe_load((ROOT / "locales" / "sms" / "en.yaml").read_text(encoding="utf-8"))
    french.update(language="fr", opt_out=["arrêt", "stop"], start=["reprise"], help=["aide"], yes=["oui"], no=["non"])
    french["numbers"] = {1: ["un"], 2: ["deux"], 3: ["trois"], 4: ["quatre"], 5: ["cinq"], 6: ["six"], 7: ["sept"]}
    french.update(thumbs_up=["pouce levé"], thumbs_down=["pouce baissé"], connectors=["et"], filler=[])
    (locales / "sms" / "fr.yaml").write_text(yaml.safe_dump(french, allow_unicode=True), encoding="utf-8")
    i18n.use_locales(locales)
    assert replies.keyword("ARRÊT") == (replies.Keyword.OPT_OUT, "fr")
    assert replies.vocabularies()["fr"].numbers["cinq"] == 5
    i18n.use_locales(None)
    assert replies.keyword("arrêt") is None and "fr" not in replies.vocabularies()
