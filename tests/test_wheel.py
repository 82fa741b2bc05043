"""The wheel carries everything the engine needs (SPEC §8): built with ``pip wheel``, installed into a fresh virtual
environment, and run outside the repository as a new user would: ``survey-engine init`` then ``serve``.

Checked over HTTP: a Spanish survey page (an invitation made by ``survey-engine demo``), the dashboard sign-in page,
and a kiosk's ``flow.json`` (a device registered with the CLI). The venv installs the wheel's dependencies from the
package index (pip's cache makes that quick where they were installed before).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import venv
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]+")

pytestmark = pytest.mark.slow


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, Any, str]:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from this checkout; returns its bin folder."""
    base = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (base / "dist").glob("survey_engine-*.whl")
    venv.EnvBuilder(with_pip=True).create(base / "venv")
    bin_dir = base / "venv" / "bin"
    pip = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    return bin_dir


def _env(public_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_ENGINE_") and k != "PYTHONPATH"}
    env["SURVEY_ENGINE_PUBLIC_URL"] = public_url
    return env


def test_the_wheel_runs_init_and_serve_outside_the_repository(installed, tmp_path):
    here = tmp_path / "agency"
    here.mkdir()
    assert ROOT not in here.parents
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    env = _env(origin)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(installed / "survey-engine"), *args], cwd=here, env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
        return done

    where = subprocess.run([str(installed / "python"), "-c", "import engine; print(engine.__file__)"], cwd=here,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    package = Path(where).parent
    assert str(package).startswith(str(installed.parent)), f"the engine came from {package}, not the wheel"

    # The SMS reply words (locales/sms/) and the Spanish catalog, read from the installed package.
    probe = ("from channels.sms import replies; from engine.common import i18n; "
             "print(sorted(replies.vocabularies()), replies.keyword('ALTO'), i18n.LOCALES)")  # fmt: skip
    words = subprocess.run([str(installed / "python"), "-c", probe], cwd=here, env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert words.returncode == 0, words.stderr[-3000:]
    assert words.stdout.startswith("['en', 'es']") and "opt_out" in words.stdout, words.stdout
    assert words.stdout.strip().endswith(str(package / "locales")), words.stdout

    init = run("init")
    for name in ("config/services.yaml", "config/offices.yaml", "flows/a11-standard.yaml"):
        assert (here / name).is_file(), init.stdout
    refused = subprocess.run([str(installed / "survey-engine"), "init"], cwd=here, env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert refused.returncode != 0 and "exist already" in refused.stderr

    # serve's console goes to a file: its dispatcher may send the demo's invitations before the demo does (every
    # few seconds it looks), and then the links are printed there.
    console = here / "serve-console.txt"
    console_out = console.open("w")
    server = subprocess.Popen([str(installed / "survey-engine"), "serve", "--port", str(port)], cwd=here, env=env,
                              stdout=console_out, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{origin}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.3)

        # A Spanish survey page, for an invitation the demo made and left unanswered.
        demo = run("demo", "--count", "3", "--answer-rate", "0", "--service", "passport-renewal")
        links = LINK.findall(demo.stdout)
        if "more were sent meanwhile by a running `serve`" in demo.stdout:
            links += LINK.findall(console.read_text())
        assert links, (demo.stdout[-2000:], console.read_text()[-2000:])
        status, _, page = _get(links[0] + "?lang=es")
        assert status == 200, page[:2000]
        assert '<html lang="es">' in page and "Enviar sus respuestas" in page

        # The dashboard's sign-in page (its templates and catalogs are in the wheel).
        status, _, page = _get(f"{origin}/dashboard/sign-in", {"Accept-Language": "es"})
        assert status == 200 and 'name="password"' in page and 'lang="es"' in page

        # A kiosk registered with the CLI: enroll it, then its flow.json.
        enroll_url = run("kiosk", "register", "--service", "passport-renewal", "--office", "NYC-01").stdout
        enroll_url = enroll_url.strip().splitlines()[-1]
        assert enroll_url.startswith(f"{origin}/kiosk/enroll/")
        status, headers, body = _get(enroll_url)
        assert status == 200, body[:2000]  # a page with an "Enroll this device" button: press it, with its cookie
        guard = next(
            c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") if c.startswith("__Host-survey-kiosk-enroll=")
        )
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', body))
        status, headers, body = _get(enroll_url, {"Cookie": guard}, urllib.parse.urlencode(fields).encode())
        assert status in (302, 303), (status, body[:2000])
        cookie = next(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") if c.startswith("__Host-survey-kiosk="))
        status, _, body = _get(f"{origin}/kiosk/flow.json", {"Cookie": cookie})
        assert status == 200, body[:2000]
        document = json.dumps(json.loads(body), ensure_ascii=False)
        assert "es" in json.loads(body).get("languages", []) or "Español" in document, document[:2000]
    finally:
        server.terminate()
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        console_out.close()

    # Everything the install wrote is in the current directory, nothing in the package's folder.
    assert (here / "instance" / "survey-engine.db").is_file()
    for name in ("config", "flows", "instance"):
        assert not (package / name).exists(), f"{package / name} was written inside the installed package"
