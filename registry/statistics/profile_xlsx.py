"""The migration profile as a workbook: a cover sheet (year, generation time, scope, suppression, sources, the
tables), then one sheet per table with its codes, names and counts; a suppressed count is the text
``SUPPRESSED_MARK``, never a number, and every sheet ends with the footnote saying why."""
from __future__ import annotations

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from registry.statistics.profile import SOURCES, SUPPRESSED_MARK, Profile

BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
NOTE = Font(italic=True, size=9)


def write(out, profile: Profile) -> None:
    workbook = Workbook()
    cover = workbook.active
    cover.title = "Cover"
    _cover(cover, profile)
    for table in profile.tables:
        sheet = workbook.create_sheet(table.key)
        sheet.append([table.title])
        sheet["A1"].font = TITLE
        sheet.append([table.basis])
        sheet.append([profile.scope])
        sheet.append([])
        sheet.append(["Code", table.row_heading, *table.columns])
        for cell in sheet[sheet.max_row]:
            cell.font = BOLD
        for row in table.rows:
            sheet.append([row.code if row.code is not None else "", row.label,
                          *(SUPPRESSED_MARK if v is None else v for v in row.values)])
            if row.code is None:
                for cell in sheet[sheet.max_row]:
                    cell.font = BOLD
            for cell in sheet[sheet.max_row][2:]:
                cell.alignment = Alignment(horizontal="right")
        sheet.append([])
        sheet.append([profile.footnote])
        sheet.cell(sheet.max_row, 1).font = NOTE
        sheet.append([f"Cells suppressed in this table: {table.suppressed_cells}."])
        sheet.cell(sheet.max_row, 1).font = NOTE
        sheet.column_dimensions["A"].width = 10
        sheet.column_dimensions["B"].width = 42
        for index in range(len(table.columns)):
            sheet.column_dimensions[chr(ord("C") + index)].width = 12
        sheet.freeze_panes = "C6"
    workbook.save(out)


def _cover(sheet, profile: Profile) -> None:
    sheet.append([f"Migration profile {profile.year}"])
    sheet["A1"].font = TITLE
    for name, value in (
            ("Year", profile.year),
            ("Scope", profile.scope),
            ("Stocks counted at the end of", profile.stocks_day.isoformat()),
            ("Flows counted from", f"{profile.first.isoformat()} to {profile.last.isoformat()}"),
            ("Generated (UTC)", profile.generated_at.isoformat()),
            ("Suppression threshold", profile.threshold),
            ("Suppression method", profile.method),
            ("Suppressed cells are shown as", SUPPRESSED_MARK)):
        sheet.append([name, value])
        sheet.cell(sheet.max_row, 1).font = BOLD
    sheet.append([])
    sheet.append(["Sources"])
    sheet.cell(sheet.max_row, 1).font = BOLD
    for source in SOURCES:
        sheet.append(["", source])
    sheet.append([])
    sheet.append(["Tables"])
    sheet.cell(sheet.max_row, 1).font = BOLD
    for table in profile.tables:
        sheet.append([table.key, f"{table.title} ({table.basis})"])
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 100
    for row in sheet.iter_rows(min_col=2, max_col=2):
        row[0].alignment = Alignment(wrap_text=True, vertical="top")
