"""Post-call IVR hand-offs naming an unusable language (SPEC §4), on SQLite and PostgreSQL, through the real app.

A hand-off's ``language`` is a hint: one that is not a BCP 47 tag is left out of the call's transaction, and the
caller is surveyed in the service's language (channels/ivr/handoff.py). A tag of the right shape but longer than
the transaction's language column (35 characters) was passed on whole: intake refused the transaction, and the
caller on the line, who had agreed to stay for the survey, heard "this survey is not available".
"""

from __future__ import annotations

from tests import ivr_support

ivr = ivr_support.ivr_stack

LONG_TAG = "en-" + "-".join(["abcdefgh"] * 5)  # BCP 47 in shape, 47 characters


def test_an_overlong_language_tag_is_left_out_and_the_caller_is_surveyed(ivr):
    call = ivr.call().dial(
        f"/channels/ivr/voice?service=ivr-standard&transaction=LT-1&office=NYC-01&language={LONG_TAG}"
    )
    assert "short survey about your recent experience with Passport Renewal" in call.text, call.text
    call.wait()
    for key in "5544332":
        call.press(key)
    assert call.engine_hung_up and call.text == "Thank you for your feedback. Goodbye."
    response = ivr.response_of(call)
    assert response.completed_at is not None and response.language == "en"
    tx = ivr.transaction("ivr-standard", "LT-1")
    assert response.transaction_id == tx.id and tx.language is None
