"""The +1 fast paths of phone validation (engine/intake/validation.py ``_checked_phone``: a number already in E.164
built without parsing, and the US region tried first) give phonenumbers' own verdict."""

from __future__ import annotations

import random

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.intake.validation import _checked_phone


def reference(value: str) -> tuple[str | None, bool]:
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return None, False
    valid = phonenumbers.is_valid_number(number)
    return (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if valid else None), valid


def ours(value: str) -> tuple[str | None, bool]:
    normalized, problem = _checked_phone.__wrapped__(value)
    return normalized, not problem


@settings(max_examples=400, deadline=None)
@given(st.from_regex(r"\+1[0-9]{10}", fullmatch=True))
def test_nanp_numbers_get_the_full_checks_verdict(value):
    assert ours(value) == reference(value)


def test_every_nanp_area_code_and_other_countries_agree():
    rng = random.Random(5)
    values = [f"+1{npa:03d}{rng.randint(0, 9999999):07d}" for npa in range(200, 1000) for _ in range(3)]
    values += [f"({npa:03d}) 555-{rng.randint(0, 9999):04d}" for npa in range(200, 1000, 7)]
    values += ["+442079460000", "+33142685300", "+8613800138000", "+18095550123", "+16495550123", "+1 800 555 0100"]
    values += ["+1", "12", "+999123", "not a number"]
    # E.164-looking texts the direct build must leave to the full check: area code 0/1, too short or long, other
    # digits, an extension, a +1 number of another NANP country.
    values += ["+10125550123", "+11125550123", "+1202555012", "+120255501234", "+1２０２５５５０１２３"]
    values += ["+12025550123 ext. 5", "+12025550123;ext=5", "+18765550123", "+14165550123"]
    disagree = [v for v in values if ours(v) != reference(v)]
    assert not disagree
    assert sum(1 for v in values if ours(v)[1]) > 100  # the sample holds many valid numbers, not only invalid ones
