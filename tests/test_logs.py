"""Logs are structured JSON and never carry contact data."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from engine.dispatch import Dispatcher
from engine.logs import JsonFormatter
from tests.helpers import post, tx


def test_no_contact_data_in_logs(client, auth, runtime, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    post(client, tx("LOG-1", contact={"email": "secret.person@example.com", "phone": "+12025550199"}), auth)
    post(client, tx("LOG-2", contact={"timezone": "Nowhere/Land", "email": "bad@@example"}), auth)
    client.post("/api/v1/opt-outs", json={"email": "secret.person@example.com"}, headers=auth)
    Dispatcher(runtime).drain(datetime.now(UTC) + timedelta(minutes=20))
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert lines, "nothing was logged"
    for line in lines:
        json.loads(line)
        assert "secret.person" not in line and "5550199" not in line
    out = capsys.readouterr()
    assert "secret.person@example.com" not in out.out + out.err
