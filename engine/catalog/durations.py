"""ISO 8601 durations (``PT15M``, ``P7D``) as used in ``config/services.yaml``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration without years or months (their length is not fixed)."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 duration such as PT15M, got {text!r}")
    match = _DURATION.match(text.strip().upper())
    if not match:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT15M, PT48H or P7D")
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return timedelta(
        weeks=parts.get("weeks", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration`, for messages and the OpenAPI examples."""
    seconds = int(delta.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    out = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"
