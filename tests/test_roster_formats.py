"""Roster export writers (registry/rosters/formats.py): XLSX, KML 2.2 and PFIF 1.4, read back with
independent readers. No database: the rows are made here."""
from __future__ import annotations

import io
import weakref
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree
from openpyxl import load_workbook

from registry.rosters.formats import KML_NS, PFIF_NS, write_kml, write_pfif, write_xlsx

PFIF_SCHEMA = Path(__file__).parent / "data" / "pfif-1.4.xsd"
KML = {"k": KML_NS}
PFIF = {"p": PFIF_NS}

META = {"crisis_name": "Gulf <storm> & flood", "crisis_kind": "storm", "crisis_id": "c-1", "roster_id": "r-7",
        "roster_number": 3, "exposure_version": 2, "generated_at": datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc),
        "pfif_domain": "sagip.dfa.gov.ph"}
ALL_COLUMNS = ["national_id", "family_name", "given_names", "native_name", "sex", "date_of_birth", "household_id",
               "priority", "priority_label", "zone", "ring_km", "distance_km", "assembly_point_id", "assembly_point",
               "assembly_point_kind", "assembly_point_lat", "assembly_point_lon", "vehicle", "seat",
               "distance_to_point_km", "lat", "lon", "phones", "welfare_status", "welfare_note", "welfare_updated_at",
               "unassigned_reason", "host_country", "city", "vulnerabilities"]
# A role that may not see names, phones or where people are.
NO_PERSONAL_COLUMNS = ["national_id", "priority", "assembly_point", "vehicle", "seat", "welfare_status"]

# (id, name, kind, lat, lon): the names are not valid sheet titles as they stand.
POINTS = [
    ("ap-1", "Embassy of the Philippines, Abu Dhabi chancery", "embassy", 24.4539, 54.3773),
    ("ap-2", "Shelter [North]: Block A/B?", "shelter", 25.3463, 55.4209),
    ("ap-3", "مدرسة الشارقة", "school", 25.2048, 55.2708),
]
STATUSES = ["unknown", "contacted", "safe", "needs_assistance", "evacuated", "repatriated", "missing"]
PFIF_STATUS = {"unknown": "information_sought", "missing": "believed_missing"}
NAMES = [("Dela Cruz", "Juan", None), ("Santos", "Maria Clara", None), ("=HYPERLINK(\"http://x.test\")", "Eve", None),
         ("Reyes", "Jose", "ホセ・レイエス"), ("Bautista", "Ana", "آنا باوتيستا"), ("Garcia", "Luz", "露丝")]


def roster_rows(assigned_per_point: int = 14, unassigned: int = 8):
    """Rows as the roster service gives them: by point, vehicle and seat, the unassigned last."""
    n = 0
    for point_id, point_name, kind, point_lat, point_lon in POINTS:
        for seat_index in range(assigned_per_point):
            n += 1
            yield _row(n, point_id=point_id, point_name=point_name, kind=kind, point_lat=point_lat,
                       point_lon=point_lon, vehicle=1 + seat_index // 8, seat=1 + seat_index % 8)
    for _ in range(unassigned):
        n += 1
        yield _row(n)


def _row(n: int, *, point_id=None, point_name=None, kind=None, point_lat=None, point_lon=None, vehicle=None,
         seat=None) -> dict:
    family, given, native = NAMES[n % len(NAMES)]
    located = n % 5 != 0
    return {
        "national_id": f"00000000-0000-4000-8000-{n:012d}", "family_name": family, "given_names": given,
        "native_name": native, "sex": ("F", "M", "X", None)[n % 4],
        "date_of_birth": date(1960, 1, 1) + timedelta(days=397 * n % 20_000) if n % 6 else None,
        "household_id": f"h-{n // 3}", "priority": 1 + n % 4, "priority_label": f"P{1 + n % 4}",
        "zone": "inside" if n % 2 else "ring", "ring_km": None if n % 2 else 25.0, "distance_km": 1.25 * n,
        "assembly_point_id": point_id, "assembly_point": point_name, "assembly_point_kind": kind,
        "assembly_point_lat": point_lat, "assembly_point_lon": point_lon, "vehicle": vehicle, "seat": seat,
        "distance_to_point_km": 0.5 * n if point_id else None,
        "lat": 24.0 + n / 100 if located else None, "lon": 54.0 + n / 50 if located else None,
        "phones": [f"+9715{n:08d}", "+639171234567"] if n % 3 else [], "welfare_status": STATUSES[n % len(STATUSES)],
        "welfare_note": "needs insulin <daily> & water" if n % 7 == 3 else None,
        "welfare_updated_at": datetime(2025, 2, 28, 12, 0, tzinfo=timezone(timedelta(hours=4))) + timedelta(minutes=n),
        "unassigned_reason": None if point_id else "no seat left within 50 km", "host_country": "AE",
        "city": "Abu Dhabi", "vulnerabilities": ["pregnant", "elderly"] if n % 4 == 1 else [],
    }


def _write(writer, columns=ALL_COLUMNS, rows=None) -> tuple[int, bytes]:
    out = io.BytesIO()
    count = writer(out, META, columns, roster_rows() if rows is None else rows)
    return count, out.getvalue()


def _by_point() -> dict:
    groups: dict = {}
    for row in roster_rows():
        groups.setdefault(row["assembly_point_id"], []).append(row)
    return groups


# ---------------------------------------------------------------------- XLSX

def test_xlsx_has_a_sheet_per_assembly_point_then_not_assigned_with_the_same_people_and_numbers():
    count, data = _write(write_xlsx)
    book = load_workbook(io.BytesIO(data))
    groups = _by_point()

    assert count == sum(len(rows) for rows in groups.values())
    assert book.sheetnames == ["Embassy of the Philippines, Abu", "Shelter  North   Block A B", "مدرسة الشارقة",
                               "Not assigned"]
    for sheet, rows in zip(book.worksheets, groups.values()):
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:AD{len(rows) + 1}"
        assert [cell.value for cell in sheet[1]] == ALL_COLUMNS
        assert all(cell.font.b for cell in sheet[1])
        assert sheet.column_dimensions["A"].width >= 36  # a national id fits
        read = [dict(zip(ALL_COLUMNS, values)) for values in sheet.iter_rows(min_row=2, values_only=True)]
        assert [r["national_id"] for r in read] == [r["national_id"] for r in rows]
        for got, want in zip(read, rows):
            # Numbers are numbers (Excel keeps only doubles: 5.0 reads back as 5).
            assert got["distance_km"] == want["distance_km"] and isinstance(got["distance_km"], (int, float))
            assert got["priority"] == want["priority"] and isinstance(got["priority"], int)
            assert (got["seat"], got["vehicle"], got["lat"]) == (want["seat"], want["vehicle"], want["lat"])
            assert got["native_name"] == want["native_name"]
            assert got["phones"] == (";".join(want["phones"]) or None)
            assert got["date_of_birth"] == (datetime.combine(want["date_of_birth"], datetime.min.time())
                                            if want["date_of_birth"] else None)
            # Excel has no time zones: the export is in UTC.
            assert got["welfare_updated_at"] == want["welfare_updated_at"].astimezone(timezone.utc).replace(tzinfo=None)


def test_xlsx_text_starting_with_a_formula_character_stays_text():
    rows = [{**row, "given_names": prefix + "1+1"} for row, prefix in zip(roster_rows(), "=+-@")]
    _, data = _write(write_xlsx, rows=iter(rows))
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]

    family = sheet.cell(row=3, column=2)  # the second national's family name is '=HYPERLINK("http://x.test")'
    assert (family.value, family.data_type) == ('=HYPERLINK("http://x.test")', "s")
    for row_no, prefix in enumerate("=+-@", 2):
        cell = sheet.cell(row=row_no, column=3)
        assert (cell.value, cell.data_type, cell.quotePrefix) == (prefix + "1+1", "s", True)


def test_xlsx_sheet_titles_are_valid_unique_and_the_same_each_time():
    def rows():
        for n, (point_id, name) in enumerate([("a", "Shelter"), ("b", "SHELTER"), ("c", "x" * 40), ("d", "x" * 40),
                                              ("e", "Not assigned"), ("f", "'quoted'"), ("g", "???"), ("h", "History"),
                                              ("i", "🏫" * 20)], 1):
            yield _row(n, point_id=point_id, point_name=name, kind="shelter", point_lat=1.0, point_lon=2.0)
        yield _row(99)

    first = load_workbook(io.BytesIO(_write(write_xlsx, rows=rows())[1])).sheetnames
    again = load_workbook(io.BytesIO(_write(write_xlsx, rows=rows())[1])).sheetnames

    assert first == again
    assert first == ["Shelter", "SHELTER (2)", "x" * 31, "x" * 27 + " (2)", "Not assigned (2)", "quoted",
                     "Assembly point", "History (2)", "🏫" * 15, "Not assigned"]
    assert len({title.casefold() for title in first}) == len(first)


def test_xlsx_without_rows_has_one_empty_roster_sheet_with_the_headers():
    count, data = _write(write_xlsx, rows=iter(()))
    book = load_workbook(io.BytesIO(data))

    assert count == 0
    assert book.sheetnames == ["Roster"]
    sheet = book["Roster"]
    assert [cell.value for cell in sheet[1]] == ALL_COLUMNS
    assert sheet.max_row == 1 and sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:AD1"


def test_xlsx_writes_only_the_columns_the_role_may_see():
    _, data = _write(write_xlsx, columns=NO_PERSONAL_COLUMNS)
    book = load_workbook(io.BytesIO(data))

    for sheet in book.worksheets:
        assert [cell.value for cell in sheet[1]] == NO_PERSONAL_COLUMNS
        assert sheet.max_column == len(NO_PERSONAL_COLUMNS)
    text = "".join(str(value) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                   for value in row)
    assert "Dela Cruz" not in text and "+63917" not in text


def test_rows_not_grouped_by_assembly_point_are_refused():
    rows = list(roster_rows())
    shuffled = [rows[0], rows[20], rows[1]]  # ap-1, ap-2, ap-1 again
    for writer in (write_xlsx, write_kml):
        with pytest.raises(ValueError, match="grouped by assembly point"):
            writer(io.BytesIO(), META, ALL_COLUMNS, iter(shuffled))
    with pytest.raises(ValueError, match="grouped by assembly point"):
        write_xlsx(io.BytesIO(), META, ALL_COLUMNS, iter([rows[-1], rows[0]]))  # unassigned before assigned


# ---------------------------------------------------------------------- KML

def test_kml_has_a_folder_per_assembly_point_with_the_point_and_its_nationals_at_lon_lat():
    count, data = _write(write_kml)
    document = etree.fromstring(data).find("k:Document", KML)
    groups = _by_point()

    assert count == sum(len(rows) for rows in groups.values())
    assert document.findtext("k:name", namespaces=KML) == "Gulf <storm> & flood: roster 3"
    folders = document.findall("k:Folder", KML)
    assert [f.findtext("k:name", namespaces=KML) for f in folders] == [p[1] for p in POINTS] + ["Not assigned"]
    for folder, (point_id, rows) in zip(folders, groups.items()):
        placemarks = folder.findall("k:Placemark", KML)
        if point_id is not None:
            point = placemarks.pop(0)
            _, name, kind, lat, lon = next(p for p in POINTS if p[0] == point_id)
            assert point.findtext("k:name", namespaces=KML) == name
            assert _coordinates(point) == (lon, lat)
        assert len(placemarks) == len(rows)
        for placemark, row in zip(placemarks, rows):
            assert placemark.findtext("k:name", namespaces=KML) == f"{row['family_name']}, {row['given_names']}"
            data_items = {d.get("name"): d.findtext("k:value", namespaces=KML)
                          for d in placemark.findall("k:ExtendedData/k:Data", KML)}
            assert set(data_items) <= set(ALL_COLUMNS)
            assert data_items["national_id"] == row["national_id"]
            assert data_items.get("native_name") == row["native_name"]
            assert data_items.get("welfare_note") == row["welfare_note"]
            assert float(data_items["distance_km"]) == row["distance_km"]
            # KML 2.2 allows a Placemark without geometry: a national with no location keeps one.
            assert _coordinates(placemark) == ((row["lon"], row["lat"]) if row["lat"] is not None else None)


def test_kml_without_name_or_location_columns_names_placemarks_by_national_id_and_places_none():
    _, data = _write(write_kml, columns=NO_PERSONAL_COLUMNS)
    root = etree.fromstring(data)
    nationals = [p for p in root.iter(f"{{{KML_NS}}}Placemark")
                 if p.findtext("k:styleUrl", namespaces=KML) == "#national"]

    assert [p.findtext("k:name", namespaces=KML) for p in nationals] == [r["national_id"] for r in roster_rows()]
    assert all(p.find("k:Point", KML) is None for p in nationals)
    assert {d.get("name") for p in nationals for d in p.iter(f"{{{KML_NS}}}Data")} <= set(NO_PERSONAL_COLUMNS)
    assert b"Dela Cruz" not in data and b"+63917" not in data


def _coordinates(placemark) -> tuple[float, float] | None:
    text = placemark.findtext("k:Point/k:coordinates", namespaces=KML)
    if text is None:
        return None
    lon, lat = text.split(",")
    return float(lon), float(lat)


# ---------------------------------------------------------------------- PFIF

@pytest.fixture(scope="module")
def pfif_schema():
    return etree.XMLSchema(etree.parse(str(PFIF_SCHEMA)))


def test_pfif_is_valid_and_has_every_national_with_a_welfare_note(pfif_schema):
    count, data = _write(write_pfif)
    document = etree.fromstring(data)
    pfif_schema.assertValid(document)
    rows = list(roster_rows())

    persons = document.findall("p:person", PFIF)
    assert count == len(persons) == len(rows)
    for person, row in zip(persons, rows):
        field = lambda name, at=person: at.findtext(f"p:{name}", namespaces=PFIF)  # noqa: E731
        assert field("person_record_id") == f"sagip.dfa.gov.ph/{row['national_id']}"
        assert field("full_name") == f"{row['given_names']} {row['family_name']}"
        assert (field("given_name"), field("family_name")) == (row["given_names"], row["family_name"])
        assert field("alternate_names") == row["native_name"]
        assert field("sex") == {"F": "female", "M": "male", "X": "other", None: None}[row["sex"]]
        assert field("date_of_birth") == (row["date_of_birth"].isoformat() if row["date_of_birth"] else None)
        assert (field("home_city"), field("home_country")) == ("Abu Dhabi", "AE")
        assert field("source_date") == field("entry_date") == "2025-03-01T08:30:00Z"
        assert person.find("p:phones", PFIF) is None and b"+63917" not in data

        [note] = person.findall("p:note", PFIF)
        assert field("note_record_id", note) == f"sagip.dfa.gov.ph/welfare.r-7.{row['national_id']}"
        assert field("person_record_id", note) == field("person_record_id")
        assert field("status", note) == PFIF_STATUS.get(row["welfare_status"], "believed_alive")
        assert field("source_date", note) == row["welfare_updated_at"].astimezone(timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        text = field("text", note)
        assert text.startswith(f"Welfare status: {row['welfare_status']}.")
        if row["assembly_point"]:
            assert field("last_known_location", note) == row["assembly_point"]
            assert f"Assembly point: {row['assembly_point']} (vehicle {row['vehicle']}, seat {row['seat']})." in text
        else:
            assert field("last_known_location", note) == "Abu Dhabi"
            assert "Not assigned: no seat left within 50 km." in text
        if row["welfare_note"]:
            assert text.endswith(f"Note: {row['welfare_note']}")


def test_pfif_for_a_role_without_names_uses_the_national_id_as_full_name(pfif_schema):
    _, data = _write(write_pfif, columns=NO_PERSONAL_COLUMNS)
    document = etree.fromstring(data)
    pfif_schema.assertValid(document)

    for person, row in zip(document.findall("p:person", PFIF), roster_rows()):
        assert person.findtext("p:full_name", namespaces=PFIF) == row["national_id"]
        assert person.find("p:given_name", PFIF) is None and person.find("p:home_city", PFIF) is None
        assert person.find("p:note/p:status", PFIF) is not None
    assert b"Dela Cruz" not in data and b"Abu Dhabi" not in data.split(b"last_known_location")[0]


def test_pfif_writes_no_note_when_the_role_may_not_see_the_welfare_status(pfif_schema):
    _, data = _write(write_pfif, columns=["national_id", "family_name", "given_names"])
    document = etree.fromstring(data)
    pfif_schema.assertValid(document)

    assert document.find("p:person/p:note", PFIF) is None


def test_control_characters_are_dropped_and_line_breaks_kept_in_every_format(pfif_schema):
    row = {**next(roster_rows()), "given_names": "Ju\x00an", "welfare_note": "call\x07 back\r\nafter <6pm>"}

    sheet = load_workbook(io.BytesIO(_write(write_xlsx, rows=iter([row]))[1])).worksheets[0]
    values = dict(zip(ALL_COLUMNS, next(sheet.iter_rows(min_row=2, values_only=True))))
    assert (values["given_names"], values["welfare_note"]) == ("Juan", "call back\r\nafter <6pm>")

    kml = etree.fromstring(_write(write_kml, rows=iter([row]))[1])
    notes = [d.findtext("k:value", namespaces=KML) for d in kml.iter(f"{{{KML_NS}}}Data")
             if d.get("name") == "welfare_note"]
    assert notes == ["call back\r\nafter <6pm>"]

    pfif = etree.fromstring(_write(write_pfif, rows=iter([row]))[1])
    pfif_schema.assertValid(pfif)
    assert pfif.findtext("p:person/p:given_name", namespaces=PFIF) == "Juan"
    assert pfif.findtext("p:person/p:note/p:text", namespaces=PFIF).endswith("Note: call back\r\nafter <6pm>")


# ---------------------------------------------------------------------- streaming

class _Row(dict):
    __slots__ = ("__weakref__",)


@pytest.mark.parametrize("writer", [write_xlsx, write_kml, write_pfif])
def test_writers_stream_20000_rows_without_holding_them(writer):
    live = weakref.WeakValueDictionary()  # the rows given out that something still holds
    consumed = 0

    def rows():
        nonlocal consumed
        for row in roster_rows(assigned_per_point=6_000, unassigned=2_000):
            row = live[consumed] = _Row(row)
            # A writer that kept the rows (list(rows), or rows of a sheet held back) would keep them alive.
            assert len(live) <= 5, f"{len(live)} rows alive after {consumed}"
            consumed += 1
            yield row

    out = io.BytesIO()
    assert writer(out, META, ALL_COLUMNS, rows()) == consumed == 20_000
    assert len(out.getvalue()) > 20_000 * 100
