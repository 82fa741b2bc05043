"""The report files' formats: CSV (the same bytes from the API and the CLI), JSON and XLSX (typed cells).

CSV follows RFC 4180 (comma, ``"`` quoting where needed, CRLF line ends, UTF-8 without a byte-order mark);
empty cells are empty, means carry 2 decimals and fractions 4 (as the cells hold them, see
:mod:`engine.reporting.a11`). XLSX has one sheet, a bold frozen header row, numbers as numbers (formatted
``0.00`` / ``0.0000``), text as text and empty cells blank.

Spreadsheet formulas are neutralized (SPEC §2 rule 12, OWASP "CSV injection"): a text cell that begins, after any
leading whitespace, with ``=``, ``+``, ``-`` or ``@``, or begins with a tab or a carriage return, is written with a
leading ``'`` in CSV, and always as a plain string cell in XLSX (openpyxl would store ``=…`` as a formula). XLSX shows the control
characters XML cannot hold as U+FFFD.
Numbers are never touched: a negative number stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from engine.reporting.a11 import Collection, json_value

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "json", "xlsx")


FORMULA_STARTS = ("=", "+", "-", "@")


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula (SPEC §2 rule 12)."""
    if text[:1] in ("\t", "\r"):
        return True
    return text.lstrip()[:1] in FORMULA_STARTS


def neutralized(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet could take it for a formula."""
    return "'" + text if looks_like_formula(text) else text


def csv_text(cell: Any) -> str:
    """A cell as CSV text: empty for None, numbers as they are, text neutralized (rule 12)."""
    if cell is None:
        return ""
    if isinstance(cell, str):
        return neutralized(cell)
    return str(cell)


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]], batch: int = 500) -> Iterator[str]:
    """CSV text in chunks of ``batch`` rows: the header first, then the rows (for streaming)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_text(c) for c in header])
    for count, row in enumerate(rows, start=1):
        writer.writerow([csv_text(c) for c in row])
        if count % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def to_csv(collection: Collection) -> str:
    return "".join(csv_lines(collection.columns, ([row[c] for c in collection.columns] for row in collection.rows)))


def to_json(collection: Collection) -> dict[str, Any]:
    """``{"fiscal_year", "quarter", "rows": [{column: value}]}`` with every column in every row (null if empty)."""
    return {
        "fiscal_year": collection.fiscal_year,
        "quarter": collection.quarter,
        "rows": [{c: json_value(row[c]) for c in collection.columns} for row in collection.rows],
    }


def to_xlsx(collection: Collection, title: str | None = None) -> bytes:
    """One worksheet: the header row (bold, frozen) and the rows with typed cells."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook(write_only=False)
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title or f"FY{collection.fiscal_year} Q{collection.quarter}"
    sheet.append(list(collection.columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for r, row in enumerate(collection.rows, start=2):
        for c, column in enumerate(collection.columns, start=1):
            value = row[column]
            if value is None:
                continue
            target = sheet.cell(row=r, column=c)
            if isinstance(value, Decimal):
                target.value = float(value)
                target.number_format = "0.00" if value.as_tuple().exponent == -2 else "0.0000"
            elif isinstance(value, str):
                target.value = xml_text(value)
                target.data_type = "s"  # never a formula, whatever the text begins with (rule 12)
            else:
                target.value = value
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xml_text(text: str) -> str:
    """``text`` with the control characters XML 1.0 cannot hold (U+0001-U+0008, U+000B, U+000C, U+000E-U+001F;
    openpyxl raises on them) shown as U+FFFD: a stored text is always reported (SPEC §2 rule 11)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)


def read_xlsx(data: bytes) -> tuple[list[str], list[list[Any]]]:
    """Read a file made by :func:`to_xlsx` back: (header, rows), blanks as None (for tests and checks)."""
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True)
    sheet = workbook.active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    return [str(v) for v in values[0]], values[1:]
