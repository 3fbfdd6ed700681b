"""Reading an import file (CSV with a header row, or the first sheet of an XLSX) into rows, within limits.

The file is not trusted. An XLSX is a zip whose declared sizes are checked
before any member is inflated (Python's zipfile never yields more than a
member declares), then read as a stream: the shared strings packed in
memory under a character budget, the sheet row by row. A CSV is decoded as
it is read. A cell that cannot be used makes its row a problem row; only a
file that cannot be read at all is refused. No message quotes the file's
text: it is personal data.
"""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import posixpath
import re
import struct
import zipfile
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from lxml import etree

from registry.errors import Unprocessable

MIB = 1024 * 1024


class NotASpreadsheet(Unprocessable):
    code, title = "not-a-spreadsheet", "The file is neither a CSV nor an XLSX spreadsheet"


class FileTooLarge(Unprocessable):
    code, title = "file-too-large", "The file is larger than an import may be"


class TooManyRows(Unprocessable):
    code, title = "too-many-rows", "The file has more rows than an import may have"


@dataclass(frozen=True)
class ReadLimits:
    max_rows: int = 1_000_000
    max_uncompressed_bytes: int = 512 * MIB  # XLSX: the sum of the members' declared sizes; CSV: the bytes
    max_cell_chars: int = 10_000
    # XLSX parts held whole in memory (shared strings, styles, workbook, relationships).
    max_held_part_bytes: int = 128 * MIB

    @classmethod
    def from_config(cls, config) -> ReadLimits:
        return cls(max_rows=config["REGISTRY_IMPORT_MAX_ROWS"],
                   max_uncompressed_bytes=config["REGISTRY_IMPORT_MAX_UNCOMPRESSED_BYTES"],
                   max_cell_chars=config["REGISTRY_IMPORT_MAX_CELL_CHARS"])


class Row(NamedTuple):
    """A data row: its number as a spreadsheet numbers it (the header is row 1), its cells as text, and
    ``(column name or "row", message)`` for the cells that cannot be used (those cells are emptied)."""
    number: int
    cells: list[str]
    problems: tuple[tuple[str, str], ...] = ()


def open_rows(data: bytes, limits: ReadLimits) -> tuple[list[str], Iterator[Row], int]:
    """Header, data rows (blank rows left out) and an estimate of the row count.

    :raises NotASpreadsheet, FileTooLarge, TooManyRows: here, or later while the rows are read.
    """
    if data[:4] == b"PK\x03\x04":
        return _Workbook(data, limits).open_rows()
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise NotASpreadsheet("The file is an old Excel (.xls) workbook or a password-protected one: save it "
                              "as XLSX without a password, or as CSV UTF-8.")
    return _csv_rows(data, limits)


def read_start(data: bytes, limits: ReadLimits) -> list[str] | None:
    """What a file's start tells at once, without reading its rows: a CSV's header, or None for an XLSX
    (only its zip directory and declared sizes are checked; its header is in the sheet, read by a worker).

    :raises NotASpreadsheet, FileTooLarge: as ``open_rows`` would, from the same bytes.
    """
    if data[:4] == b"PK\x03\x04":
        _Workbook(data, limits)
        return None
    header, _rows, _estimate = open_rows(data, limits)  # a CSV: the header line only (rows are a generator)
    return header


def _too_many_rows(limits: ReadLimits) -> TooManyRows:
    return TooManyRows(f"The file has more than {limits.max_rows:,} rows below its header, the most one import "
                       f"may have: split it into files of at most {limits.max_rows:,} rows, each with the header "
                       "row.")


FORMULA = "Formulas are not accepted: type the value."
NOT_UTF8 = "Not UTF-8 text: save the file as CSV UTF-8."
NOT_TEXT = "Holds characters that are not text (NUL or a lone surrogate)."


def _column(header: list[str], index: int) -> tuple[str, str]:
    """The field a problem of the cell at ``index`` is reported on, and a prefix naming the column when
    the header does not."""
    name = header[index] if index < len(header) else ""
    return (name, "") if name else ("row", f"Column {index + 1}: ")


def _too_long(limits: ReadLimits) -> str:
    return f"Longer than {limits.max_cell_chars:,} characters, the most one cell may hold."


# --- CSV -------------------------------------------------------------------------------------------------

# An undecodable byte (surrogateescape) or a lone UTF-16 surrogate.
_UNDECODABLE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _mark_undecodable(error: UnicodeDecodeError) -> tuple[str, int]:
    """For UTF-16 (surrogateescape cannot stand for bytes below 0x80): a lone surrogate the rows detect."""
    return "\udcff", error.end


codecs.register_error("sagip.undecodable", _mark_undecodable)


def _csv_rows(data: bytes, limits: ReadLimits):
    if len(data) > limits.max_uncompressed_bytes:
        raise FileTooLarge(f"The file is {len(data) / MIB:,.0f} MiB, more than the limit of "
                           f"{limits.max_uncompressed_bytes / MIB:,.0f} MiB: split it.")
    sample = data[:65536]
    encoding, errors = _utf16(sample), "sagip.undecodable"
    if encoding is None:
        if b"\x00" in sample:
            raise NotASpreadsheet("The file is binary: upload a CSV (UTF-8) or an XLSX file.")
        encoding, errors = "utf-8-sig", "surrogateescape"
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors=errors, newline="")
    first_line = stream.readline()
    # The csv module's own cap on a field (131,072 characters by default) would stop the whole file at
    # one long cell; the cell limit is applied per row below instead. Process-wide, only ever raised.
    if csv.field_size_limit() < len(data) + 1:
        csv.field_size_limit(len(data) + 1)
    reader = csv.reader(itertools.chain((first_line,), stream), delimiter=_delimiter(first_line))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise NotASpreadsheet("The file is empty: the first row must name the columns.")
    header = [h.strip() for h in header]
    for index, name in enumerate(header):
        problem = _cell_problem(name, limits) if name else None
        if problem:
            raise _refuse_header(f"Column {index + 1}: {problem}")
    return header, _csv_data_rows(reader, header, limits), max(data.count(b"\n") - 1, 1)


def _utf16(sample: bytes) -> str | None:
    """'utf-16' (a BOM), 'utf-16-le' or '-be' when the NULs say so and the sample decodes to text, else None."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" not in sample:
        return None
    sample = sample[:len(sample) & ~1]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    encoding = "utf-16-le" if odd > 2 * even else "utf-16-be" if even > 2 * odd else None
    if encoding is None:
        return None
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else encoding


def _delimiter(first_line: str) -> str:
    """',' unless the header row is clearly separated by ';' (European Excel) or tabs."""
    return max((",", ";", "\t"), key=first_line.count)


def _csv_data_rows(reader, header: list[str], limits: ReadLimits) -> Iterator[Row]:
    width, max_chars, last_number = len(header), limits.max_cell_chars, limits.max_rows + 1
    number = 1
    for cells in reader:
        number += 1
        if number > last_number:
            raise _too_many_rows(limits)
        if not any(cells):
            continue
        # One cheap test per row; the cells are looked at one by one only when it finds something.
        joined = "\x1f".join(cells)
        if (len(joined) > max_chars or len(cells) > width or "=" in joined or "\x00" in joined
                or not joined.isascii() and _UNDECODABLE.search(joined)):
            problems = _csv_cell_problems(cells, header, limits)
            if problems:
                yield Row(number, cells, problems)
                continue
        yield Row(number, cells)


def _cell_problem(cell: str, limits: ReadLimits) -> str | None:
    """Why a CSV cell cannot be used, or None."""
    if len(cell) > limits.max_cell_chars:
        return _too_long(limits)
    if _UNDECODABLE.search(cell):
        return NOT_UTF8
    if "\x00" in cell:
        return NOT_TEXT
    if cell[0] == "=":
        return FORMULA
    return None


def _csv_cell_problems(cells: list[str], header: list[str], limits: ReadLimits) -> tuple:
    problems = []
    if len(cells) > len(header):
        values = max(i for i, cell in enumerate(cells) if cell) + 1
        if values > len(header):
            problems.append(("row", f"{values} values but the header names {len(header)} columns: a separator "
                                    "inside an unquoted value?"))
    for index, cell in enumerate(cells):
        problem = _cell_problem(cell, limits) if cell else None
        if problem:
            field, prefix = _column(header, index)
            problems.append((field, prefix + problem))
            cells[index] = ""  # the row is refused: its unusable text goes no further
    return tuple(problems)


def _refuse_header(problem: str) -> NotASpreadsheet:
    return NotASpreadsheet(f"The first row must name the columns. {problem}")


# --- XLSX ------------------------------------------------------------------------------------------------

_MAX_PARTS = 1_000
_MAX_DIRECTORY_BYTES = MIB
# Built-in number formats that show a date (14-17, 22) or a time (18-21, 45-47).
_DATE_FORMATS = {14: "date", 15: "date", 16: "date", 17: "date", 22: "date",
                 18: "time", 19: "time", 20: "time", 21: "time", 45: "time", 46: "time", 47: "time"}
_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]')
_ELAPSED = re.compile(r"\[(h+|m+|s+)\]", re.IGNORECASE)
_ESCAPED = re.compile("_x([0-9A-Fa-f]{4})_")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def _format_kind(code: str) -> str | None:
    """'date', 'time' or None for a custom number format (y/m/d/h/s outside quotes and brackets)."""
    if _ELAPSED.search(code):
        return "time"
    text = _FORMAT_NOISE.sub("", code.split(";", 1)[0]).lower().replace("am/pm", "").replace("a/p", "")
    if "y" in text or "d" in text:
        return "date"
    if "h" in text or "s" in text:
        return "time"
    return "date" if "m" in text else None


def _unescape(text: str) -> str:
    """Excel writes characters XML cannot hold as ``_xHHHH_``."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


class _SharedStrings:
    """The workbook's shared strings, packed: one str per 4,096 strings and an array of end offsets.

    A list of str costs ~50 bytes a string; a file of millions of tiny strings would multiply its
    size in memory. A string that cannot be used is kept as a marker of its problem, not as text:
    NUL (which no string here holds) and the problem's number.
    """
    _SHIFT = 12

    def __init__(self):
        self._chunks: list[str] = []
        self._ends = array("I")
        self._pending: list[str] = []
        self._end = 0
        self.problems: list[str] = []
        self.chars = 0

    def append(self, text: str, problem: str | None = None) -> None:
        if problem:
            if problem not in self.problems:
                self.problems.append(problem)
            text = "\x00" + chr(self.problems.index(problem))
        self._pending.append(text)
        self._end += len(text)
        self.chars += len(text)
        self._ends.append(self._end)
        if len(self._pending) == 1 << self._SHIFT:
            self.close()

    def close(self) -> None:
        if self._pending:
            self._chunks.append("".join(self._pending))
            self._pending, self._end = [], 0

    def __getitem__(self, index: int) -> str:
        if index < 0:
            raise IndexError(index)
        start = self._ends[index - 1] if index & ((1 << self._SHIFT) - 1) else 0
        return self._chunks[index >> self._SHIFT][start:self._ends[index]]


class _Workbook:
    """The first worksheet of an XLSX, read as a stream after its declared sizes are checked."""

    def __init__(self, data: bytes, limits: ReadLimits):
        self.limits = limits
        _check_directory(data)
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
            members = self.archive.infolist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            raise NotASpreadsheet("The file is not a readable XLSX workbook (its zip directory is damaged).") \
                from None
        self._check_declared_sizes(members)
        self.parts = {info.filename: info for info in members}

    def _check_declared_sizes(self, members: list[zipfile.ZipInfo]) -> None:
        """Refuse, from the zip's central directory alone, what would inflate too far."""
        total = 0
        for info in members:
            if info.flag_bits & 0x1:
                raise NotASpreadsheet("The workbook is encrypted: save it without a password.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise NotASpreadsheet("The workbook is compressed in a way Excel does not write.")
            total += info.file_size
        if total > self.limits.max_uncompressed_bytes:
            raise FileTooLarge(
                f"The workbook would unzip to {total / MIB:,.0f} MiB, more than the limit of "
                f"{self.limits.max_uncompressed_bytes / MIB:,.0f} MiB: save it as CSV UTF-8, or split it.")

    # Parts, relationships, XML.

    def _open(self, name: str, what: str, *, held: bool):
        info = self.parts.get(name)
        if info is None:
            raise NotASpreadsheet(f"The workbook lacks its {what}.")
        if held and info.file_size > self.limits.max_held_part_bytes:
            raise FileTooLarge(f"The workbook's {what} would unzip to {info.file_size / MIB:,.0f} MiB, more "
                               f"than the {self.limits.max_held_part_bytes / MIB:,.0f} MiB it may hold: save it as "
                               "CSV UTF-8, or split it.")
        try:
            return self.archive.open(info)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
            raise NotASpreadsheet(f"The workbook's {what} cannot be read.") from None

    def _xml(self, name: str, what: str, tags, *, held: bool = True, events=("end",)):
        """(event, element) of ``tags`` in part ``name``: no DTD, no entities, no network."""
        member = self._open(name, what, held=held)
        context = etree.iterparse(member, events=events, tag=tags, resolve_entities=False, no_network=True,
                                  load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True)
        first = True
        try:
            for event, element in context:
                if first:
                    if element.getroottree().docinfo.doctype:
                        raise NotASpreadsheet(f"The workbook's {what} declares a DTD: not accepted.")
                    first = False
                yield event, element
        except (etree.XMLSyntaxError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError):
            raise NotASpreadsheet(f"The workbook's {what} is damaged (not well-formed, or not what its zip "
                                  "entry declares).") from None
        finally:
            member.close()

    def _relationships(self, source: str) -> dict[str, tuple[str, str]]:
        """Id -> (type, part name) of the relationships of part ``source`` ('' for the package)."""
        folder, base = posixpath.split(source)
        name = posixpath.join(folder, "_rels", base + ".rels")
        if name not in self.parts:
            return {}
        found = {}
        for _, element in self._xml(name, "relationships", "{*}Relationship"):
            target = element.get("Target") or ""
            if element.get("TargetMode") != "External" and target:
                path = target[1:] if target.startswith("/") else posixpath.join(folder, target)
                found[element.get("Id")] = (element.get("Type") or "", posixpath.normpath(path))
            element.clear()
        return found

    def open_rows(self):
        document = next((path for kind, path in self._relationships("").values()
                         if kind.endswith("/officeDocument")), "xl/workbook.xml")
        related = self._relationships(document)
        sheet, self.date1904 = None, False
        for _, element in self._xml(document, "workbook", ("{*}workbookPr", "{*}sheet")):
            if element.tag.endswith("workbookPr"):
                self.date1904 = element.get("date1904", "").lower() in ("1", "true")
            elif sheet is None:
                rel = next((value for key, value in element.attrib.items() if key.endswith("}id")), None)
                kind, path = related.get(rel, ("", ""))
                if kind.endswith("/worksheet"):
                    sheet = path
            element.clear()
        if sheet is None:
            raise NotASpreadsheet("The workbook has no worksheet.")
        by_kind = {kind.rsplit("/", 1)[-1]: path for kind, path in related.values()}
        self.date_styles = self._date_styles(by_kind.get("styles"))
        self.strings = self._shared_strings(by_kind.get("sharedStrings"))

        self.width = None
        rows = self._sheet_rows(sheet)
        for number, cells, problems in rows:
            if problems:
                raise _refuse_header(problems[0][1])
            if any(cells):
                while not cells[-1]:
                    cells.pop()
                self.header = [h.strip() for h in cells]
                break
        else:
            raise NotASpreadsheet("The first sheet is empty: its first row must name the columns.")
        self.width = len(self.header)
        return self.header, self._data_rows(rows), self.estimate

    def _date_styles(self, name: str | None) -> dict[str, str]:
        """Cell style index (as written in ``s``) -> 'date' or 'time', for the styles that show one."""
        if name is None or name not in self.parts:
            return {}
        custom: dict[int, str | None] = {}
        kinds: dict[str, str] = {}
        for _, element in self._xml(name, "styles", ("{*}numFmt", "{*}cellXfs")):
            if element.tag.endswith("numFmt"):
                try:
                    custom[int(element.get("numFmtId"))] = _format_kind(element.get("formatCode") or "")
                except (TypeError, ValueError):
                    pass
            else:
                for index, xf in enumerate(element):
                    try:
                        number_format = int(xf.get("numFmtId") or 0)
                    except ValueError:
                        continue
                    kind = custom.get(number_format) if number_format in custom else \
                        _DATE_FORMATS.get(number_format)
                    if kind:
                        kinds[str(index)] = kind
            element.clear()
        return kinds

    def _shared_strings(self, name: str | None) -> _SharedStrings:
        strings = _SharedStrings()
        if name is None or name not in self.parts:
            return strings
        max_chars, budget = self.limits.max_cell_chars, self.limits.max_held_part_bytes
        too_long = _too_long(self.limits)
        t_tag = r_tag = None
        for _, si in self._xml(name, "shared strings", "{*}si"):
            if t_tag is None:
                namespace = si.tag[:-2]
                t_tag, r_tag = namespace + "t", namespace + "r"
            parts = []
            for child in si:  # plain text, or rich-text runs; phonetic guides (rPh) are not the value
                if child.tag == t_tag:
                    parts.append(child.text or "")
                elif child.tag == r_tag:
                    parts.extend(t.text or "" for t in child.iterchildren(t_tag))
            text = parts[0] if len(parts) == 1 else "".join(parts)
            problem = None
            if "_x" in text:
                text = _unescape(text)
                if _NOT_TEXT.search(text):
                    problem = NOT_TEXT
            if len(text) > max_chars:
                problem = too_long
            strings.append(text, problem)
            if strings.chars > budget:
                raise FileTooLarge(f"The workbook's shared strings hold more than {budget:,} characters: save "
                                   "it as CSV UTF-8, or split it.")
            si.clear()
            while si.getprevious() is not None:
                del si.getparent()[0]
        strings.close()
        return strings

    def _sheet_rows(self, name: str):
        """(number, cells, problems) of every row element; cells beyond the header's width are skipped."""
        limits = self.limits
        max_chars, last_count = limits.max_cell_chars, limits.max_rows + 1
        too_long = _too_long(limits)
        strings, date_styles, date1904 = self.strings, self.date_styles, self.date1904
        self.estimate = max(self.parts[name].file_size // 2000, 1) if name in self.parts else 1
        columns: dict[str, int] = {}
        tags = None
        number = count = 0
        for _, element in self._xml(name, "first sheet", ("{*}dimension", "{*}row"), held=False):
            if tags is None:
                namespace = element.tag[:element.tag.index("}") + 1] if element.tag[0] == "{" else ""
                tags = tuple(namespace + tag for tag in ("row", "c", "v", "f", "is", "t", "r"))
                row_tag, c_tag, v_tag, f_tag, is_tag, t_tag, r_tag = tags
            if element.tag != row_tag:
                self._check_dimension(element.get("ref") or "")
                continue
            count += 1
            if count > last_count:
                raise _too_many_rows(limits)
            written = element.get("r")
            number = int(written) if written and written.isdigit() and len(written) < 8 else number + 1
            width = self.width
            cells = [""] * width if width is not None else []
            problems = []
            column = -1
            for c in element:
                if c.tag != c_tag:
                    continue
                ref = c.get("r")
                if ref:
                    letters = ref.rstrip("0123456789")
                    column = columns.get(letters)
                    if column is None:
                        column = columns[letters] = _column_index(letters)
                else:
                    column += 1
                if width is not None and column >= width:
                    continue
                value = inline = None
                formula = False
                for child in c:
                    tag = child.tag
                    if tag == v_tag:
                        value = child.text
                    elif tag == f_tag:
                        formula = True
                    elif tag == is_tag:
                        inline = child
                kind = c.get("t")
                problem = None
                if formula:
                    problem, text = FORMULA, ""
                elif kind is None or kind == "n":
                    if value is None:
                        continue
                    style = date_styles.get(c.get("s")) if date_styles else None
                    text = _number_text(value) if style is None else _date_text(value, style, date1904)
                elif kind == "s":
                    try:
                        text = strings[int(value)]
                    except (TypeError, ValueError, IndexError):
                        problem, text = "Refers to a shared string the workbook does not have.", ""
                    if text[:1] == "\x00":
                        problem = strings.problems[ord(text[1])]
                elif kind == "inlineStr":
                    text = "" if inline is None else "".join(
                        t.text or "" for t in inline.iter(t_tag) if t.getparent().tag in (is_tag, r_tag))
                    if "_x" in text:
                        text = _unescape(text)
                        if _NOT_TEXT.search(text):
                            problem = NOT_TEXT
                elif kind == "b":
                    text = "" if value is None else "TRUE" if value.strip() == "1" else "FALSE"
                elif kind == "d":
                    text = _iso_date_text(value or "")
                else:  # str (a formula's text), e (an error such as #N/A)
                    text = value or ""
                if problem is None and len(text) > max_chars:
                    problem = too_long
                if problem:
                    field, prefix = _column(self.header if width is not None else [], column)
                    problems.append((field, prefix + problem))
                    text = ""
                if width is None:
                    if column >= len(cells):
                        cells.extend([""] * (column + 1 - len(cells)))
                cells[column] = text
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
            yield number, cells, problems

    def _data_rows(self, rows) -> Iterator[Row]:
        for number, cells, problems in rows:
            if problems:
                yield Row(number, cells, tuple(problems))
            elif any(cells):
                yield Row(number, cells)

    def _check_dimension(self, ref: str) -> None:
        """The sheet's declared extent ('A1:AB5000'): refuse too many rows before reading them."""
        bounds = [int(digits) for digits in re.findall(r"\d+", ref[:40])]
        if len(bounds) == 2:
            self.estimate = max(bounds[1] - bounds[0], 1)
            if bounds[1] - bounds[0] > self.limits.max_rows:
                raise _too_many_rows(self.limits)


def _check_directory(data: bytes) -> None:
    """Refuse a zip directory too large for a workbook before zipfile builds an object per entry."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or len(data) < end + 22:
        raise NotASpreadsheet("The file is not a readable XLSX workbook (no zip directory).")
    entries, size = struct.unpack_from("<HI", data, end + 10)
    if entries > _MAX_PARTS or size > _MAX_DIRECTORY_BYTES:
        raise NotASpreadsheet("The file's zip directory is larger than a workbook's: it is not an XLSX file "
                              "Excel wrote.")


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper()[:4]:
        index = index * 26 + ord(letter) - 64
    if not 1 <= index <= 16384 or len(letters) > 3:
        raise NotASpreadsheet("The first sheet has a cell outside the columns a sheet has.")
    return index - 1


def _number_text(value: str) -> str:
    """A number as a CSV would hold it: whole numbers without '.0'."""
    if value.isdigit():
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return str(number)


def _date_text(value: str, kind: str, date1904: bool) -> str:
    """A date-formatted serial number as an ISO date (YYYY-MM-DD), or a time as HH:MM:SS."""
    try:
        serial = float(value)
    except ValueError:
        return value
    if not 0 <= serial < 2_958_466:  # up to 9999-12-31; also NaN and infinities
        return _number_text(value)
    if kind == "time":  # the time of day, as Excel shows it
        seconds = round(serial % 1 * 86400) % 86400
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if date1904:
        base = date(1904, 1, 1)
    elif serial < 60:
        base = date(1899, 12, 31)  # Excel's 1900 system counts a 29 February 1900 that never was
    elif serial < 61:
        return _number_text(value)
    else:
        base = date(1899, 12, 30)
    return (base + timedelta(days=math.floor(serial))).isoformat()


def _iso_date_text(value: str) -> str:
    """A 'd' cell (ISO 8601 text): its date when it has one."""
    return value[:10] if len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-" else value
