"""Import files that cannot poison a worker: bounded reading, unusable cells as row errors (SPEC §4.2).

The reader tests need no database; the end-to-end ones go through POST /imports and the real worker.
"""
from __future__ import annotations

import csv
import io
import struct
import subprocess
import sys
import zipfile
import zlib
from datetime import date, datetime, time

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from registry.imports.reader import FileTooLarge, NotASpreadsheet, ReadLimits, Row, TooManyRows, open_rows
from registry.imports.rows import COLUMNS, RowValidator, UnknownColumns
from tests.conftest import count
from tests.test_imports import csv_bytes, row, upload, wait_for_job

MIB = 1024 * 1024
TOO_LONG = "Longer than 10,000 characters, the most one cell may hold."


def read(data: bytes, **limits) -> tuple[list[str], list[Row]]:
    header, rows, _ = open_rows(data, ReadLimits(**limits))
    return header, list(rows)


@pytest.fixture
def default_csv_field_limit():
    """The csv module's own field limit as a worker has it (the migrations raise it in this process)."""
    before = csv.field_size_limit(131_072)
    yield
    csv.field_size_limit(before)


# --- building workbooks by hand ------------------------------------------------------------------------

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def xlsx_parts(sheet_data: str, *, shared: str | None = None, styles: str | None = None, workbook_pr: str = "",
               dimension: str = "") -> dict[str, bytes]:
    """A minimal workbook. Its parts have names Excel does not use: the reader must follow the relationships."""
    related = [("rId7", "worksheet", "sheets/people.xml")]
    if shared is not None:
        related.append(("rId8", "sharedStrings", "texts.xml"))
    if styles is not None:
        related.append(("rId9", "styles", "looks.xml"))
    types = {"book/main.xml": "sheet.main", "book/sheets/people.xml": "worksheet",
             "book/texts.xml": "sharedStrings", "book/looks.xml": "styles"}
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                               '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                               'relationships+xml"/>' + "".join(
            f'<Override PartName="/{name}" ContentType="application/vnd.openxmlformats-officedocument.'
            f'spreadsheetml.{kind}+xml"/>' for name, kind in types.items()) + "</Types>",
        "_rels/.rels": f'<Relationships xmlns="{PACKAGE_REL}"><Relationship Id="rId1" '
                       f'Type="{OFFICE_REL}/officeDocument" Target="book/main.xml"/></Relationships>',
        "book/main.xml": f'<workbook xmlns="{MAIN}" xmlns:r="{OFFICE_REL}">{workbook_pr}<sheets>'
                         '<sheet name="People" sheetId="1" r:id="rId7"/></sheets></workbook>',
        "book/_rels/main.xml.rels": f'<Relationships xmlns="{PACKAGE_REL}">' + "".join(
            f'<Relationship Id="{rid}" Type="{OFFICE_REL}/{kind}" Target="{target}"/>'
            for rid, kind, target in related) + "</Relationships>",
        "book/sheets/people.xml": f'<worksheet xmlns="{MAIN}">{dimension}<sheetData>{sheet_data}</sheetData>'
                                  "</worksheet>",
    }
    if shared is not None:
        parts["book/texts.xml"] = f'<sst xmlns="{MAIN}">{shared}</sst>'
    if styles is not None:
        parts["book/looks.xml"] = f'<styleSheet xmlns="{MAIN}">{styles}</styleSheet>'
    return {name: value.encode() for name, value in parts.items()}


def zip_parts(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in parts.items():
            archive.writestr(name, value)
    return buffer.getvalue()


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def raw_zip(entries: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip written byte by byte: (name, deflated data, its CRC-32, the uncompressed size it declares).

    Lets a member lie: declare a size its data does not have, or hold data that is not deflate at all.
    """
    out, directory = io.BytesIO(), io.BytesIO()
    for name, data, crc, declared in entries:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), declared,
                              len(encoded), 0) + encoded + data)
        directory.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data),
                                    declared, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    start = out.tell()
    out.write(directory.getvalue())
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory.getvalue()),
                          start, 0))
    return out.getvalue()


def honest(name: str, data: bytes) -> tuple[str, bytes, int, int]:
    return name, deflate(data), zlib.crc32(data), len(data)


def workbook_bytes(*rows, number_formats: dict[str, str] | None = None, epoch_1904: bool = False) -> bytes:
    book = Workbook()
    if epoch_1904:
        from openpyxl.utils.datetime import CALENDAR_MAC_1904
        book.epoch = CALENDAR_MAC_1904
    sheet = book.active
    for values in rows:
        sheet.append(list(values))
    for ref, number_format in (number_formats or {}).items():
        sheet[ref].number_format = number_format
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- zip bombs and lying members --------------------------------------------------------------------------

def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_inflated(monkeypatch):
    # The members declare 300 MiB each, and their data is not deflate at all: inflating any of them
    # (even the small workbook parts) would fail with a damaged-file error, not the size refusal.
    garbage = b"\xff" * 64
    parts = xlsx_parts('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>')
    bomb = raw_zip([(name, garbage, 0, 300 * MIB) for name in parts])
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **kw: opened.append(a) or real_open(self, *a, **kw))
    with pytest.raises(FileTooLarge) as refused:
        read(bomb)
    assert f"{300 * len(parts):,} MiB" in refused.value.detail and "512 MiB" in refused.value.detail
    assert refused.value.code == "file-too-large" and opened == []


def test_a_real_zip_bomb_is_refused_by_its_declared_size():
    strings = b"<si><t>" + b"A" * 40 + b"</t></si>"
    shared = b"".join([strings] * (40 * MIB // len(strings)))
    parts = xlsx_parts('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', shared="")
    parts["book/texts.xml"] = b'<sst xmlns="' + MAIN.encode() + b'">' + shared + b"</sst>"
    bomb = zip_parts(parts)
    assert len(bomb) < MIB / 2  # 40 MiB of strings in a few hundred KB
    with pytest.raises(FileTooLarge) as refused:
        read(bomb, max_uncompressed_bytes=16 * MIB)
    assert "16 MiB" in refused.value.detail


def test_shared_strings_larger_than_memory_allows_are_refused_before_they_are_opened():
    parts = xlsx_parts('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', shared="<si><t>family_name</t></si>")
    entries = [honest(name, data) for name, data in parts.items() if name != "book/texts.xml"]
    entries.append(("book/texts.xml", b"\xff" * 64, 0, 200 * MIB))  # not deflate: opening it would fail
    with pytest.raises(FileTooLarge) as refused:
        read(raw_zip(entries))
    assert "shared strings" in refused.value.detail and "128 MiB" in refused.value.detail


def test_zipfile_never_yields_more_than_a_member_declares():
    data = b"0123456789" * 100_000  # inflates to 1,000,000 bytes, declares 100
    # With the CRC of the first 100 bytes, zipfile reads exactly those and stops.
    archive = zipfile.ZipFile(io.BytesIO(raw_zip([("big.xml", deflate(data), zlib.crc32(data[:100]), 100)])))
    with archive.open("big.xml") as member:
        assert member.read() == data[:100]
    # With the whole data's CRC, the read that reaches the declared end fails: no byte beyond it either.
    archive = zipfile.ZipFile(io.BytesIO(raw_zip([("big.xml", deflate(data), zlib.crc32(data), 100)])))
    got = []
    with pytest.raises(zipfile.BadZipFile):
        with archive.open("big.xml") as member:
            while chunk := member.read(10):
                got.append(chunk)
    assert len(b"".join(got)) <= 100


def test_a_sheet_that_inflates_beyond_its_declared_size_is_refused_not_read():
    rows = "".join(f'<row r="{n}"><c t="inlineStr"><is><t>name{n}</t></is></c></row>' for n in range(1, 50_001))
    parts = xlsx_parts(rows)
    sheet = parts.pop("book/sheets/people.xml")
    entries = [honest(name, data) for name, data in parts.items()]
    entries.append(("book/sheets/people.xml", deflate(sheet), zlib.crc32(sheet[:2000]), 2000))  # declares 2,000
    seen = []
    with pytest.raises(NotASpreadsheet) as refused:
        header, rows_read, _ = open_rows(raw_zip(entries), ReadLimits())
        seen.extend(rows_read)
    assert "first sheet" in refused.value.detail
    assert len(seen) < 2000 / len('<row r="1"><c t="inlineStr"><is><t>name1</t></is></c></row>')


def test_a_dtd_in_a_workbook_part_is_refused():
    parts = xlsx_parts('<row r="1"><c r="A1" t="inlineStr"><is><t>&boom;</t></is></c></row>')
    sheet = parts["book/sheets/people.xml"].decode()
    parts["book/sheets/people.xml"] = ('<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY boom "family_name">]>'
                                       + sheet).encode()
    with pytest.raises(NotASpreadsheet) as refused:
        read(zip_parts(parts))
    assert "DTD" in refused.value.detail


def test_openpyxl_is_not_used_to_read_imports():
    data = workbook_bytes(["family_name", "given_names"], ["Santos", "Juan"])
    program = ("import sys; from registry.imports.reader import ReadLimits, open_rows; "
               "h, rows, _ = open_rows(sys.stdin.buffer.read(), ReadLimits()); print(h, list(rows)); "
               "print('openpyxl' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", program], input=data, capture_output=True, check=True)
    assert done.stdout.decode().splitlines()[-1] == "False", done.stdout


# --- what an XLSX holds, read as a CSV would hold it -------------------------------------------------------

def test_an_xlsx_written_by_openpyxl_reads_back_as_a_csv_would_hold_it():
    data = workbook_bytes(
        ["family_name", "date_of_birth", "lat", "occupation_isco", "active", "contract_start", "t", None],
        ["Santos", date(1979, 5, 6), 25.2854, 7112, True, datetime(2025, 1, 15, 8, 30), time(12, 30), None],
        ["Reyes", None, -3.0, 7112.0, False, 45000, None, "beyond the header"],
        [None, None, None, None, None, None, None, None],  # blank: left out, still counted
        [None, None, 1e20, 1234.5, None, None, None, None],
        number_formats={"F3": "dd/mm/yyyy"})
    header, rows = read(data)
    assert header == ["family_name", "date_of_birth", "lat", "occupation_isco", "active", "contract_start", "t"]
    assert rows == [
        Row(2, ["Santos", "1979-05-06", "25.2854", "7112", "TRUE", "2025-01-15", "12:30:00"]),
        Row(3, ["Reyes", "", "-3", "7112", "FALSE", "2023-03-15", ""]),
        Row(5, ["", "", "1e+20", "1234.5", "", "", ""]),
    ]


def test_dates_of_a_1904_workbook_read_right():
    header, rows = read(workbook_bytes(["date_of_birth"], [date(1990, 4, 12)], epoch_1904=True))
    assert rows == [Row(2, ["1990-04-12"])]


def test_inline_strings_rich_text_sparse_cells_and_other_cell_types_are_read():
    shared = ('<si><t>family_name</t></si>'
              '<si><r><t>given</t></r><r><rPr><b/></rPr><t>_names</t></r><rPh sb="0" eb="1"><t>ignored</t></rPh></si>'
              '<si><t>Dela Cruz</t></si><si><t>line_x000D_break</t></si>')
    styles = ('<numFmts count="1"><numFmt numFmtId="170" formatCode="[$-409]d\\-mmm\\-yyyy;@"/></numFmts>'
              '<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>'
              '<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="170"/>'
              '<xf numFmtId="4"/></cellXfs>')
    sheet = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="inlineStr">'
        '<is><t>date_of_birth</t></is></c><c r="D1" t="inlineStr"><is><r><t>contract</t></r><r><t>_start</t></r>'
        '</is></c><c r="E1" t="inlineStr"><is><t>note</t></is></c><c r="F1" t="inlineStr"><is><t>lat</t></is></c>'
        '<c r="G1" t="inlineStr"><is><t>ok</t></is></c></row>'
        # r attributes left out: the cells and rows follow on
        '<row><c t="s"><v>2</v></c><c t="inlineStr"><is><t> Maria </t></is></c><c s="1"><v>32975</v></c>'
        '<c s="2"><v>45672</v></c><c t="e"><v>#N/A</v></c><c s="3"><v>25.5</v></c><c t="b"><v>1</v></c></row>'
        '<row r="9"><c r="D9" t="d"><v>2025-01-15T00:00:00</v></c><c r="A9" t="s"><v>3</v></c>'
        '<c r="C9" s="1"><v>59</v></c></row>'
    )
    header, rows = read(zip_parts(xlsx_parts(sheet, shared=shared, styles=styles,
                                             dimension='<dimension ref="A1:G9"/>')))
    assert header == ["family_name", "given_names", "date_of_birth", "contract_start", "note", "lat", "ok"]
    assert rows == [Row(2, ["Dela Cruz", " Maria ", "1990-04-12", "2025-01-15", "#N/A", "25.5", "TRUE"]),
                    Row(9, ["line\rbreak", "", "1900-02-28", "2025-01-15", "", "", ""])]


def test_formulas_and_unusable_cells_of_an_xlsx_are_row_problems():
    sheet = ('<row r="1"><c r="A1" t="inlineStr"><is><t>family_name</t></is></c>'
             '<c r="B1" t="inlineStr"><is><t>city</t></is></c></row>'
             '<row r="2"><c r="A2" t="inlineStr"><is><t>Santos</t></is></c><c r="B2" t="str"><f>A2&amp;"x"</f>'
             '<v>Santosx</v></c></row>'
             '<row r="3"><c r="A3" t="s"><v>99</v></c><c r="B3" t="inlineStr"><is><t>Doha</t></is></c></row>'
             '<row r="4"><c r="A4" t="inlineStr"><is><t>bad_x0000_text</t></is></c></row>'
             '<row r="5"><c r="A5" t="inlineStr"><is><t>Reyes</t></is></c></row>')
    header, rows = read(zip_parts(xlsx_parts(sheet, shared="")))
    assert rows == [
        Row(2, ["Santos", ""], (("city", "Formulas are not accepted: type the value."),)),
        Row(3, ["", "Doha"], (("family_name", "Refers to a shared string the workbook does not have."),)),
        Row(4, ["", ""], (("family_name", "Holds characters that are not text (NUL or a lone surrogate)."),)),
        Row(5, ["Reyes", ""]),
    ]


def test_an_over_long_xlsx_cell_is_a_problem_of_its_row_not_its_text():
    data = workbook_bytes(["family_name", "address"], ["Santos", "x" * 140_000], ["Reyes", "Doha"])
    header, rows = read(data)
    assert rows == [Row(2, ["Santos", ""], (("address", TOO_LONG),)),
                    Row(3, ["Reyes", "Doha"])]


# --- CSV: encodings, formulas, separators, long cells ------------------------------------------------------

def test_latin1_rows_are_row_problems_and_utf8_rows_are_read():
    data = "family_name,given_names\n".encode() + "Peña,Juan\n".encode("latin-1") + "Peña,José\n".encode()
    header, rows = read(data)
    assert rows == [Row(2, ["", "Juan"], (("family_name", "Not UTF-8 text: save the file as CSV UTF-8."),)),
                    Row(3, ["Peña", "José"])]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_and_bom_files_are_decoded(encoding):
    text = "family_name,given_names,native_name\r\nDela Cruz,María,一\r\n\u0645\u0631\u064a\u0645,Juan,\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16":
        assert data[:2] == b"\xff\xfe"  # little-endian, with its BOM
    header, rows = read(data)
    assert header == ["family_name", "given_names", "native_name"]
    assert rows == [Row(2, ["Dela Cruz", "María", "一"]), Row(3, ["\u0645\u0631\u064a\u0645", "Juan", ""])]


@pytest.mark.parametrize("data", [b"\x00\x01binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
                                  b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512],
                         ids=["nul-bytes", "png", "xls-or-encrypted"])
def test_binary_files_are_refused_whole(data):
    with pytest.raises(NotASpreadsheet):
        read(data)


def test_formulas_and_stray_separators_are_row_problems():
    data = (b"family_name,given_names,city\n"
            b"Santos,Juan,=HYPERLINK(\"http://x\")\n"
            b"Reyes,Ana,Dubai, UAE\n"
            b"Cruz,Jo,Doha,\n"  # a trailing separator adds an empty cell: fine
            b"Lim,Li,Doha\n")
    header, rows = read(data)
    assert rows == [
        Row(2, ["Santos", "Juan", ""], (("city", "Formulas are not accepted: type the value."),)),
        Row(3, ["Reyes", "Ana", "Dubai", " UAE"],
            (("row", "4 values but the header names 3 columns: a separator inside an unquoted value?"),)),
        Row(4, ["Cruz", "Jo", "Doha", ""]),
        Row(5, ["Lim", "Li", "Doha"]),
    ]


def test_a_csv_cell_over_the_limit_is_a_row_problem_naming_its_column(default_csv_field_limit):
    data = b"family_name,address\nSantos," + b"x" * 140_000 + b"\nReyes,Doha\n"
    header, rows = read(data)
    assert rows == [Row(2, ["Santos", ""], (("address", TOO_LONG),)),
                    Row(3, ["Reyes", "Doha"])]


def test_a_header_that_cannot_name_columns_refuses_the_file():
    with pytest.raises(NotASpreadsheet) as refused:
        read("famil\xeda_name,given_names\nSantos,Juan\n".encode("latin-1"))
    assert "first row must name the columns" in refused.value.detail and "\xed" not in refused.value.detail


# --- row limits --------------------------------------------------------------------------------------------

def test_too_many_csv_rows_are_refused_while_reading_naming_the_limit():
    header, rows, _ = open_rows(b"family_name\n" + b"Santos\n" * 4, ReadLimits(max_rows=3))
    assert [next(rows).number for _ in range(3)] == [2, 3, 4]
    with pytest.raises(TooManyRows) as refused:
        next(rows)
    assert "more than 3 rows" in refused.value.detail and "split" in refused.value.detail


def test_an_xlsx_declaring_too_many_rows_is_refused_before_any_row_is_read():
    sheet = '<row r="1"><c r="A1" t="inlineStr"><is><t>family_name</t></is></c></row>'
    with pytest.raises(TooManyRows) as refused:
        open_rows(zip_parts(xlsx_parts(sheet, dimension='<dimension ref="A1:AB1000002"/>')), ReadLimits())
    assert "1,000,000" in refused.value.detail


def test_an_xlsx_without_a_dimension_is_refused_when_its_rows_pass_the_limit():
    data = workbook_bytes(["family_name"], ["Santos"], ["Reyes"], ["Cruz"])
    parts = {name: archive_member for name, archive_member in _unzip(data).items()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    parts["xl/worksheets/sheet1.xml"] = sheet.replace('<dimension ref="A1:A4"/>', "").encode()
    assert b"dimension" not in parts["xl/worksheets/sheet1.xml"]
    header, rows, _ = open_rows(zip_parts(parts), ReadLimits(max_rows=2))
    assert next(rows) == Row(2, ["Santos"]) and next(rows) == Row(3, ["Reyes"])
    with pytest.raises(TooManyRows):
        next(rows)


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- the validator: no personal data in its errors ---------------------------------------------------------

def test_a_headerless_first_row_is_refused_without_quoting_it():
    with pytest.raises(UnknownColumns) as refused:
        RowValidator(["Santos", "Juan", "M", "1988-03-01", "PH", "QA"])
    message = str(refused.value.to_dict())
    assert "template.csv" in message and "header row" in message
    assert "Santos" not in message and "Juan" not in message and "1988" not in message


def test_unknown_columns_are_quoted_cut_when_the_required_ones_are_present():
    header = ["family_name", "given_names", "sex", "date_of_birth", "nationality", "host_country", "c" * 100]
    with pytest.raises(UnknownColumns) as refused:
        RowValidator(header)
    assert repr("c" * 40) in refused.value.detail and "c" * 41 not in str(refused.value.to_dict())


def test_unknown_vulnerabilities_are_reported_by_position_not_text():
    validator = RowValidator(list(COLUMNS))
    values = row(vulnerabilities="pregnant;HIV positive;depressed")
    _, errors = validator.validate(Row(2, [values.get(c, "") for c in COLUMNS]))
    assert [field for field, _ in errors] == ["vulnerabilities", "vulnerabilities"]
    assert errors[0][1].startswith("Item 2: unknown") and errors[1][1].startswith("Item 3: unknown")
    assert "HIV" not in str(errors) and "depressed" not in str(errors)


# --- end to end: POST /imports and the real worker ---------------------------------------------------------

def stored_job(db, job_id) -> str:
    """The job's row as the database holds it (result and error), as text."""
    return db.session.execute(text("SELECT concat(result::text, ' ', error::text) FROM jobs WHERE id = :id"),
                              {"id": job_id}).scalar()


def test_a_140000_character_cell_rejects_its_row_and_the_others_are_created(client, desk, db, celery_worker,
                                                                             default_csv_field_limit):
    rows = [row(passport_number="P9100001A"), row(passport_number="P9100002A", address="Q" * 140_000),
            row(passport_number="P9100003A")]
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    assert job["status"] == "succeeded", job
    assert (job["result"]["created"], job["result"]["rejected"]) == (2, 1)
    assert job["result"]["errors"] == [{"row": 3, "field": "address",
                                        "message": TOO_LONG}]
    assert count(db, "nationals") == 2 and "QQQQ" not in stored_job(db, job["id"])


def test_latin1_rows_are_rejected_and_utf8_rows_created(client, desk, db, celery_worker):
    rows = [row(passport_number="P9200001A", given_names="José"), row(passport_number="P9200002A", family_name="Peña")]
    data = csv_bytes(rows).replace("Peña".encode(), "Peña".encode("latin-1"))  # one row saved as Latin-1
    job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
    assert job["status"] == "succeeded", job
    assert (job["result"]["created"], job["result"]["rejected"]) == (1, 1)
    assert job["result"]["errors"] == [{"row": 3, "field": "family_name",
                                        "message": "Not UTF-8 text: save the file as CSV UTF-8."}]
    assert db.session.execute(text("SELECT given_names FROM nationals")).scalar() == "José"


def test_a_utf16_csv_with_a_bom_imports(client, desk, db, celery_worker):
    data = csv_bytes([row(passport_number="P9300001A", given_names="María")]).decode().encode("utf-16")
    job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
    assert job["status"] == "succeeded" and job["result"]["created"] == 1, job
    assert db.session.execute(text("SELECT given_names FROM nationals")).scalar() == "María"


def test_formulas_and_a_stray_separator_are_row_errors_of_an_import(client, desk, db, celery_worker):
    rows = [row(passport_number="P9400001A", city='=HYPERLINK("http://example.org")'),
            row(passport_number="P9400002A"), row(passport_number="P9400003A")]
    data = csv_bytes(rows).replace(b"P9400003A", b"P94000,03A")  # an unquoted separator
    job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
    assert job["status"] == "succeeded", job
    assert (job["result"]["created"], job["result"]["rejected"]) == (1, 2)
    assert [(e["row"], e["field"]) for e in job["result"]["errors"]] == [(2, "city"), (4, "row")]
    assert "separator" in job["result"]["errors"][1]["message"]


def test_unknown_vulnerabilities_never_reach_the_stored_job(client, desk, db, celery_worker):
    rows = [row(passport_number="P9500001A", vulnerabilities="pregnant;HIV positive, depressed"),
            row(passport_number="P9500002A")]
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    assert (job["result"]["created"], job["result"]["rejected"]) == (1, 1), job
    assert job["result"]["errors"][0]["field"] == "vulnerabilities"
    assert "HIV" not in stored_job(db, job["id"]) and "depressed" not in stored_job(db, job["id"])


def test_a_headerless_files_first_row_never_reaches_the_stored_job(client, desk, db, celery_worker):
    data = b"Santillan,Juanito,M,1988-03-01,PH,P9600001A,QA\nReyes,Ana,F,1990-01-01,PH,P9600002A,QA\n"
    job = wait_for_job(client, desk, upload(client, desk, data).get_json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "unknown-columns", job
    assert "template.csv" in job["error"]["message"]
    kept = stored_job(db, job["id"])
    assert "template.csv" in kept
    assert not any(value in kept for value in ("Santillan", "Juanito", "1988-03-01", "P9600001A"))
    assert count(db, "import_files") == 0


def test_a_file_over_the_row_limit_fails_its_job_and_keeps_nothing(app, client, desk, db, celery_worker,
                                                                    monkeypatch):
    # The worker runs in this process with the session's app: its limit and batch size are this test's.
    monkeypatch.setitem(app.config, "REGISTRY_IMPORT_MAX_ROWS", 3)
    monkeypatch.setattr("registry.imports.services.BATCH_ROWS", 2)  # a batch is stored before the refusal
    rows = [row(passport_number=f"P970000{n}A") for n in range(1, 6)]
    job = wait_for_job(client, desk, upload(client, desk, csv_bytes(rows)).get_json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "too-many-rows", job
    assert "more than 3 rows" in job["error"]["message"]
    assert count(db, "nationals") == 0 and count(db, "import_files") == 0


def test_a_zip_bomb_upload_fails_its_job_with_the_reason(app, client, desk, db, celery_worker, monkeypatch):
    monkeypatch.setitem(app.config, "REGISTRY_IMPORT_MAX_UNCOMPRESSED_BYTES", 16 * MIB)
    parts = xlsx_parts('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', shared="")
    strings = b"<si><t>" + b"A" * 40 + b"</t></si>"
    parts["book/texts.xml"] = (b'<sst xmlns="' + MAIN.encode() + b'">'
                               + strings * (40 * MIB // len(strings)) + b"</sst>")
    job = wait_for_job(client, desk, upload(client, desk, zip_parts(parts), "people.xlsx").get_json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "file-too-large", job
    assert "16 MiB" in job["error"]["message"]
    assert count(db, "import_files") == 0


def test_assembly_point_rows_the_reader_cannot_use_are_rejected_and_the_others_created(client, make_user, db,
                                                                                       celery_worker):
    _, coordinator = make_user("coordinator")
    csv_text = ("name,kind,lat,lon,capacity,country,active\n"
                "Embassy Abu Dhabi,embassy,24.4539,54.3773,400,AE,true\n"
                "=cmd|' /C calc'!A0,shelter,25.2,55.3,10,AE,\n"
                "Dubai airport,airport,25.2532,55.3657,2000,AE,\n")
    response = client.post("/api/v1/assembly-points/import", headers=coordinator,
                           content_type="multipart/form-data",
                           data={"file": (io.BytesIO(csv_text.encode()), "points.csv")})
    assert response.status_code == 202, response.get_json()
    result = wait_for_job(client, coordinator, response.get_json()["job_id"])["result"]
    assert (result["created"], result["rejected"]) == (2, 1)
    assert result["errors"] == [{"row": 3, "field": "name", "message": "Formulas are not accepted: type the value."}]
    assert count(db, "assembly_points") == 2
