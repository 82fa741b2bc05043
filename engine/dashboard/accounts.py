"""Dashboard accounts: creation, one-time set-password links, memory-hard password hashes, the password rules.

Passwords are hashed with scrypt (``N=2**15, r=8, p=3``: 32 MiB and about a quarter second, one of OWASP's
equivalent scrypt settings); the parameters and the salt travel in the stored string, so they can be raised later
without breaking older hashes (a sign-in rehashes a password stored with weaker ones). A set-password link's token
is 256 random bits, stored only as its SHA-256, good once and for a limited time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.common.crypto import token_hash
from engine.common.i18n import N_
from engine.common.limits import text_problem
from engine.store.db import utcnow
from engine.store.models import AuditEntry, Service
from engine.store.models.accounts import AccountToken, User, UserService

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 3
SCRYPT_MAXMEM = 64 * 1024 * 1024
SET_PASSWORD = "set_password"
LINK_LIFETIME = timedelta(hours=72)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
# The most used passwords of the public breach corpora that are 12 characters or longer (shorter ones are
# refused by length already); compared case-insensitively.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012", "1234567890123", "12345678901234", "123456789012345", "1234567890qwerty",
        "qwertyuiopasdfghjkl", "qwertyuiop123", "qwerty123456", "qwertyuiopas", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u",
        "1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "zaq12wsxcde3", "passwordpassword", "password1234", "password12345",
        "password123456", "password123!", "Password123!", "p@ssw0rd1234", "iloveyou1234", "administrator",
        "administrator1", "changeme1234", "letmein12345", "welcome12345", "welcome123456", "abcdefghijkl",
        "abcdefghijklmnop", "abc123456789", "aaaaaaaaaaaa", "111111111111", "000000000000", "123123123123",
        "trustno1trustno1", "football1234", "baseball1234", "superman1234", "starwars1234", "princess1234",
        "sunshine1234", "monkey123456", "dragon123456", "qazwsxedcrfv", "asdfghjkl123", "zxcvbnm12345",
        "correcthorsebatterystaple", "passw0rdpassw0rd", "myspace12345", "computer1234", "whatever1234",
        "surveyengine", "dashboard123", "dashboard1234",
    }
)  # fmt: skip
COMMON_LOWER = frozenset(p.lower() for p in COMMON_PASSWORDS)


class AccountError(ValueError):
    """A request about an account that cannot be done (unknown service, duplicate email, weak password)."""


@dataclass(frozen=True)
class NewLink:
    user_id: uuid.UUID
    email: str
    url: str
    expires_at: datetime


# -- password hashes ------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64url), a fresh 16-byte salt each time."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=SCRYPT_MAXMEM, dklen=32)  # fmt: skip
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash the same work is done and the answer is no."""
    if not stored:
        hash_password(password)  # the same time as a real check: no account is told apart by timing
        return False
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=max(SCRYPT_MAXMEM, 256 * int(r) * int(n)), dklen=len(_unb64(expected)))  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")


def password_problem(password: str, email: str) -> str | None:
    """Why ``password`` is refused (a message id to translate), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return N_("Use at least 12 characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        return N_("Use at most 256 characters.")
    lowered = password.lower()
    if lowered in COMMON_LOWER or len(set(lowered)) <= 2:
        return N_("This password is too common; choose another.")
    if lowered == email.lower() or lowered == email.split("@")[0].lower():
        return N_("Do not use your email address as your password.")
    return None


def session_stamp(user: User) -> str:
    """Changes whenever the password changes: a session signed in before no longer matches."""
    basis = f"{user.id}:{user.password_hash or ''}:{user.disabled_at or ''}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


# -- accounts and links ---------------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    problem = text_problem(email)  # an undecodable command-line argument arrives as a lone surrogate
    if problem:
        raise AccountError(f"--email {problem}")
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or not domain or "." not in domain or " " in value or len(value) > 320:
        raise AccountError(f"{email!r} is not an email address")
    return value


def _service_ids(session: Session, slugs: tuple[str, ...]) -> list[int]:
    wanted = sorted(set(slugs))
    if not wanted:
        raise AccountError("name at least one service (--service)")
    found = dict(session.execute(select(Service.slug, Service.id).where(Service.slug.in_(wanted))).tuples().all())
    unknown = [s for s in wanted if s not in found]
    if unknown:
        raise AccountError(f"unknown service(s): {', '.join(unknown)}")
    return [found[s] for s in wanted]


def audit(session: Session, actor: str, action: str, user: User, **detail: object) -> None:
    """Record an account action in ``audit_log`` (never a password or a token)."""
    session.add(AuditEntry(actor=actor, action=action, subject=user.email, detail=detail or None))


def _link(session: Session, user: User, public_url: str, now: datetime) -> NewLink:
    """A new one-time link; links given earlier for the same account stop working."""
    session.execute(
        update(AccountToken).where(AccountToken.user_id == user.id, AccountToken.used_at.is_(None)).values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    expires = now + LINK_LIFETIME
    session.add(AccountToken(token_hash=token_hash(token), user_id=user.id, purpose=SET_PASSWORD,
                             created_at=now, expires_at=expires))  # fmt: skip
    return NewLink(user.id, user.email, f"{public_url.rstrip('/')}/dashboard/set-password/{token}", expires)


def create_user(session: Session, email: str, services: tuple[str, ...], public_url: str) -> NewLink:
    """A new account seeing ``services``, and its one-time set-password link.

    One account per address, also when two ``user create`` race: the loser's insert meets the unique index and
    ends in the same :class:`AccountError` as a sequential duplicate, not a database error."""
    address = normalize_email(email)
    ids = _service_ids(session, services)
    exists = f"an account for {address} exists already (new link: `survey-engine user reset`)"
    if session.execute(select(User.id).where(User.email == address)).first():
        raise AccountError(exists)
    now = utcnow()
    user = User(email=address, created_at=now)
    user.services = [UserService(service_id=i) for i in ids]
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:  # another `user create` for this address committed between the check and the insert
        raise AccountError(exists) from None
    audit(session, "cli", "user.create", user, services=sorted(set(services)))
    return _link(session, user, public_url, now)


def find_user(session: Session, email: str) -> User:
    address = normalize_email(email)
    user = session.execute(select(User).where(User.email == address)).scalar_one_or_none()
    if user is None:
        raise AccountError(f"no account for {address}")
    return user


def reset_link(session: Session, email: str, public_url: str) -> NewLink:
    """A new set-password link for an existing account (its password stays until the link is used)."""
    user = find_user(session, email)
    audit(session, "cli", "user.reset", user)
    return _link(session, user, public_url, utcnow())


def set_disabled(session: Session, email: str, disabled: bool) -> User:
    """Disable (every session ends at its next request) or enable an account."""
    user = find_user(session, email)
    user.disabled_at = utcnow() if disabled else None
    audit(session, "cli", "user.disable" if disabled else "user.enable", user)
    return user


def set_services(session: Session, email: str, services: tuple[str, ...]) -> User:
    user = find_user(session, email)
    user.services = [UserService(service_id=i) for i in _service_ids(session, services)]
    audit(session, "cli", "user.services", user, services=sorted(set(services)))
    return user


def token_user(session: Session, token: str, now: datetime) -> tuple[AccountToken, User] | None:
    """The unused, unexpired set-password token and its enabled account, locked for update; else None."""
    row = session.execute(
        select(AccountToken).where(AccountToken.token_hash == token_hash(token)).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.purpose != SET_PASSWORD or row.used_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return row, user


def use_token(session: Session, token: str, password: str) -> User | None:
    """Set the password through a one-time link; None when the link is unknown, used or expired.

    The token is marked used by a conditional UPDATE, so two submissions racing each other set it once.
    """
    now = utcnow()
    found = token_user(session, token, now)
    if found is None:
        return None
    row, user = found
    claimed = session.execute(
        update(AccountToken)
        .where(AccountToken.token_hash == row.token_hash, AccountToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    user.password_hash = hash_password(password)
    user.password_set_at = now
    audit(session, "set-password link", "user.password_set", user)
    return user
