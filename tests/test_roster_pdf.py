"""Printable manifests (registry/rosters/pdf.py), read back with an independent reader (pdfminer.six):
page sizes, a page group per vehicle with its header, numbering, national ids, the unassigned group,
non-Latin names as real glyphs, and what happens without fonts. No database: the rows are made here."""
from __future__ import annotations

import functools
import io
import logging
import os
import re
from collections import Counter
from datetime import datetime, timezone

import pytest
from fontTools.ttLib import TTFont
from pdfminer.high_level import extract_pages
from pdfminer.layout import LAParams, LTTextContainer, LTTextLine
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import resolve1

from registry.rosters.pdf import BODY_FONTS, BOLD_FONTS, FONT_DIR_ENV, FONT_DIRS, NOT_ASSIGNED, write_pdf

META = {"crisis_name": "Gulf storm & flood", "crisis_kind": "storm", "crisis_id": "c-1", "roster_id": "r-7",
        "roster_number": 3, "exposure_version": 2, "generated_at": datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc)}
GENERATED = "2025-03-01T08:30:00Z"
ALL_COLUMNS = ["national_id", "family_name", "given_names", "native_name", "sex", "household_id", "priority",
               "priority_label", "zone", "ring_km", "distance_km", "assembly_point_id", "assembly_point",
               "assembly_point_kind", "vehicle", "seat", "distance_to_point_km", "lat", "lon", "phones",
               "welfare_status", "unassigned_reason", "host_country", "city", "vulnerabilities"]
# A role that may not see names, phones or where people are.
NO_PERSONAL_COLUMNS = ["national_id", "priority", "assembly_point", "vehicle", "seat", "welfare_status"]
PAGE_SIZES_PT = {"a4": (841.89, 595.28), "letter": (792.0, 612.0)}  # landscape

ARABIC, DEVANAGARI, CJK, CYRILLIC = "محمد عبد الله", "राम कुमार शर्मा", "王秀英", "Иван Петров"
NATIVE = [None, ARABIC, DEVANAGARI, CJK, CYRILLIC, "สมชาย ใจดี", "דוד כהן", "አበበ ቢቂላ", "Nguyễn Văn An"]
REASONS = ["no_capacity_in_reach", "beyond_max_distance", "location_unknown"]
# (point id, name, kind, people per vehicle): 40 people need three pages, on A4 and on Letter.
VEHICLES = [("ap-1", "Embassy of the Philippines, Abu Dhabi", "embassy", [40, 5]),
            ("ap-2", "Sharjah Boys School", "school", [20])]
UNASSIGNED = 25
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def national_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def roster_rows(vehicles=VEHICLES, unassigned=UNASSIGNED, native=NATIVE):
    """Rows as the roster service gives them, one at a time: by point, vehicle and seat, the unassigned last."""
    n = 0
    for point_id, point_name, kind, sizes in vehicles:
        for vehicle, size in enumerate(sizes, 1):
            for seat in range(1, size + 1):
                n += 1
                yield make_row(n, native, point_id=point_id, point_name=point_name, kind=kind, vehicle=vehicle,
                               seat=seat)
    for _ in range(unassigned):
        n += 1
        yield make_row(n, native)


def make_row(n: int, native, *, point_id=None, point_name=None, kind=None, vehicle=None, seat=None) -> dict:
    priority = 1 + n % 4
    return {
        "national_id": national_id(n), "family_name": f"Family{n:03d}", "given_names": "Maria Clara",
        "native_name": native[n % len(native)], "sex": "FM"[n % 2], "household_id": f"7c1d{n // 3:04x}-aaaa",
        "priority": priority,
        "priority_label": ["medical_or_disability", "pregnant", "minor_or_elderly", "standard"][priority - 1],
        "zone": "inside", "ring_km": None, "distance_km": 1.5, "assembly_point_id": point_id,
        "assembly_point": point_name, "assembly_point_kind": kind, "vehicle": vehicle, "seat": seat,
        "distance_to_point_km": 2.0 if point_id else None, "lat": 24.1, "lon": 54.3,
        "phones": [f"+9715{n:08d}", "+639171234567"][: n % 3], "welfare_status": "needs_assistance",
        "unassigned_reason": None if point_id else REASONS[n % 3], "host_country": "AE", "city": "Abu Dhabi",
        "vulnerabilities": ["pregnant"] if priority == 2 else [],
    }


def expected_groups(rows) -> list[tuple[str, list[dict]]]:
    groups: dict = {}
    for row in rows:
        title = (NOT_ASSIGNED if row["assembly_point_id"] is None
                 else f"{row['assembly_point']} ({row['assembly_point_kind']}) · Vehicle {row['vehicle']}")
        groups.setdefault(title, []).append(row)
    return list(groups.items())


def write(rows=None, *, columns=ALL_COLUMNS, paper="a4", meta=META) -> tuple[int, bytes]:
    out = io.BytesIO()
    count = write_pdf(out, meta, columns, roster_rows() if rows is None else rows, paper=paper)
    return count, out.getvalue()


def squash(text: str) -> str:
    return " ".join(text.split())


class Page:
    """A page as pdfminer reads it: its size in pt and its text lines (x, top, text), top to bottom."""

    def __init__(self, layout):
        self.width, self.height = layout.width, layout.height
        self.lines = []
        for box in layout:
            if isinstance(box, LTTextContainer):
                for line in box:
                    if isinstance(line, LTTextLine) and line.get_text().strip():
                        self.lines.append((line.x0, layout.height - line.y1, squash(line.get_text()), line))
        self.lines.sort(key=lambda item: (round(item[1]), item[0]))
        self.text = "\n".join(text for _, _, text, _ in self.lines)

    def column_x(self, heading: str) -> float:
        return next(x for x, _, text, _ in self.lines if text == heading)

    def rows(self) -> list[tuple[int, str]]:
        """(printed number, national id) of each row, top to bottom."""
        return [(number, ident) for number, ident, _ in self.numbered_rows()]

    def numbered_rows(self) -> list[tuple[int, str, float]]:
        """(printed number, national id, top of the number) of each row: the id is under the name, below
        the row's number (which is centred in the row)."""
        heading_top = next(top for _, top, text, _ in self.lines if text == "#")
        number_x = self.column_x("#")
        numbers = [(top, int(text)) for x, top, text, _ in self.lines
                   if abs(x - number_x) < 1 and top > heading_top + 1 and text.isdigit()]
        ids = [(top, text) for _, top, text, _ in self.lines if UUID.fullmatch(text)]
        assert len(numbers) == len(ids)
        for (number_top, _), (id_top, _) in zip(numbers, ids):
            assert 0 < id_top - number_top < 24  # within the row (8.5 mm = 24 pt)
        return [(number, ident, top) for (top, number), (_, ident) in zip(numbers, ids)]

    def in_column(self, heading: str, top: float) -> str | None:
        """The text on the line at ``top`` in the column under ``heading``."""
        x = self.column_x(heading)
        found = [text for lx, ltop, text, _ in self.lines if abs(lx - x) < 1 and abs(ltop - top) < 2]
        return found[0] if found else None


def read(data: bytes) -> list[Page]:
    assert data.startswith(b"%PDF-")
    # A small char_margin keeps each cell its own line: cells are at least 2 mm apart.
    return [Page(layout) for layout in extract_pages(io.BytesIO(data), laparams=LAParams(char_margin=0.8))]


@functools.cache
def manifest(paper: str) -> tuple[int, list[Page]]:
    """The roster of ``roster_rows()`` written and read back once per paper: it takes seconds."""
    count, data = write(paper=paper)
    return count, read(data)


def embedded_fonts(data: bytes) -> dict[str, tuple[TTFont, dict[int, str]]]:
    """Base font name -> (the embedded font program, its ToUnicode map: glyph code -> text)."""
    document = PDFDocument(PDFParser(io.BytesIO(data)))
    fonts = {}
    for page in PDFPage.create_pages(document):
        for ref in resolve1(page.resources.get("Font", {})).values():
            font = resolve1(ref)
            name = resolve1(font["BaseFont"]).name
            if name in fonts:
                continue
            descriptor = resolve1(resolve1(resolve1(font["DescendantFonts"])[0])["FontDescriptor"])
            program = TTFont(io.BytesIO(resolve1(descriptor["FontFile2"]).get_data()))
            to_unicode = resolve1(font["ToUnicode"]).get_data().decode("latin-1")
            codes = {int(code, 16): bytes.fromhex(text).decode("utf-16-be")
                     for code, text in re.findall(r"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]+)>", to_unicode)}
            fonts[name] = (program, codes)
    return fonts


# ---------------------------------------------------------------------- pages and groups

@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_each_vehicle_starts_a_new_landscape_page_group_whose_pages_all_carry_its_header(paper):
    count, pages = manifest(paper)
    groups = expected_groups(roster_rows())
    per_page = 18 if paper == "a4" else 19

    assert count == sum(len(rows) for _, rows in groups)
    assert len(pages) == sum(-(-len(rows) // per_page) for _, rows in groups)
    page_iter = iter(pages)
    for title, rows in groups:
        total = -(-len(rows) // per_page)
        for index in range(1, total + 1):
            page = next(page_iter)
            assert (page.width, page.height) == pytest.approx(PAGE_SIZES_PT[paper], abs=0.01)
            header = page.text.splitlines()
            assert header[0] == "Evacuation manifest · Gulf storm & flood"
            assert header[1] == "Roster 3"
            assert header[2] == title
            assert f"generated {GENERATED}" in header[3] and "roster 3, exposure version 2" in header[3]
            assert header[4] == f"page {index} of {total}"


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_nothing_is_printed_outside_the_margins(paper):
    for page in manifest(paper)[1]:
        for _, _, text, line in page.lines:
            assert line.x0 >= 28 and line.x1 <= page.width - 28, text  # 10 mm = 28.3 pt
            assert line.y0 >= 28 and line.y1 <= page.height - 28, text


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_rows_are_numbered_within_their_vehicle_and_every_national_id_is_printed_once(paper):
    pages = manifest(paper)[1]
    printed = [row for page in pages for row in page.rows()]

    want = []
    for _, rows in expected_groups(roster_rows()):
        want += [(number, row["national_id"]) for number, row in enumerate(rows, 1)]
    assert printed == want
    everything = "\n".join(page.text for page in pages)
    for n in range(1, len(want) + 1):
        assert everything.count(national_id(n)) == 1


def test_the_unassigned_come_last_as_not_assigned_with_their_reason_instead_of_a_signature():
    pages = manifest("a4")[1]
    unassigned = [row for row in roster_rows() if row["assembly_point_id"] is None]
    last_pages = [page for page in pages if page.text.splitlines()[2] == NOT_ASSIGNED]

    assert last_pages == pages[-2:]
    assert all("Signature" in page.text for page in pages[:-2])
    reasons = {}
    for page in last_pages:
        assert "Reason not assigned" in page.text and "Signature" not in page.text
        assert "Checked by" not in page.text
        for _, ident, top in page.numbered_rows():  # the reason is centred in the row, as the number is
            reasons[ident] = page.in_column("Reason not assigned", top)
    assert reasons == {row["national_id"]: row["unassigned_reason"].replace("_", " ") for row in unassigned}


def test_an_empty_roster_is_one_page_saying_so():
    count, data = write(rows=iter(()))
    pages = read(data)
    assert count == 0
    assert len(pages) == 1
    assert "No one is on this roster." in pages[0].text and "page 1 of 1" in pages[0].text


# ---------------------------------------------------------------------- what is printed

def test_only_the_columns_the_role_may_see_are_printed():
    _, data = write(columns=NO_PERSONAL_COLUMNS)
    text = "\n".join(page.text for page in read(data))

    assert national_id(1) in text and "Priority" in text and "Welfare" in text
    for hidden in ("Family001", "Maria Clara", "+971500000001", "7c1d0000", "pregnant", "Иван", "no capacity"):
        assert hidden not in text
    assert "Native name" not in text and "Phone" not in text


def test_long_values_are_narrowed_then_cut_never_printed_into_the_next_column():
    rows = [make_row(1, [None], point_id="ap-1", point_name="Point", kind="shelter", vehicle=1, seat=1)]
    rows[0]["family_name"] = "Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh-Cholmondeley" * 2
    _, data = write(rows=iter(rows))
    page = read(data)[0]
    name = next(text for _, _, text, _ in page.lines if text.startswith("Wolfe"))

    assert name.endswith("…") and len(name) < 100
    name_line = next(line for _, _, text, line in page.lines if text == name)
    assert name_line.x1 < page.column_x("Native name")


def test_rows_out_of_order_are_refused_and_nothing_is_written():
    rows = list(roster_rows())
    out = io.BytesIO()
    with pytest.raises(ValueError):
        write_pdf(out, META, ALL_COLUMNS, iter(rows[:3] + rows[50:] + rows[3:50]))
    with pytest.raises(ValueError):
        write_pdf(out, META, ALL_COLUMNS, iter(rows[-1:] + rows[:-1]))  # an unassigned row first
    assert out.getvalue() == b""


@pytest.mark.parametrize("change", [{"paper": "a3"}, {"meta": {**META, "generated_at": datetime(2025, 3, 1)}}])
def test_an_unknown_paper_or_a_naive_generation_time_is_refused(change):
    with pytest.raises(ValueError):
        write(**change)


# ---------------------------------------------------------------------- scripts and fonts

def names_page() -> tuple[bytes, Page]:
    rows = [make_row(n, [name], point_id="ap-1", point_name="Point", kind="embassy", vehicle=1, seat=n)
            for n, name in enumerate((ARABIC, DEVANAGARI, CJK, CYRILLIC), 1)]
    _, data = write(rows=iter(rows))
    return data, read(data)[0]


def no_spaces(text: str) -> str:
    """Without spaces nor pdfminer's "(cid:N)" for glyphs that map to no text (parts of conjuncts)."""
    return re.sub(r"\(cid:\d+\)|\s", "", text)


def test_arabic_devanagari_cjk_and_cyrillic_names_are_printed_as_text():
    _, page = names_page()
    text = no_spaces(page.text)

    assert CJK in text and no_spaces(CYRILLIC) in text
    # Shaped text is placed glyph by glyph, so readers may see spaces inside words: compare without them.
    assert no_spaces(DEVANAGARI) in text
    # pdfminer reads glyphs left to right: right-to-left text comes out reversed when printed in order.
    assert no_spaces(ARABIC)[::-1] in text
    assert "\ufffd" not in text


def test_non_latin_names_use_real_glyphs_and_arabic_is_shaped():
    data, _ = names_page()
    fonts = embedded_fonts(data)

    def outlines(char: str) -> list[str]:
        """The embedded fonts that draw ``char`` with an outline (not .notdef, not an empty box)."""
        found = []
        for name, (program, _) in fonts.items():
            glyph = program.getBestCmap().get(ord(char))
            if glyph and glyph != ".notdef" and program["glyf"][glyph].numberOfContours != 0:
                found.append(name)
        return found

    for char in no_spaces(CJK + CYRILLIC) + "रमकश":  # Devanagari consonants are glyphs of their own
        assert outlines(char), char
    assert any("Devanagari" in name for name in fonts), "no Devanagari font: see SCRIPT_FONTS in pdf.py"
    # Shaping gives an Arabic letter a different glyph at the start and in the middle of a word: in
    # محمد the first meem (U+0645) is initial, the second medial, so two glyphs print the same letter.
    meem_glyphs = Counter(name for name, (_, codes) in fonts.items() for text in codes.values() if text == "\u0645")
    assert max(meem_glyphs.values()) >= 2


def test_a_script_without_a_font_prints_replacement_characters_and_a_warning_without_the_name(
        tmp_path, monkeypatch, caplog):
    for names in (BODY_FONTS, BOLD_FONTS):  # only the body fonts, as installed
        path = next(os.path.join(folder, name) for name in names for folder in FONT_DIRS
                    if os.path.isfile(os.path.join(folder, name)))
        os.symlink(path, tmp_path / os.path.basename(path))
    monkeypatch.setenv(FONT_DIR_ENV, str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="registry.rosters.pdf"):
        _, page = names_page()

    assert no_spaces(CYRILLIC) in no_spaces(page.text)  # DejaVu has Cyrillic and Arabic
    assert no_spaces(ARABIC)[::-1] in no_spaces(page.text)
    assert "\ufffd" * 3 in page.text  # 王秀英
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "CJK" in warned and "Devanagari" in warned
    assert "Family" not in warned and not any(char in warned for char in no_spaces(CJK + DEVANAGARI))


def test_without_any_unicode_font_the_manifest_is_still_printed_in_latin(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(FONT_DIR_ENV, str(tmp_path))  # an empty directory
    with caplog.at_level(logging.WARNING, logger="registry.rosters.pdf"):
        count, data = write()
    pages = read(data)

    assert count == sum(len(rows) for _, rows in expected_groups(roster_rows()))
    assert [row for page in pages for row in page.rows()][:3] == [(1, national_id(1)), (2, national_id(2)),
                                                                 (3, national_id(3))]
    assert "Family001, Maria Clara" in pages[0].text
    assert "Helvetica" in caplog.text and "Arabic" in caplog.text
