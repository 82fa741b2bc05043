"""A visitor answers the kiosk in Chromium on a tablet with taps: enrollment, English and Spanish, branching,
the idle reset, offline with a reload and a lost sync reply (exactly three stored), poisoned sessions queued ahead
of good ones (dropped, the good ones stored), a revoked device, axe-core."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from engine.kiosk import devices as registry
from engine.store.db import unit_of_work
from tests.browser.conftest import axe_violations
from tests.kiosk_support import COOKIE, register, stored

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
WAIT = 20_000


def _tablet(browser: Any, landscape: bool = True) -> Any:
    size = {"width": 1180, "height": 820} if landscape else {"width": 820, "height": 1180}
    return browser.new_context(viewport=size, device_scale_factor=2, is_mobile=True, has_touch=True, bypass_csp=True)


@pytest.fixture
def tablet(browser: Any) -> Iterator[Any]:
    context = _tablet(browser)
    yield context
    context.close()


def _open_and_confirm(page: Any, live_server: str, code: str) -> None:
    """Open the enrollment link (it shows a page and uses nothing up) and tap "Enroll this device"."""
    page.goto(f"{live_server}/kiosk/enroll/{code}")
    page.get_by_role("button", name="Enroll this device").tap()
    page.wait_for_selector("body[data-state=start]", timeout=WAIT)


def _enroll(context: Any, live_server: str, runtime: Any, service: str = "kiosk-office") -> Any:
    _, code = register(runtime, service=service)
    page = context.new_page()
    _open_and_confirm(page, live_server, code)
    return page


def _tap_option(page: Any, name: str) -> None:
    page.locator(".options").get_by_role("button", name=name, exact=True).tap()


def _wait_queue_empty(page: Any) -> None:
    page.wait_for_function("document.body.dataset.queue === '0'", timeout=WAIT)


def test_enroll_then_answer_by_taps(tablet, live_server, runtime):
    page = _enroll(tablet, live_server, runtime)
    assert page.url == f"{live_server}/kiosk", "no secret stays in the address after enrollment"
    cookie = next(c for c in tablet.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    expect(page.get_by_role("heading", name="Paperwork Reduction Act statement")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Start", exact=True).tap()
    expect(page.get_by_text("Question 1 of 8")).to_be_visible()
    assert axe_violations(page) == []
    for n, choice in enumerate(["Strongly agree", "Agree", "Agree", "Strongly agree", "Neither agree nor disagree",
                                "Agree"], start=1):  # fmt: skip
        page.wait_for_selector(f"text=Question {n} of 8")
        _tap_option(page, choice)
    page.wait_for_selector("body[data-question=employee]")
    page.get_by_role("button", name="Skip").tap()
    expect(page.get_by_text("Please do not include personal information").first).to_be_visible()
    page.locator("#answer-text").fill("Quick and friendly.")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Finish").tap()
    page.wait_for_selector("body[data-state=thanks]")
    assert axe_violations(page) == []
    _wait_queue_empty(page)
    [(response, answers)] = stored(runtime)
    assert response.channel == "kiosk" and response.completed_at is not None and not response.suspected_spam
    assert response.office_id == runtime.office_ids["NYC-01"] and response.language == "en"
    assert {k: a.value for k, a in answers.items() if a.value} == {
        "satisfaction": 5, "trust": 4, "effectiveness": 4, "ease": 5, "efficiency": 3, "transparency": 4,
    }  # fmt: skip
    assert answers["comments"].text == "Quick and friendly."
    assert "employee" not in answers
    page.get_by_role("button", name="Done").tap()
    page.wait_for_selector("body[data-state=start]")

    second = tablet.new_page()  # the enrollment link works once
    reply = second.goto(page.url.replace("/kiosk", "/kiosk/enroll/x"))
    assert reply.status == 404


def test_a_used_enrollment_link_is_refused_with_a_clear_page(browser, live_server, runtime):
    _, code = register(runtime)
    first, other = _tablet(browser), _tablet(browser)
    try:
        preview = other.new_page()  # a chat app's preview of the link: it shows the page and uses nothing up
        shown = preview.goto(f"{live_server}/kiosk/enroll/{code}")
        assert shown.status == 200
        expect(preview.get_by_role("heading", name="Enroll this tablet as a kiosk")).to_be_visible()
        assert axe_violations(preview) == []
        page = first.new_page()
        _open_and_confirm(page, live_server, code)
        preview.get_by_role("button", name="Enroll this device").tap()  # the stale page's button: used by now
        expect(preview.get_by_text("already used")).to_be_visible()
        again = other.new_page()
        reply = again.goto(f"{live_server}/kiosk/enroll/{code}")
        assert reply.status == 410
        expect(again.get_by_role("heading", name="This enrollment link cannot be used")).to_be_visible()
        expect(again.get_by_text("already used")).to_be_visible()
        assert reply.headers["cache-control"] == "no-store" and reply.headers["referrer-policy"] == "no-referrer"
        assert axe_violations(again) == []
        reply = again.goto(f"{live_server}/kiosk")
        assert reply.status == 401
        expect(again.get_by_role("heading", name="This kiosk is not enrolled")).to_be_visible()
        expect(again.get_by_text("survey-engine kiosk register")).to_be_visible()
    finally:
        first.close()
        other.close()


def test_spanish_portrait_and_branching(browser, live_server, runtime):
    context = _tablet(browser, landscape=False)
    try:
        page = _enroll(context, live_server, runtime, service="kiosk-quick")
        page.get_by_role("button", name="Español").tap()
        page.wait_for_function("document.documentElement.lang === 'es'")
        expect(page.get_by_role("heading", name=re.compile("Ley de Reducción de Trámites"))).to_be_visible()
        page.get_by_role("button", name="Comenzar").tap()
        expect(page.get_by_role("button", name="English")).to_be_visible()
        box = page.locator(".options .option").first.bounding_box()
        assert box["height"] >= 48 and box["width"] >= 48
        assert axe_violations(page) == []
        page.locator(".options .option[data-value='1']").tap()  # thumbs down: "what could be better" follows
        page.wait_for_selector("body[data-question=could_be_better]")
        assert page.locator("h1").inner_text().startswith("¿Qué se podría mejorar?")
        page.locator(".option[data-value='ease']").tap()
        page.locator(".option[data-value='employee']").tap()
        assert axe_violations(page) == []
        page.get_by_role("button", name="Siguiente").tap()
        page.wait_for_selector("body[data-question=comments]")
        # A comment half-typed stays through a change of language, there and back.
        page.locator("#answer-text").fill("Muy rápido.")
        for other, code in (("English", "en"), ("Español", "es")):
            page.get_by_role("button", name=other).tap()
            page.wait_for_function(f"document.documentElement.lang === '{code}'")
            assert page.locator("#answer-text").input_value() == "Muy rápido."
        page.locator("button.next").tap()
        page.wait_for_selector("body[data-state=thanks]")
        _wait_queue_empty(page)
    finally:
        context.close()
    [(response, answers)] = stored(runtime)
    assert response.language == "es" and response.completed_at is not None
    assert answers["trust"].value == 1 and set(answers) == {"trust", "could_be_better", "comments"}
    assert answers["comments"].text == "Muy rápido."


def test_idle_reset_keeps_a_partial_response(tablet, live_server, runtime):
    page = _enroll(tablet, live_server, runtime, service="kiosk-idle")  # kiosk_idle_reset: PT2S
    page.get_by_role("button", name="Start", exact=True).tap()
    page.locator(".options .option[data-value='5']").tap()
    page.wait_for_selector("body[data-question=trust]")
    page.wait_for_selector("body[data-state=start]", timeout=WAIT)  # nobody tapped: back to the start
    _wait_queue_empty(page)
    [(response, answers)] = stored(runtime)
    assert response.completed_at is None and set(answers) == {"satisfaction"} and answers["satisfaction"].value == 5


def _answer_one(page: Any, rating: str) -> None:
    page.get_by_role("button", name="Start", exact=True).tap()
    page.locator(f".options .option[data-value='{rating}']").tap()
    page.wait_for_selector("body[data-question=went_well], body[data-question=could_be_better]")
    page.get_by_role("button", name="Next").tap()
    page.wait_for_selector("body[data-question=comments]")
    page.get_by_role("button", name="Finish").tap()
    page.wait_for_selector("body[data-state=thanks]")
    page.get_by_role("button", name="Done").tap()
    page.wait_for_selector("body[data-state=start]")


def test_offline_three_visitors_reload_and_a_lost_reply_store_exactly_three(tablet, live_server, runtime):
    page = _enroll(tablet, live_server, runtime, service="kiosk-quick")
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # installed: page, assets, flow cached
    page.reload()  # the worker now controls the page
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT)
    page.wait_for_selector("body[data-state=start]")

    def cut_off(route: Any) -> None:
        route.abort("internetdisconnected")

    # The sync's requests are cut as well as the context being offline: Chromium applied the offline emulation to
    # the reloaded page late once under a loaded CI run, and the page's first sync reached the server.
    page.route("**/api/v1/kiosk/responses", cut_off)
    tablet.set_offline(True)
    for rating in ("5", "1", "5"):
        _answer_one(page, rating)
    page.wait_for_function("document.body.dataset.queue === '3'", timeout=WAIT)
    page.reload()  # offline: the page, its assets and the flow come from the service worker's cache
    page.wait_for_selector("body[data-state=start]", timeout=WAIT)
    assert page.evaluate("document.body.dataset.queue") == "3"
    assert stored(runtime) == []
    page.unroute("**/api/v1/kiosk/responses", cut_off)

    lost: list[int] = []
    posts: list[str] = []

    def lose_first_reply(route: Any) -> None:
        posts.append(route.request.url)
        if lost:
            route.continue_()
            return
        try:
            reply = route.fetch()  # the server stores the batch...
        except PlaywrightError:  # a retry timer fired while still offline
            route.abort()
            return
        lost.append(reply.status)
        route.abort()  # ...and the page never hears back

    page.route("**/api/v1/kiosk/responses", lose_first_reply)
    tablet.set_offline(False)
    _wait_queue_empty(page)
    assert lost == [200] and len(posts) >= 2
    rows = stored(runtime)
    assert len(rows) == 3
    assert sorted(a["trust"].value for _, a in rows) == [1, 5, 5]
    assert all(r.completed_at is not None and r.started_at < r.completed_at for r, _ in rows)


def test_a_revoked_kiosk_says_so(tablet, live_server, runtime):
    page = _enroll(tablet, live_server, runtime)
    with unit_of_work(runtime.sessions) as session:
        [device] = registry.list_devices(session)
        registry.revoke(session, str(device.id))
    page.get_by_role("button", name="Start", exact=True).tap()  # the page already open: its sync is refused
    _tap_option(page, "Agree")
    page.wait_for_selector("body[data-question=trust]")
    for _ in range(6):
        page.get_by_role("button", name="Skip").tap()
    page.locator("#answer-text").wait_for()
    page.get_by_role("button", name="Finish").tap()
    page.wait_for_selector("body[data-state=revoked]", timeout=WAIT)
    expect(page.get_by_role("heading", name=re.compile("no longer enrolled"))).to_be_visible()
    page.wait_for_function("document.body.dataset.queue === '1'")  # the answers stay on the device
    assert stored(runtime) == []
    reply = page.goto(f"{live_server}/kiosk")
    assert reply.status == 401
    expect(page.get_by_role("heading", name="This kiosk was revoked")).to_be_visible()
    assert axe_violations(page) == []


# The page's IndexedDB queue, as the scripts below read and write it (:func:`_on_queue`).
QUEUE = """
  const database = await new Promise((resolve, reject) => {
    const request = indexedDB.open('survey-kiosk', 1);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const sessions = (read) => new Promise((resolve) => {
    const request = read(database.transaction('sessions').objectStore('sessions'));
    request.onsuccess = () => resolve(request.result);
  });
  const put = (records) => new Promise((resolve, reject) => {
    const tx = database.transaction('sessions', 'readwrite');
    for (const record of records) tx.objectStore('sessions').put(record);
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
"""


def _on_queue(params: str, body: str) -> str:
    """A script for ``page.evaluate``: ``async (params) => {...}`` running ``body`` with QUEUE's helpers."""
    return f"async ({params}) => {{{QUEUE}{body}}}"


POISON = _on_queue(
    "",
    """
  const all = await sessions((store) => store.getAll());
  const model = all[0];
  const first = model.session.answers[0];
  const poisoned = (n, change) => {
    const record = structuredClone(model);
    record.client_uuid = crypto.randomUUID();
    record.session.client_uuid = record.client_uuid;
    record.seq = n;  // queued long before the visitors of today: first in line
    change(record.session);
    return record;
  };
  const poison = [
    poisoned(1, (s) => { s.answers = [first, { question_id: 'comments', text: 'half \\ud800 pair',
                                               answered_at: first.answered_at }]; }),
    poisoned(2, (s) => { s.started_at = '0001-01-01T00:00:00+23:59'; }),
    poisoned(3, (s) => { s.flow = { id: 'a11-standard', version: '2' };
                         s.answers = [{ question_id: 'trust', value: 5, answered_at: first.answered_at }]; }),
  ];
  await put(poison);
  database.close();
  return poison.map((r) => r.client_uuid);
""",
)


def test_poisoned_sessions_queued_ahead_are_dropped_and_the_good_ones_sync(tablet, live_server, runtime):
    """Sessions the server will never store (an unpaired surrogate, a time no calendar holds, another service's
    flow) sit in IndexedDB ahead of two good ones: the page syncs, the server answers them ``rejected`` with a
    reason, the page drops them, and the good ones are stored (SPEC §2 rule 11: a kiosk never stalls)."""
    page = _enroll(tablet, live_server, runtime, service="kiosk-quick")
    tablet.set_offline(True)
    for rating in ("5", "1"):
        _answer_one(page, rating)
    page.wait_for_function("document.body.dataset.queue === '2'", timeout=WAIT)
    poisoned = page.evaluate(POISON)
    replies: list[int] = []
    page.on("response", lambda r: replies.append(r.status) if r.url.endswith("/api/v1/kiosk/responses") else None)
    tablet.set_offline(False)
    _wait_queue_empty(page)
    assert replies and all(status == 200 for status in replies), replies
    rows = stored(runtime)
    assert sorted(a["trust"].value for _, a in rows) == [1, 5], "the good sessions are stored"
    assert not {str(r.client_uuid) for r, _ in rows} & set(poisoned)
    dropped = page.evaluate("JSON.parse(localStorage.getItem('survey-kiosk-rejected') || '[]')")
    reasons = {d["client_uuid"]: d.get("reason", "") for d in dropped}
    assert set(reasons) == set(poisoned), dropped
    assert reasons[poisoned[0]].startswith("answers[1].text must not contain an unpaired surrogate")
    assert reasons[poisoned[1]].startswith("started_at must fall between the years 1970 and 9999")
    assert "not a flow of this kiosk's service" in reasons[poisoned[2]]
    assert page.evaluate("document.body.dataset.queue") == "0"


BACKDATE = _on_queue(
    "count",
    """
  const all = await sessions((store) => store.getAll());
  const earlier = (iso) => new Date(Date.parse(iso) - 2 * 86400 * 1000).toISOString();
  const moved = all.sort((a, b) => a.seq - b.seq).slice(0, count);
  for (const record of moved) {  // answered two days ago, while the approval stood
    record.session.started_at = earlier(record.session.started_at);
    record.session.completed_at = earlier(record.session.completed_at);
    for (const a of record.session.answers) a.answered_at = earlier(a.answered_at);
  }
  await put(moved);
  database.close();
  return moved.map((r) => r.client_uuid);
""",
)


ON_DEVICE = _on_queue(
    "",
    """
  const count = await sessions((store) => store.count());
  database.close();
  return count;
""",
)


def test_a_kiosk_that_cannot_show_the_survey_still_sends_its_queue(tablet, live_server, runtime):
    """The PRA approval lapsed while sessions waited on an offline kiosk: the page, started again once online,
    cannot show the survey (flow.json is a 503, SPEC §2 rule 9) and says so, yet sends its queue at once, not
    only at the next minute's timer: the sessions answered while the approval stood are stored, the one answered
    after it lapsed is rejected by the server and dropped."""
    page = _enroll(tablet, live_server, runtime, service="kiosk-quick")
    tablet.set_offline(True)
    for rating in ("5", "1", "5"):
        _answer_one(page, rating)
    page.wait_for_function("document.body.dataset.queue === '3'", timeout=WAIT)
    before = set(page.evaluate(BACKDATE, 2))
    service = runtime.catalog.services["kiosk-quick"]
    yesterday = datetime.now(service.timezone).date() - timedelta(days=1)
    lapsed = replace(runtime.catalog.pra_of(service), expiration_date=yesterday)
    runtime.catalog.services["kiosk-quick"] = replace(service, pra=lapsed)  # services.yaml as the agency left it
    page.close()  # the kiosk is switched off, and on again once the network is back: no 'online' event
    tablet.set_offline(False)
    page = tablet.new_page()
    flow = []
    page.on("response", lambda r: flow.append(r.status) if r.url.endswith("/kiosk/flow.json") else None)
    page.goto(f"{live_server}/kiosk")
    page.wait_for_selector("body[data-state=unavailable]", timeout=WAIT)
    assert flow and set(flow) == {503}
    deadline = time.monotonic() + 10  # well before the page's one-minute timer
    while page.evaluate(ON_DEVICE) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert page.evaluate(ON_DEVICE) == 0, "the queue stays on the device"
    assert page.evaluate("document.body.dataset.queue") == "0"
    expect(page.get_by_role("heading", name=re.compile("cannot show the survey"))).to_be_visible()
    rows = stored(runtime)
    assert {str(r.client_uuid) for r, _ in rows} == before
    dropped = page.evaluate("JSON.parse(localStorage.getItem('survey-kiosk-rejected') || '[]')")
    assert len(dropped) == 1 and dropped[0]["client_uuid"] not in before
    assert dropped[0]["reason"].startswith("the PRA approval of this survey")
    assert axe_violations(page) == []


def test_a_kiosk_that_cannot_show_the_survey_says_how_many_answers_wait_on_it(tablet, live_server, runtime):
    """The service left the configuration while sessions waited on an offline kiosk: flow.json and the sync both
    answer 503, the sessions stay on the device, and the page says so in its own words (no survey words to use),
    so that staff know answers are waiting before they wipe or move the tablet."""
    page = _enroll(tablet, live_server, runtime, service="kiosk-quick")
    tablet.set_offline(True)
    for rating in ("5", "1"):
        _answer_one(page, rating)
    page.wait_for_function("document.body.dataset.queue === '2'", timeout=WAIT)
    service = runtime.catalog.services.pop("kiosk-quick")
    try:
        page.close()
        tablet.set_offline(False)
        page = tablet.new_page()
        page.goto(f"{live_server}/kiosk")
        page.wait_for_selector("body[data-state=unavailable]", timeout=WAIT)
        status = page.locator("#kiosk-status")
        expect(status).to_have_text("Answers saved on this device, waiting to be sent: 2", timeout=WAIT)
        assert page.evaluate(ON_DEVICE) == 2 and stored(runtime) == []
        assert axe_violations(page) == []
    finally:
        runtime.catalog.services["kiosk-quick"] = service
