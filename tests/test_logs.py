"""Logs are structured JSON and never carry contact data or a token (SPEC §2 rule 12), in every role."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from engine.common.logs import JsonFormatter
from engine.delivery.dispatch import Dispatcher
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


# -- no token in any log (SPEC §2 rule 12) --------------------------------------------------------------------------


def test_mask_path_hides_every_kind_of_token():
    from engine.common.logs import MASK, mask_path, mask_text

    secret = "Zq3xP0_abcDEFghiJKLmnoPQRstuVWX-yz0123456789"
    assert mask_path(f"/s/{secret}") == f"/s/{MASK}"
    assert mask_path(f"/s/{secret}", "q=trust&a=5&lang=es") == f"/s/{MASK}?q=trust&a=5&lang=es"
    assert mask_path(f"/u/{secret}") == f"/u/{MASK}"
    assert mask_path(f"/kiosk/enroll/{secret}") == f"/kiosk/enroll/{MASK}"
    assert mask_path(f"/dashboard/set-password/{secret}") == f"/dashboard/set-password/{MASK}"
    assert mask_path(f"/prefix/s/{secret}/more") == f"/prefix/s/{MASK}/more"
    for query in (f"token={secret}", f"api_key=se_{secret}", f"code={secret}", f"x={secret}", "email=pat@example.com",
                  f"next=/dashboard/set-password/{secret}", "phone=%2B12025550199"):  # fmt: skip
        masked = mask_path("/dashboard/sign-in", query)
        assert secret not in masked and "pat@example.com" not in masked and "5550199" not in masked, masked
        assert MASK in masked
    assert mask_path("/api/v1/transactions/passport-renewal/CC-1") == "/api/v1/transactions/passport-renewal/CC-1"
    assert mask_path("/dashboard/services/passport-renewal", "quarter=2027Q1&view=test") == (
        "/dashboard/services/passport-renewal?quarter=2027Q1&view=test"
    )
    assert mask_text(f"Exception on /s/{secret} [POST]; key se_{secret}") == (
        f"Exception on /s/{MASK} [POST]; key se_{MASK}"
    )


def test_the_formatter_masks_tokens_in_any_message(caplog):
    secret = "Zq3xP0_abcDEFghiJKLmnoPQRstuVWX-yz0123456789"
    logger = logging.getLogger("tests.masking")
    try:
        raise ValueError(f"bad /u/{secret}")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "Exception on /s/%s [GET]", (secret,),
                                   sys.exc_info(), extra={"url": f"https://x.gov/kiosk/enroll/{secret}"})  # fmt: skip
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert secret not in line and entry["event"] == "Exception on /s/[masked] [GET]"
    assert entry["url"] == "https://x.gov/kiosk/enroll/[masked]" and "/u/[masked]" in entry["exception"]


def test_a_failing_request_is_logged_masked(app, caplog):
    """The engine's error line (with its path) and the access line of a request that raised."""
    from engine.common.logs import AccessLog

    secret = "Zq3xP0_abcDEFghiJKLmnoPQRstuVWX-yz0123456789"

    @app.get("/s/<token>/boom")
    def boom(token: str) -> str:
        raise RuntimeError("boom")

    app.testing = False
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)
    response = app.test_client().get(f"/s/{secret}/boom?token={secret}")
    assert response.status_code == 500
    response.close()  # the server closes the body: the access line is written then
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any('"path": "/s/[masked]/boom?token=[masked]"' in line and '"status": 500' in line for line in lines)
    assert any('"level": "error"' in line and "/s/[masked]/boom" in line for line in lines)  # the error line
    assert not [line for line in lines if secret in line]


# Token-bearing paths in the shapes a client or proxy may send them (attack report F3: a doubled slash was answered
# 308 and logged in clear).
ODD_SHAPES = ("/s//{t}", "/u//{t}", "/kiosk/enroll//{t}", "/dashboard/set-password//{t}", "//s/{t}", "/s///{t}",
              "/kiosk//enroll/{t}", "/dashboard//set-password/{t}", "/s/./{t}", "/s/../s/{t}", "/S/{t}", "/s/{t}/",
              "/s//{t}/", "/u/{t}",
              # What a sloppy client leaves around a copied link (/s/%20<token>, /u/%22<token>%22): the route answers
              # 404, and the token, still good, must not stand in clear beside it.
              "/s/ {t}", "/u/\t{t}", '/s/"{t}"', "/kiosk/enroll/ {t}", "/dashboard/set-password/'{t}'", "/s/\n{t}")  # fmt: skip


def test_no_token_in_the_log_whatever_the_shape_of_its_path(app, caplog):
    """The access line (AccessLog, as ``serve`` writes it) and every other line of each request: the token masked;
    a doubled slash is a 404, never a redirect (whose Location came from the request's Host)."""
    from engine.common.logs import AccessLog

    secret = "Zq3xP0_abcDEFghiJKLmnoPQRstuVWX-yz0123456789"
    app.testing = False
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)
    client = app.test_client()
    for shape in ODD_SHAPES:
        path = shape.format(t=secret)
        for method in ("GET", "POST"):
            # PATH_INFO as the server passes it (the test client would read "//s/..." as a host).
            response = client.open("/", method=method, environ_overrides={"PATH_INFO": path,
                                                                          "HTTP_HOST": "evil.example"})  # fmt: skip
            response.close()
            assert response.status_code not in (301, 302, 303, 307, 308), (path, response.status_code)
            assert response.status_code < 500, (path, response.status_code)
    lines = [JsonFormatter().format(r) for r in caplog.records]
    access = [line for line in lines if '"survey_engine.access"' in line]
    assert len(access) == 2 * len(ODD_SHAPES)
    assert all("[masked]" in line for line in access), access
    assert not [line for line in lines if secret in line]


def test_a_long_query_makes_a_short_access_line_its_secrets_masked_before_the_cut(app, caplog):
    """A server may take a request line of 100 KB (waitress does): the access line shows the first
    ``MAX_LOGGED_PATH`` characters of the masked path and counts the rest; a token is masked before the cut, so
    a cut never leaves part of one in clear."""
    from engine.common.logs import MAX_LOGGED_PATH, AccessLog

    secret = "Zq3xP0_abcDEFghiJKLmnoPQRstuVWX-yz0123456789"
    app.testing = False
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)
    padding = "x" * (MAX_LOGGED_PATH - len("/s/[masked]?pad=") - 10)
    query = f"pad={padding}&token={secret}&more=" + "y" * 100_000
    client = app.test_client()
    client.get(f"/s/{secret}", query_string=query).close()
    (line,) = [JsonFormatter().format(r) for r in caplog.records if r.name == "survey_engine.access"]
    logged = json.loads(line)["path"]
    assert len(line) < MAX_LOGGED_PATH + 400, len(line)
    assert logged.startswith(f"/s/[masked]?pad={padding}&token=") and secret[:4] not in logged
    assert re.search(r"\.\.\.\[\d+ more characters\]$", logged), logged[-80:]


def test_no_redirect_names_the_requests_host(app):
    """A forged Host header never comes back in a Location: the engine's redirects are paths, Werkzeug's own (a
    missing trailing slash) are on the public URL's origin."""
    client = app.test_client()
    for path in ("/dashboard", "/dashboard/", "/dashboard/services/passport-renewal", "/s//AAAA", "//dashboard",
                 "/dashboard/sign-in?next=//evil.example/", "/kiosk"):  # fmt: skip
        response = client.get("/", environ_overrides={"PATH_INFO": path.partition("?")[0], "HTTP_HOST": "evil.example",
                                                      "QUERY_STRING": path.partition("?")[2]})  # fmt: skip
        location = response.headers.get("Location", "")
        assert "evil.example" not in location, (path, response.status_code, location)
        assert not location or location.startswith("https://surveys.example.gov/") or (
            location.startswith("/") and not location.startswith("//")), (path, location)  # fmt: skip
    slash = client.get("/dashboard", environ_overrides={"HTTP_HOST": "evil.example"})
    assert (slash.status_code, slash.headers["Location"]) == (308, "https://surveys.example.gov/dashboard/")


# -- a demo-like run against live `serve` and `web` processes --------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"http://127\.0\.0\.1:\d+/s/([A-Za-z0-9_-]+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, (args, done.stderr[-3000:])
    return done.stdout


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def _demo_run(origin: str, env: dict[str, str]) -> list[str]:
    """Sign-in (a set-password link first), a kiosk enrollment, a survey answered, an unsubscribe link, an API key:
    return every secret the run used."""
    used: list[str] = []
    email = "log.reader@agency.gov"
    browser = requests.Session()

    link = _cli(env, "user", "create", "--email", email, "--service", "passport-renewal").strip().splitlines()[-1]
    used.append(link.rsplit("/", 1)[1])
    page = browser.get(link, timeout=30)
    assert page.status_code == 200
    password = "a sturdy pass phrase 2027"
    done = browser.post(link, data={**_hidden(page.text), "password": password, "confirm": password},
                        allow_redirects=False, timeout=30)  # fmt: skip
    assert done.status_code == 302
    page = browser.get(f"{origin}/dashboard/sign-in", timeout=30)
    signed = browser.post(f"{origin}/dashboard/sign-in", data={**_hidden(page.text), "email": email,
                          "password": password}, allow_redirects=False, timeout=30)  # fmt: skip
    assert signed.status_code == 302
    home = browser.get(f"{origin}/dashboard/", timeout=30)
    assert home.status_code == 200
    assert browser.post(f"{origin}/dashboard/sign-out", data=_hidden(home.text), allow_redirects=False,
                        timeout=30).status_code == 302  # fmt: skip

    enroll = _cli(env, "kiosk", "register", "--service", "passport-renewal", "--office", "NYC-01").strip()
    enroll = enroll.splitlines()[-1]
    used.append(enroll.rsplit("/", 1)[1])
    opened = requests.get(enroll, allow_redirects=False, timeout=30)
    assert opened.status_code == 200  # a page with an "Enroll this device" button; opening it uses nothing up
    # The page's anti-forgery cookie is Secure: requests sends it over plain http only when told to.
    guard = opened.cookies.get("__Host-survey-kiosk-enroll")
    used.append(guard)
    opened = requests.post(enroll, data=_hidden(opened.text), headers={"Cookie": f"__Host-survey-kiosk-enroll={guard}"},
                           allow_redirects=False, timeout=30)  # fmt: skip
    assert opened.status_code in (302, 303), opened.status_code
    credential = opened.cookies.get("__Host-survey-kiosk") or opened.headers.get("Set-Cookie", "").split(";")[0]
    used.append(credential.split("=", 1)[-1])
    assert requests.get(f"{origin}/kiosk/flow.json", headers={"Cookie": f"__Host-survey-kiosk={used[-1]}"},
                        timeout=30).status_code == 200  # fmt: skip

    demo = _cli(env, "demo", "--count", "2", "--answer-rate", "0", "--service", "passport-renewal")
    tokens = LINK.findall(demo)
    assert tokens, demo
    used.extend(tokens)
    survey = requests.Session()
    url = f"{origin}/s/{tokens[0]}"
    page = survey.get(url, params={"q": "satisfaction", "a": "5", "lang": "es"}, timeout=30)
    assert page.status_code == 200
    answers: dict[str, str] = {}
    for name, value in re.findall(r'<input type="radio"[^>]*name="([^"]+)" value="([^"]+)"', page.text):
        answers.setdefault(name, value)
    answered = survey.post(url, data={**_hidden(page.text), **answers}, timeout=30)
    assert answered.status_code == 200 and answers, answered.status_code

    unsubscribe = secrets.token_urlsafe(32)
    used.append(unsubscribe)
    assert requests.get(f"{origin}/u/{unsubscribe}", timeout=30).status_code == 404
    assert requests.post(f"{origin}/u/{unsubscribe}", timeout=30).status_code in (400, 404)

    key = _cli(env, "api-key", "create", "--name", "logs", "--service", "passport-renewal").strip().splitlines()[-1]
    used.append(key)
    answer = requests.get(f"{origin}/api/v1/transactions/passport-renewal/LOG-1", params={"api_key": key},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    assert answer.status_code == 404
    # The same secrets in paths of other shapes, sent as is (attack report F3): never a redirect, never logged.
    for path in (f"/dashboard/set-password//{used[0]}", f"/kiosk/enroll//{used[1]}", f"/s//{tokens[0]}",
                 f"/s///{tokens[-1]}", f"/u//{unsubscribe}", f"/s/./{tokens[0]}", f"/kiosk//enroll/{used[1]}"):  # fmt: skip
        connection = http.client.HTTPConnection(origin.removeprefix("http://"), timeout=30)
        connection.request("GET", path, headers={"Host": "evil.example"})
        odd = connection.getresponse()
        odd.read()
        connection.close()
        assert odd.status == 404 and odd.getheader("Location") is None, (path[:20], odd.status)
    used.append(email)
    return used


def _wait_ready(origin: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{origin}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.3)


def _check_logs(stderr: str, used: list[str]) -> list[dict]:
    entries = []
    for line in stderr.splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON line: {line!r}") from None
    for secret in used:
        assert secret not in stderr, f"a secret reached the log: {secret[:6]}…"
    paths = [e["path"] for e in entries if e.get("logger") == "survey_engine.access"]
    for expected in ("/dashboard/set-password/[masked]", "/kiosk/enroll/[masked]", "/s/[masked]", "/u/[masked]"):
        assert any(p.startswith(expected) for p in paths), (expected, paths)
    assert any("api_key=[masked]" in p for p in paths)
    return entries


@pytest.mark.slow
@pytest.mark.parametrize("role", ["serve", "web"])
def test_no_token_in_the_logs_of_a_live_server(role, tmp_path):
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_ENGINE_")}
    env.update(SURVEY_ENGINE_INSTANCE_DIR=str(tmp_path / "instance"), SURVEY_ENGINE_PUBLIC_URL=origin)
    if role == "serve":
        command = ["serve", "--port", str(port)]
    else:
        _cli(env, "db", "upgrade")
        command = ["web", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    server = subprocess.Popen([sys.executable, "-m", "engine.cli", *command], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_ready(origin, server)
        used = _demo_run(origin, env)
        time.sleep(0.5)  # the last access lines
    finally:
        server.terminate()
        try:
            stdout, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            stdout, stderr = server.communicate()
    entries = _check_logs(stderr, used)
    for secret in used:
        assert secret not in stdout
    access = [e for e in entries if e.get("logger") == "survey_engine.access"]
    assert {tuple(sorted(e)) for e in access} == {
        ("at", "bytes", "client", "duration_ms", "event", "level", "logger", "method", "path", "status")
    }
