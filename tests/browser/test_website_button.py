"""The website channel's button in Chromium: a page of an allowed origin (served from another local port, with the
README snippet pasted in) loads button.js; the dialog opens, is answered by keyboard alone, closes with Escape and
gives focus back; axe finds nothing serious; a page of another origin cannot frame the survey."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from engine.store.models import Answer, Response, WebsiteForm
from tests.browser.conftest import CHROMIUM_ARGS, axe_violations  # noqa: F401
from tests.conftest import TESTS
from tests.test_website import WEBSITE_SERVICES, settings  # noqa: F401 (the website services' settings)

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PAGES: dict[str, str] = {}  # path → HTML, served by both host servers


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path.split("?")[0])
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write((body or "not found").encode())

    def log_message(self, *args: Any) -> None:
        pass


def _serve() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="session")
def agency_sites() -> Iterator[tuple[str, str]]:
    """Two static sites on their own ports: the agency's (an allowed origin) and another one."""
    allowed, allowed_origin = _serve()
    other, other_origin = _serve()
    yield allowed_origin, other_origin
    allowed.shutdown()
    other.shutdown()


@pytest.fixture(scope="session")
def website_config_dir(tmp_path_factory: pytest.TempPathFactory, agency_sites: tuple[str, str]) -> Path:
    target = tmp_path_factory.mktemp("website-browser-config")
    services = yaml.safe_load((TESTS / "config" / "services.yaml").read_text())["services"]
    services.update(WEBSITE_SERVICES)
    services["web-feedback"] = {**services["web-feedback"], "website": {"origins": [agency_sites[0]],
                                                                         "min_fill_seconds": 0}}  # fmt: skip
    (target / "services.yaml").write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    (target / "offices.yaml").write_text((TESTS / "config" / "offices.yaml").read_text())
    return target


def readme_snippet(live_server: str, service: str) -> str:
    """The README's button snippet (its first ``html`` block naming button.js), its host and service filled in."""
    readme = (TESTS.parent / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```html\n")[1:]]
    snippet = next(b for b in blocks if "button.js" in b)
    return snippet.replace("https://surveys.example.gov", live_server).replace("/passport-renewal/", f"/{service}/")


def _host_page(live_server: str, lang: str = "en") -> str:
    # The README snippet, pasted as the agency's web team would.
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>Renew a passport</title></head>
<body><main><h1>Renew a passport</h1><p><a href="/apply">Apply online</a></p></main>
{readme_snippet(live_server, "web-feedback")}
</body></html>"""


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    # CSP is enforced (no bypass): the survey page's frame-ancestors is what this test is about.
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    yield context.new_page()
    context.close()


@pytest.fixture
def desktop_for_axe(browser: Any) -> Iterator[Any]:
    # axe-core is injected as an inline script, which the survey page's CSP would refuse.
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    yield context.new_page()
    context.close()


def _focused(page: Any) -> str:
    return str(page.evaluate("() => document.activeElement && document.activeElement.id"))


def _frame_focused(frame: Any) -> dict[str, str]:
    return dict(frame.evaluate("() => ({name: document.activeElement.name || '', type: document.activeElement.type "
                               "|| '', id: document.activeElement.id || ''})"))  # fmt: skip


def _tab_until(page: Any, frame: Any, wanted: Any, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if wanted(_frame_focused(frame)):
            return
    raise AssertionError("the keyboard never reached the element")


def test_the_button_opens_the_survey_in_a_dialog_answered_by_keyboard_alone(
    desktop_for_axe, live_server, agency_sites, runtime
):
    page = desktop_for_axe
    PAGES["/renew"] = _host_page(live_server)
    page.goto(agency_sites[0] + "/renew")
    button = page.get_by_role("button", name="Feedback")
    button.wait_for()
    # Reachable by keyboard: Tab from the page's own link lands on it.
    for _ in range(5):
        page.keyboard.press("Tab")
        if _focused(page) == "survey-feedback-button":
            break
    assert _focused(page) == "survey-feedback-button"
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Tell us how we did")
    dialog.wait_for()
    assert _focused(page) != "survey-feedback-button"
    frame = page.frame_locator("#survey-feedback-dialog iframe")
    frame.locator("h1").wait_for()
    inner = next(f for f in page.frames if "/f/web-feedback" in f.url)
    assert "embed=1" in inner.url and "from=" in inner.url
    assert axe_violations(page) == []
    assert axe_violations(inner) == []
    # Focus stays in the dialog (the page behind is inert).
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("() => document.getElementById('survey-feedback-dialog').contains(document.activeElement)")
    # Answer by keyboard: Tab to the first rating, Space picks its first answer, arrows move to "Agree" (4).
    _tab_until(page, inner, lambda f: f["name"] == "q-satisfaction")
    page.keyboard.press("Space")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    _tab_until(page, inner, lambda f: f["type"] == "submit")
    page.keyboard.press("Enter")
    frame.get_by_text("Thank you").first.wait_for()
    # Escape (pressed inside the survey) closes the dialog and focus goes back to the button.
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert _focused(page) == "survey-feedback-button"
    with runtime.sessions() as session:
        response = session.execute(select(Response)).scalar_one()
        values = dict(session.execute(select(Answer.question_id, Answer.value)).tuples().all())
        came_from = session.execute(select(WebsiteForm.page_url)).scalar_one()
    assert response.channel == "website" and values == {"satisfaction": 4}
    assert came_from == agency_sites[0] + "/renew"


def test_the_dialog_speaks_the_pages_language(desktop_for_axe, live_server, agency_sites):
    page = desktop_for_axe
    PAGES["/es/renovar"] = _host_page(live_server, lang="es-US")
    page.goto(agency_sites[0] + "/es/renovar")
    page.get_by_role("button", name="Opinión").click()
    page.frame_locator("#survey-feedback-dialog iframe").locator("html[lang=es]").wait_for(state="attached")
    page.get_by_role("button", name="Cerrar").click()
    assert _focused(page) == "survey-feedback-button"


def test_only_an_allowed_origin_can_frame_the_survey(desktop, live_server, agency_sites):
    page = desktop
    framing = (
        f'<!doctype html><html lang="en"><title>x</title><iframe title="survey" src="{live_server}/f/web-feedback">'
    )
    PAGES["/frame"] = framing + "</iframe></html>"
    # The allowed origin frames it (CSP enforced) ...
    page.goto(agency_sites[0] + "/frame")
    page.frame_locator("iframe").locator("form.survey").wait_for()
    # ... another origin gets a blocked frame, and button.js adds no button there.
    PAGES["/other"] = framing + "</iframe>" + _host_page(live_server) + "</html>"
    page.goto(agency_sites[1] + "/other")
    page.wait_for_timeout(1500)
    frame = page.frames[1]
    assert frame.url.startswith("chrome-error:"), frame.url  # Chromium's page for a refused frame
    assert frame.locator("form").count() == 0
    assert page.locator("#survey-feedback-button").count() == 0


def test_no_button_while_the_approval_is_expired_and_it_comes_back_when_renewed(desktop, live_server, agency_sites,
                                                                                 runtime):  # fmt: skip
    """Once the PRA approval lapses the page /f/<service> is a 410 'closed' page (SPEC §2 rule 9): the agency's
    pages keep their snippet, so button.js still answers 200 JavaScript (no console error there) but adds no
    button that would open a closed survey; it is not kept in the browser's cache, so the button is back at the
    next page view once the approval is renewed."""
    page = desktop
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    PAGES["/lapsed"] = _host_page(live_server)
    service = runtime.catalog.services["web-feedback"]
    yesterday = datetime.now(service.timezone).date() - timedelta(days=1)
    runtime.catalog.services["web-feedback"] = replace(
        service, pra=replace(runtime.catalog.pra_of(service), expiration_date=yesterday)
    )
    with page.expect_response(lambda r: r.url.endswith("/f/web-feedback/button.js")) as script:
        page.goto(agency_sites[0] + "/lapsed")
    reply = script.value
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/javascript")
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert page.locator("#survey-feedback-button").count() == 0, "no button opening a closed survey"
    assert page.request.get(f"{live_server}/f/web-feedback").status == 410
    assert errors == []
    assert reply.headers["cache-control"] == "no-cache"

    runtime.catalog.services["web-feedback"] = service  # the approval renewed
    page.goto(agency_sites[0] + "/lapsed")
    page.get_by_role("button", name="Feedback").wait_for()
    assert errors == []


def test_closing_the_dialog_half_answered_keeps_the_answers_and_a_sent_survey_opens_fresh(
    desktop, live_server, agency_sites, runtime
):
    """Closed by mistake (Escape, a click outside, Close), the dialog opens again as it was left; once the survey
    was sent, the next opening is a new survey (a new page load, whose answers are another response)."""
    page = desktop
    PAGES["/keep"] = _host_page(live_server)
    page.goto(agency_sites[0] + "/keep")
    button = page.get_by_role("button", name="Feedback")
    button.click()
    frame = page.frame_locator("#survey-feedback-dialog iframe")
    frame.locator("#q-satisfaction-4").check()
    frame.locator("#q-comments").fill("The renewal form\nwas clear.")
    page.get_by_role("button", name="Close").click()
    page.get_by_role("dialog").wait_for(state="hidden")
    button.click()
    assert frame.locator("#q-satisfaction-4").is_checked()
    assert frame.locator("#q-comments").input_value() == "The renewal form\nwas clear."
    with runtime.sessions() as session:
        assert session.execute(select(Response)).first() is None  # nothing sent by closing
    frame.get_by_role("button", name="Submit your answers").click()
    frame.get_by_text("Thank you").first.wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="hidden")
    button.click()
    frame.locator("form.survey").wait_for()
    assert not frame.locator("#q-satisfaction-4").is_checked()
    assert frame.locator("#q-comments").input_value() == ""
    with runtime.sessions() as session:
        texts = session.execute(select(Answer.text).where(Answer.text.is_not(None))).scalars().all()
    assert texts == ["The renewal form\nwas clear."]
