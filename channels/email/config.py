"""The SendGrid settings the email channel reads from the environment (``settings.providers``).

``SENDGRID_API_KEY`` and ``SENDGRID_FROM_EMAIL`` are needed to send; ``SENDGRID_API_HOST`` (default
``https://api.sendgrid.com``) points the SDK elsewhere (an egress gateway, the EU region, the tests' contract
mock); ``SENDGRID_WEBHOOK_PUBLIC_KEY`` (the base64 DER key SendGrid shows under Mail Settings → Signed Event
Webhook) is needed to accept events. Without the first two the channel refuses to send ("sendgrid not
configured"); without the key every event batch is refused with 403.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_API_HOST = "https://api.sendgrid.com"


@dataclass(frozen=True)
class SendGridConfig:
    api_key: str | None
    from_email: str | None
    api_host: str
    webhook_public_key: str | None

    @classmethod
    def from_providers(cls, providers: dict[str, str]) -> SendGridConfig:
        return cls(
            api_key=providers.get("SENDGRID_API_KEY") or None,
            from_email=providers.get("SENDGRID_FROM_EMAIL") or None,
            api_host=(providers.get("SENDGRID_API_HOST") or DEFAULT_API_HOST).rstrip("/"),
            webhook_public_key=providers.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
        )

    @property
    def can_send(self) -> bool:
        return bool(self.api_key and self.from_email)
