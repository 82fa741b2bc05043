"""Runtime settings (SPEC §8): secrets generated on the embedded default, required with PostgreSQL, never in the code.

``load_settings`` is given an explicit environment dict, so none of these tests reads or changes the real one.
"""

from __future__ import annotations

import ast
import json
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.common.errors import ConfigError
from engine.settings import MIN_SECRET_LENGTH, SECRET_NAMES, load_settings, local_origin

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s" * 40
ENCRYPTION = "e" * 40
PG = "postgresql://survey:pw@db.example.gov:5432/survey"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


# -- secrets on the embedded default ------------------------------------------------------------------------------


def test_sqlite_without_secrets_generates_both_into_the_instance_folder(instance):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(instance)}
    first = load_settings(env)
    assert first.is_sqlite
    path = instance / "secrets.json"
    assert path.exists()
    assert mode(path) == 0o600  # readable by the owner alone
    stored = json.loads(path.read_text())
    assert stored == {
        "SURVEY_ENGINE_SECRET_KEY": first.secret_key,
        "SURVEY_ENGINE_ENCRYPTION_KEY": first.encryption_key,
    }
    assert len(first.secret_key) >= MIN_SECRET_LENGTH and len(first.encryption_key) >= MIN_SECRET_LENGTH
    assert first.secret_key != first.encryption_key
    # Stable: the second start reads them back (the encryption key protects the contact data already stored).
    second = load_settings(env)
    assert (second.secret_key, second.encryption_key) == (first.secret_key, first.encryption_key)
    assert mode(path) == 0o600
    assert not list(instance.glob("*.tmp"))  # written through a temporary file that is gone


def test_each_instance_gets_its_own_secrets(tmp_path):
    one = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "one")})
    two = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "two")})
    assert one.secret_key != two.secret_key and one.encryption_key != two.encryption_key


def test_a_secret_given_in_the_environment_wins_and_is_not_written_to_disk(instance):
    settings = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_SECRET_KEY": SECRET})
    assert settings.secret_key == SECRET
    stored = json.loads((instance / "secrets.json").read_text())
    assert set(stored) == {"SURVEY_ENGINE_ENCRYPTION_KEY"}
    assert SECRET not in (instance / "secrets.json").read_text()
    assert settings.encryption_key == stored["SURVEY_ENGINE_ENCRYPTION_KEY"]


def test_with_both_secrets_given_nothing_is_written(instance):
    settings = load_settings(
        {
            "SURVEY_ENGINE_INSTANCE_DIR": str(instance),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        }
    )
    assert (settings.secret_key, settings.encryption_key) == (SECRET, ENCRYPTION)
    assert not (instance / "secrets.json").exists()


def test_an_existing_secrets_file_is_used_and_made_owner_only(instance):
    instance.mkdir()
    path = instance / "secrets.json"
    path.write_text(json.dumps({"SURVEY_ENGINE_SECRET_KEY": SECRET, "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION}))
    path.chmod(0o644)
    settings = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance)})
    assert (settings.secret_key, settings.encryption_key) == (SECRET, ENCRYPTION)
    assert mode(path) == 0o600


def test_a_damaged_secrets_file_stops_with_a_message_naming_it(instance):
    instance.mkdir()
    (instance / "secrets.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"secrets\.json"):
        load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance)})


def _load_pausing_at_generation(
    instance: Path, paused: threading.Event, resume: threading.Event, out: dict[str, Any]
) -> None:
    """Load settings, pausing (2 s at most) when the first secret is generated, until ``resume`` is set."""

    def tracer(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name == "token_urlsafe" and not paused.is_set():
            paused.set()
            resume.wait(timeout=2)

    sys.settrace(tracer)  # type: ignore[arg-type]
    try:
        out["settings"] = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance)})
    finally:
        sys.settrace(None)


def test_two_first_starts_at_once_agree_on_the_generated_secrets(instance):
    paused, resume, out = threading.Event(), threading.Event(), {}
    first = threading.Thread(target=_load_pausing_at_generation, args=(instance, paused, resume, out))
    first.start()
    try:
        if not paused.wait(timeout=5):  # the first start has found no secrets and is generating them
            pytest.skip("secrets are no longer generated with secrets.token_urlsafe: update this test's hook")
        second = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance)})
    finally:
        resume.set()
        first.join(timeout=10)
    stored = json.loads((instance / "secrets.json").read_text())
    assert out["settings"].encryption_key == second.encryption_key == stored["SURVEY_ENGINE_ENCRYPTION_KEY"]
    assert out["settings"].secret_key == second.secret_key == stored["SURVEY_ENGINE_SECRET_KEY"]


# -- secrets with PostgreSQL ----------------------------------------------------------------------------------------


def test_postgresql_without_secrets_stops_naming_both(instance):
    with pytest.raises(ConfigError) as caught:
        load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_DATABASE_URL": PG})
    message = str(caught.value)
    assert "SURVEY_ENGINE_SECRET_KEY" in message and "SURVEY_ENGINE_ENCRYPTION_KEY" in message
    assert not (instance / "secrets.json").exists()  # never generated for a shared database


@pytest.mark.parametrize("missing", SECRET_NAMES)
def test_postgresql_without_one_secret_names_that_one(instance, missing):
    env = {
        "SURVEY_ENGINE_INSTANCE_DIR": str(instance),
        "SURVEY_ENGINE_DATABASE_URL": PG,
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
    }
    del env[missing]
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    (other,) = set(SECRET_NAMES) - {missing}
    assert missing in str(caught.value)
    assert other not in str(caught.value)
    env[missing] = ""  # set but empty is missing too
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)


def test_postgresql_with_secrets_starts_and_writes_nothing(instance):
    settings = load_settings(
        {
            "SURVEY_ENGINE_INSTANCE_DIR": str(instance),
            "SURVEY_ENGINE_DATABASE_URL": PG,
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        }
    )
    assert not settings.is_sqlite
    assert (settings.secret_key, settings.encryption_key) == (SECRET, ENCRYPTION)
    assert not (instance / "secrets.json").exists()


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_secret_shorter_than_32_characters_is_refused(instance, name, database):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_SECRET_KEY": SECRET}
    env["SURVEY_ENGINE_ENCRYPTION_KEY"] = ENCRYPTION
    if database == "postgresql":
        env["SURVEY_ENGINE_DATABASE_URL"] = PG
    env[name] = "x" * (MIN_SECRET_LENGTH - 1)
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings(env)
    assert "32" in str(caught.value)
    env[name] = "x" * MIN_SECRET_LENGTH  # exactly 32 is enough
    assert getattr(load_settings(env), "secret_key" if name == SECRET_NAMES[0] else "encryption_key") == env[name]


# -- database URL, directories and the rest -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (PG, "postgresql+psycopg://survey:pw@db.example.gov:5432/survey"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////var/lib/survey.db", "sqlite:////var/lib/survey.db"),
    ],
)
def test_database_urls(instance, given, expected):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_DATABASE_URL": given}
    env |= {"SURVEY_ENGINE_SECRET_KEY": SECRET, "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION}
    settings = load_settings(env)
    assert settings.database_url == expected
    assert settings.is_sqlite == expected.startswith("sqlite")


def test_defaults(instance):
    settings = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance)})
    assert settings.config_dir == (ROOT / "config").resolve()
    assert settings.flows_dir == (ROOT / "flows").resolve()
    assert (settings.config_dir / "services.yaml").exists() and (settings.flows_dir / "a11-standard.yaml").exists()
    assert settings.database_url == f"sqlite:///{instance.resolve() / 'survey-engine.db'}"
    assert settings.instance_dir == instance.resolve()
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.providers == {}
    assert settings.log_level == "INFO"
    assert settings.dispatch_lease_seconds == 300.0


def test_the_default_instance_folder_is_the_repos_instance_folder():
    # Secrets given, so nothing is written into the repository's instance folder.
    settings = load_settings({"SURVEY_ENGINE_SECRET_KEY": SECRET, "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION})
    assert settings.instance_dir == (ROOT / "instance").resolve()
    assert settings.database_url == f"sqlite:///{(ROOT / 'instance').resolve() / 'survey-engine.db'}"


def test_the_environment_overrides(instance, tmp_path):
    env = {
        "SURVEY_ENGINE_INSTANCE_DIR": str(instance),
        "SURVEY_ENGINE_CONFIG_DIR": str(tmp_path / "cfg"),
        "SURVEY_ENGINE_FLOWS_DIR": str(tmp_path / "fl"),
        "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov/",
        "SURVEY_ENGINE_LOG_LEVEL": "debug",
        "SURVEY_ENGINE_DISPATCH_LEASE_SECONDS": "12.5",
        "TWILIO_ACCOUNT_SID": "AC123",
        "SENDGRID_API_KEY": "",  # empty is not set
        "UNRELATED": "x",
    }
    before = dict(env)
    settings = load_settings(env)
    assert env == before  # the given environment is not changed
    assert settings.config_dir == (tmp_path / "cfg").resolve()
    assert settings.flows_dir == (tmp_path / "fl").resolve()
    assert settings.public_url == "https://surveys.example.gov"  # no trailing slash
    assert settings.log_level == "DEBUG"
    assert settings.dispatch_lease_seconds == 12.5
    assert settings.providers == {"TWILIO_ACCOUNT_SID": "AC123"}


def test_keyword_overrides_beat_the_environment(instance):
    settings = load_settings(
        {"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_PUBLIC_URL": "https://a.example.gov"},
        SURVEY_ENGINE_PUBLIC_URL="https://b.example.gov",
    )
    assert settings.public_url == "https://b.example.gov"


def test_a_default_public_url_stands_only_where_the_variable_is_unset(instance):
    """``serve --port P`` passes its own origin as the default; a set SURVEY_ENGINE_PUBLIC_URL still wins."""
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(instance)}
    assert load_settings(env, default_public_url="http://127.0.0.1:8765").public_url == "http://127.0.0.1:8765"
    env["SURVEY_ENGINE_PUBLIC_URL"] = "https://surveys.example.gov"
    assert load_settings(env, default_public_url="http://127.0.0.1:8765").public_url == "https://surveys.example.gov"


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1", "http://127.0.0.1:8765"),
        ("0.0.0.0", "http://127.0.0.1:8765"),
        ("::", "http://127.0.0.1:8765"),
        ("::1", "http://[::1]:8765"),
        ("surveys.internal", "http://surveys.internal:8765"),
    ],
)
def test_the_local_origin_of_a_listening_address(host, origin):
    assert local_origin(host, 8765) == origin


def test_the_process_environment_is_read_when_no_dict_is_given(monkeypatch, instance):
    monkeypatch.setenv("SURVEY_ENGINE_INSTANCE_DIR", str(instance))
    monkeypatch.setenv("SURVEY_ENGINE_PUBLIC_URL", "https://env.example.gov")
    for name in SECRET_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SURVEY_ENGINE_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.public_url == "https://env.example.gov"
    assert (instance / "secrets.json").exists()


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_dispatch_lease_is_refused(instance, value):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_DISPATCH_LEASE_SECONDS": value}
    with pytest.raises(ConfigError, match="SURVEY_ENGINE_DISPATCH_LEASE_SECONDS"):
        load_settings(env)


@pytest.mark.parametrize(("value", "hops"), [("", 0), ("0", 0), ("1", 1), ("5", 5)])
def test_proxy_hops(instance, value, hops):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_PROXY_HOPS": value}
    assert load_settings(env).proxy_hops == hops


@pytest.mark.parametrize("value", ["6", "-1", "one", "1.5", "٣", "99999999999999999999"])
def test_a_bad_proxy_hops_is_refused(instance, value):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(instance), "SURVEY_ENGINE_PROXY_HOPS": value}
    with pytest.raises(ConfigError, match="SURVEY_ENGINE_PROXY_HOPS"):
        load_settings(env)


# -- no secret has a value written in the code ---------------------------------------------------------------------

SOURCES = [*sorted((ROOT / "engine").rglob("*.py")), *sorted((ROOT / "channels").rglob("*.py")), ROOT / "wsgi.py"]
SECRET_CONFIG_KEYS = {*SECRET_NAMES, "SECRET_KEY"}


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value != ""


def _looks_secret(node: ast.AST | None) -> bool:
    """A literal that could pass for a secret: 16 characters or more, no spaces, not an UPPER_CASE name."""
    if not _is_str(node):
        return False
    value = node.value  # type: ignore[union-attr]
    return len(value) >= 16 and not any(c.isspace() for c in value) and not re.fullmatch(r"[A-Z0-9_]+", value)


def _lookup_key(node: ast.AST) -> ast.AST | None:
    """The key of ``x.get(KEY, ...)``, ``getenv(KEY, ...)``, ``x.setdefault(KEY, ...)``, ``x.pop(KEY, ...)``."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in {"get", "getenv", "setdefault", "pop"}:
            return node.args[0]
    return None


def _secret_lookup(node: ast.AST, default: ast.AST | None) -> bool:
    """A look-up of a secret name, or of a key computed at run time (``name``) given a secret-looking default."""
    key = _lookup_key(node)
    if key is None:
        return False
    if isinstance(key, ast.Constant):
        return key.value in SECRET_CONFIG_KEYS
    return _looks_secret(default)


def literal_secret_defaults(source: str) -> list[int]:
    """Line numbers where a secret gets a literal value: a default in a lookup, ``or "..."``, or an assignment."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and len(node.args) > 1 and _is_str(node.args[1]):
            if _secret_lookup(node, node.args[1]):
                found.append(node.lineno)
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            literals = [v for v in node.values if _is_str(v)]
            if any(_secret_lookup(v, literal) for v in node.values for literal in literals):
                found.append(node.lineno)
        elif isinstance(node, ast.keyword) and node.arg in SECRET_CONFIG_KEYS and _is_str(node.value):
            found.append(node.value.lineno)
        elif isinstance(node, ast.Assign) and _is_str(node.value):
            for target in node.targets:
                name = target.id if isinstance(target, ast.Name) else None
                if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
                    name = target.slice.value
                if name in SECRET_CONFIG_KEYS or (isinstance(name, str) and name.upper() in SECRET_CONFIG_KEYS):
                    found.append(node.lineno)
    return found


@pytest.mark.parametrize(
    "bad",
    [
        'values.get("SURVEY_ENGINE_SECRET_KEY", "dev-secret-dev-secret-dev-secret-00")',
        'os.getenv("SURVEY_ENGINE_ENCRYPTION_KEY", "0123456789abcdef0123456789abcdef")',
        'values.get(name, "changeme-changeme-changeme-changeme")',
        'os.environ.get("SURVEY_ENGINE_SECRET_KEY") or "changeme-changeme-changeme-changeme"',
        'app.config.update(SECRET_KEY="changeme-changeme-changeme-changeme")',
        'app.config["SECRET_KEY"] = "changeme-changeme-changeme-changeme"',
        'SECRET_KEY = "changeme-changeme-changeme-changeme"',
    ],
)
def test_the_source_check_catches_a_literal_secret(bad):
    assert literal_secret_defaults(bad) == [1]


def test_the_source_check_lets_the_real_patterns_through():
    ok = (
        'value = values.get(name, "")\nlevel = values.get("SURVEY_ENGINE_LOG_LEVEL", "INFO")\nx = os.getenv(n)\n'
        'title = TITLES.get(status, "error")\nurl = values.get("SURVEY_ENGINE_PUBLIC_URL") or "http://127.0.0.1:8000"'
    )
    assert literal_secret_defaults(ok) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_secret_has_a_value_written_in_the_code(path):
    assert literal_secret_defaults(path.read_text(encoding="utf-8")) == []


def test_settings_py_names_the_secrets_without_a_default():
    text = (ROOT / "engine" / "settings.py").read_text(encoding="utf-8")
    assert "SURVEY_ENGINE_SECRET_KEY" in text and "SURVEY_ENGINE_ENCRYPTION_KEY" in text
    tree = ast.parse(text)
    long_literals = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and len(node.value) >= MIN_SECRET_LENGTH
        and not any(c.isspace() for c in node.value)
        and not re.fullmatch(r"[A-Z0-9_]+", node.value)  # the names of environment variables
    ]
    assert long_literals == []  # nothing that could pass for a 32-character secret


def test_generated_secrets_appear_in_no_source_file(instance):
    settings = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance)})
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        assert settings.secret_key not in text and settings.encryption_key not in text, path
