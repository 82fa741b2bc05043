"""One conformance test over every registered channel: the contract the engine relies on."""

from __future__ import annotations

from importlib.metadata import entry_points

from engine.channels import ENTRY_POINT_GROUP, Channel, ChannelRegistry, load_channels
from engine.delivery.suppressions import ADDRESSED_CHANNELS
from engine.store.models import ContactKind
from tests.stand_ins import ScriptedChannel


def test_every_declared_channel_satisfies_the_contract(settings):
    declared = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "console" in declared
    registry = load_channels(settings)
    assert registry.names() == declared
    for channel in [*registry.channels.values(), ScriptedChannel()]:
        assert isinstance(channel, Channel)
        assert channel.name and channel.batch_size >= 1
        # Every channel that sends takes a contact; the kiosk and the website send nothing (the customer is there:
        # SPEC §2 rule 5).
        assert channel.contact_kinds or channel.name in ("kiosk", "website")
        assert all(isinstance(k, ContactKind) for k in channel.contact_kinds)
        assert channel.consent in (None, "sms", "voice")
        if channel.name in ADDRESSED_CHANNELS:
            assert ADDRESSED_CHANNELS[channel.name] in channel.contact_kinds


def test_registry_refuses_a_duplicate_or_a_non_channel(settings):
    registry = ChannelRegistry()
    registry.register(ScriptedChannel())
    try:
        registry.register(ScriptedChannel())
    except ValueError as exc:
        assert "twice" in str(exc)
    else:
        raise AssertionError("a second channel of the same name was accepted")
    try:
        registry.register(object())  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        raise AssertionError("an object that is not a channel was accepted")


def test_console_invitations_are_test_data():
    from channels.console import ConsoleChannel

    assert ConsoleChannel.test_only is True
    assert ConsoleChannel.suppressed_by is None  # any suppression of the address stops it
