"""The start page ``GET /`` says where things are (SPEC §8), in the visitor's language, naming no service."""

from __future__ import annotations


def test_the_start_page_says_where_things_are(client, runtime):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for link in ('href="/dashboard/"', 'href="/api/v1/openapi.json"'):
        assert link in html
    assert "/kiosk" in html and "/healthz" in html and "/readyz" in html
    assert not any(service.name in html for service in runtime.catalog.services.values())
    assert page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"


def test_the_start_page_speaks_the_visitors_language(client):
    spanish = client.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="es">' in spanish and "Sistema de envío de encuestas" in spanish
    assert '<html lang="en">' in client.get("/?lang=en").get_data(as_text=True)
