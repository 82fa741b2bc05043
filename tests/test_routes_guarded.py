"""Every route is either public on purpose (a short allow-list) or guarded, and the guard really refuses."""

from __future__ import annotations

PUBLIC = {
    "/",
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/static/<path:filename>",
    "/dashboard/sign-in",
    "/data",
    "/data/<service>",
    "/data/<service>/<int:fiscal_year>-q<int:quarter>.csv",
    "/f/<service>",
    "/f/<service>/button.js",
    "/f/assets/<name>",
}


def test_every_route_is_public_on_purpose_or_guarded(app):
    unmarked = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        access = getattr(view, "access", None) or (
            "api-key:" + "/".join(view.required_scopes) if hasattr(view, "required_scopes") else None
        )
        if rule.endpoint == "static":
            continue
        if access is None:
            unmarked.append(rule.rule)
        elif access.startswith("public"):
            assert rule.rule in PUBLIC, f"{rule.rule} is public but not on the allow-list"
    assert unmarked == [], f"routes with no guard and no public mark: {unmarked}"


def test_guarded_routes_refuse_a_caller_without_credentials(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "required_scopes"):
            continue
        url = rule.rule.replace("<service>", "passport-renewal").replace("<path:external_id>", "X-1")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, json={})
            assert response.status_code == 401, (method, url)
            assert response.mimetype == "application/problem+json"
            assert "WWW-Authenticate" in response.headers
            checked += 1
    assert checked >= 4


def test_every_guarded_route_refuses_a_caller_without_credentials(app, client):
    """Not only the API: webhooks, links, kiosk and dashboard pages give an anonymous caller nothing (no 2xx)."""
    import re

    checked = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        access = getattr(view, "access", "")
        if rule.endpoint == "static" or access.startswith("public") or hasattr(view, "required_scopes"):
            continue
        url = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", "not-a-real-value", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"Body": "5"})
            assert not 200 <= response.status_code < 300, (method, url, response.status_code)
            if response.status_code in (302, 303):
                assert "/dashboard/sign-in" in response.headers["Location"], (method, url)
            checked.append((method, rule.rule))
    assert len(checked) >= 15, checked
