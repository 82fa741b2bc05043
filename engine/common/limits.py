"""What a value must be to be stored and reported (SPEC §2 rule 11): the bounds every input is held to.

Shared by every edge that takes input from outside (the API, the kiosk sync, the survey and dashboard forms,
provider webhooks), so that "text a database cannot keep", "a number no report can add up" and "a time no
calendar can hold" are defined once. Each check returns the problem in words, or ``None``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
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


def whole_number(raw: str, low: int, high: int) -> int | None:
    """``raw`` read as a whole number in ``low``-``high``, or ``None``: ASCII digits only (``str.isdigit`` also
    passes "²" and "٣", which ``int`` refuses or reads), and no more of them than ``high`` has (``int`` refuses a
    string of over 4,300 digits)."""
    digits = raw.lstrip("0") or "0"
    if not raw or not raw.isascii() or not raw.isdigit() or len(digits) > len(str(high)):
        return None
    value = int(digits)
    return value if low <= value <= high else None
