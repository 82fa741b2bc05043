"""The OpenAPI 3.1 document is valid and describes every API route the app serves."""

from __future__ import annotations

import re

from openapi_spec_validator import validate


def test_document_is_valid_openapi_31(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_is_documented(app, client):
    documented = {
        (path, method.upper())
        for path, item in client.get("/api/v1/openapi.json").get_json()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method))
    aliases = {"{external_id}": "{id}"}
    normalized = set()
    for path, method in served:
        for a, b in aliases.items():
            path = path.replace(a, b)
        normalized.add((path, method))
    missing = normalized - documented
    assert not missing, f"routes missing from openapi.yaml: {sorted(missing)}"
    assert not documented - normalized, f"documented but not served: {sorted(documented - normalized)}"
