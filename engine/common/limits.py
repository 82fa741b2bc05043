"""What a value must be to be stored and reported (SPEC §2 rule 11): the bounds every input is held to.

Shared by every edge that takes input from outside (the API, the kiosk sync, the survey and dashboard forms,
provider webhooks), so that "text a database cannot keep", "a number no report can add up" and "a time no
calendar can hold" are defined once. Each check returns the problem in words, or ``None``.
"""

from __future__ import annotations

import json
import math
import re
import zoneinfo
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

MAX_JSON_DEPTH = 32
MAX_NUMBER = 10**12
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
# NUL (PostgreSQL text cannot hold it) and unpaired UTF-16 surrogates (no UTF-8 encoding exists for them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text on every backend, or ``None``."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain a NUL character (U+0000)"
    return "must not contain an unpaired surrogate (U+D800-U+DFFF): send valid Unicode"


def length_problem(value: str, column: Any) -> str | None:
    """Why ``value`` does not fit the ``String(n)`` column it is stored in, or ``None``.

    ``column`` is the mapped column itself (``Office.code``): the limit is read from it, so a check and the schema
    cannot drift apart.
    """
    limit = column_length(column)
    return f"must be at most {limit} characters" if len(value) > limit else None


def column_length(column: Any) -> int:
    """How many characters the ``String(n)`` column ``column`` (``Transaction.language``) holds."""
    return int(column.type.length)


def cut(value: str, keep: int = 80) -> str:
    """``value`` as a message may echo it: whole up to ``keep`` characters, else its start and an ellipsis."""
    return value if len(value) <= keep else value[:keep] + "…"


def number_problem(value: Any) -> str | None:
    """Why ``value`` is not a finite number within ±10^12, or ``None`` (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (not NaN or Infinity)"
    if not -MAX_NUMBER <= value <= MAX_NUMBER:
        return f"must be between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}".replace("+", "")
    return None


def moment_problem(value: datetime) -> str | None:
    """Why an aware ``value`` falls outside the years 1970-9999 once its offset is applied, or ``None``."""
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return "must fall between the years 1970 and 9999 once its offset is applied"
    if not EARLIEST <= utc <= LATEST:
        return "must fall between the years 1970 and 9999 once its offset is applied"
    return None


# Names the host's zoneinfo resolves that are not places: the machine's own setting ("localtime": whatever zone the
# host is set to) and tzcode's rule file ("posixrules"). "posix/…" and "right/…" (leap-second clocks, 27 s apart)
# are copies of the zones under other names; ``available_timezones`` leaves them out already.
_NOT_A_PLACE = frozenset({"localtime", "posixrules"})


@lru_cache(maxsize=1)
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - _NOT_A_PLACE)


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone name this host knows, or ``None``.

    ``ZoneInfo`` opens any file under the zoneinfo folders, so "localtime" (the host's own zone) or
    "right/America/New_York" (a clock that counts leap seconds) would be taken: quiet hours and calendar days would
    then follow the machine's settings, not the place. The first call reads the host's list of zones once.
    """
    if name in _iana_zones():
        return None
    return f"{cut(name)!r} is not an IANA time zone name (e.g. America/New_York)"


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return deepest


class DuplicateKey(ValueError):
    """A JSON object names ``key`` twice (JSON leaves that open; Python's parser would keep the last silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object, or :class:`DuplicateKey` if it names a key twice.

    The cheap test (a dict as long as its pairs) runs for every object; the names are looked at only when it fails.
    """
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found


class _Pairs(list[tuple[str, Any]]):
    """An object as parsed, every pair kept (see :func:`duplicate_key_path`)."""


def duplicate_key_path(data: bytes | str) -> tuple[str, str] | None:
    """The first repeated key of a JSON document and where it is, as a field path (``transactions[3].contact.phone``),
    or ``None``. For the error's message only: it parses the document again keeping every pair, so it costs nothing
    on a body without duplicates."""
    try:
        document = json.loads(data, object_pairs_hook=_Pairs, parse_int=str, parse_float=str, parse_constant=str)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:  # depth-first in document order, without recursion
        item, path = stack.pop()
        if isinstance(item, _Pairs):
            seen: set[str] = set()
            for key, _ in item:
                if key in seen:
                    return key, f"{path}.{key}" if path else key
                seen.add(key)
            stack.extend((value, f"{path}.{key}" if path else key) for key, value in reversed(item))
        elif isinstance(item, list):
            stack.extend((value, f"{path}[{i}]") for i, value in reversed(list(enumerate(item))))
    return None


def whole_number(raw: str, low: int, high: int) -> int | None:
    """``raw`` read as a whole number in ``low``-``high``, or ``None``: ASCII digits only (``str.isdigit`` also
    passes "²" and "٣", which ``int`` refuses or reads), and no more of them than ``high`` has (``int`` refuses a
    string of over 4,300 digits)."""
    digits = raw.lstrip("0") or "0"
    if not raw or not raw.isascii() or not raw.isdigit() or len(digits) > len(str(high)):
        return None
    value = int(digits)
    return value if low <= value <= high else None
