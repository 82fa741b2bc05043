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
