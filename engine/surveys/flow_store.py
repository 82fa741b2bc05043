"""Published flow versions: once a response uses a version, its content may not change (SPEC §5).

Each version's content hash is stored in ``flow_versions``; a flow file that changed without a new ``version`` is
refused at start-up and by ``survey-engine flows validate`` when responses already use that version.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.store.models import FlowVersion, Response
from engine.surveys.flows import Flow, parse_flow


def changed_published(session: Session, flows: Iterable[Flow]) -> list[str]:
    """Problems for flows whose stored version has another content hash and is used by a response."""
    problems = []
    for flow in flows:
        row = session.execute(
            select(FlowVersion).where(FlowVersion.flow_id == flow.id, FlowVersion.version == flow.version)
        ).scalar_one_or_none()
        if row is None or row.content_hash == flow.content_hash:
            continue
        used = session.execute(select(Response.id).where(Response.flow_version_id == row.id).limit(1)).first()
        if used is not None:
            problems.append(
                f"{flow.id} v{flow.version}: rule immutable-version: this version was published and answered, "
                "and its content changed; give the changed flow a new version"
            )
    return problems


def refresh_unused(session: Session, flows: Iterable[Flow]) -> None:
    """A version no response uses yet may still be edited: keep its stored hash current."""
    for flow in flows:
        session.execute(
            update(FlowVersion)
            .where(
                FlowVersion.flow_id == flow.id,
                FlowVersion.version == flow.version,
                FlowVersion.content_hash != flow.content_hash,
                ~select(Response.id).where(Response.flow_version_id == FlowVersion.id).exists(),
            )
            .values(content_hash=flow.content_hash, title=flow.title, definition=flow.definition)
        )


def published_flow(session: Session, flow_id: str, version: str) -> tuple[int, Flow] | None:
    """A published version's id and definition (an older one included), or ``None`` if it was never published."""
    row = session.execute(
        select(FlowVersion).where(FlowVersion.flow_id == flow_id, FlowVersion.version == version)
    ).scalar_one_or_none()
    if row is None or row.definition is None:
        return None
    return row.id, parse_flow(row.definition, f"{flow_id} v{version} (published)")
