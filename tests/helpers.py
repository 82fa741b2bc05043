"""Small builders shared by the tests: transactions as an integrator would send them, row counts, config dirs."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from engine.runtime import Runtime
from engine.store.db import Base

# Send rates far above anything a test sends, so paced dispatch never slows the suite (tests/test_pacing.py sets
# its own); conftest also puts them in the environment of the processes tests start.
FAST_SENDING = {
    "SURVEY_ENGINE_SEND_RATE_SMS": "100000",
    "SURVEY_ENGINE_SEND_RATE_IVR": "100000",
    "SURVEY_ENGINE_SEND_RATE_EMAIL": "1000000",
}


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def tx(external_id: str, service: str = "passport-renewal", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": external_id, "service": service, "completed_at": ago(minutes=5)}
    body.update(fields)
    return body


def counts(rt: Runtime) -> dict[str, int]:
    """Rows in every table: 'nothing half-written' is checked by comparing these before and after."""
    with rt.sessions() as session:
        return {
            t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def post(client: Any, body: Any, auth: dict[str, str]) -> Any:
    return client.post("/api/v1/transactions", json=body, headers=auth)


def write_config(directory: Path, services: dict[str, Any], offices: dict[str, Any]) -> Path:
    """A config directory (``services.yaml``, ``offices.yaml``) holding these services and offices."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "services.yaml").write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    (directory / "offices.yaml").write_text(yaml.safe_dump({"offices": offices}, sort_keys=False))
    return directory


# Two agencies' own PRA clearances (invented control numbers), for services that share one flow (SPEC §2 rule 9).
STATE_PRA: dict[str, Any] = {
    "omb_control_number": "1405-0299",
    "expiration_date": "2029-03-31",
    "burden_minutes": 2,
    "burden_statement": "The Department of State may not conduct or sponsor a collection of information unless it "
    "displays a currently valid OMB control number. This survey is estimated to take 2 minutes per response.",
}
SSA_PRA: dict[str, Any] = {
    "omb_control_number": "0960-0899",
    "expiration_date": "2028-09-30",
    "burden_minutes": 1,
    "burden_statement": "The Social Security Administration may not conduct or sponsor a collection of information "
    "unless it displays a currently valid OMB control number. We estimate that this survey takes 1 minute.",
}


class MeteredBody(io.RawIOBase):
    """A request body (``wsgi.input``) that counts how many of its bytes the app read: a test sends it with a
    ``Content-Length`` over a limit, or chunked (no length; ``wsgi.input_terminated`` set as gunicorn and waitress set
    it), and checks how much was read before the refusal."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data, self.read_bytes = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self.data[self.read_bytes : self.read_bytes + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.read_bytes += len(chunk)
        return len(chunk)
