"""The configured catalogue (SPEC §5): services.yaml and offices.yaml are parsed and checked at start-up.

A rule that cannot hold stops the start with a message naming the service (or office) and the key. No database.
"""

from __future__ import annotations

import shutil
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.catalog.durations import format_duration, parse_duration
from engine.catalog.services import QuietHours, load_catalog, parse_office, parse_service
from engine.common.errors import ConfigError
from engine.surveys.flows import load_flows

ROOT = Path(__file__).resolve().parent.parent
SLUG = "passport-renewal"


def base_service(**changes: Any) -> dict[str, Any]:
    """The SPEC §5 example service (console instead of sms/email), with ``changes`` applied (None removes a key)."""
    raw: dict[str, Any] = {
        "name": "Passport Renewal",
        "agency": "Department of State",
        "service_type": "administrative",
        "service_stage": "renewal",
        "flow": "a11-standard",
        "channels": ["console"],
        "sample_rate": 0.10,
        "send_delay": "PT15M",
        "window": "PT48H",
        "answer_window": "PT48H",
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "contact_cooldown_days": 30,
        "daily_cap": 5000,
        "default_language": "en",
        "timezone": "America/New_York",
        "sms_mode": "conversational",
        "ivr_numbers": ["+12025550100"],
        "reminder_after": "PT24H",
        "kiosk_idle_reset": "PT45S",
        "sender": {"name": "U.S. Department of State", "reply_to": "cx@example.gov"},
        "support": {"phone": "+18775550100", "url": "https://example.gov/contact"},
    }
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A config dir and a flows dir holding a copy of the shipped a11-standard flow."""
    config, flows = tmp_path / "config", tmp_path / "flows"
    config.mkdir()
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "a11-standard.yaml", flows / "a11-standard.yaml")
    return config, flows


def write(config: Path, services: dict[str, Any], offices: dict[str, Any] | None = None) -> None:
    (config / "services.yaml").write_text(yaml.safe_dump({"services": services}), encoding="utf-8")
    offices = (
        {"NYC-01": {"name": "New York Passport Agency", "timezone": "America/New_York"}} if offices is None else offices
    )
    (config / "offices.yaml").write_text(yaml.safe_dump({"offices": offices}), encoding="utf-8")


def refused(dirs: tuple[Path, Path], *words: str, channel_names: set[str] | None = None, **changes: Any) -> str:
    """Load a catalogue whose one service has ``changes``; it must be refused with a message holding ``words``."""
    config, flows = dirs
    write(config, {SLUG: base_service(**changes)})
    with pytest.raises(ConfigError) as caught:
        load_catalog(config, flows, channel_names)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


# -- the shipped configuration ----------------------------------------------------------------------------------


def test_the_shipped_config_loads():
    catalog = load_catalog(ROOT / "config", ROOT / "flows", {"console", "kiosk", "website"})
    assert {"passport-renewal", "benefits-contact-center"} <= set(catalog.services)
    assert "NYC-01" in catalog.offices and catalog.offices["NYC-01"].timezone == ZoneInfo("America/New_York")
    for service in catalog.services.values():
        assert service.flow in catalog.flows
        assert timedelta(0) < service.window <= timedelta(hours=48)
        assert 0 < service.sample_rate <= 1
    passport = catalog.services["passport-renewal"]
    assert passport.timezone == ZoneInfo("America/New_York")
    assert passport.quiet_hours == QuietHours(time(21, 0), time(8, 0))
    assert catalog.flow_of(passport).id == "a11-standard"


def test_the_spec_example_service_is_parsed_into_typed_values(dirs):
    config, flows = dirs
    write(config, {SLUG: base_service()})
    service = load_catalog(config, flows, {"console"}).services[SLUG]
    assert service.slug == SLUG and service.name == "Passport Renewal"
    assert service.channels == ("console",)
    assert service.sample_rate == 0.10
    assert service.send_delay == timedelta(minutes=15)
    assert service.window == service.answer_window == timedelta(hours=48)
    assert service.reminder_after == timedelta(hours=24)
    assert service.kiosk_idle_reset == timedelta(seconds=45)
    assert service.quiet_hours == QuietHours(time(21, 0), time(8, 0))
    assert service.timezone == ZoneInfo("America/New_York")
    assert (service.contact_cooldown_days, service.daily_cap) == (30, 5000)
    assert service.ivr_numbers == ("+12025550100",)
    assert service.sender["reply_to"] == "cx@example.gov"
    assert service.service_stage == "renewal"


def test_defaults_of_a_minimal_service(dirs):
    config, flows = dirs
    minimal = {k: base_service()[k] for k in ("name", "agency", "service_type", "flow", "channels", "timezone")}
    write(config, {SLUG: minimal})
    service = load_catalog(config, flows).services[SLUG]
    assert service.window == timedelta(hours=48)
    assert service.answer_window == timedelta(hours=48)
    assert service.send_delay == timedelta(0)
    assert service.sample_rate == 1.0
    assert service.quiet_hours == QuietHours(time(21, 0), time(8, 0))
    assert service.contact_cooldown_days == 30
    assert service.daily_cap is None and service.reminder_after is None


# -- the 48-hour window and the answer window --------------------------------------------------------------------


@pytest.mark.parametrize("window", ["PT48H1S", "PT49H", "P3D", "P1W"])
def test_a_window_over_48_hours_is_refused(dirs, window):
    refused(dirs, SLUG, "window", "PT48H", window=window)


@pytest.mark.parametrize("window", ["PT0S", "P0D"])
def test_an_empty_window_is_refused(dirs, window):
    refused(dirs, SLUG, "window", window=window, send_delay="PT0S")


@pytest.mark.parametrize(("window", "expected"), [("PT48H", timedelta(hours=48)), ("P2D", timedelta(days=2)),
                                                  ("PT1H", timedelta(hours=1))])  # fmt: skip
def test_a_window_up_to_48_hours_is_accepted(dirs, window, expected):
    config, flows = dirs
    write(config, {SLUG: base_service(window=window, send_delay="PT0S")})
    assert load_catalog(config, flows).services[SLUG].window == expected


@pytest.mark.parametrize("answer_window", ["P7DT1S", "P8D", "P2W"])
def test_an_answer_window_over_7_days_is_refused(dirs, answer_window):
    refused(dirs, SLUG, "answer_window", "P7D", answer_window=answer_window)


def test_an_answer_window_of_7_days_is_accepted(dirs):
    config, flows = dirs
    write(config, {SLUG: base_service(answer_window="P7D")})
    assert load_catalog(config, flows).services[SLUG].answer_window == timedelta(days=7)


def test_a_send_delay_not_shorter_than_the_window_is_refused(dirs):
    refused(dirs, SLUG, "send_delay", window="PT1H", send_delay="PT1H")


@pytest.mark.parametrize("key", ["window", "answer_window", "send_delay", "reminder_after", "kiosk_idle_reset"])
def test_a_duration_that_is_not_iso_8601_is_refused_naming_the_key(dirs, key):
    refused(dirs, SLUG, key, **{key: "48 hours"})


# -- sampling, time zones, keys, channels, flows ------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, 0.0, -0.1, 1.5, 2, "0.5", True])
def test_a_sample_rate_outside_0_1_is_refused(dirs, rate):
    refused(dirs, SLUG, "sample_rate", sample_rate=rate)


@pytest.mark.parametrize("rate", [1, 1.0, 0.0001, 0.5])
def test_a_sample_rate_in_0_1_is_accepted(dirs, rate):
    config, flows = dirs
    write(config, {SLUG: base_service(sample_rate=rate)})
    assert load_catalog(config, flows).services[SLUG].sample_rate == rate


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "EST5", "America/NewYork", "", 5, "localtime", "right/America/New_York"]
)
def test_an_unknown_time_zone_is_refused(dirs, zone):
    refused(dirs, SLUG, "timezone", timezone=zone)


def test_an_unknown_key_is_refused_naming_it(dirs):
    refused(dirs, SLUG, "unknown", "sample_rat", sample_rat=0.5)


@pytest.mark.parametrize("key", ["name", "agency", "service_type", "flow", "channels", "timezone"])
def test_a_missing_required_key_is_refused_naming_it(dirs, key):
    refused(dirs, SLUG, key, **{key: None})


def test_an_unknown_channel_is_refused_naming_it(dirs):
    message = refused(dirs, SLUG, "carrier-pigeon", channel_names={"console"}, channels=["console", "carrier-pigeon"])
    assert "console" in message  # the known ones are listed


def test_channels_are_not_checked_without_a_registry(dirs):
    config, flows = dirs
    write(config, {SLUG: base_service(channels=["sms", "email"])})
    assert load_catalog(config, flows).services[SLUG].channels == ("sms", "email")


@pytest.mark.parametrize("channels", [[], "console", [1]])
def test_channels_must_be_a_non_empty_list_of_names(dirs, channels):
    refused(dirs, SLUG, "channels", channels=channels)


def test_an_unknown_flow_is_refused(dirs):
    refused(dirs, SLUG, "a11-nonexistent", "flow", flow="a11-nonexistent")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("service_type", "leisure"),
        ("contact_cooldown_days", -1),
        ("contact_cooldown_days", 1.5),
        ("daily_cap", 0),
        ("daily_cap", "lots"),
        ("sms_mode", "carrier-pigeon"),
        ("daily_cap", True),
        ("contact_cooldown_days", True),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(dirs, key, value):
    refused(dirs, SLUG, key, **{key: value})


def test_the_error_names_the_service_at_fault_among_several(dirs):
    config, flows = dirs
    write(config, {"good-one": base_service(), "bad-one": base_service(window="PT72H")})
    with pytest.raises(ConfigError, match=r"'bad-one'.*window"):
        load_catalog(config, flows)


@pytest.mark.parametrize("channels", [["website"], ["console"]])
def test_the_slug_assets_is_refused_as_it_is_the_website_channel_s_own_path(dirs, channels):
    """``/f/assets/<name>`` serves the feedback button's files: a service ``assets`` could never have its
    ``/f/<service>`` pages, and one that does not use the website channel yet may be given it later."""
    config, flows = dirs
    write(config, {"good-one": base_service(), "assets": base_service(channels=channels)})
    with pytest.raises(ConfigError) as caught:
        load_catalog(config, flows, {"console", "website"})
    message = str(caught.value)
    assert "'assets'" in message and "reserved" in message and "/f/assets/" in message, message


def test_a_slug_that_only_contains_assets_is_accepted(dirs):
    config, flows = dirs
    write(config, {"assets-office": base_service(channels=["website"])})
    assert load_catalog(config, flows, {"console", "website"}).services["assets-office"].channels == ("website",)


@pytest.mark.parametrize(
    "slug",
    ["passport/renewal", "passport renewal", "Passport-Renewal", "..", "passport..renewal", "", "-passport",
     "passport-", "passport_renewal", "passport.renewal", "renewal\n", "pässe", "p" * 65],
)  # fmt: skip
def test_a_slug_that_cannot_stand_in_a_url_is_refused_naming_the_service_and_the_rule(dirs, slug):
    """The slug is a path segment (``/f/<service>``, ``/data/<service>``, ``/api/v1/transactions/<service>/<id>``)
    and part of report file names: a ``/``, a space, upper case, dots or an empty slug was accepted."""
    config, flows = dirs
    write(config, {"good-one": base_service(), slug: base_service()})
    with pytest.raises(ConfigError) as caught:
        load_catalog(config, flows, {"console"})
    message = str(caught.value)
    assert message == (
        f"services.yaml: service {slug!r}: a service slug must be 1 to 64 lower-case letters, digits and hyphens, "
        "starting and ending with a letter or digit (it stands in URLs and file names)"
    )


@pytest.mark.parametrize("slug", ["a", "7", "a11-pilot", "passport-renewal-2", "p" * 64])
def test_a_slug_of_letters_digits_and_inner_hyphens_is_accepted(dirs, slug):
    config, flows = dirs
    write(config, {slug: base_service()})
    assert load_catalog(config, flows, {"console"}).services[slug].slug == slug


def test_a_single_ivr_number_written_without_a_list_is_not_split_into_characters(dirs):
    config, flows = dirs
    write(config, {SLUG: base_service(ivr_numbers="+12025550100")})
    try:
        service = load_catalog(config, flows).services[SLUG]
    except ConfigError as exc:
        assert "ivr_numbers" in str(exc)
    else:
        assert service.ivr_numbers == ("+12025550100",)


@pytest.mark.parametrize("key", ["sender", "support"])
def test_sender_and_support_must_be_mappings(dirs, key):
    refused(dirs, SLUG, key, **{key: "cx@example.gov"})


# -- quiet hours ---------------------------------------------------------------------------------------------------


def test_quiet_hours_are_parsed(dirs):
    config, flows = dirs
    write(config, {SLUG: base_service(quiet_hours={"start": "22:30", "end": "07:15"})})
    assert load_catalog(config, flows).services[SLUG].quiet_hours == QuietHours(time(22, 30), time(7, 15))


@pytest.mark.parametrize(
    "quiet",
    [
        {"start": "25:00", "end": "08:00"},
        {"start": "21:00", "end": "8pm"},
        {"start": "21:00:00", "end": "08:00"},
        {"start": "21:00"},
        {"start": "21:00", "end": "08:00", "days": "weekdays"},
        "21:00-08:00",
    ],
)
def test_bad_quiet_hours_are_refused(dirs, quiet):
    refused(dirs, SLUG, "quiet_hours", quiet_hours=quiet)


def test_unquoted_yaml_quiet_hours_are_refused_not_misread(dirs):
    # YAML 1.1 reads an unquoted 21:00 as the sexagesimal number 1260: refused loudly, never taken as another time.
    config, flows = dirs
    write(config, {SLUG: base_service()})
    text = (config / "services.yaml").read_text()
    (config / "services.yaml").write_text(text.replace("start: '21:00'", "start: 21:00"))
    assert yaml.safe_load((config / "services.yaml").read_text())["services"][SLUG]["quiet_hours"]["start"] == 1260
    with pytest.raises(ConfigError, match=r"quiet_hours\.start"):
        load_catalog(config, flows)


def test_quiet_hours_across_midnight():
    quiet = QuietHours(time(21, 0), time(8, 0))
    assert not quiet.contains(time(20, 59))
    assert quiet.contains(time(21, 0))
    assert quiet.contains(time(23, 59, 59))
    assert quiet.contains(time(0, 0))
    assert quiet.contains(time(7, 59, 59))
    assert not quiet.contains(time(8, 0))
    assert not quiet.contains(time(12, 0))


def test_quiet_hours_within_one_day():
    quiet = QuietHours(time(13, 0), time(14, 0))
    assert not quiet.contains(time(12, 59))
    assert quiet.contains(time(13, 0)) and quiet.contains(time(13, 59))
    assert not quiet.contains(time(14, 0))
    assert not quiet.contains(time(0, 0))


def test_quiet_hours_that_start_where_they_end_are_never_quiet():
    quiet = QuietHours(time(8, 0), time(8, 0))
    assert not any(quiet.contains(time(h, m)) for h in range(24) for m in range(60))


clock = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@given(clock, clock, st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)))
def test_quiet_hours_and_their_complement_split_the_day(start, end, moment):
    if start == end:
        return
    # Exactly one of [start, end) and [end, start) holds any moment of the day, wrapping midnight or not.
    assert QuietHours(start, end).contains(moment) != QuietHours(end, start).contains(moment)
    assert QuietHours(start, end).contains(start)
    assert not QuietHours(start, end).contains(end)


# -- offices -------------------------------------------------------------------------------------------------------


def test_offices_are_parsed():
    office = parse_office("NYC-01", {"name": "New York Passport Agency", "timezone": "America/New_York"})
    assert (office.code, office.name, office.timezone) == (
        "NYC-01",
        "New York Passport Agency",
        ZoneInfo("America/New_York"),
    )
    assert parse_office("NOZONE", {"name": "Office without a time zone"}).timezone is None


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"name": "X", "timezone": "Mars/Olympus_Mons"}, ["'BAD-01'", "time zone", "Mars/Olympus_Mons"]),
        ({"name": "X", "timezone": "America/New_York", "floor": 3}, ["'BAD-01'", "floor"]),
        ({"timezone": "America/New_York"}, ["'BAD-01'", "name"]),
        ("New York", ["'BAD-01'"]),
    ],
)
def test_bad_offices_are_refused(raw, words):
    with pytest.raises(ConfigError) as caught:
        parse_office("BAD-01", raw)
    for word in words:
        assert word in str(caught.value)


def test_a_bad_office_stops_the_whole_catalogue(dirs):
    config, flows = dirs
    write(config, {SLUG: base_service()}, {"BAD-01": {"name": "X", "timezone": "Nowhere/Land"}})
    with pytest.raises(ConfigError, match="BAD-01"):
        load_catalog(config, flows)


# -- files ---------------------------------------------------------------------------------------------------------


def test_parse_service_directly():
    flows = load_flows(ROOT / "flows")
    service = parse_service(SLUG, base_service(), flows, {"console"})
    assert service.flow == "a11-standard" and service.sample_rate == 0.10
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_service(SLUG, ["not", "a", "mapping"], flows, None)


def test_missing_or_broken_files_are_refused(dirs):
    config, flows = dirs
    with pytest.raises(ConfigError, match=r"services\.yaml"):
        load_catalog(config, flows)  # no files at all
    write(config, {SLUG: base_service()})
    (config / "offices.yaml").write_text("offices: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"offices\.yaml"):
        load_catalog(config, flows)
    (config / "offices.yaml").write_text("places: {}", encoding="utf-8")
    with pytest.raises(ConfigError, match="offices"):
        load_catalog(config, flows)
    with pytest.raises(ConfigError, match="flows directory"):
        load_catalog(config, config / "no-such-dir")


# -- ISO 8601 durations --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("PT48H", timedelta(hours=48)),
        ("P7D", timedelta(days=7)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT45S", timedelta(seconds=45)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("PT0S", timedelta(0)),
        ("pt15m", timedelta(minutes=15)),
        (" PT1H ", timedelta(hours=1)),
    ],
)
def test_parse_duration_accepts_iso_8601(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "15M", "PT15", "P1Y", "P1M", "PT-5M", "P1DT", "PT1H30", "1 hour", "P1.5D", None, 15]
)
def test_parse_duration_refuses_anything_else(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(0, 14 * 86400))
def test_format_duration_is_the_inverse_of_parse_duration(seconds):
    delta = timedelta(seconds=seconds)
    text = format_duration(delta)
    assert text.startswith("P")
    assert parse_duration(text) == delta


# -- A-11 280.4's seven service types ----------------------------------------------------------------------------

SEVEN_TYPES = ("administrative", "benefits", "compliance", "recreation", "informational", "data_and_research",
               "regulatory")  # fmt: skip


@pytest.mark.parametrize("service_type", SEVEN_TYPES)
def test_each_of_the_policys_seven_service_types_is_accepted(dirs, service_type):
    config, flows = dirs
    write(config, {SLUG: base_service(service_type=service_type)})
    assert load_catalog(config, flows).services[SLUG].service_type == service_type


@pytest.mark.parametrize("old", ["recreational", "other", "Regulatory", "data-and-research"])
def test_an_old_or_unknown_service_type_is_refused_naming_it_and_the_seven(dirs, old):
    message = refused(dirs, SLUG, "service_type", repr(old), "A-11 280.4", service_type=old)
    assert ", ".join(SEVEN_TYPES) in message, message


def test_regulatory_and_data_and_research_services_start_and_take_transactions(tmp_path, database_url, flows_dir):
    """The engine starts on a catalogue holding the two types the policy added, and schedules their customers."""
    from engine.api.auth import create_api_key
    from engine.app import create_app
    from engine.runtime import build_runtime
    from engine.settings import load_settings
    from engine.store.db import unit_of_work
    from tests.helpers import tx, write_config

    services = {
        "water-permits": base_service(service_type="regulatory", name="Water Permits", send_delay="PT0S",
                                      sample_rate=1.0, ivr_numbers=[], contact_cooldown_days=0),
        "open-data": base_service(service_type="data_and_research", name="Open Data Requests", send_delay="PT0S",
                                  sample_rate=1.0, ivr_numbers=[], contact_cooldown_days=0),
    }  # fmt: skip
    config = write_config(tmp_path / "config", services, {"NYC-01": {"name": "New York", "timezone": "UTC"}})
    settings = load_settings({
        "SURVEY_ENGINE_DATABASE_URL": database_url, "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(config), "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
        "SURVEY_ENGINE_SECRET_KEY": "s" * 40, "SURVEY_ENGINE_ENCRYPTION_KEY": "e" * 40,
    })  # fmt: skip
    rt = build_runtime(settings)
    try:
        rt.sync_catalog()
        client = create_app(runtime=rt).test_client()
        with unit_of_work(rt.sessions) as session:
            key = create_api_key(session, "types", tuple(services), ("intake",))
        for slug in services:
            answer = client.post("/api/v1/transactions", json=tx(f"{slug}-1", slug, contact={"email": "p@example.gov"}),
                                 headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            assert answer.status_code in (200, 201), answer.get_json()
            assert answer.get_json()["decision"] == "scheduled", answer.get_json()
        assert {s.service_type for s in rt.catalog.services.values()} == {"regulatory", "data_and_research"}
    finally:
        rt.engine.dispose()


def test_a_website_origin_ending_in_a_line_break_is_refused():
    """An origin goes into response headers (the frame-ancestors of /f/ pages): a line break there would fail
    every page of the service. ``^...$`` with ``re.match`` let "https://host\\n" through."""
    raw = base_service(channels=["website"], website={"origins": ["https://www.example.gov\n"]})
    with pytest.raises(ConfigError, match="must be scheme://host"):
        parse_service(SLUG, raw, load_flows(ROOT / "flows"), {"console", "website"})


@pytest.mark.parametrize("number", ["12345", 10900011, "1090-0011x", "abcd-efgh", "١٠٩٠-٠٠١١", "1090-0011\n"])
def test_a_services_own_omb_control_number_is_held_to_the_flows_rule(number):
    """A service's own PRA block is shown to every respondent as the survey's clearance: its control number must
    read like one ("1090-0011"), as a flow's must. Start-up took any text."""
    raw = base_service(pra={"omb_control_number": number, "expiration_date": "2028-06-30",
                            "burden_statement": "This survey takes 2 minutes."})  # fmt: skip
    with pytest.raises(ConfigError, match=r"omb_control_number .* must be a quoted string like \"1090-0011\""):
        parse_service(SLUG, raw, load_flows(ROOT / "flows"), {"console"})
