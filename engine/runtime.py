"""The process's wiring: settings, database, catalogue, channels and cipher, built once and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.catalog.services import Catalog, load_catalog
from engine.catalog.surveys import sync_surveys
from engine.channels import ChannelRegistry, load_channels
from engine.common.crypto import ContactCipher
from engine.common.errors import ConfigError
from engine.common.i18n import use_locales
from engine.intake.rules import ChannelOption
from engine.settings import Settings
from engine.store import migrate
from engine.store.db import make_engine, make_sessionmaker, unit_of_work, utcnow
from engine.store.models import FlowVersion, Office, Service
from engine.surveys.flow_store import changed_published, refresh_unused

if TYPE_CHECKING:
    from engine.catalog.services import ServiceConfig


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalog: Catalog
    channels: ChannelRegistry
    cipher: ContactCipher
    service_ids: dict[str, int] = field(default_factory=dict)
    service_salts: dict[str, str] = field(default_factory=dict)
    office_ids: dict[str, int] = field(default_factory=dict)
    flow_version_ids: dict[str, int] = field(default_factory=dict)
    # Each service's survey today (its flow version and effective PRA block: ``engine.catalog.surveys``).
    survey_ids: dict[str, int] = field(default_factory=dict)

    def channel_options(self, service: ServiceConfig) -> list[ChannelOption]:
        options = []
        for name in service.channels:
            channel = self.channels.get(name)
            options.append(ChannelOption(name, channel.contact_kinds, channel.consent, channel.suppressed_by))
        return options

    @property
    def synced(self) -> bool:
        return bool(self.service_ids) or not self.catalog.services

    def sync_catalog(self) -> None:
        """Mirror services, offices and flow versions into the store (safe in many processes at once)."""
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        import secrets

        now = utcnow()
        with unit_of_work(self.sessions) as session:
            for slug, svc in self.catalog.services.items():
                values = {
                    "name": svc.name,
                    "agency": svc.agency,
                    "service_type": svc.service_type,
                    "service_stage": svc.service_stage,
                    "flow_id": svc.flow,
                    "timezone": svc.timezone.key,
                    "active": True,
                    "synced_at": now,
                }
                session.execute(
                    upsert(Service)
                    .values(slug=slug, sampling_salt=secrets.token_hex(16), **values)
                    .on_conflict_do_nothing(index_elements=["slug"])
                )
                session.execute(update(Service).where(Service.slug == slug).values(**values))
            session.execute(
                update(Service).where(Service.slug.not_in(list(self.catalog.services) or [""])).values(active=False)
            )
            for code, office in self.catalog.offices.items():
                values = {"name": office.name, "timezone": office.timezone.key if office.timezone else None}
                session.execute(
                    upsert(Office).values(code=code, **values).on_conflict_do_nothing(index_elements=["code"])
                )
                session.execute(update(Office).where(Office.code == code).values(active=True, **values))
            for flow in self.catalog.flows.values():
                session.execute(
                    upsert(FlowVersion)
                    .values(
                        flow_id=flow.id,
                        version=flow.version,
                        content_hash=flow.content_hash,
                        title=flow.title,
                        definition=flow.definition,
                    )
                    .on_conflict_do_nothing(index_elements=["flow_id", "version"])
                )
                session.execute(
                    update(FlowVersion)
                    .where(
                        FlowVersion.flow_id == flow.id,
                        FlowVersion.version == flow.version,
                        FlowVersion.content_hash == flow.content_hash,
                        FlowVersion.definition.is_(None),
                    )
                    .values(definition=flow.definition)
                )
            problems = changed_published(session, self.catalog.flows.values())
            if problems:
                raise ConfigError("\n".join(problems))
            refresh_unused(session, self.catalog.flows.values())
            rows = session.execute(select(Service.slug, Service.id, Service.sampling_salt)).all()
            self.service_ids = {slug: id_ for slug, id_, _ in rows}
            self.service_salts = {slug: salt for slug, _, salt in rows}
            self.office_ids = dict(session.execute(select(Office.code, Office.id)).tuples().all())
            versions = session.execute(select(FlowVersion.flow_id, FlowVersion.version, FlowVersion.id)).all()
            current = {f.id: f.version for f in self.catalog.flows.values()}
            self.flow_version_ids = {fid: vid for fid, ver, vid in versions if current.get(fid) == ver}
            self.survey_ids = sync_surveys(session, self.catalog, self.flow_version_ids)


def check_send_rates(settings: Settings, channels: ChannelRegistry) -> None:
    """A ``SURVEY_ENGINE_SEND_RATE_<CHANNEL>`` naming no installed channel (``…_SMSS``, ``…_TEXT``) paced nothing, and
    the operator's rate was silently not applied: one line naming the variable and the channels there are."""
    unknown = sorted(set(settings.send_rates) - channels.names())
    if unknown:
        names = ", ".join(f"SURVEY_ENGINE_SEND_RATE_{name.upper().replace('-', '_')}" for name in unknown)
        raise ConfigError(
            f"{names}: no such channel (the channels are {', '.join(sorted(channels.names()))}; "
            "SURVEY_ENGINE_SEND_RATE_<CHANNEL> takes the channel's name in capitals, - as _)"
        )


def build_runtime(
    settings: Settings, *, migrate_database: bool = False, channels: ChannelRegistry | None = None
) -> Runtime:
    """Wire a runtime; ``channels`` defaults to every channel declared under the entry-point group."""
    use_locales(settings.locales_dir)  # the catalogs this process offers and translates with
    engine = make_engine(settings.database_url, ping_after_idle=settings.database_ping_seconds)
    if migrate_database:
        if settings.is_sqlite:
            settings.instance_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(engine)
    if channels is None:
        channels = load_channels(settings)
        check_send_rates(settings, channels)
    catalog = load_catalog(settings.config_dir, settings.flows_dir, channels.names())
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        catalog=catalog,
        channels=channels,
        cipher=ContactCipher(settings.encryption_key),
    )
    return runtime
