"""Exceptions the domain raises; the web layer turns them into RFC 9457 problems."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration (environment, services, offices, flows) cannot be used; the message says why."""


class FieldError(Exception):
    """One input field is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ValidationFailed(Exception):
    """Several field errors of one input, reported together."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors
