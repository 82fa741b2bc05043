"""The configured catalogue: services (``config/services.yaml``), offices (``config/offices.yaml``) and flows.

Parsed once at start-up into frozen objects; a rule that cannot hold (a window over 48 hours, an unknown time zone,
a flow that does not exist) stops the start with a message naming the service and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.catalog.durations import parse_duration
from engine.common.errors import ConfigError
from engine.common.limits import cut, length_problem, zone_problem
from engine.common.yaml_files import read_yaml
from engine.store.models import Office, Service
from engine.surveys.flow_rules import omb_number_problem
from engine.surveys.flows import Flow, Pra, load_flows, parse_pra

MAX_WINDOW = timedelta(hours=48)
MAX_ANSWER_WINDOW = timedelta(days=7)
# A-11 280.4's seven service types, in the policy's order.
SERVICE_TYPES = (
    "administrative",
    "benefits",
    "compliance",
    "recreation",
    "informational",
    "data_and_research",
    "regulatory",
)
# A-11 280.7's timing of the survey within the customer's journey (reported as ``transaction_point``).
TRANSACTION_POINTS = ("post_interaction", "post_service_journey", "relational")
SERVICE_KEYS = {
    "name",
    "agency",
    "service_type",
    "service_stage",
    "bureau",
    "service_provider",
    "transaction_point",
    "pra",
    "flow",
    "channels",
    "sample_rate",
    "send_delay",
    "window",
    "answer_window",
    "quiet_hours",
    "contact_cooldown_days",
    "daily_cap",
    "default_language",
    "timezone",
    "sms_mode",
    "ivr_numbers",
    "reminder_after",
    "kiosk_idle_reset",
    "kiosk_max_sessions_per_minute",
    "sender",
    "support",
    "twilio_opt_out_handling",
    "languages",
    "website",
}
# The ``website`` block's keys (SPEC §5): the feedback button's pages, and its abuse limits (channels/website).
WEBSITE_KEYS = {"origins", "max_per_address_per_hour", "max_per_hour", "min_fill_seconds"}
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# Slugs a service may not take, because a path built from the slug would be another route's: ``/f/assets/<name>``
# serves the website feedback button's own files, so a service ``assets`` could never have its ``/f/<service>``
# pages.
RESERVED_SLUGS = {"assets": "/f/assets/ serves the website feedback button's files"}
# What a service slug may hold, because it stands as one path segment in URLs (``/f/<service>``, ``/data/<service>``,
# ``/api/v1/transactions/<service>/<id>``) and in report file names: 1 to 64 lower-case letters, digits and hyphens,
# starting and ending with a letter or digit (so no ``/``, space, upper case, ``.`` or ``..``, and never empty).
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
SLUG_RULE = "1 to 64 lower-case letters, digits and hyphens, starting and ending with a letter or digit"


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class ServiceConfig:
    slug: str
    name: str
    agency: str
    service_type: str
    flow: str
    channels: tuple[str, ...]
    timezone: ZoneInfo
    sample_rate: float = 1.0
    send_delay: timedelta = timedelta(0)
    window: timedelta = MAX_WINDOW
    answer_window: timedelta = timedelta(hours=48)
    quiet_hours: QuietHours = QuietHours(time(21, 0), time(8, 0))
    contact_cooldown_days: int = 30
    daily_cap: int | None = None
    default_language: str = "en"
    service_stage: str | None = None
    sms_mode: str = "conversational"
    ivr_numbers: tuple[str, ...] = ()
    reminder_after: timedelta | None = None
    kiosk_idle_reset: timedelta = timedelta(seconds=45)
    # Completed kiosk sessions one device may submit within 60 s of device time before the excess is spam.
    kiosk_max_sessions_per_minute: int = 6
    sender: dict[str, str] = field(default_factory=dict)
    support: dict[str, str] = field(default_factory=dict)
    twilio_opt_out_handling: bool = False
    bureau: str | None = None
    service_provider: str | None = None
    transaction_point: str = "post_interaction"
    # The agency's own PRA clearance; when set it stands everywhere in place of the flow's (SPEC §2 rule 9).
    pra: Pra | None = None
    # The ``website`` block: the origins whose pages may carry the feedback button and frame the survey.
    website: WebsiteConfig | None = None


@dataclass(frozen=True)
class WebsiteConfig:
    """A service's ``website: {origins: [...]}`` (SPEC §5), with the feedback page's abuse limits."""

    origins: tuple[str, ...]
    # Answers taken from one address for this service within an hour, and from everyone.
    max_per_address_per_hour: int = 10
    max_per_hour: int = 2000
    # A form sent sooner than this after it was shown is taken for a robot's.
    min_fill_seconds: int = 3


def parse_website(raw: Any, where: str) -> WebsiteConfig:
    """``website: {origins: [scheme://host[:port], ...]}``: no path, no trailing slash, at least one origin."""
    if not isinstance(raw, dict):
        raise ConfigError(f'{where}: must be a mapping, e.g. {{origins: ["https://www.example.gov"]}}')
    unknown = set(raw) - WEBSITE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    origins = raw.get("origins")
    if not isinstance(origins, list) or not origins or not all(isinstance(o, str) for o in origins):
        raise ConfigError(f'{where}: origins must be a non-empty list, e.g. ["https://www.example.gov"]')
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{where}: origin {origin!r} must be scheme://host[:port] (http or https, no path, no trailing slash)"
            )
    limits = {}
    for key, low in (("max_per_address_per_hour", 1), ("max_per_hour", 1), ("min_fill_seconds", 0)):
        value = raw.get(key, getattr(WebsiteConfig, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{where}: {key} must be a whole number, {low} or more")
        limits[key] = value
    # As a browser names an origin: lower case, and no default port (``https://x.gov:443`` is ``https://x.gov``).
    named = [o.lower().removesuffix(":443") if o.lower().startswith("https:") else o.lower().removesuffix(":80")
             for o in origins]  # fmt: skip
    return WebsiteConfig(origins=tuple(dict.fromkeys(named)), **limits)


@dataclass(frozen=True)
class OfficeConfig:
    code: str
    name: str
    timezone: ZoneInfo | None


@dataclass(frozen=True)
class Catalog:
    services: dict[str, ServiceConfig]
    offices: dict[str, OfficeConfig]
    flows: dict[str, Flow]

    def flow_of(self, service: ServiceConfig) -> Flow:
        return self.flows[service.flow]

    def pra_of(self, service: ServiceConfig) -> Pra:
        """The PRA block that stands for ``service``: its own clearance, else its flow's."""
        return service.pra or self.flows[service.flow].pra


def _fits(raw: dict[str, Any], columns: dict[str, Any], where: str) -> None:
    """Each configured string of ``raw`` that the catalogue sync stores fits its column (``{key: Service.name}``):
    on PostgreSQL a longer one stopped the sync with a database error, on SQLite it was stored whole."""
    for key, column in columns.items():
        if raw.get(key) is not None and (too_long := length_problem(str(raw[key]), column)):
            raise ConfigError(f"{where}: the {key} {too_long}")


def _zone(name: Any, where: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: timezone must be an IANA name such as America/New_York")
    if zone_problem(name):
        raise ConfigError(f"{where}: unknown time zone {cut(name)!r} (use an IANA name such as America/New_York)")
    return ZoneInfo(name)


def _duration(value: Any, where: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _clock(value: Any, where: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ConfigError(f"{where}: {value!r} is not a time of day such as 21:00") from exc


def _read_yaml(path: Path, root_key: str) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path} does not exist (SURVEY_ENGINE_CONFIG_DIR)")
    data = read_yaml(path) or {}
    section = data.get(root_key) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(f"{path.name}: expected a mapping under {root_key!r}")
    return section


def parse_service(slug: str, raw: Any, flows: dict[str, Flow], channel_names: set[str] | None) -> ServiceConfig:
    where = f"services.yaml: service {cut(slug)!r}"
    if not SLUG.fullmatch(slug):
        raise ConfigError(f"{where}: a service slug must be {SLUG_RULE} (it stands in URLs and file names)")
    if slug in RESERVED_SLUGS:
        raise ConfigError(f"{where}: the slug {slug!r} is reserved ({RESERVED_SLUGS[slug]}); choose another")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(raw) - SERVICE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    for key in ("name", "agency", "service_type", "flow", "channels", "timezone"):
        if key not in raw:
            raise ConfigError(f"{where}: {key} is required")
    # The slug is bounded by SLUG, the service type by SERVICE_TYPES, the flow id where the flow is parsed.
    columns = {"name": Service.name, "agency": Service.agency, "service_stage": Service.service_stage,
               "timezone": Service.timezone}  # fmt: skip
    _fits(raw, columns, where)
    if raw["service_type"] not in SERVICE_TYPES:
        raise ConfigError(
            f"{where}: service_type {raw['service_type']!r} is not one of A-11 280.4's seven: {', '.join(SERVICE_TYPES)}"
        )
    point = raw.get("transaction_point", "post_interaction")
    if point not in TRANSACTION_POINTS:
        raise ConfigError(f"{where}: transaction_point must be one of {', '.join(TRANSACTION_POINTS)}")
    for key in ("bureau", "service_provider", "service_stage"):
        if raw.get(key) is not None and not (isinstance(raw[key], str) and raw[key].strip()):
            raise ConfigError(f"{where}: {key} must be non-empty text")
    pra = parse_pra(raw["pra"], f"{where}: pra") if raw.get("pra") is not None else None
    if pra is not None and (problem := omb_number_problem(raw["pra"]["omb_control_number"])):
        raise ConfigError(f"{where}: pra: rule pra (5 CFR 1320.8(b)(3)): {problem}")
    if raw["flow"] not in flows:
        raise ConfigError(f"{where}: flow {raw['flow']!r} is not in the flows directory")
    channels = raw["channels"]
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
        raise ConfigError(f"{where}: channels must be a non-empty list of channel names")
    if channel_names is not None:
        missing = [c for c in channels if c not in channel_names]
        if missing:
            raise ConfigError(
                f"{where}: unknown channels {', '.join(missing)} (known: {', '.join(sorted(channel_names))})"
            )
    if raw.get("website") is not None and "website" not in channels:
        raise ConfigError(f"{where}: website is set but the website channel is not in channels (add it to opt in)")
    rate = raw.get("sample_rate", 1.0)
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate <= 1:
        raise ConfigError(f"{where}: sample_rate must be a number in (0, 1]")
    window = _duration(raw.get("window", "PT48H"), f"{where}: window")
    if window > MAX_WINDOW or window <= timedelta(0):
        raise ConfigError(f"{where}: window must be positive and at most PT48H (A-11 280.7: within 48 hours)")
    answer_window = _duration(raw.get("answer_window", "PT48H"), f"{where}: answer_window")
    if answer_window > MAX_ANSWER_WINDOW or answer_window <= timedelta(0):
        raise ConfigError(f"{where}: answer_window must be positive and at most P7D")
    send_delay = _duration(raw.get("send_delay", "PT0S"), f"{where}: send_delay")
    if send_delay >= window:
        raise ConfigError(f"{where}: send_delay must be shorter than the window")
    quiet = raw.get("quiet_hours", {"start": "21:00", "end": "08:00"})
    if not isinstance(quiet, dict) or set(quiet) != {"start", "end"}:
        raise ConfigError(f"{where}: quiet_hours must be {{start: 'HH:MM', end: 'HH:MM'}}")
    cooldown = raw.get("contact_cooldown_days", 30)
    if not isinstance(cooldown, int) or isinstance(cooldown, bool) or cooldown < 0:
        raise ConfigError(f"{where}: contact_cooldown_days must be a whole number of days, 0 or more")
    cap = raw.get("daily_cap")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise ConfigError(f"{where}: daily_cap must be a positive whole number")
    sms_mode = raw.get("sms_mode", "conversational")
    if sms_mode not in ("conversational", "link"):
        raise ConfigError(f"{where}: sms_mode must be conversational or link")
    reminder = raw.get("reminder_after")
    ivr_numbers = raw.get("ivr_numbers", [])
    if not isinstance(ivr_numbers, list) or not all(isinstance(n, str) for n in ivr_numbers):
        raise ConfigError(f'{where}: ivr_numbers must be a list of quoted E.164 numbers, e.g. ["+12025550100"]')
    idle_reset = _duration(raw.get("kiosk_idle_reset", "PT45S"), f"{where}: kiosk_idle_reset")
    if not timedelta(seconds=1) <= idle_reset <= timedelta(hours=1):
        raise ConfigError(f"{where}: kiosk_idle_reset must be between PT1S and PT1H")
    kiosk_limit = raw.get("kiosk_max_sessions_per_minute", 6)
    if not isinstance(kiosk_limit, int) or isinstance(kiosk_limit, bool) or kiosk_limit < 1:
        raise ConfigError(f"{where}: kiosk_max_sessions_per_minute must be a positive whole number")
    for key in ("sender", "support"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise ConfigError(f"{where}: {key} must be a mapping, e.g. {{name: ..., reply_to: ...}}")
    return ServiceConfig(
        slug=slug,
        name=str(raw["name"]),
        agency=str(raw["agency"]),
        service_type=str(raw["service_type"]),
        service_stage=raw.get("service_stage"),
        flow=str(raw["flow"]),
        channels=tuple(channels),
        timezone=_zone(raw["timezone"], f"{where}: timezone"),
        sample_rate=float(rate),
        send_delay=send_delay,
        window=window,
        answer_window=answer_window,
        quiet_hours=QuietHours(
            _clock(quiet["start"], f"{where}: quiet_hours.start"),
            _clock(quiet["end"], f"{where}: quiet_hours.end"),
        ),
        contact_cooldown_days=cooldown,
        daily_cap=cap,
        default_language=str(raw.get("default_language", "en")),
        sms_mode=sms_mode,
        ivr_numbers=tuple(ivr_numbers),
        reminder_after=_duration(reminder, f"{where}: reminder_after") if reminder else None,
        kiosk_idle_reset=idle_reset,
        kiosk_max_sessions_per_minute=kiosk_limit,
        sender=dict(raw.get("sender") or {}),
        support=dict(raw.get("support") or {}),
        twilio_opt_out_handling=bool(raw.get("twilio_opt_out_handling", False)),
        bureau=raw.get("bureau"),
        service_provider=raw.get("service_provider"),
        transaction_point=str(point),
        pra=pra,
        website=parse_website(raw["website"], f"{where}: website") if raw.get("website") is not None else None,
    )


def parse_office(code: str, raw: Any) -> OfficeConfig:
    where = f"offices.yaml: office {cut(code)!r}"
    _fits({"code": code}, {"code": Office.code}, where)
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{where}: expected {{name: ..., timezone: ...}}")
    unknown = set(raw) - {"name", "timezone"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    _fits(raw, {"name": Office.name, "timezone": Office.timezone}, where)
    zone = _zone(raw["timezone"], where) if raw.get("timezone") else None
    return OfficeConfig(code=str(code), name=str(raw["name"]), timezone=zone)


def load_catalog(config_dir: Path, flows_dir: Path, channel_names: set[str] | None = None) -> Catalog:
    flows = load_flows(flows_dir)
    services_raw = _read_yaml(config_dir / "services.yaml", "services")
    offices_raw = _read_yaml(config_dir / "offices.yaml", "offices")
    services = {str(slug): parse_service(str(slug), raw, flows, channel_names) for slug, raw in services_raw.items()}
    from engine.surveys.flow_rules import check_flow

    for flow_id in sorted({s.flow for s in services.values()}):
        problems, _ = check_flow(flows[flow_id], date.today(), check_expiry=False)
        if problems:
            raise ConfigError("a flow in use breaks the A-11 rules:\n  " + "\n  ".join(problems))
    offices = {str(code): parse_office(str(code), raw) for code, raw in offices_raw.items()}
    return Catalog(services=services, offices=offices, flows=flows)
