"""The kiosk page (Chromium, a tablet with touch) in the field: a visitor who taps twice (the page must not record one
question twice, or the server refuses the whole session as "answered twice" and every answer of that visitor is
lost; buttons have ``touch-action: manipulation``, no double-tap zoom, so a quick double tap is two clicks), and a
server that is down when the kiosk reloads its page (its twelve-hourly reload, or a reboot)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.kiosk_support import register, stored

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
WAIT = 20_000


@pytest.fixture
def tablet(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1180, "height": 820}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, bypass_csp=True)  # fmt: skip
    yield context
    context.close()


def _enrolled_page(tablet: Any, live_server: str, runtime: Any) -> Any:
    _, code = register(runtime, service="kiosk-quick")
    page = tablet.new_page()
    page.goto(f"{live_server}/kiosk/enroll/{code}")
    page.get_by_role("button", name="Enroll this device").tap()
    page.wait_for_selector("body[data-state=start]", timeout=WAIT)
    return page


def _twice(page: Any, selector: str) -> None:
    """Two clicks on one button, the second before the page has moved on (a double tap)."""
    page.evaluate("(s) => { const b = document.querySelector(s); b.click(); b.click(); }", selector)


def test_a_double_tap_on_a_rating_or_on_next_records_each_answer_once(tablet, live_server, runtime):
    page = _enrolled_page(tablet, live_server, runtime)
    page.get_by_role("button", name="Start", exact=True).tap()
    page.wait_for_selector("body[data-question=trust]")
    _twice(page, ".options .option[data-value='5']")
    page.wait_for_selector("body[data-question=went_well]")
    page.locator(".options .option[data-value='ease']").tap()
    _twice(page, "button.next")
    page.wait_for_selector("body[data-question=comments]")
    page.locator("#answer-text").fill("Quick.")
    _twice(page, "button.next")
    page.wait_for_selector("body[data-state=thanks]")
    page.wait_for_function("document.body.dataset.queue === '0'", timeout=WAIT)
    rejected = page.evaluate("localStorage.getItem('survey-kiosk-rejected')")
    rows = stored(runtime)
    assert len(rows) == 1, f"the visitor's session was not stored; the server said: {rejected}"
    [(response, answers)] = rows
    assert response.completed_at is not None
    assert answers["trust"].value == 5 and answers["comments"].text == "Quick." and set(answers) == {
        "trust", "went_well", "comments"}  # fmt: skip


class Outage:
    """The app behind a reverse proxy that answers 502 while the app is down (a deploy, a crash, a restart)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.down = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.down:
            start_response("502 Bad Gateway", [("Content-Type", "text/html")])
            return [b"<html><body><h1>502 Bad Gateway</h1></body></html>"]
        return self.app(environ, start_response)


@pytest.fixture
def proxied(app: Any) -> Iterator[tuple[str, Outage]]:
    outage = Outage(app)
    server = make_server("127.0.0.1", 0, outage, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", outage
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_a_kiosk_reloaded_while_its_server_is_down_waits_for_it_and_comes_back_by_itself(tablet, proxied, runtime):
    origin, outage = proxied
    page = _enrolled_page(tablet, origin, runtime)
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # installed: page, assets, flow cached
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT)
    page.wait_for_selector("body[data-state=start]", timeout=WAIT)

    outage.down = True
    page.reload()  # the page's twelve-hourly reload (or the tablet restarted) just as the server went down
    page.wait_for_selector("body[data-state=unavailable]", timeout=WAIT)  # the kiosk's own page, saying so
    outage.down = False
    page.wait_for_selector("body[data-state=start]", timeout=45_000)  # it asks again by itself: no staff needed
