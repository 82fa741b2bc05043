"""POST /api/v1/kiosk/responses against what kiosks queued in the field, through the real stack (SQLite and
PostgreSQL): a session where a double tap recorded one question twice with the same answer (the kiosk page did so
before it took each answer once; such sessions may still wait in an offline device's queue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.kiosk_support import enrolled, iso, post_batch, session_of, stored


def _tapped_twice(session: dict, index: int) -> dict:
    """``session`` with its answer ``index`` recorded a second time, a moment later, as a double tap did."""
    answers = session["answers"]
    again = dict(answers[index])
    again["answered_at"] = iso(datetime.fromisoformat(again["answered_at"]) + timedelta(milliseconds=120))
    session["answers"] = [*answers[: index + 1], again, *answers[index + 1 :]]
    return session


def test_a_question_recorded_twice_with_the_same_answer_keeps_the_session(client, runtime):
    _, credential = enrolled(runtime)
    start = datetime.now(UTC) - timedelta(minutes=30)
    double_rating = _tapped_twice(session_of([("satisfaction", 4), ("trust", 5)], at=start), 0)
    double_text = _tapped_twice(
        session_of([("satisfaction", 2), ("comments", "Slow.")], at=start + timedelta(minutes=5)), 1
    )
    answer = post_batch(client, credential, [double_rating, double_text])
    assert answer.status_code == 200
    assert [r["status"] for r in answer.get_json()["results"]] == ["stored", "stored"], answer.get_json()
    rows = stored(runtime)
    assert [{q: (a.value, a.text) for q, a in answers.items()} for _, answers in rows] == [
        {"satisfaction": (4, None), "trust": (5, None)},
        {"satisfaction": (2, None), "comments": (None, "Slow.")},
    ]
    first = rows[0][1]["satisfaction"].answered_at
    assert first == datetime.fromisoformat(double_rating["answers"][0]["answered_at"])  # the first tap's time


def test_a_question_given_two_different_answers_is_still_rejected(client, runtime):
    _, credential = enrolled(runtime)
    item = session_of([("satisfaction", 4), ("satisfaction", 1)])
    answer = post_batch(client, credential, [item])
    assert answer.get_json()["results"][0]["status"] == "rejected"
    assert "answered twice" in answer.get_json()["results"][0]["reason"]
    assert stored(runtime) == []


def _stepped_back(start: datetime) -> dict:
    """A visitor's session during which the device's clock was set back 10 seconds (a network time correction): the
    second answer is dated before the session's start, and its end before the first answer."""
    item = session_of([("trust", 5), ("satisfaction", 4)], at=start)
    item["answers"][0]["answered_at"] = iso(start + timedelta(seconds=2))
    item["answers"][1]["answered_at"] = iso(start - timedelta(seconds=6))
    item["completed_at"] = iso(start - timedelta(seconds=3))
    return item


def test_a_session_across_a_small_clock_step_back_is_stored_in_order(client, runtime):
    _, credential = enrolled(runtime)
    start = datetime.now(UTC) - timedelta(minutes=20)
    answer = post_batch(client, credential, [_stepped_back(start)])
    assert answer.get_json()["results"][0]["status"] == "stored", answer.get_json()
    [(response, answers)] = stored(runtime)
    assert {q: a.value for q, a in answers.items()} == {"trust": 5, "satisfaction": 4}
    # Stored in order: started at its earliest answer, completed no earlier than its last one.
    assert response.started_at == start - timedelta(seconds=6)
    assert response.completed_at == start + timedelta(seconds=2)


def test_answers_far_outside_their_session_are_still_rejected(client, runtime):
    _, credential = enrolled(runtime)
    start = datetime.now(UTC) - timedelta(hours=2)
    early = session_of([("trust", 5)], at=start)
    early["answers"][0]["answered_at"] = iso(start - timedelta(minutes=30))
    late = session_of([("trust", 4)], at=start)
    late["answers"][0]["answered_at"] = iso(start + timedelta(minutes=40))
    answer = post_batch(client, credential, [early, late])
    assert [r.get("reason") for r in answer.get_json()["results"]] == [
        "an answer is dated before the session started",
        "an answer is dated after the session was completed",
    ]
    assert stored(runtime) == []
