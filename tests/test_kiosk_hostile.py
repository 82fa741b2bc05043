"""A kiosk batch holding what no store can keep (SPEC §2 rule 11, issue 15 items 2-4 and 14c), on SQLite and
PostgreSQL: text with NUL or an unpaired surrogate, times outside 1970-9999, a flow version the server can no longer
read, another service's flow. That session comes back ``rejected`` with a reason naming the field, the rest of the
batch is stored, and nothing answers 500 (a 500 makes a device retry forever)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from engine.store.db import unit_of_work
from engine.store.models import FlowVersion
from tests.kiosk_support import API, COOKIE, enrolled, post_batch, session_of, stored


def _post_raw(client, credential, sessions):
    """POST the batch as JSON text (``json.dumps`` escapes a lone surrogate as ``\\ud800``, as a device would)."""
    client.delete_cookie(COOKIE)
    client.set_cookie(COOKIE, credential)
    return client.post(API, data=json.dumps({"sessions": sessions}), content_type="application/json")


def test_unstorable_text_and_times_reject_that_session_alone(client, runtime):
    _, credential = enrolled(runtime)
    base = session_of([("satisfaction", 4), ("comments", "fine")])

    def poisoned(change):
        item = json.loads(json.dumps(session_of([("satisfaction", 4), ("comments", "fine")])))
        change(item)
        return item

    cases = {
        "answers[1].text": (poisoned(lambda s: s["answers"][1].update(text="bad\x00byte")), "NUL"),
        "answers[1].text ": (poisoned(lambda s: s["answers"][1].update(text="half \ud800 pair")), "surrogate"),
        "answers[0].question_id": (poisoned(lambda s: s["answers"][0].update(question_id="trust\x00")), "NUL"),
        "flow.id": (poisoned(lambda s: s["flow"].update(id="a11-standard\udfff")), "surrogate"),
        "flow.version": (poisoned(lambda s: s["flow"].update(version="1\x00")), "NUL"),
        "language": (poisoned(lambda s: s.update(language="e\x00n")), "NUL"),
        "started_at": (poisoned(lambda s: s.update(started_at="0001-01-01T00:00:00+23:59")), "1970 and 9999"),
        "completed_at": (poisoned(lambda s: s.update(completed_at="9999-12-31T23:59:59-23:59")), "1970 and 9999"),
        "answers[0].answered_at": (
            poisoned(lambda s: s["answers"][0].update(answered_at="1969-12-31T23:59:59Z")),
            "1970 and 9999",
        ),
        "started_at ": (poisoned(lambda s: s.update(started_at="2026-01-01T00:00:00\x00Z")), "NUL"),
    }
    choice = session_of([("satisfaction", 4)], flow="a11-standard")
    reply = _post_raw(client, credential, [item for item, _ in cases.values()] + [base])
    assert reply.status_code == 200, reply.get_data(as_text=True)
    results = reply.get_json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * len(cases) + ["stored"]
    for (field, (_, words)), result in zip(cases.items(), results, strict=False):
        assert result["reason"].startswith(field.strip()), (field, result)
        assert words in result["reason"], (field, result)
        assert "\x00" not in result["reason"] and "\ud800" not in result["reason"]
    [(response, answers)] = stored(runtime)
    assert str(response.client_uuid) == base["client_uuid"] and answers["comments"].text == "fine"
    assert post_batch(client, credential, [choice]).get_json()["results"][0]["status"] == "stored"


def test_a_poisoned_choice_id_is_rejected_with_its_field(client, runtime):
    _, credential = enrolled(runtime, service="kiosk-quick")
    bad = session_of([("trust", 5), ("went_well", ["ease", "employee\x00"])], flow="a11-drivers")
    good = session_of([("trust", 5), ("went_well", ["ease"])], flow="a11-drivers")
    results = _post_raw(client, credential, [bad, good]).get_json()["results"]
    assert [r["status"] for r in results] == ["rejected", "stored"]
    assert results[0]["reason"].startswith("answers[1].choices[1] must not contain a NUL")


def test_a_published_version_the_server_can_no_longer_read_is_rejected_not_a_500(client, runtime):
    _, credential = enrolled(runtime)
    with unit_of_work(runtime.sessions) as session:  # published long ago, under rules the engine no longer accepts
        session.add(FlowVersion(flow_id="a11-standard", version="0", content_hash="0" * 64, title="old",
                                definition={"id": "a11-standard", "version": "0", "questions": "not a list"}))  # fmt: skip
    old = session_of([("satisfaction", 5)], version="0")
    good = session_of([("satisfaction", 5)])
    reply = post_batch(client, credential, [old, good])
    assert reply.status_code == 200
    results = reply.get_json()["results"]
    assert [r["status"] for r in results] == ["rejected", "stored"]
    assert results[0]["reason"].startswith("the server cannot store this session")
    assert len(stored(runtime)) == 1


def test_another_services_flow_is_rejected_a_flow_the_service_used_before_is_kept(client, runtime):
    _, office_kiosk = enrolled(runtime)  # kiosk-office: a11-standard
    _, quick_kiosk = enrolled(runtime, service="kiosk-quick")  # kiosk-quick: a11-drivers
    theirs = session_of([("trust", 5)], flow="a11-drivers")
    results = post_batch(client, office_kiosk, [theirs, session_of([("trust", 4)])]).get_json()["results"]
    assert [r["status"] for r in results] == ["rejected", "stored"]
    assert results[0]["reason"] == "flow a11-drivers v2 is not a flow of this kiosk's service (kiosk-office)"

    # kiosk-quick ran a11-standard before it moved to a11-drivers: its kiosks' queued sessions on it still count.
    assert post_batch(client, quick_kiosk, [session_of([("trust", 4)])]).get_json()["results"][0]["status"] == (
        "rejected"
    )
    with unit_of_work(runtime.sessions) as session:
        from engine.surveys.sessions import SurveySessions

        SurveySessions(runtime).start_session(
            session, "kiosk-quick", "kiosk", "en", started_at=datetime.now(UTC) - timedelta(days=40),
            flow_version_id=runtime.flow_version_ids["a11-standard"],
        )  # fmt: skip
    late = session_of([("trust", 4)])
    assert post_batch(client, quick_kiosk, [late]).get_json()["results"][0]["status"] == "stored"


def test_each_result_names_the_client_uuid_as_the_device_sent_it(client, runtime):
    """A device matches results to its queue by the id it sent. Another spelling of the same UUID (upper case, as
    iOS's NSUUID writes it; braces; a URN) was answered in canonical form, so such a device never found its session
    in the results, kept it queued and sent it again forever. Each result now names the id as sent; the id is still
    one UUID, so a retry in another spelling is the same session (``duplicate``)."""
    _, credential = enrolled(runtime)
    item = session_of([("satisfaction", 4)])
    canonical = item["client_uuid"]
    for spelling, status in ((canonical.upper(), "stored"), (canonical.upper(), "duplicate"),
                             ("{" + canonical + "}", "duplicate"), ("urn:uuid:" + canonical, "duplicate")):  # fmt: skip
        (result,) = post_batch(client, credential, [{**item, "client_uuid": spelling}]).get_json()["results"]
        assert (result["client_uuid"], result["status"]) == (spelling, status), result
    assert len(stored(runtime)) == 1
