"""The website channel against a hostile or careless visitor: forged, stale and future form tokens, spoofed
``X-Forwarded-For``, ``from=`` that is not a page of an allowed origin, HEAD requests (link checkers), path tricks
on /f/assets/, and the headers of every error page. Each gets a precise 4xx (never a 500) and stores nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from engine.app import create_app
from engine.store.models import Response, WebsiteForm
from tests.conftest import SECRET
from tests.test_website import (  # noqa: F401  (settings and website_config_dir: the website services' fixtures)
    ORIGIN,
    answered,
    hidden_fields,
    prompt_tx,
    settings,
    stored,
    website_config_dir,
)


def signed_form(slug: str, issued: int) -> dict[str, str]:
    """A form token as the engine signs it (the tests know the secret key), shown at ``issued``."""
    nonce = secrets.token_urlsafe(24)
    mac = hmac.new(SECRET.encode(), f"website-form:{slug}:{nonce}:{issued}".encode(), hashlib.sha256).hexdigest()
    return {"nonce": nonce, "issued": str(issued), "csrf_token": mac, "q-satisfaction": "5"}


def forms_kept(runtime) -> int:
    with runtime.sessions() as session:
        return session.execute(select(func.count()).select_from(WebsiteForm)).scalar_one()


def test_a_genuine_token_is_good_for_two_hours_and_no_more_nor_from_the_future(client, runtime):
    now = int(time.time())
    for issued in (now - 2 * 3600 - 60, now + 600):
        refused = client.post("/f/web-feedback", data=signed_form("web-feedback", issued))
        # Nothing stored; what was typed comes back under a fresh token, so the visitor need not type it again.
        assert refused.status_code == 400 and "open for a long time" in refused.text, issued
        assert 'value="5" checked' in refused.text
        fresh = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', refused.text))
        assert fresh["nonce"] and abs(int(fresh["issued"]) - now) < 60, issued
    assert stored(runtime) == [] and forms_kept(runtime) == 0
    assert client.post("/f/web-feedback", data=signed_form("web-feedback", now - 3600)).status_code == 200
    assert len(stored(runtime)) == 1


def test_x_forwarded_for_is_not_trusted_by_the_rate_limit(client, runtime):
    for _ in range(3):
        assert answered(client, address="203.0.113.50").status_code == 200
    # The same connection claiming to be someone else (the headers a proxy would add) is still the same address.
    page = client.get("/f/web-feedback", environ_base={"REMOTE_ADDR": "203.0.113.50"})
    form = hidden_fields(page.text) | {"q-satisfaction": "5"}
    spoofed = client.post("/f/web-feedback", data=form, environ_base={"REMOTE_ADDR": "203.0.113.50"},
                          headers={"X-Forwarded-For": "198.51.100.99", "X-Real-IP": "198.51.100.99",
                                   "Forwarded": "for=198.51.100.99"})  # fmt: skip
    assert spoofed.status_code == 429 and spoofed.headers["Retry-After"]
    assert len(stored(runtime)) == 3


def test_behind_a_proxy_the_address_it_forwards_is_the_visitors(runtime):
    """SURVEY_ENGINE_PROXY_HOPS=1: the last X-Forwarded-For entry (what the one proxy saw) is the address limited;
    entries a visitor wrote before it are not."""
    client = create_app(dataclasses.replace(runtime.settings, proxy_hops=1), runtime=runtime).test_client()

    def via_proxy(visitor: str, forged: str = "") -> Any:
        chain = f"{forged}, {visitor}" if forged else visitor
        headers = {"X-Forwarded-For": chain}
        page = client.get("/f/web-feedback", environ_base={"REMOTE_ADDR": "10.0.0.2"}, headers=headers)
        form = hidden_fields(page.text) | {"q-satisfaction": "5"}
        return client.post("/f/web-feedback", data=form, environ_base={"REMOTE_ADDR": "10.0.0.2"}, headers=headers)

    for _ in range(3):
        assert via_proxy("203.0.113.7").status_code == 200
    assert via_proxy("203.0.113.7", forged="198.51.100.1").status_code == 429  # a forged first entry changes nothing
    assert via_proxy("203.0.113.8").status_code == 200  # another visitor behind the same proxy is not held back


def test_head_is_the_page_without_its_body_and_never_a_form_check(client, runtime):
    # A link checker's HEAD got the "form expired" page (400): HEAD is a GET.
    head = client.head("/f/web-feedback?from=" + quote(f"{ORIGIN}/renew"))
    assert head.status_code == 200 and head.data == b""
    assert "frame-ancestors " + ORIGIN in head.headers["Content-Security-Policy"]
    # A HEAD carrying a whole, genuine form stores nothing.
    form = hidden_fields(client.get("/f/web-feedback").text) | {"q-satisfaction": "5"}
    assert client.head("/f/web-feedback", data=form).status_code == 200
    assert forms_kept(runtime) == 0
    assert client.post("/f/web-feedback", data=form).status_code == 200  # the token was not used up


def test_head_on_a_prompts_survey_link_is_the_page_not_a_form_check(client, auth, runtime):
    body = client.post("/api/v1/transactions", json=prompt_tx("HEAD-1"), headers=auth).get_json()
    path = body["survey_url"].removeprefix("https://surveys.example.gov")
    assert client.head(path).status_code == 200
    page = client.get(path)
    assert page.status_code == 200
    form = hidden_fields(page.text) | {"q-satisfaction": "5", "q-trust": "5"}
    assert client.post(path, data=form).status_code == 200


def test_from_records_only_a_page_of_an_allowed_origin(client, runtime):
    def recorded(raw: str) -> str | None:
        page = client.get("/f/web-feedback?from=" + quote(raw, safe=""))
        assert page.status_code == 200, raw
        return hidden_fields(page.text).get("from")

    for hostile in ("javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "https://evil.example/",
                    f"{ORIGIN}@evil.example/", f"{ORIGIN}.evil.example/", "//www.example.gov/x",
                    f"{ORIGIN}/" + "a" * 5000, f"{ORIGIN}:99999/", "https://[::1/", "http://www.example.gov/",
                    f"{ORIGIN}\\@evil.example/"):  # fmt: skip
        assert recorded(hostile) is None, hostile
    assert recorded(f"{ORIGIN}/renew?case=123#top") == f"{ORIGIN}/renew"  # never the query
    # The scheme's default port is the origin a browser shows (window.location.origin drops it).
    assert recorded("https://www.example.gov:443/renew") == f"{ORIGIN}/renew"
    assert recorded("http://127.0.0.1:8765/x") == "http://127.0.0.1:8765/x"
    assert recorded(f"{ORIGIN}/ñandú") == f"{ORIGIN}/ñandú"
    # Invisible characters (a right-to-left override would show "/renew\u202egnp.exe" reversed) are spelled out.
    assert recorded(f"{ORIGIN}/renew\u202egnp.exe") == f"{ORIGIN}/renew%E2%80%AEgnp.exe"
    assert recorded(f"{ORIGIN}/a\u200bb\u2066c d") == f"{ORIGIN}/a%E2%80%8Bb%E2%81%A6c%20d"
    nul = client.get("/f/web-feedback?from=" + quote(f"{ORIGIN}/\x00"))
    assert nul.status_code == 422
    # A posted ``from`` goes through the same check.
    form = hidden_fields(client.get("/f/web-feedback").text) | {"q-satisfaction": "4", "from": "javascript:x"}
    assert client.post("/f/web-feedback", data=form).status_code == 200
    assert stored(runtime) == [("website", None, {"satisfaction": 4})]


def test_the_page_in_another_language_keeps_where_the_visitor_came_from(client, runtime):
    page = client.get("/f/web-feedback?embed=1&from=" + quote(f"{ORIGIN}/renew", safe=""))
    link = f'href="?from={quote(ORIGIN + "/renew", safe="")}&amp;embed=1&amp;lang=es"'
    assert link in page.text
    spanish = client.get(f"/f/web-feedback?from={quote(ORIGIN + '/renew', safe='')}&embed=1&lang=es")
    assert spanish.status_code == 200 and '<html lang="es">' in spanish.text
    form = hidden_fields(spanish.text)
    assert form["from"] == f"{ORIGIN}/renew" and form["embed"] == "1"
    assert client.post("/f/web-feedback", data=form | {"q-satisfaction": "5"}).status_code == 200
    assert stored(runtime) == [("website", f"{ORIGIN}/renew", {"satisfaction": 5})]
    # Without a page to keep, the link is the plain one.
    assert 'href="?lang=es"' in client.get("/f/web-feedback").text


def test_bad_paths_methods_and_bodies_are_precise_4xx_with_framing_denied(client, runtime):
    for path in ("/f/nope", "/f/no-website", "/f/", "/f/web-feedback/extra", "/f/assets/..%2Froutes.py",
                 "/f/assets/%2e%2e%2f__init__.py", "/f/assets/button.js", "/f/assets/form.html", "/f/nope/button.js",
                 "/f/no-website/button.js"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "def " not in answer.text and "{%" not in answer.text, path
        if answer.mimetype == "text/html":
            assert answer.headers["X-Frame-Options"] == "DENY", path
            assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
    for method in ("PUT", "DELETE", "PATCH"):
        answer = client.open("/f/web-feedback", method=method)
        assert answer.status_code == 405 and answer.headers["X-Frame-Options"] == "DENY", method
    huge = client.post("/f/web-feedback", data={"q-comments": "a" * (9 * 1024 * 1024)})
    assert huge.status_code == 413
    assert client.post("/f/web-feedback", json={"q-satisfaction": "5"}).status_code == 400
    assert client.post("/f/nope", data={"q-satisfaction": "5"}).status_code == 404
    assert client.get("/f/web-feedback?lang=" + "x" * 3000).status_code == 200
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(Response)).scalar_one() == 0


def test_a_question_answered_twice_on_the_feedback_page_is_a_422_and_nothing_is_stored(client, runtime):
    page = client.get("/f/web-feedback", environ_base={"REMOTE_ADDR": "192.0.2.44"})
    form = list(hidden_fields(page.text).items())
    doubled = client.post("/f/web-feedback", data=MultiDict([*form, ("q-satisfaction", "5"), ("q-satisfaction", "1")]),
                          environ_base={"REMOTE_ADDR": "192.0.2.44"})  # fmt: skip
    assert doubled.status_code == 422 and "Please give one answer to this question." in doubled.text
    assert stored(runtime) == [] and forms_kept(runtime) == 0
    again = client.post(
        "/f/web-feedback", data=MultiDict([*form, ("q-satisfaction", "5")]), environ_base={"REMOTE_ADDR": "192.0.2.44"}
    )
    assert again.status_code == 200 and len(stored(runtime)) == 1  # the same page load, answered once, is taken


def test_an_ipv6_visitor_cannot_step_around_the_per_address_limit_by_changing_address_within_its_network(
    client, runtime
):
    """An IPv6 subscriber gets a /64 (2^64 addresses) and picks a new one at will (privacy addresses do so on their
    own): the per-address limit counts the /64, as it counts one IPv4 address (an IPv4-mapped address is that IPv4
    address). Another network is another visitor."""
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:abcd::9"):
        assert answered(client, address=host).status_code == 200, host
    stepped = answered(client, address="2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert stepped.status_code == 429 and stepped.headers["Retry-After"]
    assert len(stored(runtime)) == 3
    assert answered(client, address="2001:db8:1:3::1").status_code == 200  # the next /64: another visitor


def test_an_ipv4_mapped_address_counts_as_the_ipv4_address(client, runtime):
    for _ in range(3):
        assert answered(client, address="203.0.113.60").status_code == 200
    assert answered(client, address="::ffff:203.0.113.60").status_code == 429
    assert len(stored(runtime)) == 3
