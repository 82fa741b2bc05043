"""Filing a quarter (SPEC §6 "Submissions"): freeze a service's A-11 files with who and when, read them back,
keep the reflection text, and say what moved in the live figures since.

:func:`submit` builds the §6.1 CSV, JSON and XLSX and the §6.2 CSV of one service and quarter exactly as the
report API and CLI serve them (the JSON as ``report a11 --format json`` prints it) and stores them in
``submissions``; those bytes are served from there forever, whatever arrives later. A later submission of the same
quarter supersedes the earlier one; both are kept. :func:`submitted_quarters` gives a service's filed quarters
(the newest submission of each), for the public pages. :func:`what_moved` compares the filed figures with the
live ones. Reflections (:func:`save_reflection`) stay editable after a submission: the filed files keep the text
as it was; filing again files the new text.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.common.limits import column_length, text_problem
from engine.reporting import a11, formats, responses_file
from engine.reporting.fiscal import FiscalQuarter
from engine.runtime import Runtime
from engine.store.db import utcnow
from engine.store.models import Reflection, Submission

FILES = {"csv": "collection_csv", "json": "collection_json", "xlsx": "collection_xlsx", "responses": "responses_csv"}
MEDIA_TYPES = {"csv": formats.CSV_MEDIA_TYPE, "json": "application/json", "xlsx": formats.XLSX_MEDIA_TYPE,
               "responses": formats.CSV_MEDIA_TYPE}  # fmt: skip
MAX_SUBMITTER = min(column_length(Submission.submitted_by), column_length(Reflection.updated_by))
MAX_REFLECTION = 10_000
GZIP_MAGIC = b"\x1f\x8b"
FILING_LOCKS = 0x46494C45  # "FILE": the advisory locks of filings (one_filing_at_a_time), apart from any other


def collection_json(collection: a11.Collection) -> bytes:
    """The §6.1 JSON as filed: ``report a11 --format json``'s bytes."""
    return (json.dumps(formats.to_json(collection), ensure_ascii=False) + "\n").encode("utf-8")


def files(rt: Runtime, session: Session, quarter: FiscalQuarter, service: str) -> dict[str, bytes]:
    """The four files of one service and quarter, as they stand now and as stored: ``{csv, json, xlsx,
    responses}``, the response-level file gzip-compressed (:func:`served` gives its bytes back)."""
    collection = a11.collection(rt, session, quarter, [service])
    rows = responses_file.rows(rt, session, quarter, [service])
    return {
        "csv": formats.to_csv(collection).encode("utf-8"),
        "json": collection_json(collection),
        "xlsx": formats.to_xlsx(collection),
        "responses": _gzipped(formats.csv_lines(responses_file.COLUMNS, rows)),
    }


def _gzipped(chunks: Iterable[str]) -> bytes:
    """The text of ``chunks``, UTF-8, gzip-compressed as it comes. The response-level file has a line per
    respondent; joined whole, then encoded, it was held twice over at once by the process filing it (the
    dashboard's web worker: past SPEC §7's 150 MB for a large quarter). Compressed as it is read, the process holds
    a few lines and the compressed file, a fraction of it (and the row stores that fraction). Level 1: the random
    response ids make most of a line, so a higher level gains little (2.5 against 2.2 times smaller) for four times
    the time, and a filing on SQLite holds the write lock while it runs."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as packed:
        for chunk in chunks:
            packed.write(chunk.encode("utf-8"))
    return buffer.getvalue()


def served(stored: bytes, chunk: int = 1 << 16) -> Iterator[bytes]:
    """A filed file's bytes, exactly as filed, in pieces: a gzip-compressed one (the response-level file from
    2026-12-05 on) inflated piece by piece, any other (the three collection files; earlier filings) as stored. No
    filed file begins with gzip's two bytes uncompressed: a CSV begins with its header, JSON with ``{``, XLSX with
    ``PK``."""
    if not stored.startswith(GZIP_MAGIC):
        yield stored
        return
    inflate = zlib.decompressobj(wbits=31)  # the gzip wrapper, its checksum checked
    view = memoryview(stored)
    for start in range(0, len(stored), chunk):
        piece = inflate.decompress(view[start : start + chunk])
        if piece:
            yield piece
    rest = inflate.flush()
    if rest:
        yield rest


def one_snapshot(session: Session) -> None:
    """Make every read of ``session``'s transaction see the database as it stood at the first one (call it before
    the first statement). The four files take a dozen queries; on PostgreSQL, under READ COMMITTED, answers
    committed between them (a filing while answers arrive) would land in some files and not in others: a §6.2 file
    with more respondents than the §6.1 file it was filed with, frozen so forever. REPEATABLE READ gives the whole
    filing one snapshot (it only inserts its own row, so it never meets a serialization failure). The live §6.1
    file (API, CLI, the dashboard's download) and the dashboard's page read so too: one file, counts that agree.
    SQLite needs nothing: a filing is a write transaction (``BEGIN IMMEDIATE``), and no other writer runs meanwhile."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


class FiledMeanwhile(Exception):
    """The quarter was filed after the page asking to file it was shown: a second click of Submit (the first
    request's filing stands), or a colleague's filing. Nothing more is filed; the person sees the filing that stands,
    and may file again from there."""


@contextmanager
def one_filing_at_a_time(rt: Runtime, service: str, quarter: FiscalQuarter) -> Iterator[None]:
    """Filings of one service and quarter one after another, each transaction begun once the one before is committed,
    so :func:`submit`'s ``over`` sees it. Around the unit of work, not inside it: a filing reads under REPEATABLE READ
    from its first statement, so a lock taken inside would wait with a snapshot already older than the filing it
    waited for. On PostgreSQL a session-level advisory lock, held on a connection of its own; on SQLite every filing
    is a write transaction (``BEGIN IMMEDIATE``), already one at a time."""
    if rt.engine.dialect.name != "postgresql":
        yield
        return
    key = (FILING_LOCKS << 32) | (rt.service_ids[service] << 16) | (quarter.fiscal_year % 4096 << 3) | quarter.quarter
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
        lock.execute(select(func.pg_advisory_lock(key)))
        try:
            yield
        finally:
            lock.execute(select(func.pg_advisory_unlock(key)))


class NotBegun(ValueError):
    """The quarter has not begun in the service's time zone: there is nothing to file, and what would be frozen and
    published (``/data``) as that quarter's figures would be empty files."""


def submit(rt: Runtime, session: Session, quarter: FiscalQuarter, service: str, by: str,
           now: datetime | None = None, *, over: str | None = None) -> Submission:  # fmt: skip
    """Freeze the quarter's files of ``service`` as filed by ``by`` (the caller commits). A quarter is filed once it
    has begun (the current one may be filed, and filed again as it fills); a later one raises :class:`NotBegun`.

    ``over``: the filing the person saw standing when they asked (its id; ``""``, a draft). When another stands now,
    :class:`FiledMeanwhile` is raised and nothing is filed (the dashboard's form; run it inside
    :func:`one_filing_at_a_time`). Without it (the API, the CLI), every call files."""
    now = now or utcnow()
    if quarter.bounds(rt.catalog.services[service].timezone)[0] > now:
        raise NotBegun(f"{quarter} has not begun")
    one_snapshot(session)
    if over is not None:
        standing = latest(rt, session, quarter, service)
        if (str(standing.id) if standing is not None else "") != over:
            raise FiledMeanwhile(f"{quarter} of {service} was filed after the page was shown")
    made = files(rt, session, quarter, service)
    row = Submission(
        service_id=rt.service_ids[service], fiscal_year=quarter.fiscal_year, quarter=quarter.quarter,
        submitted_at=now, submitted_by=by[:MAX_SUBMITTER],
        **{column: made[fmt] for fmt, column in FILES.items()},
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def _iso(moment: datetime) -> str:
    """RFC 3339 in UTC (``…Z``); a moment read back without a zone is UTC, as every stored moment is."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def view(rt: Runtime, row: Submission) -> dict[str, Any]:
    """A submission as the API shows it."""
    slug = next((s for s, i in rt.service_ids.items() if i == row.service_id), None)
    return {"id": str(row.id), "fiscal_year": row.fiscal_year, "quarter": row.quarter, "service": slug,
            "submitted_at": _iso(row.submitted_at), "submitted_by": row.submitted_by}  # fmt: skip


def listed(rt: Runtime, session: Session, quarter: FiscalQuarter, services: list[str]) -> list[Submission]:
    """The submissions of ``quarter`` for ``services``, newest first."""
    ids = [rt.service_ids[s] for s in services]
    query = (
        select(Submission)
        .where(
            Submission.fiscal_year == quarter.fiscal_year,
            Submission.quarter == quarter.quarter,
            Submission.service_id.in_(ids),
        )
        .order_by(Submission.submitted_at.desc(), Submission.id)
    )
    return list(session.execute(query).scalars())


def latest(rt: Runtime, session: Session, quarter: FiscalQuarter, service: str) -> Submission | None:
    """The submission that stands for the quarter (the newest), or None: the quarter is a draft."""
    found = listed(rt, session, quarter, [service])
    return found[0] if found else None


def submitted_quarters(rt: Runtime, session: Session, service: str) -> list[Submission]:
    """A service's filed quarters, newest quarter first: the standing (newest) submission of each."""
    query = (
        select(Submission)
        .where(Submission.service_id == rt.service_ids[service])
        .order_by(Submission.fiscal_year.desc(), Submission.quarter.desc(), Submission.submitted_at.desc())
    )
    out: dict[tuple[int, int], Submission] = {}
    for row in session.execute(query).scalars():
        out.setdefault((row.fiscal_year, row.quarter), row)
    return list(out.values())


# -- reflections ---------------------------------------------------------------------------------------------------


def reflection(rt: Runtime, session: Session, quarter: FiscalQuarter, service: str) -> Reflection | None:
    return session.get(Reflection, (rt.service_ids[service], quarter.fiscal_year, quarter.quarter))


def reflection_problem(text: str) -> str | None:
    """Why ``text`` cannot be a reflection, or None."""
    if len(text) > MAX_REFLECTION:
        return f"must be at most {MAX_REFLECTION:,} characters"
    return text_problem(text)


def save_reflection(rt: Runtime, session: Session, quarter: FiscalQuarter, service: str, text: str,
                    by: str) -> None:  # fmt: skip
    """Write (or replace) the quarter's reflection of ``service``; empty text removes it.

    One statement either way, whatever another request did meanwhile: two saves racing (a double-click on "Save",
    two people of the team) both land, the last one's text standing, and a save racing a removal writes its text.
    A read-then-insert met the other's row (a unique violation, a 500 on PostgreSQL), a read-then-update a row
    removed meanwhile (0 rows updated, a 500)."""
    key = {"service_id": rt.service_ids[service], "fiscal_year": quarter.fiscal_year, "quarter": quarter.quarter}
    text = text.strip()
    if not text:
        session.execute(delete(Reflection).filter_by(**key))
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    written = {"text": text, "updated_by": by[:MAX_SUBMITTER], "updated_at": utcnow()}
    session.execute(
        upsert(Reflection).values(**key, **written).on_conflict_do_update(index_elements=list(key), set_=written)
    )


# -- what moved ----------------------------------------------------------------------------------------------------

FIGURES = ("volume_of_customers", "volume_of_customers_provided_survey_opportunity", "volume_of_respondents",
           "response_rate", "satisfaction_mean", "trust_mean", "trust_agree_pct")  # fmt: skip


@dataclass(frozen=True)
class Moved:
    """One headline figure of the service's quarter: as filed, and live now."""

    figure: str
    submitted: Decimal | int | None
    live: Decimal | int | None

    @property
    def changed(self) -> bool:
        return self.submitted != self.live


def headline(rows: list[dict[str, Any]]) -> dict[str, Decimal | int | None]:
    """The service's totals over its rows: volumes summed, rates and means from the summed counts."""
    out: dict[str, Decimal | int | None] = {}
    for column in FIGURES[:3]:
        out[column] = sum(int(r.get(column) or 0) for r in rows)
    out["response_rate"] = a11.share_cell(int(out[FIGURES[2]] or 0), int(out[FIGURES[1]] or 0))
    for tag in ("satisfaction", "trust"):
        counts = {p: sum(int(r.get(f"{tag}_{p}") or 0) for r in rows) for p in (1, 2, 3, 4, 5)}
        n = sum(counts.values())
        # The mean is of the 5-point rows alone: a thumbs row files its answers at 1 and 5 with no mean (SPEC
        # §6.1), and its 1s and 5s are no points of a scale to average with the others.
        scaled = [r for r in rows if r.get(f"{tag}_mean") is not None]
        total = sum(p * int(r.get(f"{tag}_{p}") or 0) for r in scaled for p in (1, 2, 3, 4, 5))
        out[f"{tag}_mean"] = a11.mean_cell(total, sum(int(r.get(f"{tag}_n") or 0) for r in scaled))
        if tag == "trust":
            out["trust_agree_pct"] = a11.share_cell(counts[4] + counts[5], n)
    return out


def what_moved(rt: Runtime, session: Session, submission: Submission, service: str) -> list[Moved]:
    """The headline figures as filed in ``submission`` and as the live data gives them now."""
    quarter = FiscalQuarter(submission.fiscal_year, submission.quarter)
    filed = json.loads(submission.collection_json.decode("utf-8"))["rows"]
    live = a11.collection(rt, session, quarter, [service]).rows
    before, now = headline(filed), headline(live)
    return [Moved(f, before[f], now[f]) for f in FIGURES]
