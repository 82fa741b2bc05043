"""Which survey a service asks: its flow version with its effective PRA block, recorded as a ``surveys`` row.

:func:`sync_surveys` runs with the catalogue sync at start-up and gives each service the id of the survey it asks
today (``Runtime.survey_ids``), so intake and the survey sessions record it with each transaction, invitation and
response at no cost. :func:`survey_for_version` resolves the survey of an older published version (a kiosk that
answered offline on it). Rows are made once, by whichever process comes first, and never change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.catalog.services import Catalog, ServiceConfig
from engine.store.models import FlowVersion, Survey
from engine.surveys.flows import Pra, parse_flow


def fingerprint(flow_version_id: int, pra: Pra) -> str:
    """A stable hash of a flow version id and a PRA block."""
    data = [flow_version_id, pra.omb_control_number, pra.expiration_date.isoformat(), pra.burden_minutes,
            pra.burden_statement]  # fmt: skip
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def survey_id(session: Session, flow_version_id: int, pra: Pra) -> int:
    """The id of the survey (flow version, PRA block), made if it is new (safe in many processes at once)."""
    key = fingerprint(flow_version_id, pra)
    found = session.execute(select(Survey.id).where(Survey.fingerprint == key)).scalar_one_or_none()
    if found is not None:
        return found
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    session.execute(
        upsert(Survey)
        .values(
            fingerprint=key,
            flow_version_id=flow_version_id,
            omb_control_number=pra.omb_control_number,
            expiration_date=pra.expiration_date,
            burden_minutes=pra.burden_minutes,
            burden_statement=pra.burden_statement,
        )
        .on_conflict_do_nothing(index_elements=["fingerprint"])
    )
    return session.execute(select(Survey.id).where(Survey.fingerprint == key)).scalar_one()


def sync_surveys(session: Session, catalog: Catalog, flow_version_ids: Mapping[str, int]) -> dict[str, int]:
    """Each configured service's survey id today: its flow's current version under ``catalog.pra_of``."""
    return {
        slug: survey_id(session, flow_version_ids[service.flow], catalog.pra_of(service))
        for slug, service in catalog.services.items()
        if service.flow in flow_version_ids
    }


def survey_for_version(session: Session, service: ServiceConfig, flow_version_id: int) -> int | None:
    """The survey of a published (possibly older) flow version asked by ``service``: the service's own PRA block
    if it has one, else that version's; None if the version has no stored definition."""
    definition = session.execute(
        select(FlowVersion.definition).where(FlowVersion.id == flow_version_id)
    ).scalar_one_or_none()
    if definition is None:
        return None
    flow = parse_flow(definition, f"flow version {flow_version_id} (published)")
    return survey_id(session, flow_version_id, service.pra or flow.pra)
