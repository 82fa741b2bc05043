"""Bearer API keys: created by the CLI, stored as SHA-256, scoped to services and to intake/reports/admin."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.api.problems import Problem
from engine.crypto import token_hash
from engine.models import ApiKey, ApiKeyService, AuditEntry, Scope, Service

KEY_PREFIX = "se_"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    key_id: int
    name: str
    scopes: frozenset[str]
    services: frozenset[str]

    @property
    def actor(self) -> str:
        return f"api-key:{self.name}"

    def may_use(self, service: str) -> bool:
        return service in self.services


def create_api_key(session: Session, name: str, services: Iterable[str], scopes: Iterable[str]) -> str:
    """Store a new key and return it in clear: the only time anybody sees it."""
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


def authenticate(session: Session, header: str | None) -> Caller:
    if not header:
        raise Problem(401, "Send an API key as 'Authorization: Bearer <key>'.", kind="missing-api-key",
                      headers={"WWW-Authenticate": 'Bearer realm="survey-engine"'})  # fmt: skip
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "The Authorization header must be 'Bearer <key>'.", kind="invalid-api-key",
                      headers={"WWW-Authenticate": 'Bearer realm="survey-engine", error="invalid_token"'})  # fmt: skip
    row = session.execute(select(ApiKey).where(ApiKey.key_hash == token_hash(token))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise Problem(401, "This API key is unknown or revoked.", kind="invalid-api-key",
                      headers={"WWW-Authenticate": 'Bearer realm="survey-engine", error="invalid_token"'})  # fmt: skip
    ids = [link.service_id for link in row.services]
    slugs = session.execute(select(Service.slug).where(Service.id.in_(ids))).scalars().all() if ids else []
    return Caller(row.id, row.name, frozenset(row.scopes), frozenset(slugs))


def require_scope(*scopes: Scope) -> Callable[[F], F]:
    """Guard a view: the caller's key must carry one of ``scopes``. Sets ``g.caller``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            from engine.web import runtime

            with runtime().sessions() as session:
                caller = authenticate(session, request.headers.get("Authorization"))
            if not caller.scopes.intersection(s.value for s in scopes):
                wanted = " or ".join(s.value for s in scopes)
                raise Problem(403, f"This API key lacks the {wanted} scope.", kind="scope-missing")
            g.caller = caller
            return view(*args, **kwargs)

        guarded.required_scopes = tuple(s.value for s in scopes)  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate
