"""Roster exports, written as a stream: XLSX (a sheet per assembly point), KML 2.2 and PFIF 1.4.

Each writer takes the roster's rows as an iterator (sorted by assembly point, vehicle and seat, the
unassigned last), writes them to the binary file-like ``out`` as they come and returns how many it
wrote, so a roster of any size is exported in bounded memory. ``columns`` are the row keys the
caller's role may see, and nothing else about a person is written. An assembly point's own name,
kind and location are not personal data and give the XLSX and KML files their shape (sheets,
folders), so they are written whatever ``columns`` says.
"""
from __future__ import annotations

import functools
import io
import math
import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timezone
from itertools import chain, groupby
from xml.sax.saxutils import escape, quoteattr

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel

NOT_ASSIGNED = "Not assigned"
EMPTY_ROSTER = "Roster"
KML_NS = "http://www.opengis.net/kml/2.2"
PFIF_NS = "http://zesty.ca/pfif/1.4"
AUTHOR = "Sagip"


def _point_groups(rows: Iterable[dict]) -> Iterator[tuple[dict, Iterator[dict]]]:
    """(first row, all rows) of each assembly point in turn, the unassigned (point id None) last.

    :raises ValueError: a point's rows are not together, or unassigned rows come before assigned ones
        (a sheet or folder already written cannot be reopened).
    """
    done: set = set()
    for point_id, group in groupby(rows, key=lambda row: row.get("assembly_point_id")):
        if point_id in done or None in done:
            raise ValueError("Roster rows must be grouped by assembly point, the unassigned last.")
        done.add(point_id)
        first = next(group)
        yield first, chain((first,), group)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("Datetimes in a roster export must be timezone-aware.")
    return moment.astimezone(timezone.utc)


# ---------------------------------------------------------------------- XLSX

_FORMULA_START = ("=", "+", "-", "@")
_EXCEL_CELL_CHARS = 32_767
_EXCEL_TITLE_UNITS = 31  # UTF-16 code units
_INVALID_TITLE = re.compile(r"[\[\]:*?/\\\x00-\x1f\x7f]")
_DEFAULT_WIDTH = 14
_WIDTHS = {  # characters; a header never gets less than its own length
    "national_id": 38, "household_id": 38, "assembly_point_id": 38, "family_name": 22, "given_names": 24,
    "native_name": 24, "sex": 5, "date_of_birth": 12, "priority": 9, "priority_label": 16, "zone": 8,
    "ring_km": 9, "distance_km": 12, "assembly_point": 30, "assembly_point_kind": 12, "vehicle": 9,
    "seat": 6, "lat": 11, "lon": 11, "phones": 32, "welfare_status": 17, "welfare_note": 40,
    "welfare_updated_at": 19, "unassigned_reason": 32, "host_country": 6, "city": 18, "vulnerabilities": 28,
}


def write_xlsx(out, meta: dict, columns: list[str], rows: Iterable[dict]) -> int:
    """A workbook with a sheet per assembly point, then "Not assigned"; no rows: one empty "Roster" sheet.

    Each sheet has a bold, frozen header row and an auto filter over its rows. The sheets' XML is written
    straight into the zip as the rows come (openpyxl's write-only mode did it at ~2,300 rows/s with
    ~25 cells a row; this writes the same workbook about ten times faster), so memory does not grow
    with the roster either. openpyxl reads the result back in the tests.
    """
    titles = _SheetTitles(reserved=(NOT_ASSIGNED, EMPTY_ROSTER))
    sheets: list[tuple[str, int]] = []
    count = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for first, group in _point_groups(rows):
            point_id = first.get("assembly_point_id")
            title = NOT_ASSIGNED if point_id is None else titles.unique(first.get("assembly_point")
                                                                        or f"Point {point_id}")
            written = _write_sheet(book, len(sheets) + 1, columns, group)
            sheets.append((title, written))
            count += written
        if not sheets:
            sheets.append((EMPTY_ROSTER, _write_sheet(book, 1, columns, iter(()))))
        _write_workbook(book, meta, columns, sheets)
    return count


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Cell styles (cellXfs): 0 plain, 1 bold (header), 2 text that must stay text (quotePrefix), 3 date, 4 date-time.
_STYLES = (_XML_HEAD + f'<styleSheet xmlns="{_MAIN_NS}">'
           '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
           '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
           '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
           '<fills count="2"><fill><patternFill patternType="none"/></fill>'
           '<fill><patternFill patternType="gray125"/></fill></fills>'
           '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
           '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
           '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
           '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
           '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>'
           '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
           '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
           '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')


def _write_sheet(book: zipfile.ZipFile, number: int, columns: list[str], rows: Iterable[dict]) -> int:
    letters = [get_column_letter(index) for index in range(1, len(columns) + 1)]
    widths = "".join(f'<col min="{i}" max="{i}" width="{max(_WIDTHS.get(key, _DEFAULT_WIDTH), len(key) + 3)}" '
                     'customWidth="1"/>' for i, key in enumerate(columns, 1))
    written = 0
    with book.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=True) as raw:
        sheet = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        sheet.write(f'{_XML_HEAD}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><sheetViews>'
                    '<sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
                    'state="frozen"/><selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView>'
                    '</sheetViews><sheetFormatPr defaultRowHeight="15"/>'
                    + (f"<cols>{widths}</cols>" if columns else "") + '<sheetData><row r="1">'
                    + "".join(f'<c r="{letter}1" t="inlineStr" s="1"><is><t>{_xml_text(key)}</t></is></c>'
                              for letter, key in zip(letters, columns)) + "</row>")
        for row in rows:
            written += 1
            line = written + 1
            sheet.write(f'<row r="{line}">' + "".join(
                _xlsx_cell(f"{letter}{line}", row.get(key)) for letter, key in zip(letters, columns)) + "</row>")
        sheet.write("</sheetData>" + (f'<autoFilter ref="A1:{letters[-1]}{written + 1}"/>' if columns else "")
                    + "</worksheet>")
        sheet.flush()
        sheet.detach()
    return written


def _xlsx_cell(reference: str, value) -> str:
    """One cell's XML; text that a spreadsheet could take for a formula stays text (quotePrefix)."""
    value = _xlsx_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return f'<c r="{reference}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float)):
        return f'<c r="{reference}"><v>{value!r}</v></c>'
    if isinstance(value, datetime):
        return f'<c r="{reference}" s="4"><v>{to_excel(value)!r}</v></c>'
    if isinstance(value, date):
        return f'<c r="{reference}" s="3"><v>{to_excel(value)!r}</v></c>'
    style = ' s="2"' if value.startswith(_FORMULA_START) else ""
    return f'<c r="{reference}" t="inlineStr"{style}><is><t xml:space="preserve">{_xml_text(value)}</t></is></c>'


def _xml_text(text: str) -> str:
    # A carriage return would be read back as a line feed: keep it as a character reference.
    return escape(text).replace("\r", "&#13;")


def _write_workbook(book: zipfile.ZipFile, meta: dict, columns: list[str], sheets: list[tuple[str, int]]) -> None:
    """The parts that name the sheets, written once the sheets are (zip entries come in any order)."""
    last = get_column_letter(len(columns)) if columns else "A"
    entries = "".join(f'<sheet name={quoteattr(title)} sheetId="{n}" r:id="rId{n}"/>'
                      for n, (title, _) in enumerate(sheets, 1))
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{n}" hidden="1">'
        f"{escape(_quoted_title(title))}!$A$1:${last}${rows + 1}</definedName>"
        for n, (title, rows) in enumerate(sheets) if columns)
    book.writestr("xl/workbook.xml", f'{_XML_HEAD}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
                                     f'<bookViews><workbookView/></bookViews><sheets>{entries}</sheets>'
                                     + (f"<definedNames>{filters}</definedNames>" if filters else "")
                                     + "</workbook>")
    relations = "".join(f'<Relationship Id="rId{n}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
                        for n in range(1, len(sheets) + 1))
    book.writestr("xl/_rels/workbook.xml.rels", f'{_XML_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/'
                                                f'package/2006/relationships">{relations}<Relationship '
                                                f'Id="rId{len(sheets) + 1}" Type="{_REL_NS}/styles" '
                                                'Target="styles.xml"/></Relationships>')
    book.writestr("xl/styles.xml", _STYLES)
    created = _utc(meta["generated_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    book.writestr("docProps/core.xml", f'{_XML_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/'
                                       'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/'
                                       '1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/'
                                       '2001/XMLSchema-instance">'
                                       f"<dc:title>{escape(meta['crisis_name'])}: roster {meta['roster_number']}"
                                       f"</dc:title><dc:creator>{AUTHOR}</dc:creator>"
                                       f'<dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created>'
                                       "</cp:coreProperties>")
    book.writestr("_rels/.rels", f'{_XML_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                 f'relationships"><Relationship Id="rId1" Type="{_REL_NS}/officeDocument" '
                                 'Target="xl/workbook.xml"/><Relationship Id="rId2" Type="http://schemas.'
                                 'openxmlformats.org/package/2006/relationships/metadata/core-properties" '
                                 'Target="docProps/core.xml"/></Relationships>')
    sheet_types = "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
                          'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                          for n in range(1, len(sheets) + 1))
    book.writestr("[Content_Types].xml", f'{_XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                                         'content-types"><Default Extension="rels" ContentType="application/'
                                         'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                                         'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                                         'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
                                         f'sheet.main+xml"/>{sheet_types}<Override PartName="/xl/styles.xml" '
                                         'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
                                         'styles+xml"/><Override PartName="/docProps/core.xml" ContentType='
                                         '"application/vnd.openxmlformats-package.core-properties+xml"/></Types>')


def _quoted_title(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _xlsx_value(value):
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return _xlsx_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):  # Excel has no time zones: UTC
        return _utc(value).replace(tzinfo=None)
    if isinstance(value, date):
        return value
    if isinstance(value, (list, tuple)):
        return _xlsx_text(";".join(str(item) for item in value))
    return _xlsx_text(str(value))


def _xlsx_text(text: str) -> str | None:
    return ILLEGAL_CHARACTERS_RE.sub("", text)[:_EXCEL_CELL_CHARS] or None


class _SheetTitles:
    """Valid sheet titles, unique as Excel compares them (ignoring case), the same for the same input."""

    def __init__(self, reserved: Iterable[str] = ()):
        self._used = {title.casefold() for title in (*reserved, "History")}  # Excel reserves "History"

    def unique(self, name: str) -> str:
        base = _title(name)
        title, number = base, 1
        while title.casefold() in self._used:
            number += 1
            suffix = f" ({number})"
            title = _fit(base, _EXCEL_TITLE_UNITS - len(suffix)).rstrip(" '") + suffix
        self._used.add(title.casefold())
        return title


def _title(name: str) -> str:
    """At most 31 UTF-16 units, none of []:*?/\\, not starting or ending with an apostrophe."""
    title = _INVALID_TITLE.sub(" ", name).strip(" '")
    return _fit(title, _EXCEL_TITLE_UNITS).rstrip(" '") or "Assembly point"


def _fit(text: str, units: int) -> str:
    text = text[:units]
    while len(text.encode("utf-16-le")) > 2 * units:
        text = text[:-1]
    return text


# ---------------------------------------------------------------------- XML (KML and PFIF)

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Any character that is not XML-safe as it stands: & < > \r, or not allowed in XML 1.0 at all.
_XML_UNSAFE = re.compile("[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(text: str) -> str:
    if _XML_UNSAFE.search(text) is None:  # most values: nothing to do
        return text
    return escape(_XML_ILLEGAL.sub("", text), {"\r": "&#13;"})


def _text(value) -> str | None:
    """A value as XML text: lists joined with ";", datetimes in UTC, floats round-tripping."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ";".join(str(item) for item in value)
    return str(value)


class _XmlStream:
    """UTF-8 text to a binary file-like, a chunk at a time."""

    CHUNK_CHARS = 1 << 16

    def __init__(self, out):
        self._out = out
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= self.CHUNK_CHARS:
            self.flush()

    def leaf(self, tag: str, value) -> None:
        """``<tag>value</tag>``, escaped; nothing when the value is None or empty."""
        text = _text(value)
        if text:
            self.write(f"<{tag}>{_escape(text)}</{tag}>")

    def flush(self) -> None:
        self._out.write("".join(self._parts).encode("utf-8"))
        self._parts, self._size = [], 0


def write_kml(out, meta: dict, columns: list[str], rows: Iterable[dict]) -> int:
    """A KML 2.2 Document: a Folder per assembly point (the point, then a Placemark per national), then
    "Not assigned". A national's Placemark has a Point only when the role may see its lat and lon."""
    xml = _XmlStream(out)
    xml.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="{KML_NS}"><Document>')
    xml.leaf("name", f"{meta['crisis_name']}: roster {meta['roster_number']}")
    xml.leaf("description", f"{meta['crisis_kind']}; exposure version {meta['exposure_version']}; "
                            f"generated {_text(meta['generated_at'])}")
    # Nationals small and unlabelled (there may be thousands); assembly points large and labelled.
    xml.write('<Style id="assembly-point"><IconStyle><scale>1.3</scale></IconStyle></Style>'
              '<Style id="national"><IconStyle><scale>0.6</scale></IconStyle>'
              '<LabelStyle><scale>0</scale></LabelStyle></Style>')
    _kml_data(xml, {key: meta[key] for key in ("crisis_id", "roster_id", "roster_number", "exposure_version",
                                               "generated_at")})
    count = 0
    for first, group in _point_groups(rows):
        xml.write("<Folder>")
        if first.get("assembly_point_id") is None:
            xml.leaf("name", NOT_ASSIGNED)
        else:
            _kml_assembly_point(xml, first)
        for row in group:
            _kml_national(xml, row, columns)
            count += 1
        xml.write("</Folder>")
    xml.write("</Document></kml>\n")
    xml.flush()
    return count


def _kml_assembly_point(xml: _XmlStream, row: dict) -> None:
    name = row.get("assembly_point") or f"Assembly point {row['assembly_point_id']}"
    xml.leaf("name", name)
    xml.write("<Placemark>")
    xml.leaf("name", name)
    xml.write("<styleUrl>#assembly-point</styleUrl>")
    _kml_data(xml, {"assembly_point_id": row["assembly_point_id"], "kind": row.get("assembly_point_kind")})
    _kml_point(xml, row.get("assembly_point_lon"), row.get("assembly_point_lat"))
    xml.write("</Placemark>")


def _kml_national(xml: _XmlStream, row: dict, columns: list[str]) -> None:
    xml.write("<Placemark>")
    xml.leaf("name", _display_name(row, columns))
    xml.write("<styleUrl>#national</styleUrl>")
    _kml_data(xml, {key: row.get(key) for key in columns})
    if "lat" in columns and "lon" in columns:
        _kml_point(xml, row.get("lon"), row.get("lat"))
    xml.write("</Placemark>")


def _kml_data(xml: _XmlStream, values: dict) -> None:
    parts = ["<ExtendedData>"]
    for key, value in values.items():
        text = _text(value)
        if text is not None:
            parts += (_data_tag(key), _escape(text), "</value></Data>")
    parts.append("</ExtendedData>")
    xml.write("".join(parts))


@functools.cache
def _data_tag(key: str) -> str:
    return f"<Data name={quoteattr(_XML_ILLEGAL.sub('', key))}><value>"


def _kml_point(xml: _XmlStream, lon, lat) -> None:
    """A Point at lon,lat (KML's order); none without both (KML 2.2 makes a Placemark's geometry optional)."""
    if isinstance(lon, (int, float)) and isinstance(lat, (int, float)) and math.isfinite(lon) and math.isfinite(lat):
        xml.write(f"<Point><coordinates>{float(lon)!r},{float(lat)!r}</coordinates></Point>")


def _display_name(row: dict, columns: list[str]) -> str:
    """"FAMILY, Given", else the native name, else the national id, each only if the role may see it."""
    def seen(key):
        return row.get(key) if key in columns else None
    name = ", ".join(part for part in (seen("family_name"), seen("given_names")) if part)
    return name or seen("native_name") or str(seen("national_id") or "National")


# ---------------------------------------------------------------------- PFIF

_PFIF_SEX = {"F": "female", "M": "male", "X": "other"}
_PFIF_STATUS = {
    "unknown": "information_sought", "missing": "believed_missing", "contacted": "believed_alive",
    "safe": "believed_alive", "needs_assistance": "believed_alive", "evacuated": "believed_alive",
    "repatriated": "believed_alive",
}
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
_APPROXIMATE_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def write_pfif(out, meta: dict, columns: list[str], rows: Iterable[dict]) -> int:
    """A PFIF 1.4 document: a person per row, holding one note with the person's welfare status.

    Fields come in the order of the PFIF 1.4 schema. The record ids are made from the national id
    whatever the columns (they are the records' identity). ``full_name`` is required: given and family
    names, else the native name, else (a role that may not see names) the national id. Phones,
    vulnerabilities and coordinates are never written: PFIF records are meant to be shared onwards.
    The note (only when the role may see the welfare status) maps it to a PFIF status, dated when the
    status was recorded (``welfare_updated_at``), and its text gives the exact status and the assignment.
    Optional ``meta["expiry_date"]`` and ``meta["source_url"]`` fill the persons' fields of those names.
    No rows: an empty document, which PFIF readers may refuse.
    """
    visible = frozenset(columns)
    stamp = _text(_utc(meta["generated_at"]))
    expiry = _text(_utc(meta["expiry_date"])) if meta.get("expiry_date") else None
    xml = _XmlStream(out)
    xml.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<pfif:pfif xmlns:pfif="{PFIF_NS}">\n')
    count = 0
    for row in rows:
        _pfif_person(xml, row, visible, meta, stamp, expiry)
        count += 1
    xml.write("</pfif:pfif>\n")
    xml.flush()
    return count


def _pfif_person(xml: _XmlStream, row: dict, visible: frozenset, meta: dict, stamp: str, expiry: str | None) -> None:
    def seen(key):
        return row.get(key) if key in visible else None
    national_id = str(row["national_id"])
    person_record_id = f"{meta['pfif_domain']}/{national_id}"
    given, family, native = seen("given_names"), seen("family_name"), seen("native_name")
    full_name = " ".join(part for part in (given, family) if part) or native or national_id
    country = (seen("host_country") or "").upper()
    birth = _text(seen("date_of_birth"))
    xml.write("<pfif:person>")
    xml.leaf("pfif:person_record_id", person_record_id)
    xml.leaf("pfif:entry_date", stamp)
    xml.leaf("pfif:expiry_date", expiry)
    xml.leaf("pfif:author_name", AUTHOR)
    xml.leaf("pfif:source_name", AUTHOR)
    xml.leaf("pfif:source_date", stamp)
    xml.leaf("pfif:source_url", meta.get("source_url"))
    xml.leaf("pfif:full_name", full_name)
    xml.leaf("pfif:given_name", given)
    xml.leaf("pfif:family_name", family)
    xml.leaf("pfif:alternate_names", native if native != full_name else None)
    xml.leaf("pfif:sex", _PFIF_SEX.get(seen("sex")))
    xml.leaf("pfif:date_of_birth", birth if birth and _APPROXIMATE_DATE.fullmatch(birth) else None)
    # PFIF's home_* fields are the address where the person lives and may be sought: abroad, the host city.
    xml.leaf("pfif:home_city", seen("city"))
    xml.leaf("pfif:home_country", country if _COUNTRY_CODE.fullmatch(country) else None)
    if seen("welfare_status"):
        _pfif_note(xml, row, seen, meta, person_record_id, stamp)
    xml.write("</pfif:person>\n")


def _pfif_note(xml: _XmlStream, row: dict, seen, meta: dict, person_record_id: str, stamp: str) -> None:
    status = seen("welfare_status")
    point = seen("assembly_point")
    updated_at = row.get("welfare_updated_at")  # when the status shown was recorded: not a personal detail
    xml.write("<pfif:note>")
    xml.leaf("pfif:note_record_id", f"{meta['pfif_domain']}/welfare.{meta['roster_id']}.{row['national_id']}")
    xml.leaf("pfif:person_record_id", person_record_id)
    xml.leaf("pfif:entry_date", stamp)
    xml.leaf("pfif:author_name", AUTHOR)
    xml.leaf("pfif:source_date", _text(updated_at) if isinstance(updated_at, datetime) else stamp)
    xml.leaf("pfif:status", _PFIF_STATUS.get(status, "information_sought"))
    xml.leaf("pfif:last_known_location", point or seen("city"))
    xml.leaf("pfif:text", _welfare_text(row, seen, status, point))
    xml.write("</pfif:note>")


def _welfare_text(row: dict, seen, status: str, point: str | None) -> str:
    parts = [f"Welfare status: {status}."]
    if point:
        places = [f"{label} {value}" for label, value in (("vehicle", seen("vehicle")), ("seat", seen("seat")))
                  if value is not None]
        parts.append(f"Assembly point: {point}" + (f" ({', '.join(places)})." if places else "."))
    elif row.get("assembly_point_id") is None and seen("unassigned_reason"):
        parts.append(f"Not assigned: {seen('unassigned_reason')}.")
    if seen("welfare_note"):
        parts.append(f"Note: {seen('welfare_note')}")
    return " ".join(parts)
