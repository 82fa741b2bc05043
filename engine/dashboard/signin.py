"""Dashboard sessions: sign-in checks, the signed session cookie, CSRF tokens and the sign-in rate limit.

The session is Flask's signed cookie (Secure when the public URL is https, HttpOnly, SameSite=Lax) holding the
account id, a stamp of its password hash, the sign-in time and a random session id whose SHA-256 is a row of
``dashboard_sessions``; every request reloads the account and that row, so a changed password or a disabled
account ends every session at its next request, signing out ends the session on the server (a copy of the cookie
made before no longer opens anything, in any process), and a session lasts at most ``SESSION_HOURS``. Every form
carries the session's CSRF token and every POST is refused (400) without it.

Attempts are rows of ``sign_in_attempts``, so the limits hold across processes: each attempt is recorded (and
committed) before it is counted, and one over a limit is answered 429 and not kept. Three limits, each over
``WINDOW``: ``PER_ACCOUNT_ADDRESS`` failures for one account from one client address (so a stranger guessing at an
official's account holds back only the stranger's own address, not the official signing in from elsewhere);
``PER_ADDRESS`` failures from one address whatever the account (guessing across many accounts); and a higher
``PER_ACCOUNT`` failures for one account across all addresses, the brake on guessing spread over many addresses
(which does lock the account for everybody until the window moves on). An address is counted as
``engine.common.network.visitor_network`` gives it (an IPv6 client's /64). An unknown email, a wrong
password, an account without a password yet and a disabled account get the same answer after the same work; so
does an email or password holding text no database can keep (a NUL byte, an unpaired surrogate), which is never
sent to the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy import delete, func, select, update

from engine.common.crypto import same_secret, token_hash
from engine.common.limits import text_problem, whole_number
from engine.common.network import visitor_network
from engine.dashboard.accounts import hash_password, needs_rehash, session_stamp, verify_password
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Service
from engine.store.models.accounts import DashboardSession, SignInAttempt, User, UserService
from engine.webapp.support import guarded_by, runtime

F = TypeVar("F", bound=Callable[..., Any])
GUARD = "dashboard sign-in (session cookie, reloaded account, its services)"
SESSION_HOURS = 12
WINDOW = timedelta(minutes=15)
PER_ACCOUNT_ADDRESS = 5  # failed attempts per (account, client address) pair in WINDOW
PER_ADDRESS = 30  # failed attempts per client address in WINDOW, any account
PER_ACCOUNT = 50  # failed attempts per account in WINDOW, from all addresses together
KEEP_ATTEMPTS = timedelta(days=1)


@dataclass(frozen=True)
class SignedIn:
    id: uuid.UUID
    email: str
    services: tuple[str, ...]  # slugs, sorted


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


# -- CSRF -----------------------------------------------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    return bool(expected) and bool(given) and same_secret(given, str(expected))


# -- the signed-in account ------------------------------------------------------------------------------------------


def current_user() -> SignedIn | None:
    """The account of this request's session, reloaded; None (and the session cleared) when it no longer holds."""
    if "user" in g:
        found: SignedIn | None = g.user
        return found
    g.user = None
    uid, stamp, at, sid = session.get("uid"), session.get("stamp"), session.get("at"), session.get("sid")
    if (not uid or not stamp or not isinstance(sid, str) or not isinstance(at, int | float)
            or time.time() - at > SESSION_HOURS * 3600):  # fmt: skip
        if uid:
            _end_session()
        return None
    try:
        user_id = uuid.UUID(str(uid))
    except ValueError:
        _end_session()
        return None
    rt = runtime()
    with rt.sessions() as db:
        user = db.get(User, user_id)
        if user is None or user.disabled_at is not None or not user.password_hash:
            _end_session()
            return None
        if not same_secret(str(stamp), session_stamp(user)):
            _end_session()
            return None
        held = db.execute(
            select(DashboardSession.user_id).where(
                DashboardSession.id_hash == token_hash(sid), DashboardSession.ended_at.is_(None),
                DashboardSession.expires_at > utcnow(),
            )
        ).scalar_one_or_none()  # fmt: skip
        if held != user.id:
            _end_session()
            return None
        slugs = db.execute(
            select(Service.slug).join(UserService, UserService.service_id == Service.id)
            .where(UserService.user_id == user.id).order_by(Service.slug)
        ).scalars().all()  # fmt: skip
        g.user = SignedIn(user.id, user.email, tuple(s for s in slugs if s in rt.catalog.services))
    return g.user


def _end_session() -> None:
    session.clear()


def begin_session(user: User) -> None:
    """A fresh session for ``user``, held on the server (new CSRF token: nothing from before carries over)."""
    _close_server_session()
    session.clear()
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    with unit_of_work(runtime().sessions) as db:
        db.execute(delete(DashboardSession).where(DashboardSession.expires_at < now - KEEP_ATTEMPTS))
        db.add(DashboardSession(id_hash=token_hash(sid), user_id=user.id, created_at=now,
                                expires_at=now + timedelta(hours=SESSION_HOURS)))  # fmt: skip
    session["uid"] = str(user.id)
    session["stamp"] = session_stamp(user)
    session["at"] = int(time.time())
    session["sid"] = sid
    session["csrf"] = secrets.token_urlsafe(32)


def _close_server_session() -> None:
    """Mark this cookie's server-side session ended (a copy of the cookie then opens nothing)."""
    sid = session.get("sid")
    if isinstance(sid, str) and sid:
        with unit_of_work(runtime().sessions) as db:
            db.execute(
                update(DashboardSession).where(DashboardSession.id_hash == token_hash(sid),
                                               DashboardSession.ended_at.is_(None))
                .values(ended_at=utcnow()).execution_options(synchronize_session=False)
            )  # fmt: skip


def end_session() -> None:
    """Sign out: the session ends on the server and the cookie is cleared."""
    _close_server_session()
    _end_session()
    g.user = None


def signed_in(view: F) -> F:
    """Require a signed-in account; without one, go to the sign-in page and come back afterwards."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("dashboard.sign_in", next=_come_back_to()))
        return view(*args, **kwargs)

    return guarded_by(GUARD)(wrapper)  # type: ignore[return-value]


def _come_back_to() -> str:
    """Where signing in leads back to: the page asked for; for a form posted from a page whose session ended while it
    was open (the 12 hours ran out, the password changed), that page: a redirect is a GET, and a GET of the form's
    address ("Submit", "Save the reflection") is a 405, not the quarter the person was working on."""
    if request.method in ("GET", "HEAD"):
        return request.full_path.rstrip("?")
    service = (request.view_args or {}).get("service")
    if not isinstance(service, str):
        return url_for("dashboard.home")
    year = whole_number(request.form.get("fiscal_year", ""), 2000, 2999)
    quarter = whole_number(request.form.get("quarter", ""), 1, 4)
    if year is None or quarter is None:
        return url_for("dashboard.service_page", service=service)
    return url_for("dashboard.service_page", service=service, fiscal_year=year, quarter=quarter)


def require_service(slug: str) -> None:
    """404 for a service the engine does not know, 403 for one this account may not see."""
    if slug not in runtime().catalog.services:
        abort(404)
    user = current_user()
    if user is None or slug not in user.services:
        abort(403)


# What a followed ``next`` may hold: the characters of a URI (RFC 3986: unreserved, reserved, ``%``), nothing else:
# no control character (CR/LF would break the ``Location`` header), no space, no backslash, no non-ASCII letter.
_URI_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*")


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard (never another origin) is followed after sign-in: ``/dashboard`` or a path
    under it, made of URI characters only, without a scheme, a host, a backslash or a dot segment; anything else
    goes to the dashboard's home (so the redirect never fails and never leaves the origin)."""
    fallback = url_for("dashboard.home")
    if not target or len(target) > 2000 or not _URI_CHARS.fullmatch(target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path == "/dashboard" or parts.path.startswith("/dashboard/")):
        return fallback
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")) or "//" in parts.path:
        return fallback
    return target


# -- sign-in and its rate limit -------------------------------------------------------------------------------------


def _keys(email: str, address: str) -> dict[str, int]:
    """The keys one attempt is counted under, each with its limit: the (account, address) pair, the address, the
    account. The pair is a digest of both, so a long IPv6 address is never cut to fit the column."""
    account = email.strip().lower()
    digest = hashlib.sha256(account.encode()).hexdigest()
    pair = hashlib.sha256(f"{account}\n{address}".encode()).hexdigest()
    return {
        f"pair:{pair}": PER_ACCOUNT_ADDRESS,
        f"ip:{address}"[:100]: PER_ADDRESS,
        f"email:{digest}": PER_ACCOUNT,
    }


def _record(email: str, address: str, now: datetime) -> list[int]:
    """Record one attempt under every key (committed at once, so other processes count it); raise if over."""
    rt = runtime()
    limits = _keys(email, address)
    with unit_of_work(rt.sessions) as db:
        db.execute(delete(SignInAttempt).where(SignInAttempt.attempted_at < now - KEEP_ATTEMPTS))
        rows = [SignInAttempt(key=key, attempted_at=now) for key in limits]
        db.add_all(rows)
        db.flush()
        ids = [r.id for r in rows]
    with unit_of_work(rt.sessions) as db:
        retry = 0
        for key, limit in limits.items():
            failures, oldest = db.execute(
                select(func.count(), func.min(SignInAttempt.attempted_at)).where(
                    SignInAttempt.key == key, SignInAttempt.succeeded.is_(False),
                    SignInAttempt.attempted_at > now - WINDOW,
                )
            ).one()  # fmt: skip
            if failures > limit:
                retry = max(retry, int((oldest + WINDOW - now).total_seconds()) + 1)
        if retry:
            db.execute(delete(SignInAttempt).where(SignInAttempt.id.in_(ids)))
    if retry:
        raise RateLimited(max(retry, 1))
    return ids


def authenticate(email: str, password: str, address: str) -> User | None:
    """The account when ``email`` and ``password`` match an enabled account; raises RateLimited when over.

    Text a database cannot keep (``engine.common.limits.text_problem``) never matches and never reaches a query: it is
    counted as a failed attempt (under a digest of the address as received) after the same work as any other.
    """
    now = utcnow()
    unstorable = text_problem(email) is not None or text_problem(password) is not None
    if unstorable:
        email = email.encode("utf-8", "surrogatepass").hex()  # a key the limit can count; matches no account
        password = ""
    ids = _record(email, visitor_network(address), now)  # an IPv6 client's /64: one network, any of its addresses
    rt = runtime()
    with unit_of_work(rt.sessions) as db:
        user = None
        if not unstorable:
            user = db.execute(select(User).where(User.email == email.strip().lower())).scalar_one_or_none()
        stored = user.password_hash if user is not None else None
        ok = verify_password(password, stored)
        if not ok or user is None or user.disabled_at is not None:
            return None
        if needs_rehash(str(stored)):
            user.password_hash = hash_password(password)
        user.last_sign_in_at = now
        db.execute(
            update(SignInAttempt).where(SignInAttempt.id.in_(ids)).values(succeeded=True)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        db.flush()
        db.expunge(user)
        return user
