"""One conformance test over every registered channel: the contract the engine relies on."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

from engine.channels import (
    A11_VOCABULARY,
    ENTRY_POINT_GROUP,
    Channel,
    ChannelRegistry,
    installed_channels,
    load_channels,
    reminds_for,
)
from engine.delivery.suppressions import addressed_channels, channels_for, suppression_kind
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
        # The facts the engine reads off a channel instead of naming it.
        assert channel.a11_channel is None or channel.a11_channel in A11_VOCABULARY
        assert channel.label and isinstance(channel.label, str)
        assert channel.suppresses_by is None or channel.suppresses_by in channel.contact_kinds
        assert isinstance(channel.reminds, bool)
        assert channel.wording_key is None or channel.wording_key.isidentifier()
    assert {name: type(channel) for name, channel in registry.channels.items()} == installed_channels()


def test_the_shipped_channels_state_their_facts():
    """What used to be constants in the engine (A-11 names, suppression kinds, reminders, wording keys)."""
    channels = installed_channels()
    facts = {
        name: (c.a11_channel, c.suppresses_by, c.reminds, c.wording_key)
        for name, c in channels.items()
        if name in ("console", "sms", "ivr", "email", "kiosk")
    }
    assert facts == {
        "console": (None, None, False, None),
        "sms": ("sms_text_messages", ContactKind.PHONE, True, "sms"),
        "ivr": ("automated_phone", ContactKind.PHONE, False, "ivr"),
        "email": ("email", ContactKind.EMAIL, True, None),
        "kiosk": ("self_service_kiosk", None, False, "kiosk"),
    }
    # An opt-out of a phone covers the texts and the calls; of an email, the emails; the kiosk addresses nobody.
    assert {"sms", "ivr"} <= set(channels_for(ContactKind.PHONE)) and "email" not in channels_for(ContactKind.PHONE)
    assert "email" in channels_for(ContactKind.EMAIL)
    assert suppression_kind("kiosk") is None and suppression_kind("console") is None
    assert addressed_channels()["ivr"] is ContactKind.PHONE


@dataclass
class _Service:
    sms_mode: str


def test_the_reminder_goes_by_email_and_by_sms_in_link_mode_only(settings):
    registry = load_channels(settings)
    link, conversational = _Service("link"), _Service("conversational")
    assert reminds_for(registry.get("email"), conversational)
    assert reminds_for(registry.get("sms"), link) and not reminds_for(registry.get("sms"), conversational)
    for name in ("ivr", "kiosk", "console"):
        assert not reminds_for(registry.get(name), link)


def test_registry_refuses_a_name_outside_the_a11_vocabulary():
    class Mislabelled(ScriptedChannel):
        a11_channel = "carrier_pigeon"

    try:
        ChannelRegistry().register(Mislabelled())
    except ValueError as exc:
        assert "A-11 vocabulary" in str(exc)
    else:
        raise AssertionError("an A-11 name outside the vocabulary was accepted")


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
