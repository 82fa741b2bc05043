"""Runtime settings: the environment variables of SPEC §8, resolved once at start-up.

Secrets are never written in the code. On the embedded default (SQLite) a missing secret is generated on first
start and kept in the instance folder, readable by its owner alone; with any other database a missing secret stops
the start with a clear message.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from engine.common.errors import ConfigError

MIN_SECRET_LENGTH = 32
SECRET_NAMES = ("SURVEY_ENGINE_SECRET_KEY", "SURVEY_ENGINE_ENCRYPTION_KEY")
PROVIDER_SETTINGS = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_API_BASE_URL",
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "SENDGRID_FROM_EMAIL",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
)

# Messages, calls or email personalizations a second per sender, over the channel's own ``default_send_rate``
# (engine/delivery/pacing.py): SURVEY_ENGINE_SEND_RATE_SMS=3 for a toll-free number, for instance.
SEND_RATE_PREFIX = "SURVEY_ENGINE_SEND_RATE_"


@dataclass(frozen=True)
class Settings:
    """Everything the engine reads from its environment."""

    database_url: str
    instance_dir: Path
    config_dir: Path
    flows_dir: Path
    public_url: str
    secret_key: str
    encryption_key: str
    providers: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    # How long a worker holds claimed invitations before they return to the queue (or, if ``sending``, are
    # declared ``unknown``); longer than the slowest provider call.
    dispatch_lease_seconds: float = 300.0
    # How long a verified API key is trusted without asking the database again (engine/api/auth.py): a revoked
    # key keeps working for at most this long in a process that saw it. 0 checks the database on every request.
    api_key_cache_seconds: float = 5.0
    # A pooled PostgreSQL connection idle this long is pinged before use, and replaced if the server dropped it
    # (engine/store/db.py). 0 pings at every use.
    database_ping_seconds: float = 10.0
    # The most each sender may send per second, by channel name (``SURVEY_ENGINE_SEND_RATE_<CHANNEL>``), over the
    # channel's ``default_send_rate`` (see engine/delivery/pacing.py). A channel with neither is never paced.
    send_rates: dict[str, float] = field(default_factory=dict)
    # The gettext catalogs (``SURVEY_ENGINE_LOCALES_DIR``); None: the shipped ``locales/`` (engine/common/i18n.py).
    locales_dir: Path | None = None
    # How many reverse proxies stand in front of the app and append to ``X-Forwarded-For`` / ``-Proto``
    # (``SURVEY_ENGINE_PROXY_HOPS``). 0: the connection's own address is the client's (the header is never trusted);
    # behind one load balancer, 1, or every visitor shares its address in the per-address limits.
    proxy_hops: int = 0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


PACKAGE = Path(__file__).resolve().parent
# Where a wheel carries the repository's root folders (setup.py maps them into the package).
SHIPPED = {
    "locales": PACKAGE / "locales",
    "flows": PACKAGE / "starter" / "flows",
    "config": PACKAGE / "starter" / "config",
}


def shipped(name: str) -> Path:
    """The engine's own copy of ``locales``, ``flows`` or ``config``: inside the installed package (a wheel), else
    the folder of that name at the root of the source checkout (``pip install -e .``)."""
    packaged = SHIPPED[name]
    return packaged if packaged.is_dir() else PACKAGE.parent / name


def owner_only_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if needed and make it readable by its owner alone (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _load_or_create_secrets(instance_dir: Path, missing: list[str]) -> dict[str, str]:
    """Read generated secrets from the instance folder, creating the ones still missing (owner-only file).

    Several processes may start at once (gunicorn workers, ``serve`` and a CLI command): an exclusive lock on a
    side file makes read-generate-write one step, so they all end with the same keys.
    """
    path = instance_dir / "secrets.json"
    owner_only_dir(instance_dir)
    lock_fd = os.open(instance_dir / ".secrets.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stored: dict[str, str] = {}
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except ValueError as exc:
                raise ConfigError(
                    f"{path} is damaged ({exc}); restore it from a backup or set SURVEY_ENGINE_SECRET_KEY and "
                    "SURVEY_ENGINE_ENCRYPTION_KEY (the encryption key protects the contact data already stored)"
                ) from None
            if not isinstance(stored, dict):
                raise ConfigError(f"{path} is damaged: expected a JSON object of secrets")
        changed = False
        for name in missing:
            if name not in stored:
                stored[name] = secrets.token_urlsafe(48)
                changed = True
        if changed:
            fd, tmp = tempfile.mkstemp(dir=instance_dir, prefix=".secrets-", suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                json.dump(stored, handle)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        os.chmod(path, 0o600)
        return stored
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


def _seconds(values: dict[str, str], name: str, default: float, allow_zero: bool = True) -> float:
    """A number of seconds from the environment (0 only where ``allow_zero``)."""
    raw = values.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not (value >= 0 if allow_zero else value > 0):
        raise ConfigError(f"{name} must be {'0 or more' if allow_zero else 'positive'}")
    return value


def _folder(values: dict[str, str], name: str) -> Path | None:
    """An existing folder named by the environment, or None when the variable is unset."""
    raw = values.get(name)
    if not raw:
        return None
    path = Path(raw).resolve()
    if not path.is_dir():
        raise ConfigError(f"{name} must name an existing folder, got {raw!r}")
    return path


def _send_rates(values: dict[str, str]) -> dict[str, float]:
    """``SURVEY_ENGINE_SEND_RATE_<CHANNEL>`` (the channel's name in capitals, ``-`` as ``_``): a positive number of
    sends a second per sender, over the channel's default."""
    rates: dict[str, float] = {}
    for name, raw in values.items():
        if not name.startswith(SEND_RATE_PREFIX) or not raw:
            continue
        channel = name[len(SEND_RATE_PREFIX) :].lower().replace("_", "-")
        try:
            rate = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of sends a second, got {raw!r}") from None
        if not (0 < rate < float("inf")):
            raise ConfigError(f"{name} must be a positive number of sends a second")
        rates[channel] = rate
    return rates


def local_origin(host: str, port: int) -> str:
    """The origin a browser on this machine reaches a server listening on ``host``:``port`` at: a wildcard address
    (every interface) is reached at 127.0.0.1, an IPv6 address is written in brackets."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load_settings(
    env: dict[str, str] | None = None, default_public_url: str | None = None, **overrides: str
) -> Settings:
    """Resolve settings from ``env`` (default: the process environment) and explicit overrides.

    ``default_public_url`` stands for ``SURVEY_ENGINE_PUBLIC_URL`` when that is unset (``serve --port P`` passes its
    own origin, so links point where it listens); without it the default is ``http://127.0.0.1:8000``."""
    values = dict(os.environ if env is None else env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    # config/, flows/ and instance/ default to the current directory (the checkout, or where `survey-engine init`
    # wrote a starter), never to the installed package's folder.
    root = Path.cwd()
    instance_dir = Path(values.get("SURVEY_ENGINE_INSTANCE_DIR") or root / "instance").resolve()
    database_url = values.get("SURVEY_ENGINE_DATABASE_URL") or f"sqlite:///{instance_dir / 'survey-engine.db'}"
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # psycopg 3 is the driver we ship; accept the plain URL people copy from their provider.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    _check_database_url(database_url)
    embedded = database_url.startswith("sqlite")
    if embedded:
        owner_only_dir(instance_dir)  # SPEC §2 rule 12: the folder of the database and secrets, owner only

    found: dict[str, str] = {}
    missing = []
    for name in SECRET_NAMES:
        value = values.get(name, "")
        if value:
            if len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(f"{name} must be at least {MIN_SECRET_LENGTH} characters long")
            found[name] = value
        else:
            missing.append(name)
    if missing:
        if not embedded:
            raise ConfigError(
                f"{', '.join(missing)} must be set when the database is not the embedded SQLite "
                f"(each any string of at least {MIN_SECRET_LENGTH} characters, kept secret and stable: "
                "the encryption key protects the contact data already stored)"
            )
        found.update({k: v for k, v in _load_or_create_secrets(instance_dir, missing).items() if k in missing})

    return Settings(
        database_url=database_url,
        instance_dir=instance_dir,
        config_dir=Path(values.get("SURVEY_ENGINE_CONFIG_DIR") or root / "config").resolve(),
        flows_dir=Path(values.get("SURVEY_ENGINE_FLOWS_DIR") or root / "flows").resolve(),
        public_url=_public_url(values.get("SURVEY_ENGINE_PUBLIC_URL") or default_public_url or DEFAULT_PUBLIC_URL),
        secret_key=found["SURVEY_ENGINE_SECRET_KEY"],
        encryption_key=found["SURVEY_ENGINE_ENCRYPTION_KEY"],
        providers={name: values[name] for name in PROVIDER_SETTINGS if values.get(name)},
        log_level=_log_level(values.get("SURVEY_ENGINE_LOG_LEVEL") or "INFO"),
        dispatch_lease_seconds=_seconds(values, "SURVEY_ENGINE_DISPATCH_LEASE_SECONDS", 300.0, allow_zero=False),
        api_key_cache_seconds=_seconds(values, "SURVEY_ENGINE_API_KEY_CACHE_SECONDS", 5.0),
        database_ping_seconds=_seconds(values, "SURVEY_ENGINE_DATABASE_PING_SECONDS", 10.0),
        send_rates=_send_rates(values),
        locales_dir=_folder(values, "SURVEY_ENGINE_LOCALES_DIR"),
        proxy_hops=_proxy_hops(values.get("SURVEY_ENGINE_PROXY_HOPS") or "0"),
    )


# Where links point when nothing says otherwise (``serve`` on its default port).
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def _public_url(raw: str) -> str:
    """The origin survey links, set-password and enrollment links point to and Twilio signs: ``http(s)://host[:port]``
    (a trailing slash dropped). Without a scheme every link printed or sent was no link at all (``surveys.agency.gov/
    s/…``), and with a path it pointed where the engine does not answer (it serves from the origin's root)."""
    value = raw.strip().rstrip("/")
    form = "an origin such as https://surveys.agency.gov (or http://127.0.0.1:8000): scheme and host, no path"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that is no number (or out of range) raises ValueError
    except ValueError:
        raise ConfigError(f"SURVEY_ENGINE_PUBLIC_URL must be {form}, got {raw!r}") from None
    if "@" in parts.netloc:  # a user name or password: never repeated in a message
        raise ConfigError(f"SURVEY_ENGINE_PUBLIC_URL must be {form}, without a user name or password")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "?" in value
        or "#" in value
    ):
        raise ConfigError(f"SURVEY_ENGINE_PUBLIC_URL must be {form}, got {raw!r}")
    return f"{parts.scheme}://{parts.netloc}"  # the scheme in lower case: ``HTTPS://`` is https (Secure cookies)


# The stores the engine runs on, as SQLAlchemy names them (``postgresql://`` and ``postgres://`` are read as the first).
DATABASE_DRIVERS = ("postgresql+psycopg", "sqlite", "sqlite+pysqlite")
DATABASE_URL_FORM = "postgresql://USER[:PASSWORD]@HOST[:PORT]/NAME (psycopg 3) or sqlite:////PATH/TO/FILE.db"


def _check_database_url(url: str) -> None:
    """A URL of a store the engine runs on, else one line naming the variable and its form; never the URL itself,
    which may hold a password (a URL that cannot be parsed ended every command with SQLAlchemy's traceback, and an
    unknown scheme or driver with an import error)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        drivername = make_url(url).drivername
    except (ArgumentError, ValueError):
        raise ConfigError(f"SURVEY_ENGINE_DATABASE_URL is not a database URL: expected {DATABASE_URL_FORM}") from None
    if drivername not in DATABASE_DRIVERS:
        raise ConfigError(
            f"SURVEY_ENGINE_DATABASE_URL names {drivername!r}, which the engine does not run on: expected "
            f"{DATABASE_URL_FORM}"
        )


# The levels SURVEY_ENGINE_LOG_LEVEL takes, as Python's logging names them (in any letter case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    """A level ``logging`` knows: any other value (``verbose``, ``10``) is one line naming the variable, not a
    traceback from every role's logging set-up; an empty value is the default, like every other setting's."""
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"SURVEY_ENGINE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def _proxy_hops(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2 and int(raw) <= 5):
        raise ConfigError(f"SURVEY_ENGINE_PROXY_HOPS must be a whole number of proxies from 0 to 5, got {raw!r}")
    return int(raw)
