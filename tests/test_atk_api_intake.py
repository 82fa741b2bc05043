"""The intake API under attack (SPEC §2 rule 11, §3): a precise 4xx, nothing stored, nothing kept.

Through the Flask test client and the real database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from engine.intake import validation
from tests.helpers import counts, post, tx


def fields(response) -> list[str]:
    return [e["field"] for e in response.get_json().get("errors", [])]


def test_an_overlong_phone_or_email_is_refused_and_not_kept_in_the_process(client, auth, runtime, make_key):
    """The verdicts on contacts are cached per raw string (4,096 of each); a string of a megabyte, refused, was
    kept too: a client could make every web process hold gigabytes. Over-long strings are checked, never kept."""
    validation._checked_email.cache_clear()
    validation._checked_phone.cache_clear()
    admin = {"Authorization": f"Bearer {make_key(scopes=('intake', 'admin'))}"}
    before = counts(runtime)
    for n in range(3):
        email, phone = f"{n}{'a' * 1_000_000}@example.com", f"+1202555{n}{'1' * 1_000_000}"
        response = post(client, tx(f"LONG-{n}", contact={"email": email, "phone": phone}), auth)
        assert response.status_code == 422, response.get_data(as_text=True)[:300]
        assert sorted(fields(response)) == ["contact.email", "contact.phone"]
        for body, field in (({"email": email}, "email"), ({"phone": phone}, "phone")):
            for method in ("POST", "DELETE"):
                answer = client.open("/api/v1/opt-outs", method=method, json={**body, "reason": "r"}, headers=admin)
                assert answer.status_code == 422 and field in fields(answer), answer.get_data(as_text=True)[:300]
    assert counts(runtime) == before
    assert validation._checked_email.cache_info().currsize == 0
    assert validation._checked_phone.cache_info().currsize == 0
    # Addresses of an ordinary length are still kept (the cache is what makes a batch's replays cheap).
    assert (
        post(client, tx("SHORT-1", contact={"email": "pat@exämple.com", "phone": "+1 202 555 0123"}), auth).status_code
        == 200
    )
    assert validation._checked_email.cache_info().currsize == 1
    assert validation._checked_phone.cache_info().currsize == 1


SURROGATE_KEY = '"\\ud800"'  # a JSON escape of an unpaired surrogate: valid JSON syntax, no Unicode text


def _well_formed(response) -> dict:
    """The problem document, checked to hold only text any JSON parser reads (no unpaired surrogate)."""
    body = response.get_json()
    text = response.get_data(as_text=True)
    import json as _json

    decoded = _json.dumps(body, ensure_ascii=False)
    decoded.encode("utf-8")  # raises on an unpaired surrogate
    assert "\\ud800" not in text.replace("\\\\ud800", ""), text[:500]
    return body


def test_an_unknown_top_level_key_is_named_escaped_and_cut_as_every_other_field(client, auth, runtime, make_key):
    """Unknown fields are named with their unstorable characters escaped and a long name cut (``shown``), in a
    transaction, a contact, an opt-out; the batch wrapper and the submission body echoed the key raw: an unpaired
    surrogate back in the problem (which strict JSON parsers refuse), a name of a megabyte echoed twice."""
    import json as _json

    reports = {"Authorization": f"Bearer {make_key(scopes=('reports',))}"}
    before = counts(runtime)
    item = _json.dumps(tx("ECHO-1"))
    cases = [
        ("/api/v1/transactions", auth, f'{{"transactions": [{item}], {SURROGATE_KEY}: 1}}'),
        ("/api/v1/reports/a11/submissions", reports,
         f'{{"fiscal_year": 2026, "quarter": 1, "service": "passport-renewal", {SURROGATE_KEY}: 1}}'),
    ]  # fmt: skip
    for path, headers, body in cases:
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)
        problem = _well_formed(response)
        assert [e["field"] for e in problem["errors"]] == ["\\ud800"], problem
        long_key = "k" * 100_000
        response = client.post(path, data=body.replace(SURROGATE_KEY, f'"{long_key}"'), content_type="application/json",
                               headers=headers)  # fmt: skip
        assert 400 <= response.status_code < 500
        assert len(response.get_data()) < 2_000, len(response.get_data())
        (error,) = response.get_json()["errors"]
        assert error["field"].startswith("kkk") and len(error["field"]) <= 81
    assert counts(runtime) == before
