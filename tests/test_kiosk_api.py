"""POST /api/v1/kiosk/responses through the real stack (SQLite and PostgreSQL): exactly once by client UUID,
partial sessions, device times kept, revoked devices, flow versions, malformed batches, the spam flag."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from engine.kiosk import devices as registry
from engine.store.db import unit_of_work
from engine.store.models import Answer, AnswerChoice, FlowVersion, KioskDevice, Response
from engine.surveys.flow_store import published_flow
from tests.kiosk_support import API, COOKIE, enrolled, iso, post_batch, session_of, stored

ALL_FIVES = [(q, 5) for q in ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency")]


def _count(runtime, model=Response) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_session_is_stored_once_with_the_device_office_and_times(client, runtime):
    device_id, credential = enrolled(runtime, office="HNL-01")
    at = datetime.now(UTC) - timedelta(days=3)  # offline for days: the queue still delivers, with its times
    item = session_of([("satisfaction", 4), ("trust", 2), ("comments", "Long wait.")], at=at)
    reply = post_batch(client, credential, [item])
    assert reply.status_code == 200
    assert reply.get_json() == {
        "results": [{"client_uuid": item["client_uuid"], "status": "stored", "suspected_spam": False}]
    }
    again = post_batch(client, credential, [item, session_of([("trust", 5)])])
    assert [r["status"] for r in again.get_json()["results"]] == ["duplicate", "stored"]
    rows = stored(runtime)
    assert len(rows) == 2
    response, answers = rows[0]
    assert response.client_uuid == uuid.UUID(item["client_uuid"]) and response.kiosk_device_id == device_id
    assert response.channel == "kiosk" and response.office_id == runtime.office_ids["HNL-01"]
    assert response.service_id == runtime.service_ids["kiosk-office"] and response.transaction_id is None
    assert response.started_at == at + timedelta(seconds=3), "started_at is the first answer's device time"
    assert response.completed_at == at + timedelta(seconds=12)
    assert answers["satisfaction"].answered_at == at + timedelta(seconds=3)
    assert (answers["trust"].a11_tag, answers["trust"].value) == ("trust", 2)
    assert answers["comments"].text == "Long wait."
    with runtime.sessions() as session:
        device = session.get(KioskDevice, device_id)
        assert device is not None and device.last_seen_at is not None


def test_the_office_and_service_come_from_the_device_never_the_body(client, runtime):
    _, credential = enrolled(runtime)
    item = session_of([("trust", 5)])
    item["office"] = "HNL-01"
    reply = post_batch(client, credential, [item])
    assert reply.status_code == 422
    assert reply.get_json()["errors"] == [{"field": "sessions[0]", "message": "unknown fields office"}]
    assert _count(runtime) == 0


def test_a_partial_session_is_kept_not_completed(client, runtime):
    _, credential = enrolled(runtime)
    item = session_of([("satisfaction", 3)], completed=False)
    assert post_batch(client, credential, [item]).get_json()["results"][0]["status"] == "stored"
    [(response, answers)] = stored(runtime)
    assert response.completed_at is None and set(answers) == {"satisfaction"}


def test_without_a_credential_or_revoked_the_api_refuses_and_stores_nothing(client, runtime):
    device_id, credential = enrolled(runtime)
    reply = post_batch(client, None, [session_of([("trust", 5)])])
    assert reply.status_code == 401 and reply.mimetype == "application/problem+json"
    assert "Enroll the tablet" in reply.get_json()["detail"]
    assert post_batch(client, "not-a-credential", [session_of([("trust", 5)])]).status_code == 401
    with unit_of_work(runtime.sessions) as session:
        registry.revoke(session, str(device_id))
    reply = post_batch(client, credential, [session_of([("trust", 5)])])
    assert reply.status_code == 401 and reply.mimetype == "application/problem+json"
    assert reply.get_json()["type"].endswith("/kiosk-revoked")
    assert "revoked" in reply.get_json()["detail"]
    client.set_cookie(COOKIE, credential)
    page = client.get("/kiosk")
    assert page.status_code == 401 and b"This kiosk was revoked" in page.data
    assert client.get("/kiosk/flow.json").status_code == 401
    assert _count(runtime) == 0


def test_an_old_published_flow_version_is_accepted_and_kept_an_unknown_one_rejected(client, runtime):
    _, credential = enrolled(runtime)
    current = runtime.catalog.flows["a11-standard"]
    old_definition = dict(current.definition, version="0")  # a version the kiosk showed before the update
    with unit_of_work(runtime.sessions) as session:
        session.add(FlowVersion(flow_id="a11-standard", version="0", content_hash="0" * 64, title=current.title,
                                definition=old_definition))  # fmt: skip
    old = session_of([("satisfaction", 5)], version="0")
    unknown = session_of([("satisfaction", 5)], version="9")
    other_flow = session_of([("trust", 5)], flow="no-such-flow")
    results = post_batch(client, credential, [old, unknown, other_flow]).get_json()["results"]
    assert [r["status"] for r in results] == ["stored", "rejected", "rejected"]
    assert results[1]["reason"] == "flow a11-standard v9 was never published"
    with runtime.sessions() as session:
        old_id, _ = published_flow(session, "a11-standard", "0") or (None, None)
        [response] = session.execute(select(Response)).scalars().all()
    assert response.flow_version_id == old_id != runtime.flow_version_ids["a11-standard"]


def test_answers_are_checked_against_the_flow_each_bad_session_rejected_alone(client, runtime):
    _, credential = enrolled(runtime, service="kiosk-quick")  # a11-drivers: thumbs, then a branch
    future = session_of([("trust", 5)], at=datetime.now(UTC) + timedelta(hours=1))
    cases = {
        "no such question": session_of([("colour", 5)], flow="a11-drivers"),
        "not a point of the scale": session_of([("trust", 3)], flow="a11-drivers"),
        "the wrong branch": session_of([("trust", 5), ("could_be_better", ["ease"])], flow="a11-drivers"),
        "an unknown choice": session_of([("trust", 5), ("went_well", ["teleport"])], flow="a11-drivers"),
        "answered twice": session_of([("trust", 5), ("trust", 1)], flow="a11-drivers"),
        "no answers": session_of([], flow="a11-drivers"),
        "only blank text": session_of([("comments", "   ")], flow="a11-drivers"),
        "a language the flow lacks": session_of([("trust", 5)], flow="a11-drivers", language="fr"),
        "in the future": {**future, "flow": {"id": "a11-drivers", "version": "2"}},
    }
    good = session_of([("trust", 5), ("went_well", ["ease", "employee"])], flow="a11-drivers")
    reply = post_batch(client, credential, [*cases.values(), good])
    results = reply.get_json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * len(cases) + ["stored"]
    reasons = dict(zip(cases, (r["reason"] for r in results), strict=False))
    assert "no question 'colour'" in reasons["no such question"]
    assert "not asked after the answers given before it" in reasons["the wrong branch"]
    assert "answered twice" in reasons["answered twice"]
    assert "future" in reasons["in the future"]
    assert "'fr'" in reasons["a language the flow lacks"]
    [(response, _)] = stored(runtime)
    assert response.client_uuid == uuid.UUID(good["client_uuid"])
    with runtime.sessions() as session:
        chosen = session.execute(select(AnswerChoice.choice_id, AnswerChoice.driver)).all()
    assert sorted(chosen) == [("ease", "ease"), ("employee", "employee")]


def test_malformed_batches_get_a_precise_4xx_and_store_nothing(client, runtime):
    _, credential = enrolled(runtime)
    good = session_of([("trust", 5)])
    answer = good["answers"][0]
    client.set_cookie(COOKIE, credential)
    cases = [
        ({"sessions": []}, "sessions"),
        ({"sessions": [good], "device": "x"}, "(body)"),
        ({"sessions": [good, {**good, "client_uuid": "nope"}]}, "sessions[1].client_uuid"),
        ({"sessions": [good, {**good, "started_at": "yesterday"}]}, "sessions[1].started_at"),
        ({"sessions": [good, {**good, "started_at": "2026-11-01T10:00:00"}]}, "sessions[1].started_at"),
        ({"sessions": [good, {**good, "answers": [{**answer, "value": True}]}]}, "sessions[1].answers[0].value"),
        ({"sessions": [good, {**good, "answers": [{**answer, "text": "x"}]}]}, "sessions[1].answers[0]"),
        (
            {"sessions": [good, {**good, "answers": [{**answer, "answered_at": 5}]}]},
            "sessions[1].answers[0].answered_at",
        ),
        ({"sessions": [good, {**good, "flow": {"id": "a11-standard"}}]}, "sessions[1].flow"),
        ({"sessions": [good, good]}, "sessions[1].client_uuid"),
        ({"sessions": [good, {k: v for k, v in good.items() if k != "completed_at"}]}, "sessions[1].completed_at"),
        ({"sessions": [session_of([("trust", 5)]) for _ in range(registry.MAX_SESSIONS + 1)]}, "sessions"),
    ]
    for body, field in cases:
        reply = client.post(API, json=body)
        assert reply.status_code == 422, body
        assert reply.mimetype == "application/problem+json"
        assert field in [e["field"] for e in reply.get_json()["errors"]], (field, reply.get_json())
    assert client.post(API, data="{not json", content_type="application/json").status_code == 400
    assert client.post(API, data=json.dumps({"sessions": [good]}), content_type="text/plain").status_code == 415
    huge = {"sessions": [{**good, "answers": [{"question_id": "comments", "text": "x" * 9000,
                                               "answered_at": good["started_at"]}] * 130}]}  # fmt: skip
    reply = client.post(API, json=huge)
    assert reply.status_code == 413 and reply.mimetype == "application/problem+json"
    assert _count(runtime) == 0 and _count(runtime, Answer) == 0


def test_forty_fives_in_a_minute_are_stored_flagged_as_spam(client, runtime):
    _, credential = enrolled(runtime)
    start = datetime.now(UTC) - timedelta(hours=2)
    batch = [
        session_of(ALL_FIVES, at=start + timedelta(seconds=n * 1.4), step=timedelta(milliseconds=100))
        for n in range(40)
    ]
    results = post_batch(client, credential, batch[:25]).get_json()["results"]
    results += post_batch(client, credential, batch[25:]).get_json()["results"]
    assert [r["status"] for r in results] == ["stored"] * 40
    flags = [r["suspected_spam"] for r in results]
    assert flags == [False] * 6 + [True] * 34
    with runtime.sessions() as session:
        flagged = session.execute(select(func.count()).where(Response.suspected_spam.is_(True))).scalar_one()
    assert flagged == 34
    # A visitor a quarter of an hour later is a person again.
    later = session_of(ALL_FIVES, at=start + timedelta(minutes=15))
    assert post_batch(client, credential, [later]).get_json()["results"][0]["suspected_spam"] is False


def test_the_spam_limit_is_per_device_and_configurable(client, runtime):
    _, first = enrolled(runtime, service="kiosk-quick")  # kiosk_max_sessions_per_minute: 3
    _, second = enrolled(runtime, service="kiosk-quick")
    start = datetime.now(UTC) - timedelta(hours=1)

    def burst(offset: int) -> list[dict]:
        return [session_of([("trust", 5)], flow="a11-drivers", at=start + timedelta(seconds=offset + 5 * n))
                for n in range(4)]  # fmt: skip

    one = [r["suspected_spam"] for r in post_batch(client, first, burst(0)).get_json()["results"]]
    two = [r["suspected_spam"] for r in post_batch(client, second, burst(1)).get_json()["results"]]
    assert one == two == [False, False, False, True]


def test_concurrent_retries_of_one_batch_store_each_session_once(app, runtime):
    _, credential = enrolled(runtime)
    batch = [session_of([("satisfaction", n % 5 + 1), ("trust", 5)]) for n in range(10)]
    statuses: list[list[str]] = []
    barrier = threading.Barrier(4)

    def retry() -> None:
        client = app.test_client()
        barrier.wait()
        reply = post_batch(client, credential, batch)
        statuses.append([r["status"] for r in reply.get_json()["results"]])

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(statuses) == 4
    for n in range(10):
        assert sorted(s[n] for s in statuses) == ["duplicate", "duplicate", "duplicate", "stored"]
    assert _count(runtime) == 10 and _count(runtime, Answer) == 20


def test_a_client_uuid_of_another_device_is_not_a_duplicate_of_it(client, runtime):
    _, first = enrolled(runtime)
    _, second = enrolled(runtime)
    item = session_of([("trust", 5)])
    assert post_batch(client, first, [item]).get_json()["results"][0]["status"] == "stored"
    result = post_batch(client, second, [item]).get_json()["results"][0]
    assert result["status"] == "rejected" and "another device" in result["reason"]
    assert _count(runtime) == 1


def test_times_may_come_in_any_offset_and_are_kept_in_utc(client, runtime):
    _, credential = enrolled(runtime)
    item = session_of([("trust", 4)])
    local = datetime.fromisoformat(item["answers"][0]["answered_at"]).astimezone(
        datetime.now().astimezone().tzinfo or UTC
    )
    item["answers"][0]["answered_at"] = local.isoformat()
    assert post_batch(client, credential, [item]).get_json()["results"][0]["status"] == "stored"
    [(_, answers)] = stored(runtime)
    assert iso(answers["trust"].answered_at) == iso(local)


def test_a_device_marked_revoked_during_a_sync_is_refused(client, runtime):
    device_id, credential = enrolled(runtime)
    with unit_of_work(runtime.sessions) as session:
        session.execute(update(KioskDevice).where(KioskDevice.id == device_id).values(revoked_at=datetime.now(UTC)))
    assert post_batch(client, credential, [session_of([("trust", 5)])]).status_code == 401


def test_flagged_sessions_are_left_out_of_the_a11_figures(client, runtime, make_key):
    _, credential = enrolled(runtime)
    start = datetime.now(UTC) - timedelta(hours=2)
    batch = [session_of(ALL_FIVES, at=start + timedelta(seconds=n * 1.4)) for n in range(40)]
    post_batch(client, credential, batch[:20])
    post_batch(client, credential, batch[20:])
    local = start.astimezone(runtime.catalog.services["kiosk-office"].timezone)
    fiscal_year, quarter = local.year + (local.month >= 10), (local.month - 10) % 12 // 3 + 1
    key = make_key(("kiosk-office",), ("reports",))
    reply = client.get(f"/api/v1/reports/a11?fiscal_year={fiscal_year}&quarter={quarter}&service=kiosk-office",
                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert reply.status_code == 200, reply.get_json()
    [row] = [r for r in reply.get_json()["rows"] if r["channel"] == "self_service_kiosk"]
    assert row["volume_of_customers"] == row["volume_of_respondents"] == 6
    assert row["satisfaction_5"] == row["satisfaction_n"] == 6


def test_the_excess_is_flagged_whatever_order_the_sessions_arrive_in(client, runtime):
    _, credential = enrolled(runtime)
    start = datetime.now(UTC) - timedelta(hours=3)
    sessions = [session_of(ALL_FIVES, at=start + timedelta(seconds=n * 2)) for n in range(10)]
    for item in reversed(sessions):  # one a request, newest first
        post_batch(client, credential, [item])
    with runtime.sessions() as session:
        flags = session.execute(select(Response.suspected_spam).order_by(Response.completed_at)).scalars().all()
    assert flags.count(True) == 4 and flags.count(False) == 6
