"""Bearer API keys: created by the CLI, stored as SHA-256, scoped to services and to intake/reports/admin."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.common.crypto import token_hash
from engine.common.limits import column_length
from engine.store.models import ApiKey, ApiKeyService, AuditEntry, Scope, Service, Suppression
from engine.webapp.problems import Problem

KEY_PREFIX = "se_"
ACTOR_PREFIX = "api-key:"
# The longest key name: its column, and the columns a key's opt-outs and restores record ``api-key:<name>`` in (a
# longer name was a 500 on PostgreSQL at its first opt-out: value too long).
MAX_NAME: int = min(
    column_length(ApiKey.name),
    *(column_length(c) - len(ACTOR_PREFIX) for c in (Suppression.source, Suppression.restored_by, AuditEntry.actor)),
)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    key_id: int
    name: str
    scopes: frozenset[str]
    services: frozenset[str]

    @property
    def actor(self) -> str:
        return f"{ACTOR_PREFIX}{self.name}"

    def may_use(self, service: str) -> bool:
        return service in self.services


def create_api_key(session: Session, name: str, services: Iterable[str], scopes: Iterable[str]) -> str:
    """Store a new key and return it in clear: the only time anybody sees it."""
    if not name.strip() or len(name) > MAX_NAME:
        raise ValueError(f"the name must be 1 to {MAX_NAME} characters")
    scope_list = sorted({Scope(s).value for s in scopes})
    slugs = sorted(set(services))
    if not slugs:
        raise ValueError("an API key needs at least one service")
    ids = dict(session.execute(select(Service.slug, Service.id).where(Service.slug.in_(slugs))).tuples().all())
    unknown = [s for s in slugs if s not in ids]
    if unknown:
        raise ValueError(f"unknown services: {', '.join(unknown)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:10], key_hash=token_hash(key), scopes=scope_list)
    row.services = [ApiKeyService(service_id=ids[s]) for s in slugs]
    session.add(row)
    session.flush()
    session.add(AuditEntry(actor="cli", action="api_key.create", subject=name,
                           detail={"id": row.id, "services": slugs, "scopes": scope_list}))  # fmt: skip
    return key


# The key, its scopes and the slugs of its services in one statement (built once, so compiled once).
KEY_LOOKUP = (
    select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.revoked_at, Service.slug)
    .outerjoin(ApiKeyService, ApiKeyService.api_key_id == ApiKey.id)
    .outerjoin(Service, Service.id == ApiKeyService.service_id)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


def _bearer_token(header: str | None) -> str:
    if not header:
        raise Problem(401, "Send an API key as 'Authorization: Bearer <key>'.", kind="missing-api-key",
                      headers={"WWW-Authenticate": 'Bearer realm="survey-engine"'})  # fmt: skip
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "The Authorization header must be 'Bearer <key>'.", kind="invalid-api-key",
                      headers={"WWW-Authenticate": 'Bearer realm="survey-engine", error="invalid_token"'})  # fmt: skip
    return token


def _lookup(session: Session, key_hash: str) -> Caller:
    rows = session.execute(KEY_LOOKUP, {"key_hash": key_hash}).all()
    if not rows or rows[0].revoked_at is not None:
        raise Problem(401, "This API key is unknown or revoked.", kind="invalid-api-key",
                      headers={"WWW-Authenticate": 'Bearer realm="survey-engine", error="invalid_token"'})  # fmt: skip
    first = rows[0]
    slugs = frozenset(row.slug for row in rows if row.slug is not None)
    return Caller(first.id, first.name, frozenset(first.scopes), slugs)


def authenticate(session: Session, header: str | None) -> Caller:
    """The caller behind an ``Authorization`` header, read from the database; a 401 Problem if there is none."""
    return _lookup(session, token_hash(_bearer_token(header)))


class VerifiedKeys:
    """Keys verified recently, by key hash, so that a steady client costs no database round trip per request.

    An entry is trusted for ``ttl`` seconds (``SURVEY_ENGINE_API_KEY_CACHE_SECONDS``, default 5; 0 switches the
    cache off). The price: **a revoked key, or a change to a key's services or scopes, takes effect within that
    many seconds** in a process that used the key just before, not at once. Only keys found valid are kept
    (an unknown or revoked key is looked up every time), at most ``size`` of them, per app and so per process.
    """

    def __init__(self, ttl: float, size: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Caller | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            with self._lock:
                self._entries.pop(key_hash, None)
            return None
        return entry[1]

    def put(self, key_hash: str, caller: Caller) -> None:
        if self.ttl <= 0:
            return
        now = self.clock()
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.size:
                    self._entries.clear()
            self._entries[key_hash] = (now + self.ttl, caller)


def _verified_keys() -> VerifiedKeys:
    keys: VerifiedKeys | None = current_app.extensions.get("survey_engine.verified_keys")
    if keys is None:
        from engine.webapp.support import runtime

        keys = VerifiedKeys(runtime().settings.api_key_cache_seconds)
        current_app.extensions["survey_engine.verified_keys"] = keys
    return keys


def require_scope(*scopes: Scope) -> Callable[[F], F]:
    """Guard a view: the caller's key must carry one of ``scopes``. Sets ``g.caller``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            from engine.webapp.support import runtime

            key_hash = token_hash(_bearer_token(request.headers.get("Authorization")))
            verified = _verified_keys()
            caller = verified.get(key_hash)
            if caller is None:
                with runtime().sessions() as session:
                    caller = _lookup(session, key_hash)
                verified.put(key_hash, caller)
            if not caller.scopes.intersection(s.value for s in scopes):
                wanted = " or ".join(s.value for s in scopes)
                raise Problem(403, f"This API key lacks the {wanted} scope.", kind="scope-missing")
            g.caller = caller
            return view(*args, **kwargs)

        guarded.required_scopes = tuple(s.value for s in scopes)  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate
