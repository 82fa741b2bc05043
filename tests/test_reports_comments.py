"""The free text in the §6.2 file (``question_4``) and the dashboard's comments has its contact data masked (SPEC
§6.2: "No contact data"), however the customer wrote the number: with an extension run on (``x45``, ``ext.12``)
too. Through the real stack: an enrolled kiosk posts its sessions to ``/api/v1/kiosk/responses``; the file is read
from the report API.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.reporting.fiscal import fiscal_quarter
from tests.kiosk_support import enrolled, post_batch, session_of

COMMENTS = {
    "Call me at 202-555-0123x45 after noon": "Call me at [phone] after noon",
    "Desk (202) 555-0188 ext.12, or jo@example.gov": "Desk [phone], or [email]",
    "Waited 45 minutes at window 12 on 3/4": "Waited 45 minutes at window 12 on 3/4",
}


def test_a_phone_number_with_an_extension_is_masked_in_the_response_file(client: Any, runtime: Any,
                                                                         make_key: Any) -> None:  # fmt: skip
    _, credential = enrolled(runtime)
    at = datetime.now(UTC) - timedelta(minutes=30)
    batch = [session_of([("satisfaction", 4), ("comments", text)], at=at + timedelta(minutes=n))
             for n, text in enumerate(COMMENTS)]  # fmt: skip
    reply = post_batch(client, credential, batch)
    assert [r["status"] for r in reply.get_json()["results"]] == ["stored"] * len(COMMENTS)
    quarter = fiscal_quarter(at, runtime.catalog.services["kiosk-office"].timezone)
    key = make_key(("kiosk-office",), ("reports",))
    answer = client.get(f"/api/v1/reports/a11/responses?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
                        "&service=kiosk-office", headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200, answer.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [r["question_4"] for r in rows] == list(COMMENTS.values())
