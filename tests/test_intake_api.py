"""POST/GET /api/v1/transactions through the real stack: every decision of SPEC §2 and every bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.store.models import Contact, Invitation, ServiceLevel, Transaction
from tests.helpers import ago, counts, post, tx


def test_single_transaction_is_scheduled_with_an_invitation(client, auth, runtime):
    body = tx("CC-1", office="NYC-01", language="es", contact={"phone": "(202) 555-0123", "email": "Pat@Example.com"},
              service_level={"wait_seconds": 340}, attributes={"call_reason": "status"})  # fmt: skip
    response = post(client, body, auth)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["id"] == "CC-1"
    assert result["decision"] == "scheduled"
    assert result["duplicate"] is False
    assert result["channel"] == "console"
    invitation = result["invitation"]
    send_at = datetime.fromisoformat(invitation["send_at"])
    completed = datetime.fromisoformat(body["completed_at"])
    assert send_at >= completed + timedelta(minutes=15) - timedelta(seconds=1)  # the service's send delay
    assert datetime.fromisoformat(invitation["expires_at"]) == send_at + timedelta(hours=48)
    with runtime.sessions() as session:
        contact = session.execute(select(Contact)).scalar_one()
        assert runtime.cipher.decrypt(contact.phone_encrypted) == "+12025550123"  # normalized to E.164
        assert runtime.cipher.decrypt(contact.email_encrypted) == "pat@example.com"
        assert b"555" not in contact.phone_encrypted and b"example" not in contact.email_encrypted
        assert contact.phone_hash == runtime.cipher.lookup_hash("phone", "+12025550123")
        level = session.execute(select(ServiceLevel)).scalar_one()
        assert (level.name, level.value) == ("wait_seconds", 340.0)
        stored = session.execute(select(Transaction)).scalar_one()
        assert stored.language == "es" and stored.attributes == {"call_reason": "status"}


def test_batch_results_keep_input_order_and_a_bad_item_never_sinks_the_batch(client, auth, runtime):
    items = [
        tx("B-1", contact={"email": "a@example.com"}),
        tx("B-2", completed_at="2026-01-01T00:00:00"),  # no offset
        tx("B-3", office="NOPE-99", contact={"email": "b@example.com"}),
        tx("B-4", contact={"timezone": "Mars/Olympus_Mons"}),
        tx("B-5", completed_at=(datetime.now(UTC) + timedelta(minutes=30)).isoformat()),
        {"id": "B-6", "service": "passport-renewal", "completed_at": ago(minutes=1), "colour": "blue"},
        tx("B-7", contact={"phone": "not a phone"}),
        tx("B-8", contact={"email": "c@example.com"}),
    ]
    response = post(client, {"transactions": items}, auth)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["id"] for r in results] == [f"B-{n}" for n in range(1, 9)]
    assert [r["decision"] for r in results] == ["scheduled"] + ["invalid"] * 6 + ["scheduled"]
    fields = {r["id"]: [e["field"] for e in r.get("errors", [])] for r in results}
    assert fields["B-2"] == ["transactions[1].completed_at"]
    assert fields["B-3"] == ["transactions[2].office"]
    assert fields["B-4"] == ["transactions[3].contact.timezone"]
    assert fields["B-5"] == ["transactions[4].completed_at"]
    assert fields["B-6"] == ["transactions[5].colour"]
    assert fields["B-7"] == ["transactions[6].contact.phone"]
    assert counts(runtime)["transactions"] == 2


def test_replay_returns_the_first_decision_marked_duplicate(client, auth, runtime):
    first = post(client, tx("R-1", contact={"email": "r@example.com"}), auth).get_json()
    # The replay differs (no contact any more): the first decision stands.
    again = post(client, tx("R-1"), auth).get_json()
    assert again["duplicate"] is True
    assert {k: v for k, v in again.items() if k != "duplicate"} == {k: v for k, v in first.items() if k != "duplicate"}
    batch = post(client, {"transactions": [tx("R-2"), tx("R-1"), tx("R-2")]}, auth).get_json()["results"]
    assert [(r["id"], r["duplicate"]) for r in batch] == [("R-2", False), ("R-1", True), ("R-2", True)]
    assert batch[0]["decision"] == batch[2]["decision"] == "no_channel"
    assert counts(runtime)["transactions"] == 2


def test_the_48_hour_window(client, auth):
    assert (
        post(client, tx("W-1", completed_at=ago(hours=49), contact={"email": "w@example.com"}), auth).get_json()[
            "decision"
        ]
        == "window_passed"
    )
    ok = post(client, tx("W-2", completed_at=ago(hours=47), contact={"email": "w2@example.com"}), auth).get_json()
    assert ok["decision"] == "scheduled"


def test_expired_pra_approval_decides_pra_expired(client, auth):
    result = post(client, tx("P-1", service="expired-pra", contact={"email": "p@example.com"}), auth).get_json()
    assert result["decision"] == "pra_expired"
    assert result["invitation"] is None


def test_sampling_is_deterministic_and_near_the_rate(client, auth):
    items = [tx(f"S-{n}", service="half-sampled", contact={"email": f"s{n}@example.com"}) for n in range(400)]
    results = post(client, {"transactions": items}, auth).get_json()["results"]
    sampled = sum(r["decision"] == "scheduled" for r in results)
    assert 140 <= sampled <= 260  # 0.5 ± 6σ of 400
    assert {r["decision"] for r in results} == {"scheduled", "sampled_out"}
    # The channel is worked out for sampled-out transactions too (reports attribute them).
    assert all(r["channel"] == "console" for r in results)


def test_no_contact_is_no_channel_and_opt_out_is_opted_out(client, auth):
    assert post(client, tx("N-1"), auth).get_json()["decision"] == "no_channel"
    response = client.post("/api/v1/opt-outs", json={"email": "gone@example.com"}, headers=auth)
    assert response.status_code == 201, response.get_json()
    assert {s["channel"] for s in response.get_json()["suppressions"]} == {"email"}
    result = post(client, tx("N-2", contact={"email": "Gone@example.com"}), auth).get_json()
    assert result["decision"] == "opted_out"


def test_cooldown_across_services(client, auth):
    first = post(client, tx("C-1", contact={"phone": "+12025550150"}), auth).get_json()
    assert first["decision"] == "scheduled"
    second = post(client, tx("C-2", service="other-agency", contact={"phone": "+1 202 555 0150"}), auth).get_json()
    assert second["decision"] == "cooldown"
    # Inside one batch too.
    batch = post(client, {"transactions": [tx("C-3", contact={"email": "x@example.com"}),
                                           tx("C-4", contact={"email": "x@example.com"})]}, auth).get_json()  # fmt: skip
    assert [r["decision"] for r in batch["results"]] == ["scheduled", "cooldown"]


def test_daily_cap(client, auth):
    items = [tx(f"K-{n}", service="capped", contact={"email": f"k{n}@example.com"}) for n in range(3)]
    results = post(client, {"transactions": items}, auth).get_json()["results"]
    assert [r["decision"] for r in results] == ["scheduled", "scheduled", "cap_reached"]
    assert (
        post(client, tx("K-9", service="capped", contact={"email": "k9@example.com"}), auth).get_json()["decision"]
        == "cap_reached"
    )


def test_consent_and_quiet_hours_pick_the_send_time(client, auth, runtime):
    # Without SMS consent the texting stand-in is skipped for the next channel in preference.
    no_consent = post(client, tx("Q-1", service="texting", contact={"phone": "+12025550161"}), auth).get_json()
    assert no_consent["channel"] == "console"
    # Completed at 23:30 in Honolulu: a text waits for 08:00 there.
    now = datetime.now(UTC)
    body = tx("Q-2", service="texting", completed_at=(now - timedelta(minutes=1)).isoformat(),
              contact={"phone": "+12025550162", "timezone": "Pacific/Honolulu"}, consent={"sms": True})  # fmt: skip
    result = post(client, body, auth).get_json()
    assert result["channel"] == "quiet-stub"
    local = datetime.fromisoformat(result["invitation"]["send_at"]).astimezone(
        runtime.catalog.offices["HNL-01"].timezone
    )
    assert not (local.hour >= 21 or local.hour < 8)
    assert datetime.fromisoformat(result["invitation"]["send_at"]) >= now - timedelta(seconds=5)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('{"transactions": []}', "application/json", 400),
        ('{"transactions": "x"}', "application/json", 400),
        ('{"transactions": [], "extra": 1}', "application/json", 400),
        ("id=1", "application/x-www-form-urlencoded", 415),
    ],
)
def test_whole_request_errors_are_problem_json_and_write_nothing(client, auth, runtime, body, content_type, status):
    before = counts(runtime)
    response = client.post("/api/v1/transactions", data=body, content_type=content_type, headers=auth)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status and problem["detail"] and problem["title"]
    assert counts(runtime) == before


def test_a_batch_over_1000_is_refused_whole(client, auth, runtime):
    items = [tx(f"L-{n}") for n in range(1001)]
    response = post(client, {"transactions": items}, auth)
    assert response.status_code == 413
    assert counts(runtime)["transactions"] == 0


def test_a_single_invalid_transaction_is_422_naming_fields(client, auth, runtime):
    response = post(client, tx("I-1", contact={"timezone": "EST+5"}, unknown_field=1), auth)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["decision"] == "invalid" and problem["id"] == "I-1"
    assert {e["field"] for e in problem["errors"]} == {"contact.timezone", "unknown_field"}
    assert counts(runtime)["transactions"] == 0


def test_keys_are_checked(client, make_key, runtime):
    body = tx("A-1")
    assert client.post("/api/v1/transactions", json=body).status_code == 401
    forged = client.post("/api/v1/transactions", json=body, headers={"Authorization": "Bearer se_forged"})
    assert forged.status_code == 401 and forged.mimetype == "application/problem+json"
    reports_only = make_key(("passport-renewal",), ("reports",))
    response = client.post("/api/v1/transactions", json=body, headers={"Authorization": f"Bearer {reports_only}"})
    assert response.status_code == 403
    other = make_key(("other-agency",), ("intake",))
    response = client.post("/api/v1/transactions", json=body, headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 403
    batch = client.post(
        "/api/v1/transactions", json={"transactions": [body]}, headers={"Authorization": f"Bearer {other}"}
    )
    assert batch.get_json()["results"][0]["decision"] == "invalid"
    assert counts(runtime)["transactions"] == 0


def test_get_transaction_shows_decision_invitation_and_history(client, auth, make_key):
    post(client, tx("G-1", contact={"email": "g@example.com"}), auth)
    response = client.get("/api/v1/transactions/passport-renewal/G-1", headers=auth)
    assert response.status_code == 200
    detail = response.get_json()
    assert detail["decision"] == "scheduled" and detail["invitation"]["state"] == "scheduled"
    assert detail["invitation"]["events"] == []
    assert "g@example.com" not in json.dumps(detail)
    assert client.get("/api/v1/transactions/passport-renewal/NOPE", headers=auth).status_code == 404
    other = make_key(("other-agency",), ("reports",))
    assert client.get("/api/v1/transactions/passport-renewal/G-1",
                      headers={"Authorization": f"Bearer {other}"}).status_code == 403  # fmt: skip


def test_restoring_an_opt_out_needs_admin_and_a_reason_and_is_audited(client, auth, make_key, runtime):
    client.post("/api/v1/opt-outs", json={"phone": "+12025550170", "channel": "sms"}, headers=auth)
    assert (
        client.delete("/api/v1/opt-outs", json={"phone": "+12025550170", "reason": "asked"}, headers=auth).status_code
        == 403
    )
    admin = {"Authorization": f"Bearer {make_key(('passport-renewal',), ('admin',))}"}
    missing_reason = client.delete("/api/v1/opt-outs", json={"phone": "+12025550170"}, headers=admin)
    assert missing_reason.status_code == 422
    done = client.delete("/api/v1/opt-outs", json={"phone": "+12025550170", "reason": "customer called to opt back in"},
                         headers=admin)  # fmt: skip
    assert done.status_code == 200 and done.get_json() == {"restored": 1}
    from engine.store.models import AuditEntry, Suppression

    with runtime.sessions() as session:
        row = session.execute(select(Suppression)).scalar_one()
        assert row.restored_at is not None and row.restore_reason == "customer called to opt back in"
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "suppression.restore")).scalar_one()
        assert audit.actor.startswith("api-key:")


def test_opt_out_input_is_checked(client, auth, runtime):
    before = counts(runtime)
    for body in ({}, {"phone": "+12025550170", "email": "a@example.com"}, {"phone": "12"},
                 {"email": "a@example.com", "channel": "sms"}, {"phone": "+12025550170", "reason": "bored"},
                 {"phone": "+12025550170", "colour": "red"}):  # fmt: skip
        response = client.post("/api/v1/opt-outs", json=body, headers=auth)
        assert response.status_code == 422, body
        assert response.get_json()["errors"]
    assert counts(runtime) == before


def test_invitation_rows_match_results(client, auth, runtime):
    results = post(client, {"transactions": [tx(f"M-{n}", contact={"email": f"m{n}@example.com"}) for n in range(5)]},
                   auth).get_json()["results"]  # fmt: skip
    with runtime.sessions() as session:
        ids = set(session.execute(select(Invitation.id)).scalars())
    assert {r["invitation"]["id"] for r in results} == {str(i) for i in ids}


def test_a_bounce_leaves_no_channel_and_an_opt_out_is_opted_out(client, auth):
    """SPEC §2 rule 5: opted_out only when a channel was skipped for an opt-out; a bounce is not one."""
    client.post("/api/v1/opt-outs", json={"email": "bounced@example.com", "reason": "bounce"}, headers=auth)
    assert (
        post(client, tx("BN-1", contact={"email": "bounced@example.com"}), auth).get_json()["decision"] == "no_channel"
    )
    client.post("/api/v1/opt-outs", json={"email": "refused@example.com"}, headers=auth)
    assert (
        post(client, tx("BN-2", contact={"email": "refused@example.com"}), auth).get_json()["decision"] == "opted_out"
    )
