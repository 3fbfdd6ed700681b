"""The migration profile as a PDF (fpdf2): a cover page, then each table with its footnote, and charts
(``profile_charts``) after the tables they draw. A suppressed count prints as ``SUPPRESSED_MARK``.

The body font is the manifests' Unicode font (``registry.rosters.pdf``: DejaVu Sans Condensed, found at run
time); without one, Helvetica and Latin-1. Country names and ISCO titles need no text shaping.
"""
from __future__ import annotations

import io
import logging
import os

from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image

from registry.rosters.pdf import BODY_FONTS, BOLD_FONTS, FONT_DIR_ENV, FONT_DIRS
from registry.statistics.profile import SOURCES, SUPPRESSED_MARK, Profile, ProfileTable
from registry.statistics.profile_charts import Chart, charts

MARGIN = 15.0
GREY = 235


class _Document(FPDF):
    def __init__(self, profile: Profile):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.profile = profile
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN)
        self.set_title(f"Migration profile {profile.year}")
        self.set_creator("Sagip registry")
        self.set_creation_date(profile.generated_at)
        body, bold = _find(BODY_FONTS), _find(BOLD_FONTS)
        if body:
            self.add_font("body", "", body)
            self.add_font("body", "B", bold or body)
            self.body_family = "body"
        else:
            logging.getLogger(__name__).warning("Profile PDF: no Unicode font in %s; printing in Helvetica",
                                                ", ".join(_font_dirs()))
            self.body_family = "helvetica"

    def footer(self):
        self.set_y(-10)
        self.set_font(self.body_family, "", 7)
        self.set_text_color(90)
        self.cell(0, 4, self.printable(f"Migration profile {self.profile.year} · generated "
                                  f"{self.profile.generated_at.isoformat()} · page {self.page_no()}/{{nb}}"),
                  align="C")
        self.set_text_color(0)

    def printable(self, value: str) -> str:
        """``value`` as the font can print it (Latin-1 only when Helvetica is the fallback)."""
        if self.body_family == "body":
            return value
        plain = value.replace("–", "-").replace("·", "-").replace("×", "x")
        return plain.encode("latin-1", "replace").decode("latin-1")

    def paragraph(self, value: str, size: float = 9, style: str = "", height: float = 4.6) -> None:
        self.set_font(self.body_family, style, size)
        self.multi_cell(0, height, self.printable(value), new_x="LMARGIN", new_y="NEXT")


def _font_dirs() -> tuple[str, ...]:
    env_dir = os.environ.get(FONT_DIR_ENV)
    return (env_dir,) if env_dir else FONT_DIRS


def _find(names) -> str | None:
    for name in names:
        for directory in _font_dirs():
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                return path
    return None


def write(out, profile: Profile) -> None:
    pdf = _Document(profile)
    _cover(pdf, profile)
    drawn = charts(profile)
    for table in profile.tables:
        _table(pdf, profile, table)
        if table.key in drawn:
            _chart(pdf, drawn[table.key])
    # fontTools logs subset glyph names at INFO; nothing of a report is logged below a warning.
    logging.getLogger("fontTools.subset").setLevel(logging.WARNING)
    out.write(bytes(pdf.output()))


def _cover(pdf: _Document, profile: Profile) -> None:
    pdf.add_page()
    pdf.paragraph(f"Migration profile {profile.year}", size=20, style="B", height=10)
    pdf.paragraph(profile.scope, size=11, height=6)
    pdf.ln(4)
    for name, value in (("Stocks counted at the end of", profile.stocks_day.isoformat()),
                        ("Flows counted", f"{profile.first.isoformat()} to {profile.last.isoformat()}"),
                        ("Generated (UTC)", profile.generated_at.isoformat()),
                        ("Suppression threshold", str(profile.threshold))):
        pdf.set_font(pdf.body_family, "B", 9)
        pdf.cell(55, 5, pdf.printable(name))
        pdf.set_font(pdf.body_family, "", 9)
        pdf.cell(0, 5, pdf.printable(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.paragraph("Disclosure control", size=10, style="B", height=6)
    pdf.paragraph(f"Counts of fewer than {profile.threshold} people are not published, nor the counts from which "
                  f"they could be worked out; each is shown as \"{SUPPRESSED_MARK}\" and left out of the charts. "
                  f"Method: {profile.method}.", size=8.5, height=4.2)
    pdf.ln(3)
    pdf.paragraph("Sources", size=10, style="B", height=6)
    for source in SOURCES:
        pdf.paragraph(f"• {source}", size=8.5, height=4.2)
    pdf.ln(3)
    pdf.paragraph("Tables", size=10, style="B", height=6)
    for number, table in enumerate(profile.tables, 1):
        pdf.paragraph(f"{number}. {table.title} ({table.basis})", size=8.5, height=4.2)


def _table(pdf: _Document, profile: Profile, table: ProfileTable) -> None:
    pdf.add_page()
    number = profile.tables.index(table) + 1
    pdf.paragraph(f"Table {number}. {table.title}", size=13, style="B", height=7)
    pdf.paragraph(f"{table.basis}. {profile.scope}.", size=8.5, height=4.4)
    pdf.ln(2)
    label_mm = 70.0 if len(table.columns) > 1 else 100.0
    value_mm = min(24.0, (pdf.epw - label_mm) / len(table.columns))
    pdf.set_font(pdf.body_family, "", 8.5)
    pdf.set_draw_color(160)
    pdf.set_line_width(0.15)
    with pdf.table(col_widths=(label_mm, *([value_mm] * len(table.columns))), width=label_mm + value_mm * len(
            table.columns), align="LEFT", text_align=("LEFT", *(["RIGHT"] * len(table.columns))), line_height=5,
                   headings_style=FontFace(emphasis="BOLD", fill_color=GREY), borders_layout="HORIZONTAL_LINES",
                   first_row_as_headings=True) as grid:
        heading = grid.row()
        for text in (table.row_heading, *table.columns):
            heading.cell(pdf.printable(text))
        for row in table.rows:
            line = grid.row(style=FontFace(emphasis="BOLD") if row.code is None else None)
            line.cell(pdf.printable(row.label))
            for value in row.values:
                line.cell(SUPPRESSED_MARK if value is None else f"{value:,}")
    pdf.ln(2)
    pdf.set_text_color(70)
    pdf.paragraph(profile.footnote + f" Cells suppressed in this table: {table.suppressed_cells}.", size=7,
                  height=3.6)
    pdf.set_text_color(0)


def _chart(pdf: _Document, chart: Chart) -> None:
    height_mm = 0.0
    if chart.png is not None:
        width_mm = pdf.epw
        with Image.open(io.BytesIO(chart.png)) as image:
            height_mm = width_mm * image.height / image.width
    if pdf.get_y() + 4 + 6 + height_mm + 8 > pdf.page_break_trigger:  # the title, the chart and its caption together
        pdf.add_page()
    else:
        pdf.ln(4)
    pdf.paragraph(chart.title, size=10, style="B", height=6)
    if chart.png is not None:
        pdf.image(io.BytesIO(chart.png), w=width_mm, h=height_mm, alt_text=chart.title)
    pdf.set_text_color(70)
    pdf.paragraph(chart.caption, size=7.5, height=3.8)
    pdf.set_text_color(0)
