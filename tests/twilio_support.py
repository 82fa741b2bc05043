"""Twilio stand-ins for the tests: Prism serving Twilio's own OpenAPI contract, an error stub, and a signer.

* ``twilio_prism`` — Prism (npm ``@stoplight/prism-cli``) mocks ``../shared/contracts/twilio_api_v2010.json`` and
  rejects any request that breaks Twilio's published contract; the real ``twilio`` SDK talks to it through
  ``TWILIO_API_BASE_URL``.
* ``TwilioErrorStub`` — the contract defines success replies only: this small server answers what a test scripts
  (a 400 with a Twilio error code, a 429, a 5xx, a hang after the request arrived, a refused connection).
* ``signed_post`` — a webhook request signed the way Twilio signs it (``X-Twilio-Signature``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "node_modules" / ".bin" / "prism"
CONTRACT = ROOT.parent / "shared" / "contracts" / "twilio_api_v2010.json"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
FROM_NUMBER = "+12025550100"
PUBLIC_URL = "https://surveys.example.gov"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@contextmanager
def prism_mock(contract: Path) -> Iterator[str]:
    """Prism serving ``contract`` on a free local port with ``--errors``: a request that breaks it is refused."""
    if not PRISM.exists():
        pytest.fail("Prism is not installed: run `npm ci` in the project (the CI script does)")
    if not contract.exists():
        pytest.fail(f"the provider contract is missing at {contract}")
    port = free_port()
    proc = subprocess.Popen([str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), "--errors", str(contract)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def twilio_prism() -> Iterator[str]:
    """The base URL of Prism mocking Twilio's REST API 2010-04-01 (validating every request)."""
    with prism_mock(CONTRACT) as url:
        yield url


class TwilioErrorStub:
    """A scripted stand-in for the replies Twilio's contract does not describe.

    ``script`` holds replies in order: ``(status, body_dict)``, ``"hang"`` (read the request, then answer nothing
    until the client times out) or ``"close"`` (read the request, then drop the connection). ``requests`` keeps
    what arrived (method, path, form) so a test can prove what was or was not sent.
    """

    def __init__(self) -> None:
        self.script: deque[Any] = deque()
        self.requests: list[tuple[str, str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                stub.requests.append((self.command, self.path, body))
                reply = stub.script.popleft() if stub.script else (500, {"code": 20500, "message": "stub: no script"})
                if reply == "hang":
                    time.sleep(15)
                    return
                if reply == "close":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, payload = reply
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def twilio_stub() -> Iterator[TwilioErrorStub]:
    stub = TwilioErrorStub()
    yield stub
    stub.close()


def twilio_provider_env(base_url: str) -> dict[str, str]:
    """The provider settings pointing the SDK at a stand-in."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": base_url,
    }


def twilio_error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}  # fmt: skip


def signed_post(client: Any, path: str, form: dict[str, str], token: str = AUTH_TOKEN, **kwargs: Any) -> Any:
    """POST ``form`` to ``path`` with the signature Twilio would compute for ``PUBLIC_URL + path``."""
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature}, **kwargs)
