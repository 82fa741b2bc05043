"""One-click unsubscribe (RFC 8058) at ``/u/<token>``: a GET only asks, a POST opts the address out at once.

Tokens are issued here the way the dispatcher issues them (``engine.surveys.tokens.issue(..., purpose="unsubscribe")``)
for invitations really sent through the channel; the end-to-end check that a dispatched email carries its own
link is in ``test_email_channel.py`` (expected to fail until the dispatcher issues the links).
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from engine.store.models import InvitationState
from tests import email_support
from tests.email_support import (
    EmailStack,
)

# The fixtures these tests take (pytest finds them by name in the module).
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def stack(email_stack, mail_stand_in) -> EmailStack:
    built: EmailStack = email_stack(mail_stand_in.base_url)
    return built


def sent(stack: EmailStack, external_id: str, email: str, **fields: object) -> uuid.UUID:
    invitation_id = stack.schedule(external_id, email, **fields)
    stack.dispatch()
    assert stack.invitation(invitation_id).state.value == "sent"
    return invitation_id


def test_a_get_shows_a_confirm_page_and_suppresses_nothing(stack):
    token = stack.unsubscribe_token(sent(stack, "UG-1", "ug1@example.com"))
    page = stack.client.get(f"/u/{token}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<html lang="en">' in html and "Unsubscribe from survey emails" in html
    assert '<form method="post">' in html and 'type="submit"' in html
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert stack.suppressions() == []


def test_the_one_click_post_unsubscribes_at_once_and_the_next_transaction_is_not_emailed(stack):
    invitation_id = sent(stack, "UC-1", "oneclick@example.com")
    token = stack.unsubscribe_token(invitation_id)
    answer = stack.client.post(f"/u/{token}", data=ONE_CLICK)  # no cookie, no CSRF token, no sign-in
    assert answer.status_code == 200 and answer.get_data() == b""
    (suppression,) = stack.suppressions()
    assert (suppression.channel, suppression.reason.value, suppression.source) == ("email", "opted_out",
                                                                                  "email:unsubscribe")  # fmt: skip
    assert suppression.contact_hash == stack.invitation(invitation_id).contact_hash
    assert [e.event for e in stack.events(invitation_id)][-1] == "email:unsubscribed"
    again = stack.report("UC-2", "oneclick@example.com")
    assert again["decision"] == "opted_out" and again["invitation"] is None
    assert stack.report("UC-3", "other@example.com")["decision"] == "scheduled"


def test_the_confirm_pages_button_unsubscribes_and_says_so(stack):
    token = stack.unsubscribe_token(sent(stack, "UB-1", "button@example.com", language="es"))
    page = stack.client.post(f"/u/{token}", data={"confirm": "yes"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<html lang="es">' in html  # the invitation's language
    assert "Se canceló su suscripción" in html
    assert [s.reason.value for s in stack.suppressions()] == ["opted_out"]
    again = stack.client.get(f"/u/{token}")
    assert again.status_code == 200 and "ya había cancelado la suscripción" in again.get_data(as_text=True)


def test_posting_twice_records_one_suppression(stack):
    invitation_id = sent(stack, "U2-1", "twice@example.com")
    token = stack.unsubscribe_token(invitation_id)
    assert stack.client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert stack.client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert len(stack.suppressions()) == 1
    assert [e.event for e in stack.events(invitation_id)].count("email:unsubscribed") == 1


def test_the_one_click_post_works_after_the_answer_window_closed(stack):
    invitation_id = sent(stack, "UL-1", "late@example.com")
    token = stack.unsubscribe_token(invitation_id)
    stack.update_invitation(invitation_id, state=InvitationState.EXPIRED,
                            expires_at=datetime.now(UTC) - timedelta(days=30))  # fmt: skip
    assert stack.client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert [s.reason.value for s in stack.suppressions()] == ["opted_out"]


@pytest.mark.parametrize("token", ["A" * 22, "short", "with.dots.in.it-0123456789"])
def test_an_unknown_token_is_a_404_and_changes_nothing(stack, token):
    assert stack.client.get(f"/u/{token}").status_code == 404
    assert stack.client.post(f"/u/{token}", data=ONE_CLICK).status_code == 404
    page = stack.client.post(f"/u/{token}", data={"confirm": "yes"})
    assert page.status_code == 404 and "not valid" in page.get_data(as_text=True)
    assert stack.suppressions() == []


def test_a_survey_token_does_not_unsubscribe(stack):
    token = stack.survey_token(sent(stack, "US-1", "survey-token@example.com"))
    assert stack.client.post(f"/u/{token}", data=ONE_CLICK).status_code == 404
    assert stack.suppressions() == []


def test_one_click_posts_sent_at_once_record_one_suppression(stack):
    """A mail provider's one-click POST and its retry (or the person's click on the page at the same moment) arrive
    together: the address is opted out once (one suppression, one ``email:unsubscribed`` event), each answered 200.
    Several rounds, since each is a race (on PostgreSQL each post read "not yet suppressed" before any committed)."""
    for round_ in range(6):
        invitation_id = sent(stack, f"UR-{round_}", f"race{round_}@example.com")
        token = stack.unsubscribe_token(invitation_id)
        start = threading.Barrier(8)
        statuses: list[int] = []

        def post(path: str, start: threading.Barrier, statuses: list[int]) -> None:
            client = stack.app.test_client()
            start.wait()
            statuses.append(client.post(path, data=ONE_CLICK).status_code)

        threads = [threading.Thread(target=post, args=(f"/u/{token}", start, statuses)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert statuses == [200] * 8, statuses
        contact = stack.invitation(invitation_id).contact_hash
        assert len([s for s in stack.suppressions() if s.contact_hash == contact]) == 1, f"round {round_}"
        assert [e.event for e in stack.events(invitation_id)].count("email:unsubscribed") == 1, f"round {round_}"


def test_one_click_posts_and_api_opt_outs_of_one_address_at_once_record_one_suppression(stack):
    """The link's posts (each locking its invitation) and ``POST /api/v1/opt-outs`` of the same address (locking
    nothing) arrive together: one active suppression, and the ``email:unsubscribed`` event only when the link's post
    is the one that recorded it (as when they come one after another)."""
    api = {"Authorization": f"Bearer {stack.api_key}"}
    for round_ in range(6):
        email = f"mixed{round_}@example.com"
        invitation_id = sent(stack, f"UM-{round_}", email)
        token = stack.unsubscribe_token(invitation_id)
        start = threading.Barrier(8)
        statuses: list[int] = []

        def post(by_link: bool, start: threading.Barrier, statuses: list[int], token: str, email: str) -> None:
            client = stack.app.test_client()
            start.wait()
            if by_link:
                statuses.append(client.post(f"/u/{token}", data=ONE_CLICK).status_code)
            else:
                statuses.append(client.post("/api/v1/opt-outs", json={"email": email}, headers=api).status_code)

        threads = [threading.Thread(target=post, args=(i % 2 == 0, start, statuses, token, email)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses) == [200] * 4 + [201] * 4, statuses
        contact = stack.invitation(invitation_id).contact_hash
        rows = [s for s in stack.suppressions() if s.contact_hash == contact and s.restored_at is None]
        assert len(rows) == 1, f"round {round_}: {[(r.source, r.created_at) for r in rows]}"
        by_link = rows[0].source == "email:unsubscribe"
        assert [e.event for e in stack.events(invitation_id)].count("email:unsubscribed") == int(by_link)
