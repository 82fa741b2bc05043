"""Diagnostic, not a SPEC §7 target: ways to write intake's ``transactions`` rows on PostgreSQL, and the replay lookup.

    .venv/bin/python bench/insert_variants.py [--rows 900] [--repeat 7]

``Intake._write`` used to insert a batch's transactions with ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``
as SQLAlchemy "insertmanyvalues" (one multi-row VALUES statement of rows × 16 parameters, parsed anew by psycopg and
planned anew by PostgreSQL, and never in SQLAlchemy's compiled cache: the dialect ``Insert`` has
``inherit_cache = False`` in SQLAlchemy 2.0). It now writes ``INSERT ... SELECT * FROM unnest(<one array per
column>) ON CONFLICT DO NOTHING RETURNING id`` (``engine.store.db.pg_insert_rows``; in the engine, the contacts and
invitations ride in the same statement as data-modifying CTEs). This times, on one fresh database, the median of
``--repeat`` runs of ``--rows`` real intake rows (made by the intake, read back, given new ids) written five ways,
and the replay lookup written four ways:

1. the former statement (insertmanyvalues);
2. a plain Core executemany (the baseline of bench/intake.py; no race protection);
3. ``ON CONFLICT DO NOTHING`` as an executemany without RETURNING, then ``SELECT id ... WHERE id = ANY(:ids)``
   to learn which rows are ours (the same answer as RETURNING: a row lost to a concurrent writer has not our id);
4. the engine's ``unnest`` statement, PostgreSQL planning it once for all values (``plan_cache_mode`` generic, as
   the engine asks for its writes);
5. the same, planned anew with the values each time (custom plans: the arrays are copied around the planner);
6. ``external_id IN (<rows> parameters)`` (the former ``Intake._load_existing``) against ``external_id =
   ANY(:array)``, each with custom plans (the engine's choice for a batch's lookups) and generic plans (what
   PostgreSQL may settle on for a statement psycopg has prepared: the array can then not be hashed).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

import common
from sqlalchemy import String, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from engine.intake.submit import Intake
from engine.store.db import pg_insert_rows, unit_of_work
from engine.store.models import Transaction

TABLE = Transaction.__table__
CONFLICT = ["service_id", "external_id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=900)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    import intake as bench_intake  # bench/intake.py: the written columns and the read-back

    results: dict[str, float] = {}
    with common.database("postgresql", "insert_variants") as url:
        pg = common.pg_version(url)
        rt = common.runtime_for(url)
        source = common.Items(seed=5)
        with unit_of_work(rt.sessions) as session:
            Intake(rt).submit(session, [source.fresh() for _ in range(args.rows)])
        template = bench_intake.read_back(url)[0][0]["transactions"]

        def fresh() -> list[dict[str, Any]]:
            return [{**r, "id": uuid.uuid4(), "external_id": f"v-{uuid.uuid4().hex}"} for r in template]

        def engine_statement(session: Any, rows: list[dict[str, Any]]) -> int:
            stmt = pg_insert(TABLE).on_conflict_do_nothing(index_elements=CONFLICT).returning(TABLE.c.id)
            return len(session.execute(stmt, rows).scalars().all())

        def plain(session: Any, rows: list[dict[str, Any]]) -> int:
            session.execute(insert(TABLE), rows)
            return len(rows)

        def conflict_then_any(session: Any, rows: list[dict[str, Any]]) -> int:
            session.execute(pg_insert(TABLE).on_conflict_do_nothing(index_elements=CONFLICT), rows)
            ids = bindparam("ids", [r["id"] for r in rows], type_=ARRAY(TABLE.c.id.type))
            return len(session.execute(select(TABLE.c.id).where(TABLE.c.id == text("ANY(:ids)").bindparams(ids))).all())

        def unnest(mode: str) -> Any:
            def write(session: Any, rows: list[dict[str, Any]]) -> int:
                session.execute(text(f"SET LOCAL plan_cache_mode = force_{mode}_plan"))
                suffix = "ON CONFLICT (service_id, external_id) DO NOTHING RETURNING id"
                return len(pg_insert_rows(session, TABLE, rows, suffix).all())

            return write

        variants = {
            "former: ON CONFLICT DO NOTHING RETURNING (insertmanyvalues)": engine_statement,
            "plain Core executemany (no conflict handling)": plain,
            "ON CONFLICT DO NOTHING executemany + SELECT id = ANY(array)": conflict_then_any,
            "engine: INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING, generic plan": unnest(
                "generic"
            ),
            "the same, custom plans": unnest("custom"),
        }
        for name, write in variants.items():
            times = []
            for _ in range(args.repeat):
                rows = fresh()
                start = time.perf_counter()
                with unit_of_work(rt.sessions) as session:
                    written = write(session, rows)
                times.append(time.perf_counter() - start)
                assert written == len(rows), (name, written)
            results[f"insert: {name}"] = statistics.median(times) * 1000

        ids = [r["external_id"] for r in template]
        lookups = {
            f"external_id IN ({len(ids)} parameters)": select(TABLE.c.id).where(TABLE.c.external_id.in_(ids)),
            "external_id = ANY(array)": select(TABLE.c.id).where(
                TABLE.c.external_id == text("ANY(:ids)").bindparams(bindparam("ids", ids, type_=ARRAY(String)))
            ),
        }
        for mode in ("custom", "generic"):
            for name, stmt in lookups.items():
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    with rt.sessions() as session:
                        session.execute(text(f"SET LOCAL plan_cache_mode = force_{mode}_plan"))
                        found = len(session.execute(stmt).all())
                    times.append(time.perf_counter() - start)
                    assert found == len(ids), (name, found)
                results[f"select: {name}, {mode} plans"] = statistics.median(times) * 1000
        rt.engine.dispose()

    print(f"PostgreSQL {pg}, {len(template)} transactions rows, median of {args.repeat}:")
    for name, ms in results.items():
        print(f"  {ms:8.1f} ms  {name}")
    path = common.write_result(
        "insert_variants",
        {"params": vars(args), "postgresql": pg, "median_ms": {k: round(v, 2) for k, v in results.items()}},
    )
    print(f"\nresult: {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
