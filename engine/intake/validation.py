"""Checking one transaction as received (SPEC §3) and turning it into a typed :class:`Candidate`.

Every problem of an item is collected, each naming its field, so an integrator can fix them all at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from engine.catalog.services import Catalog, OfficeConfig, ServiceConfig
from engine.common.errors import FieldError, ValidationFailed
from engine.common.limits import column_length, cut, moment_problem, number_problem, text_problem, zone_problem
from engine.intake.rules import PROMPT_CHANNEL, in_future
from engine.store.models import Transaction

TRANSACTION_FIELDS = {
    "id", "service", "completed_at", "touchpoint", "office", "language", "contact", "consent", "service_level",
    "attributes", "test", "prompt",
}  # fmt: skip
CONTACT_FIELDS = {"phone", "email", "timezone"}
CONSENT_FIELDS = {"sms", "voice"}
TOUCHPOINTS = {"phone", "in_person", "web", "email", "mail", "chat", "other"}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
BCP47 = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
SLI_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
# The columns they are stored in hold these many characters: the checks read them there, so the two cannot drift.
MAX_ID = column_length(Transaction.external_id)
MAX_LANGUAGE = column_length(Transaction.language)
MAX_ATTRIBUTES = 50
# Each indicator name is a column of the §6.1 report (sli_<name>_mean) for every row of its quarter.
MAX_SERVICE_LEVELS = 20
MAX_ATTRIBUTE_LENGTH = 500
DEFAULT_PHONE_REGION = "US"


def language_tag(value: object) -> bool:
    """Whether ``value`` is a language tag a transaction takes: BCP 47 in shape, and short enough for its column."""
    return isinstance(value, str) and len(value) <= MAX_LANGUAGE and BCP47.fullmatch(value) is not None


@dataclass(frozen=True)
class Candidate:
    """A transaction that passed validation, typed and normalized."""

    external_id: str
    service: ServiceConfig
    completed_at: datetime
    touchpoint: str | None = None
    office: OfficeConfig | None = None
    language: str | None = None
    phone: str | None = None
    email: str | None = None
    timezone: ZoneInfo | None = None
    consent_sms: bool = False
    consent_voice: bool = False
    service_levels: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, str] | None = None
    test: bool = False
    # The end-of-engagement prompt (website channel): the result carries a survey_url to show at once.
    prompt: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.service.slug, self.external_id)


@lru_cache(maxsize=1024)
def zone_named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_timestamp(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise FieldError(name, "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-24T15:04:05-05:00")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise FieldError(name, f"{value!r} is not a real date and time") from None
    problem = moment_problem(moment)
    if problem:
        raise FieldError(name, problem)
    return moment


def text_error(value: Any, name: str) -> FieldError | None:
    """A :class:`FieldError` when ``value`` is text no database can keep (NUL, a lone surrogate), else None."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            return FieldError(name, problem)
    return None


def shown(name: Any) -> str:
    """A name taken from the input, safe to echo in a field path (unstorable characters escaped, a long one cut)."""
    text = cut(str(name))
    return text if text_problem(text) is None else text.encode("unicode_escape").decode("ascii")


# Phone numbers and email addresses are checked by phonenumbers and email_validator, which cost some 20-25 µs
# each: a large share of a batch. The same contact recurs (replays, repeat customers), so both verdicts are kept
# per raw string (bounded caches: 4,096 entries of at most 1,024 characters each, ~5 MB at most); plain ASCII email
# addresses are moreover accepted by a fast path that admits only what email_validator admits (``_plain_email``).
CONTACT_CACHE_SIZE = 4096
# Only strings that could be a contact are kept: no valid address is longer (an email address is at most 254
# octets, phonenumbers refuses over 250 characters), and a refused string of megabytes, kept 4,096 times over, would
# hold gigabytes. A longer one is checked all the same, never kept.
MAX_CACHED_CONTACT = 1024


def normalize_phone(value: Any, name: str = "contact.phone") -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError(name, "must be a phone number as a string, e.g. +12025550123")
    unstorable = text_error(value, name)
    if unstorable:
        raise unstorable
    normalized, problem = (_checked_phone if len(value) <= MAX_CACHED_CONTACT else _checked_phone.__wrapped__)(value)
    if normalized is None:
        raise FieldError(name, problem)
    return normalized


# A +1 number already written in E.164 (what most systems send): phonenumbers' parse would read it as country
# code 1 and these ten digits (no extension, no leading zero: the area code starts with 2-9), so the number is
# built directly and parse's normalizing passes (a third of the check) are skipped.
_E164_NANP = re.compile(r"\+1([2-9][0-9]{9})", re.ASCII)


@lru_cache(maxsize=CONTACT_CACHE_SIZE)
def _checked_phone(value: str) -> tuple[str | None, str]:
    """(the E.164 form, "") or (None, what is wrong): phonenumbers' verdict on ``value``, kept per raw string."""
    e164 = _E164_NANP.fullmatch(value)
    if e164 is not None:
        built = phonenumbers.PhoneNumber(country_code=1, national_number=int(e164[1]))
        if phonenumbers.is_valid_number_for_region(built, "US"):
            return value, ""  # its E.164 form is itself
    try:
        number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None, "is not a phone number (use E.164, e.g. +12025550123)"
    # For +1, phonenumbers' is_valid_number tries the US first (the first region of +1, no leading-digits rule):
    # a number valid for the US is valid, with one pattern pass instead of two. Anything else: the full check.
    us_valid = number.country_code == 1 and phonenumbers.is_valid_number_for_region(number, "US")
    if not us_valid and not phonenumbers.is_valid_number(number):
        return None, "is not a valid phone number (use E.164, e.g. +12025550123)"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


def normalize_email(value: Any, name: str = "contact.email") -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError(name, "must be an email address as a string")
    unstorable = text_error(value, name)
    if unstorable:
        raise unstorable
    plain = _plain_email(value)
    if plain is not None:
        return plain
    normalized, problem = (_checked_email if len(value) <= MAX_CACHED_CONTACT else _checked_email.__wrapped__)(value)
    if normalized is None:
        raise FieldError(name, problem)
    return normalized


@lru_cache(maxsize=CONTACT_CACHE_SIZE)
def _checked_email(value: str) -> tuple[str | None, str]:
    """(the normalized address, "") or (None, what is wrong): email_validator's verdict, kept per raw string."""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"is not a valid email address: {exc}"
    return result.normalized.lower(), ""


# The fast path for the common address: ASCII, an unquoted dot-atom before the @ (RFC 5322 atext, the very
# character set email_validator's DOT_ATOM_TEXT allows), a plain host name after it (letters, digits and inner
# hyphens per label, at least two labels, ending with a letter). Whatever does not fit exactly — Unicode, quoting,
# display names, bracketed IP addresses, Punycode or any label with "--" at positions 3-4, over-long parts, the
# special-use names (.local, .invalid, .arpa ...) — goes to email_validator, so the fast path only ever accepts
# what email_validator (check_deliverability=False, its default options) accepts, and normalizes it the same way:
# for such an address email_validator's normalized form differs from the input only by letter case, which the
# engine lower-cases anyway. tests/test_perf_paths.py compares the two on many generated addresses.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
PLAIN_EMAIL = re.compile(
    rf"(?P<local>[{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@(?P<domain>(?:{_LABEL}\.)+[A-Za-z0-9-]*[A-Za-z])", re.ASCII
)
_LAST_LABEL = re.compile(_LABEL + r"\Z", re.ASCII)


def _plain_email(value: str) -> str | None:
    """``value`` lower-cased if it is a plain ASCII address that email_validator certainly accepts, else None."""
    if len(value) > 254:
        return None
    match = PLAIN_EMAIL.fullmatch(value)
    if match is None:
        return None
    local, domain = match.group("local", "domain")
    if len(local) > 64:
        return None
    domain = domain.lower()
    labels = domain.split(".")
    if not _LAST_LABEL.match(labels[-1]) or any(label[2:4] == "--" for label in labels):
        return None
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if domain == special or domain.endswith("." + special):
            return None
    return value.lower()


def parse_zone(value: Any, name: str) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise FieldError(name, "must be an IANA time zone name, e.g. America/New_York")
    unstorable = text_error(value, name)
    if unstorable:
        raise unstorable
    problem = zone_problem(value)
    if problem:
        raise FieldError(name, problem)
    return zone_named(value)


def _id_error(value: Any) -> FieldError | None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        return FieldError("id", f"is required: a string of 1 to {MAX_ID} characters")
    return text_error(value, "id")


def usable_id(raw: Any) -> str | None:
    """The ``id`` of a posted transaction when it is one intake takes, else None: what an invalid item's result may
    echo (an id of megabytes, or text no database keeps, is the problem its error names, not a name to send back)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and _id_error(value) is None else None


def _unknown(obj: dict[str, Any], allowed: set[str], prefix: str, errors: list[FieldError]) -> None:
    for key in obj:
        if key not in allowed:
            errors.append(FieldError(f"{prefix}{shown(key)}", "unknown field"))


def _bool(obj: dict[str, Any], key: str, name: str, errors: list[FieldError]) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        errors.append(FieldError(name, "must be true or false"))
        return False
    return value


def parse_transaction(raw: Any, catalog: Catalog, now: datetime) -> Candidate:
    """Validate one transaction; raise :class:`ValidationFailed` listing every problem."""
    if not isinstance(raw, dict):
        raise ValidationFailed([FieldError("", "a transaction must be a JSON object")])
    errors: list[FieldError] = []
    _unknown(raw, TRANSACTION_FIELDS, "", errors)

    external_id = raw.get("id")
    if id_error := _id_error(external_id):
        errors.append(id_error)

    service = None
    slug = raw.get("service")
    if not isinstance(slug, str) or not slug:
        errors.append(FieldError("service", "is required: the slug of a configured service"))
    elif unstorable := text_error(slug, "service"):
        errors.append(unstorable)
    elif slug not in catalog.services:
        errors.append(FieldError("service", f"unknown service {cut(slug)!r}"))
    else:
        service = catalog.services[slug]

    completed_at = None
    if "completed_at" not in raw:
        errors.append(FieldError("completed_at", "is required: an RFC 3339 timestamp with an offset"))
    else:
        try:
            completed_at = parse_timestamp(raw["completed_at"], "completed_at")
            if in_future(completed_at, now):
                errors.append(FieldError("completed_at", "is more than 5 minutes in the future"))
        except FieldError as exc:
            errors.append(exc)

    touchpoint = raw.get("touchpoint")
    if touchpoint is not None and (not isinstance(touchpoint, str) or touchpoint not in TOUCHPOINTS):
        errors.append(FieldError("touchpoint", f"must be one of {', '.join(sorted(TOUCHPOINTS))}"))

    office = None
    code = raw.get("office")
    if code is not None:
        if unstorable := text_error(code, "office"):
            errors.append(unstorable)
        elif not isinstance(code, str):
            errors.append(FieldError("office", "must be a string: an office code from config/offices.yaml"))
        elif code not in catalog.offices:
            errors.append(FieldError("office", f"unknown office {cut(code)!r}: not in config/offices.yaml"))
        else:
            office = catalog.offices[code]

    language = raw.get("language")
    if language is not None:
        if unstorable := text_error(language, "language"):
            errors.append(unstorable)
            language = None
        elif not language_tag(language):
            errors.append(FieldError("language", "must be a BCP 47 language tag, e.g. en or es-US"))
            language = None
        else:
            primary, _, rest = language.partition("-")
            language = primary.lower() + ("-" + rest.upper() if rest else "")

    phone = email = None
    zone = None
    contact = raw.get("contact")
    if contact is not None:
        if not isinstance(contact, dict):
            errors.append(FieldError("contact", "must be an object with phone, email and timezone"))
        else:
            _unknown(contact, CONTACT_FIELDS, "contact.", errors)
            try:
                phone = normalize_phone(contact["phone"]) if contact.get("phone") is not None else None
            except FieldError as exc:
                errors.append(exc)
            try:
                email = normalize_email(contact["email"]) if contact.get("email") is not None else None
            except FieldError as exc:
                errors.append(exc)
            try:
                zone = parse_zone(contact["timezone"], "contact.timezone") if "timezone" in contact else None
            except FieldError as exc:
                errors.append(exc)

    consent_sms = consent_voice = False
    consent = raw.get("consent")
    if consent is not None:
        if not isinstance(consent, dict):
            errors.append(FieldError("consent", 'must be an object such as {"sms": true, "voice": false}'))
        else:
            _unknown(consent, CONSENT_FIELDS, "consent.", errors)
            consent_sms = _bool(consent, "sms", "consent.sms", errors)
            consent_voice = _bool(consent, "voice", "consent.voice", errors)

    levels: dict[str, float] = {}
    service_level = raw.get("service_level")
    if service_level is not None:
        if not isinstance(service_level, dict):
            errors.append(FieldError("service_level", "must be an object of numbers"))
        elif len(service_level) > MAX_SERVICE_LEVELS:
            errors.append(FieldError("service_level", f"must hold at most {MAX_SERVICE_LEVELS} indicators"))
        else:
            for name, value in service_level.items():
                if not SLI_NAME.fullmatch(str(name)):
                    errors.append(
                        FieldError(f"service_level.{shown(name)}", "names are lower-case letters, digits and _")
                    )
                elif problem := number_problem(value):
                    errors.append(FieldError(f"service_level.{name}", problem))
                else:
                    levels[name] = float(value)

    attributes = raw.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
            errors.append(FieldError("attributes", f"must be an object of at most {MAX_ATTRIBUTES} strings"))
            attributes = None
        else:
            for name, value in attributes.items():
                if not ATTRIBUTE_NAME.fullmatch(str(name)):
                    errors.append(FieldError(f"attributes.{shown(name)}", "names are letters, digits, _ . and -"))
                elif unstorable := text_error(value, f"attributes.{name}"):
                    errors.append(unstorable)
                elif not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_LENGTH:
                    errors.append(
                        FieldError(
                            f"attributes.{name}", f"must be a string of at most {MAX_ATTRIBUTE_LENGTH} characters"
                        )
                    )

    test = _bool(raw, "test", "test", errors)
    prompt = _bool(raw, "prompt", "prompt", errors)
    if prompt and touchpoint != "web":
        errors.append(FieldError("prompt", 'is only for "touchpoint": "web" (a survey link shown at the end of an '
                                           "online transaction); send the transaction without prompt"))  # fmt: skip
    elif prompt and service is not None and PROMPT_CHANNEL not in service.channels:
        errors.append(FieldError("prompt", f"service {service.slug!r} does not offer the {PROMPT_CHANNEL} channel "
                                           "(add it to its channels in config/services.yaml)"))  # fmt: skip

    if errors:
        raise ValidationFailed(errors)
    assert service is not None and completed_at is not None and isinstance(external_id, str)
    return Candidate(
        external_id=external_id,
        service=service,
        completed_at=completed_at,
        touchpoint=touchpoint,
        office=office,
        language=language,
        phone=phone,
        email=email,
        timezone=zone,
        consent_sms=consent_sms,
        consent_voice=consent_voice,
        service_levels=levels,
        attributes=attributes,
        test=test,
        prompt=prompt,
    )
