"""What the SMS and IVR channels share about Twilio: the client, the signature check, and the error table.

* The client is the official SDK with its documented custom-HTTP-client hook: ``TWILIO_API_BASE_URL`` (default
  ``https://api.twilio.com``) rebases every request, for a site behind an egress gateway and for the tests'
  contract mock.
* Every webhook is checked against ``X-Twilio-Signature`` computed over ``SURVEY_ENGINE_PUBLIC_URL`` + the path
  and query Twilio called; an unsigned or forged request gets 403 and changes nothing.
* What Twilio sends is checked before anything is stored (SPEC §2 rule 11): a SID has Twilio's shape (two letters
  naming the resource, then 32 hexadecimal digits: https://www.twilio.com/docs/glossary/what-is-a-sid, and the
  ``^CA[0-9a-fA-F]{32}$`` / ``^(SM|MM)[0-9a-fA-F]{32}$`` patterns of Twilio's API contract), and a status word fits
  the event columns it is stored in. So every key built from them fits its column, on PostgreSQL as on SQLite.
* Provider errors are classified (SPEC §2 rule 10): a refused connection, a 429 or a 5xx surely sent nothing and
  is retried; a timeout after the request went out is ``unknown``; a permanent error fails the invitation and,
  where its code says so, suppresses the address.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import requests
from flask import Response, request
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from engine.channels import Outcome, Unsettled
from engine.common.errors import FieldError
from engine.common.limits import column_length, text_problem
from engine.store.models import DeliveryEvent, EarlyReport, SuppressionReason
from engine.webapp.problems import problem_response
from engine.webapp.support import runtime

DEFAULT_BASE_URL = "https://api.twilio.com"
REQUEST_TIMEOUT = 10.0
F = TypeVar("F", bound=Callable[..., Any])
Check = Callable[[str], str | None]  # why a field's value cannot be stored, or None

# Twilio error codes that mean "never again at this address" and the suppression they record, with the channels
# it covers (an opt-out at the carrier stops texts and outbound calls alike).
SUPPRESSING_CODES: dict[int, tuple[SuppressionReason, tuple[str, ...]]] = {
    21610: (SuppressionReason.OPTED_OUT, ("sms", "ivr")),  # the recipient replied STOP to this sender
    21211: (SuppressionReason.CARRIER_BLOCK, ("sms", "ivr")),  # invalid 'To' number
    21214: (SuppressionReason.CARRIER_BLOCK, ("ivr",)),  # 'To' number cannot be reached by voice
    21612: (SuppressionReason.CARRIER_BLOCK, ("sms",)),  # not reachable by this sender or carrier
    21614: (SuppressionReason.CARRIER_BLOCK, ("sms",)),  # not a mobile number
    30003: (SuppressionReason.CARRIER_BLOCK, ("sms",)),  # unreachable destination handset
    30004: (SuppressionReason.CARRIER_BLOCK, ("sms",)),  # message blocked
    30005: (SuppressionReason.CARRIER_BLOCK, ("sms",)),  # unknown destination handset
    30006: (SuppressionReason.CARRIER_BLOCK, ("sms",)),  # landline or unreachable carrier
    30007: (SuppressionReason.COMPLAINT, ("sms",)),  # carrier filtered it as spam
}


@dataclass(frozen=True)
class SidKind:
    """One kind of Twilio SID: 34 characters, a two-letter prefix naming the resource, then 32 hexadecimal digits."""

    what: str
    prefixes: tuple[str, ...]

    def problem(self, value: str) -> str | None:
        """Why ``value`` is not a SID of this kind, or ``None``."""
        if len(value) == 34 and value[:2] in self.prefixes and all(c in string.hexdigits for c in value[2:]):
            return None
        return f"must be a Twilio {self.what} SID: {' or '.join(self.prefixes)} then 32 hexadecimal digits"


MESSAGE_SID = SidKind("message", ("SM", "MM"))  # an SMS or an MMS
CALL_SID = SidKind("call", ("CA",))


def status_word_problem(word: str, prefix: str) -> str | None:
    """Why a status word, stored as ``prefix + word`` in the delivery-event columns, does not fit them, or ``None``."""
    limit = min(column_length(DeliveryEvent.event), column_length(EarlyReport.event)) - len(prefix)
    return f"must be at most {limit} characters" if len(word) > limit else None


def field_errors(form: Mapping[str, str], text: Sequence[str], checks: Mapping[str, Check]) -> list[FieldError]:
    """One error per field that cannot be stored: text holding NUL or an unpaired surrogate (the ``text`` fields
    and the ``checks`` fields), else the field's own check (a SID's shape, a length), run where the field is sent."""
    errors: list[FieldError] = []
    for name in dict.fromkeys([*text, *checks]):
        value = form.get(name)
        problem = text_problem(value or "")
        if problem is None and value and value.strip() and name in checks:  # a field sent empty counts as missing
            problem = checks[name](value.strip())
        if problem is not None:
            errors.append(FieldError(name, problem))
    return errors


def refused(errors: Sequence[FieldError]) -> Response:
    """The 422 problem+json naming each field that cannot be stored (a status callback or a message webhook)."""
    return problem_response(422, "A field holds a value that cannot be stored; nothing was changed.", errors=errors)


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_number: str | None
    messaging_service_sid: str | None
    api_base_url: str

    @classmethod
    def from_providers(cls, providers: dict[str, str]) -> TwilioSettings | None:
        """The Twilio settings, or None where the account is not configured (the channels then refuse to send)."""
        sid, token = providers.get("TWILIO_ACCOUNT_SID"), providers.get("TWILIO_AUTH_TOKEN")
        if not sid or not token:
            return None
        return cls(
            account_sid=sid,
            auth_token=token,
            from_number=providers.get("TWILIO_FROM_NUMBER"),
            messaging_service_sid=providers.get("TWILIO_MESSAGING_SERVICE_SID"),
            api_base_url=(providers.get("TWILIO_API_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
        )


class RebasedHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending to ``base_url`` instead of https://api.twilio.com (the documented hook)."""

    def __init__(self, base_url: str, timeout: float = REQUEST_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        if self.base_url != DEFAULT_BASE_URL and url.startswith(DEFAULT_BASE_URL):
            url = self.base_url + url[len(DEFAULT_BASE_URL) :]
        return super().request(method, url, *args, **kwargs)


def make_client(config: TwilioSettings) -> Client:
    return Client(config.account_sid, config.auth_token, http_client=RebasedHttpClient(config.api_base_url))


@dataclass(frozen=True)
class Classified:
    outcome: Outcome
    detail: str
    suppress: SuppressionReason | None = None
    suppress_channels: tuple[str, ...] = ()
    retry_after_seconds: float | None = None


def classify(exc: BaseException) -> Classified:
    """What a failed provider call means for the invitation (SPEC §2 rule 10)."""
    if isinstance(exc, TwilioRestException):
        status = int(exc.status or 0)
        code = int(exc.code or 0)
        detail = f"twilio {status} code {code}: {exc.msg}"[:200]
        if status == 429 or status >= 500:
            return Classified(Outcome.RETRY, detail)
        if code in SUPPRESSING_CODES:
            reason, channels = SUPPRESSING_CODES[code]
            return Classified(Outcome.FAILED, detail, reason, channels)
        return Classified(Outcome.FAILED, detail)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classified(Outcome.RETRY, "connection timed out before the request was sent")
    if isinstance(exc, requests.exceptions.Timeout):
        return Classified(Outcome.UNKNOWN, "timed out after the request went out")
    if isinstance(exc, requests.exceptions.ConnectionError):
        # Refused or reset before an answer: a refused connection sent nothing; a reset mid-way may have.
        refused = "refused" in str(exc).lower() or "name or service not known" in str(exc).lower()
        return Classified(Outcome.RETRY if refused else Outcome.UNKNOWN, f"connection error: {exc}"[:200])
    return Classified(Outcome.UNKNOWN, f"unexpected error: {exc!r}"[:200])


def signature_valid(auth_token: str, public_url: str) -> bool:
    """Whether the current request carries Twilio's signature over the URL Twilio called and its form fields."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = public_url.rstrip("/") + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return bool(RequestValidator(auth_token).validate(url, request.form.to_dict(flat=True), signature))


def twilio_signed(view: F) -> F:
    """Guard a webhook: an unsigned or forged request gets 403 and changes nothing."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        rt = runtime()
        config = TwilioSettings.from_providers(rt.settings.providers)
        if config is None or not signature_valid(config.auth_token, rt.settings.public_url):
            return problem_response(403, "This request is not signed by Twilio for this service.", kind="bad-signature")
        return view(*args, **kwargs)

    checked.access = "twilio-signature"  # type: ignore[attr-defined]
    return checked  # type: ignore[return-value]


def settle_by_lookup(items: Sequence[Unsettled], lookup: Callable[[Unsettled], Any]) -> dict[uuid.UUID, str]:
    """For each unknown send, the sid of a message or call Twilio has to that number since the claim.

    Only a record whose ``to`` is the number counts; a failed look-up leaves the invitation unknown.
    """
    found: dict[uuid.UUID, str] = {}
    for item in items:
        try:
            records = lookup(item)
        except Exception:  # the look-up itself failed: nothing is known, nothing changes
            continue
        for record in records:
            if getattr(record, "to", None) == item.address and getattr(record, "sid", None):
                found[item.invitation_id] = str(record.sid)
                break
    return found
