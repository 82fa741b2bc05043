"""Contact data at rest (SPEC §5 "The store", §8): AES-GCM encryption, keyed lookup hashes, masking. No database."""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers
import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from engine.common.crypto import ContactCipher, mask_email, mask_phone, token_hash

KEY = "test-encryption-key-that-is-long-enough-9876543210"
OTHER_KEY = "another-encryption-key-that-is-long-enough-0123456"
cipher = ContactCipher(KEY)

e164 = st.from_regex(r"\+[1-9][0-9]{8,14}", fullmatch=True)  # the numbers intake accepts are at least 9 characters
emails = st.builds(
    lambda local, domain: f"{local}@{domain}.gov",
    st.from_regex(r"[a-z0-9._+-]{1,30}", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
)


# -- encryption ----------------------------------------------------------------------------------------------------


@given(st.text())
def test_encryption_round_trips_any_text(value):
    assert cipher.decrypt(cipher.encrypt(value)) == value


def test_a_fresh_cipher_with_the_same_key_decrypts():
    blob = cipher.encrypt("+12025550123")
    assert ContactCipher(KEY).decrypt(blob) == "+12025550123"


@given(st.one_of(e164, emails))
def test_ciphertext_is_fresh_each_time_and_holds_no_clear_text(value):
    first, second = cipher.encrypt(value), cipher.encrypt(value)
    assert first != second  # a random nonce each time: equal contacts are not equal rows
    assert first[:12] != second[:12]
    assert len(first) == 12 + len(value.encode()) + 16  # nonce, ciphertext, tag
    for blob in (first, second):
        assert value.encode() not in blob
        assert value.encode()[-8:] not in blob  # not even its tail (the subscriber number, the domain)


def test_ciphertext_holds_no_recognisable_part_of_a_contact():
    for value in ("+12025550123", "pat.smith@example.com"):
        blob = cipher.encrypt(value)
        assert b"555" not in blob and b"example" not in blob and b"smith" not in blob


def test_decrypting_with_another_key_fails():
    blob = cipher.encrypt("pat@example.com")
    with pytest.raises(InvalidTag):
        ContactCipher(OTHER_KEY).decrypt(blob)


def test_a_tampered_ciphertext_is_refused():
    blob = bytearray(cipher.encrypt("pat@example.com"))
    blob[15] ^= 0x01
    with pytest.raises(InvalidTag):
        cipher.decrypt(bytes(blob))
    with pytest.raises(InvalidTag):
        cipher.decrypt(cipher.encrypt("pat@example.com")[:-1])  # a truncated tag


# -- lookup hashes ---------------------------------------------------------------------------------------------------


@given(st.one_of(e164, emails))
def test_lookup_hashes_are_stable_per_key(value):
    digest = cipher.lookup_hash("phone", value)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert ContactCipher(KEY).lookup_hash("phone", value) == digest  # the same after a restart
    assert ContactCipher(OTHER_KEY).lookup_hash("phone", value) != digest  # keyed: another key, another hash
    assert cipher.lookup_hash("email", value) != digest  # the kind is part of the hash
    assert digest != hashlib.sha256(value.encode()).hexdigest()  # not a plain, guessable hash
    assert digest != hashlib.sha256(f"phone:{value}".encode()).hexdigest()


@given(st.one_of(e164, emails), st.one_of(e164, emails))
def test_different_contacts_have_different_hashes(one, other):
    if one != other:
        assert cipher.lookup_hash("email", one) != cipher.lookup_hash("email", other)


def test_the_hash_key_is_derived_not_the_secret_itself():
    # HKDF derives the HMAC key: a hash made with the raw secret (or a plain salted SHA-256) does not match.
    value = b"phone:+12025550123"
    digest = cipher.lookup_hash("phone", "+12025550123")
    assert digest != hmac.new(KEY.encode(), value, hashlib.sha256).hexdigest()
    assert digest != hashlib.sha256(KEY.encode() + value).hexdigest()
    assert ContactCipher(KEY + "x").lookup_hash("phone", "+12025550123") != digest


def test_token_hash_is_sha256_hex():
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert token_hash("abc") != token_hash("abd")


# -- masking for console lines and logs ---------------------------------------------------------------------------


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


@given(e164)
def test_a_masked_phone_never_shows_the_whole_number(phone):
    masked = mask_phone(phone)
    assert masked != phone
    assert phone not in masked
    assert len(digits(masked)) < len(digits(phone))  # some digits are hidden
    assert masked.endswith(phone[-4:])  # enough to recognise it


def test_mask_phone_examples():
    assert mask_phone("+12025550123") == "+120••••0123"
    assert "555" not in mask_phone("+12025550123")
    assert mask_phone("+123") == "••••"
    assert mask_phone("+12345") == "••••••"


def test_a_short_valid_number_is_not_shown_whole():
    phone = "+6834002"
    assert phonenumbers.is_valid_number(phonenumbers.parse(phone))  # intake accepts it
    masked = mask_phone(phone)
    assert masked != phone
    assert len(digits(masked)) < len(digits(phone))


@given(emails)
def test_a_masked_email_never_shows_the_whole_address(email):
    masked = mask_email(email)
    local, _, domain = email.partition("@")
    assert masked != email
    assert email not in masked
    assert masked.endswith("@" + domain)
    if len(local) > 1:
        assert local not in masked.partition("@")[0]  # the mailbox itself is hidden
    assert masked.startswith(local[0])


def test_mask_email_examples():
    assert mask_email("pat.smith@example.com") == "p•••@example.com"
    assert mask_email("not-an-email") == "n•••"
