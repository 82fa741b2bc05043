"""Contact data at rest: AES-GCM encryption and keyed lookup hashes, both derived from one secret.

``SURVEY_ENGINE_ENCRYPTION_KEY`` is any string of at least 32 characters; HKDF derives from it one key to encrypt
phones and emails and another to compute the keyed hashes (HMAC-SHA256) that cooldowns and opt-outs look up, so
the clear value is never needed to find a contact.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


def same_secret(given: str, expected: str) -> bool:
    """Whether ``given`` (from a request: any text) equals ``expected``, in constant time. Compared as UTF-8
    bytes: ``hmac.compare_digest`` raises on a str holding anything but ASCII, and a form may hold anything."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"survey-engine", info=purpose).derive(
        secret.encode("utf-8")
    )


class ContactCipher:
    """Encrypts contact values and computes their keyed hashes."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(_derive(secret, b"contact-encryption-v1"))
        self._hash_key = _derive(secret, b"contact-lookup-hash-v1")

    def encrypt(self, value: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, value.encode("utf-8"), None)

    def decrypt(self, blob: bytes) -> str:
        return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], None).decode("utf-8")

    def lookup_hash(self, kind: str, normalized_value: str) -> str:
        """The keyed hash of a normalized phone (E.164) or email (lower-cased), as 64 hex characters."""
        message = f"{kind}:{normalized_value}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """SHA-256 of a bearer secret (API key, survey token, device credential), as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mask_phone(e164: str) -> str:
    """``+1202•••0123``: enough to recognise a number in a console line, not enough to use it."""
    if len(e164) <= 6:
        return "•" * len(e164)
    head = 4 if len(e164) >= 12 else 1  # the country code only where enough digits stay hidden
    tail = 4 if len(e164) >= 9 else 2
    return e164[:head] + "•" * (len(e164) - head - tail) + e164[-tail:]


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "•••") + ("@" + domain if domain else "")
