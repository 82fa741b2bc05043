"""The channel contract and registry: how the engine knows channels without importing any of them.

A channel is a class that satisfies :class:`Channel`; it declares itself in its package's metadata under the
``survey_engine.channels`` entry-point group and the application factory fills the :class:`ChannelRegistry` from
that group. The engine then asks the registry by name; it never names Twilio, SendGrid or a channel module.

Everything the engine needs to know about a channel is a fact the channel class states (its A-11 name, its label,
the contact kind it suppresses by, whether it reminds, the wording key of its flow variants, its sender and send
rate), so a new channel is one package and one entry point. What needs no running application (the flow checks,
the A-11 names of stored data, the dashboard's labels) reads the classes through :func:`installed_channels`.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from engine.store.models.enums import ContactKind, SuppressionReason

if TYPE_CHECKING:
    from flask import Blueprint

    from engine.catalog.services import ServiceConfig
    from engine.surveys.flows import Flow

ENTRY_POINT_GROUP = "survey_engine.channels"
# The A-11 channel vocabulary (SPEC §6.1), in report order: a channel's ``a11_channel`` is one of these, or None.
A11_VOCABULARY = ("automated_phone", "sms_text_messages", "email", "self_service_kiosk", "website")


@dataclass(frozen=True)
class Outgoing:
    """One invitation, decrypted and ready for its channel to send."""

    invitation_id: uuid.UUID
    service: ServiceConfig
    flow: Flow
    language: str
    contact_kind: ContactKind
    address: str
    expires_at: datetime
    test: bool
    # The web survey link of this invitation (``/s/<token>``), made fresh at send time.
    survey_url: str | None = None
    # The one-click unsubscribe link (``/u/<token>``), for channels that declare ``wants_unsubscribe_link``.
    unsubscribe_url: str | None = None
    # This is the one reminder of an unanswered invitation (``reminder_after``), not the first message.
    reminder: bool = False


class Outcome(StrEnum):
    """What became of one hand-over to a provider (SPEC §2 rule 10)."""

    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider confirmed delivery at once (the console channel)
    RETRY = "retry"  # surely nothing went out (refused connection, 429, 5xx): retry with backoff
    FAILED = "failed"  # permanent: never retried
    UNKNOWN = "unknown"  # the request may have gone out (a timeout after sending): never resent blind


@dataclass(frozen=True)
class SendResult:
    invitation_id: uuid.UUID
    outcome: Outcome
    provider_id: str | None = None
    detail: str | None = None
    # For a permanent failure that says the address must not be used again (invalid number, opted out at carrier).
    suppress: SuppressionReason | None = None
    # The channels that suppression covers (default: the sending channel alone).
    suppress_channels: tuple[str, ...] = ()
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class Unsettled:
    """An invitation left ``unknown`` (the provider call timed out after the request went out), to look up."""

    invitation_id: uuid.UUID
    address: str
    since: datetime  # when it was claimed: anything the provider sent to ``address`` since then is a witness


@runtime_checkable
class Channel(Protocol):
    """What every channel gives the engine. Class attributes describe it; ``send`` hands invitations over."""

    name: ClassVar[str]
    # The contact kinds it can use, the preferred first (console takes an email or a phone).
    contact_kinds: ClassVar[tuple[ContactKind, ...]]
    # The consent flag the transaction must carry (``sms``, ``voice``), or None.
    consent: ClassVar[str | None]
    # Whether the customer's quiet hours apply (texts and outbound calls).
    quiet_hours: ClassVar[bool]
    # Suppressions on these channels block it besides its own (an SMS opt-out also stops outbound calls);
    # None: a suppression on any channel does.
    suppressed_by: ClassVar[tuple[str, ...] | None]
    # Its invitations are test data, never counted in reports.
    test_only: ClassVar[bool]
    # How many invitations one ``send`` call may take (email batches up to 1,000 personalizations).
    batch_size: ClassVar[int]
    # Its name in the A-11 vocabulary (SPEC §6.1): automated_phone, sms_text_messages, email, self_service_kiosk,
    # website; None for a channel A-11 has no name for (the console), whose data is in no A-11 row.
    a11_channel: ClassVar[str | None]
    # How the dashboard names it: an English msgid marked ``N_()`` in the channel's module, translated through the
    # catalogs (locales/). A channel may also give a ``short_label`` for the charts (default: ``label``).
    label: ClassVar[str]
    # The contact kind an opt-out on it is kept against (a phone for sms and ivr, an email for email); None: it
    # addresses nobody (the kiosk), so nothing is ever suppressed on it by kind.
    suppresses_by: ClassVar[ContactKind | None]
    # Whether the one reminder (``reminder_after``) applies to its invitations. A channel whose answer depends on
    # the service may also offer ``wants_reminder(service) -> bool`` (SMS: only in link mode), asked when this is
    # True; see :func:`reminds_for`.
    reminds: ClassVar[bool]
    # The key a flow's question ``wording:`` and ``messages:`` may hold for it (ivr, sms, kiosk); None: it takes the
    # default wording (email sends the web page's link).
    wording_key: ClassVar[str | None]

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]: ...

    def blueprint(self) -> Blueprint | None: ...

    # A channel may also offer ``settle(items: Sequence[Unsettled]) -> dict[uuid.UUID, str]``: the provider ids
    # of the ``unknown`` invitations it finds it did send (SPEC §2 rule 10); see engine/delivery/settlement.py.
    #
    # Paced sending (engine/delivery/pacing.py), for a channel whose provider limits its rate:
    # ``default_send_rate: ClassVar[float | None]``, sends a second per sender unless
    # ``SURVEY_ENGINE_SEND_RATE_<NAME>`` says otherwise (absent or None: not paced), and
    # ``sender(settings) -> str | None``, the sender its messages leave from (the pacing key; None: ``default``).
    #
    # A channel that needs a provider account may offer ``not_configured() -> str | None``: why every send would fail
    # with the settings it was given (the settings to set), else None; the start-up says so for each service that
    # lists the channel (:func:`unconfigured_channels`).


def unconfigured_channels(registry: ChannelRegistry, services: Iterable[ServiceConfig]) -> list[tuple[str, str, str]]:
    """``(service, channel, why)`` for every channel a service lists that could send nothing as configured."""
    found = []
    for service in services:
        for name in service.channels:
            check = getattr(registry.channels.get(name), "not_configured", None)
            why = check() if callable(check) else None
            if why:
                found.append((service.slug, name, str(why)))
    return found


def reminds_for(channel: Channel, service: ServiceConfig) -> bool:
    """Whether the one reminder applies to ``channel``'s invitations of ``service``: the channel's ``reminds``,
    refined by its ``wants_reminder(service)`` where it offers one."""
    if not channel.reminds:
        return False
    wants = getattr(channel, "wants_reminder", None)
    return bool(wants(service)) if callable(wants) else True


def short_label_of(channel: type[Channel] | Channel) -> str:
    """The channel's label on a chart: its ``short_label``, else its ``label``."""
    return str(getattr(channel, "short_label", None) or channel.label)


@dataclass
class ChannelRegistry:
    """The channels this process knows, by name."""

    channels: dict[str, Channel] = field(default_factory=dict)

    def register(self, channel: Channel) -> None:
        if not isinstance(channel, Channel):
            raise TypeError(f"{channel!r} does not satisfy the Channel contract")
        if channel.name in self.channels:
            raise ValueError(f"channel {channel.name!r} is registered twice")
        if channel.a11_channel is not None and channel.a11_channel not in A11_VOCABULARY:
            raise ValueError(
                f"channel {channel.name!r}: a11_channel {channel.a11_channel!r} is not A-11 vocabulary "
                f"(one of {', '.join(A11_VOCABULARY)}, or None)"
            )
        self.channels[channel.name] = channel

    def get(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise KeyError(f"no channel named {name!r} is registered") from None

    def __contains__(self, name: object) -> bool:
        return name in self.channels

    def names(self) -> set[str]:
        return set(self.channels)

    def __iter__(self) -> Iterator[Channel]:
        return iter(self.channels.values())

    def for_contact_kind(self, kind: ContactKind) -> list[str]:
        return [c.name for c in self.channels.values() if kind in c.contact_kinds]

    def suppressed_kind(self, channel: str) -> ContactKind | None:
        """The contact kind a suppression on ``channel`` is kept against (None: it addresses nobody)."""
        return self.get(channel).suppresses_by

    def blocks(self, channel: str, suppressed_channels: set[str]) -> bool:
        """Whether suppressions on ``suppressed_channels`` (for one address) stop ``channel``."""
        blocked_by = self.get(channel).suppressed_by
        if blocked_by is None:
            return bool(suppressed_channels)
        return bool(suppressed_channels.intersection({channel, *blocked_by}))


def load_channels(settings: Any, entry_point_names: Iterable[str] | None = None) -> ChannelRegistry:
    """Instantiate every channel declared under the entry-point group, each given the settings."""
    registry = ChannelRegistry()
    wanted = set(entry_point_names) if entry_point_names is not None else None
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if wanted is not None and ep.name not in wanted:
            continue
        factory = ep.load()
        registry.register(factory(settings))
    return registry


# The installed channel classes by entry-point name, for the ``sys.path`` they were read under (a folder put on the
# path, such as a test's own channel package, is read on the next call; installing into a folder already read
# takes a restart, as it does for the running application).
_installed: dict[tuple[str, ...], dict[str, type[Channel]]] = {}


def installed_channels() -> dict[str, type[Channel]]:
    """The channel classes declared under the entry-point group, by name, not instantiated: their class attributes
    are facts that need no settings (the flow checks, the A-11 names of stored data, the dashboard's labels)."""
    key = tuple(sys.path)
    found = _installed.get(key)
    if found is None:
        found = {}
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            declared = ep.load()
            if not isinstance(declared, type):
                raise TypeError(f"channel entry point {ep.name!r} must name a class, got {declared!r}")
            found.setdefault(ep.name, declared)
        _installed.clear()
        _installed[key] = found
    return found
