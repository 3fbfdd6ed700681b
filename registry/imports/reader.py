"""Reading an import file (CSV with a header row, or the first sheet of an XLSX) into rows."""
from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date, datetime

from registry.errors import Unprocessable


class NotASpreadsheet(Unprocessable):
    code, title = "not-a-spreadsheet", "The file is neither a CSV nor an XLSX spreadsheet"


def open_rows(data: bytes) -> tuple[list[str], Iterator[list], int]:
    """Header, data rows (lists of cells) and an estimate of the row count.

    :raises NotASpreadsheet: the bytes are not UTF-8 CSV or XLSX.
    """
    if data[:4] == b"PK\x03\x04":
        return _xlsx_rows(data)
    if b"\x00" in data[:65536]:
        raise NotASpreadsheet("The file is binary: upload a CSV (UTF-8) or an XLSX file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotASpreadsheet(f"The CSV is not UTF-8 text (bad byte at offset {exc.start}).") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = next(reader, None)
    if not header:
        raise NotASpreadsheet("The file is empty: the first row must name the columns.")
    return [h.strip() for h in header], reader, max(text.count("\n") - 1, 1)


def _delimiter(text: str) -> str:
    """',' unless the header row is clearly separated by ';' (European Excel) or tabs."""
    first_line = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=first_line.count)


def _xlsx_rows(data: bytes):
    from openpyxl import load_workbook
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise NotASpreadsheet(f"The file is not a readable XLSX workbook ({type(exc).__name__}).") from None
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if not header or not any(header):
        raise NotASpreadsheet("The first sheet is empty: its first row must name the columns.")
    header = [str(h).strip() if h is not None else "" for h in header]
    estimate = max((sheet.max_row or 2) - 1, 1)
    return header, (_cells(row) for row in rows), estimate


def _cells(row) -> list:
    """XLSX cells as the strings a CSV would hold (dates ISO, whole numbers without '.0')."""
    out = []
    for value in row:
        if value is None:
            out.append("")
        elif isinstance(value, datetime):
            out.append(value.date().isoformat())
        elif isinstance(value, date):
            out.append(value.isoformat())
        elif isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            out.append(str(int(value)))
        else:
            out.append(str(value))
    return out
