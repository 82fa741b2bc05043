"""Settling an ``unknown`` Twilio send by looking up what Twilio sent to that number since the claim (rule 10)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from engine.delivery.settlement import settle_unknown
from engine.store.models import InvitationState
from tests import sms_support, twilio_support
from tests.sms_support import created, sendable_now
from tests.twilio_support import ACCOUNT_SID

# The fixtures these tests take (pytest finds them by name in the module).
sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
twilio_prism = twilio_support.twilio_prism
twilio_stub = twilio_support.twilio_stub

PHONE = "+12025550123"
LIST_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def _page(*messages: dict) -> tuple[int, dict]:
    return 200, {"messages": list(messages), "end": len(messages) - 1, "first_page_uri": LIST_PATH, "next_page_uri": None,
                 "page": 0, "page_size": 50, "previous_page_uri": None, "start": 0, "uri": LIST_PATH}  # fmt: skip


def _unknown(stack, stub, external_id):
    inv_id = stack.schedule(external_id, PHONE)
    stub.script.append("hang")
    assert stack.dispatch().outcomes == {"unknown": 1}
    return inv_id


def test_a_message_twilio_did_send_settles_the_unknown_invitation_as_sent(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url, timeout=1.0)
    inv_id = _unknown(stack, twilio_stub, "ST-1")
    sid = f"SM{uuid.uuid4().hex}"
    twilio_stub.script.append(_page(created(sid, to=PHONE)[1]))
    assert settle_unknown(stack.rt, sendable_now() + timedelta(minutes=5)) == 1
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.SENT and invitation.provider_id == sid
    method, path, _ = twilio_stub.requests[-1]
    query = parse_qs(urlparse(path).query)
    assert method == "GET" and query["To"] == [PHONE] and "DateSent>" in query
    # Never resent: the only create request is the one that timed out.
    assert [m for m, p, _ in twilio_stub.requests if m == "POST"] == ["POST"]


def test_nothing_found_leaves_it_unknown_and_unsent(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url, timeout=1.0)
    inv_id = _unknown(stack, twilio_stub, "ST-2")
    twilio_stub.script.append(_page(created(f"SM{uuid.uuid4().hex}", to="+12025550199")[1]))  # another number
    assert settle_unknown(stack.rt, sendable_now() + timedelta(minutes=5)) == 0
    twilio_stub.script.append((500, {"code": 20500, "message": "down"}))  # a failed look-up changes nothing either
    assert settle_unknown(stack.rt, sendable_now() + timedelta(minutes=6)) == 0
    assert stack.invitation(inv_id).state is InvitationState.UNKNOWN
    stack.dispatch(sendable_now() + timedelta(hours=1))
    assert [m for m, p, _ in twilio_stub.requests if m == "POST"] == ["POST"]


def test_the_look_up_is_a_request_twilios_contract_accepts(twilio_prism):
    """Prism checks the request against Twilio's contract (its own example reply for the list breaks the contract's
    uri formats, so only the request side is judged here)."""
    import requests

    from tests.twilio_support import AUTH_TOKEN

    params = {"To": PHONE, "DateSent>": (sendable_now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "PageSize": "20"}  # fmt: skip
    answer = requests.get(twilio_prism + LIST_PATH, params=params, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10)
    problems = answer.json().get("validation", []) if answer.status_code >= 400 else []
    assert [p for p in problems if p["location"][0] != "response"] == []  # no fault in the request itself
    wrong = requests.get(twilio_prism + LIST_PATH, params={"PageSize": "many"}, auth=(ACCOUNT_SID, AUTH_TOKEN),
                         timeout=10)  # fmt: skip
    assert wrong.status_code == 422 and wrong.json()["validation"][0]["location"] == ["query", "pagesize"]
