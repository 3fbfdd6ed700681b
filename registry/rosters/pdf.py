"""Printable evacuation manifests (PDF): a page group per vehicle, the people not assigned last.

Each (assembly point, vehicle) starts a new page. Every page repeats the crisis, the assembly point,
the vehicle, the roster number, the generation time (UTC, ISO 8601) and "page i of n" within the
vehicle. Rows are numbered 1..n within the vehicle and end in an empty box for a signature; the
unassigned come last as "Not assigned", their reason in place of the box.

A manifest is a boarding sheet: it prints what identifies a person and what care they need (names,
national id, sex, date of birth, household, priority, needs, phones, welfare status), and of those
only the keys in ``columns``. Locations and distances are left to the XLSX, KML and PFIF exports. The
assembly point's name and kind are not personal data and are printed whatever ``columns`` says.

Fonts are TrueType files found at run time (``FONT_DIRS``, or only ``$REGISTRY_PDF_FONT_DIR`` when
set). DejaVu Sans Condensed prints Latin, Greek, Cyrillic, Armenian, Georgian, Hebrew and Arabic;
the font of another script (Indic, Sinhala, Thai, Khmer, Myanmar, Ethiopic, CJK…) is loaded and
embedded only once a text needs it. A character that no font has prints as U+FFFD, and a warning
names its script, never the text.

Speed: fpdf2's ``cell()`` costs ~0.15 ms, 0.6-0.9 ms with text shaping; ``text()`` ~20 µs. Text that
needs no shaping (nearly all of a manifest) is therefore drawn with ``text()`` and measured with a
per-character width cache; only text in a script that must be shaped or reordered (Arabic, Hebrew,
Indic, Thai…) goes through ``cell()`` with HarfBuzz. Rows have a fixed height, so nothing is laid out
twice. fpdf2 keeps the pages in memory until the end (compressed only then): memory grows with the
document, not with a row's size.
"""
from __future__ import annotations

import bisect
import logging
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import BinaryIO

from fpdf import FPDF

log = logging.getLogger(__name__)

PAPERS = {"a4": "A4", "letter": "Letter"}
NOT_ASSIGNED = "Not assigned"
FONT_DIR_ENV = "REGISTRY_PDF_FONT_DIR"
# Where Debian's packages put the fonts below: fonts-dejavu-core and -extra, fonts-noto-ui-core,
# fonts-sil-abyssinica, fonts-wqy-microhei (what the image installs); fonts-noto-core and
# fonts-droid-fallback are used too when present.
FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/truetype/noto",
    "/usr/share/fonts/truetype/abyssinica",
    "/usr/share/fonts/truetype/wqy",
    "/usr/share/fonts/truetype/droid",
    "/usr/local/share/fonts",
)
BODY_FONTS = ("DejaVuSansCondensed.ttf", "DejaVuSans.ttf", "NotoSans-Regular.ttf")
BOLD_FONTS = ("DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf", "NotoSans-Bold.ttf")
# The UI variants first: their tighter line heights suit table rows.
SCRIPT_FONTS = {
    "Arabic": ("NotoSansArabicUI-Regular.ttf", "NotoSansArabic-Regular.ttf", "NotoNaskhArabic-Regular.ttf"),
    "Hebrew": ("NotoSansHebrew-Regular.ttf",),
    "Armenian": ("NotoSansArmenian-Regular.ttf",),
    "Georgian": ("NotoSansGeorgian-Regular.ttf",),
    "Devanagari": ("NotoSansDevanagariUI-Regular.ttf", "NotoSansDevanagari-Regular.ttf"),
    "Bengali": ("NotoSansBengaliUI-Regular.ttf", "NotoSansBengali-Regular.ttf"),
    "Gurmukhi": ("NotoSansGurmukhiUI-Regular.ttf", "NotoSansGurmukhi-Regular.ttf"),
    "Gujarati": ("NotoSansGujaratiUI-Regular.ttf", "NotoSansGujarati-Regular.ttf"),
    "Oriya": ("NotoSansOriyaUI-Regular.ttf", "NotoSansOriya-Regular.ttf"),
    "Tamil": ("NotoSansTamilUI-Regular.ttf", "NotoSansTamil-Regular.ttf"),
    "Telugu": ("NotoSansTeluguUI-Regular.ttf", "NotoSansTelugu-Regular.ttf"),
    "Kannada": ("NotoSansKannadaUI-Regular.ttf", "NotoSansKannada-Regular.ttf"),
    "Malayalam": ("NotoSansMalayalamUI-Regular.ttf", "NotoSansMalayalam-Regular.ttf"),
    "Sinhala": ("NotoSansSinhalaUI-Regular.ttf", "NotoSansSinhala-Regular.ttf"),
    "Thai": ("NotoSansThaiUI-Regular.ttf", "NotoSansThai-Regular.ttf"),
    "Lao": ("NotoSansLaoUI-Regular.ttf", "NotoSansLao-Regular.ttf"),
    "Myanmar": ("NotoSansMyanmarUI-Regular.ttf", "NotoSansMyanmar-Regular.ttf"),
    "Khmer": ("NotoSansKhmerUI-Regular.ttf", "NotoSansKhmer-Regular.ttf"),
    "Ethiopic": ("NotoSansEthiopic-Regular.ttf", "AbyssinicaSIL-Regular.ttf"),
    # TrueType outlines: fpdf2 does not print Noto Sans CJK's CFF outlines with text() (glyphs go
    # missing). One face serves Chinese, Japanese and Korean, with Chinese forms of unified ideographs;
    # Droid Sans Fallback has no Hangul.
    "CJK": ("wqy-microhei.ttc", "DroidSansFallbackFull.ttf"),
}
_SCRIPT_RANGES = sorted([  # (first, last, script): where to look for a font for a missing character
    (0x0530, 0x058F, "Armenian"), (0x0590, 0x05FF, "Hebrew"), (0x0600, 0x06FF, "Arabic"),
    (0x0750, 0x077F, "Arabic"), (0x08A0, 0x08FF, "Arabic"), (0x0900, 0x097F, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"), (0x0A00, 0x0A7F, "Gurmukhi"), (0x0A80, 0x0AFF, "Gujarati"),
    (0x0B00, 0x0B7F, "Oriya"), (0x0B80, 0x0BFF, "Tamil"), (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"), (0x0D00, 0x0D7F, "Malayalam"), (0x0D80, 0x0DFF, "Sinhala"),
    (0x0E00, 0x0E7F, "Thai"), (0x0E80, 0x0EFF, "Lao"), (0x1000, 0x109F, "Myanmar"),
    (0x10A0, 0x10FF, "Georgian"), (0x1100, 0x11FF, "CJK"), (0x1200, 0x139F, "Ethiopic"),
    (0x1780, 0x17FF, "Khmer"), (0x2D80, 0x2DDF, "Ethiopic"), (0x2E80, 0x2FDF, "CJK"),
    (0x3000, 0x9FFF, "CJK"), (0xA8E0, 0xA8FF, "Devanagari"), (0xA960, 0xA97F, "CJK"),
    (0xAB00, 0xAB2F, "Ethiopic"), (0xAC00, 0xD7FF, "CJK"), (0xF900, 0xFAFF, "CJK"),
    (0xFB1D, 0xFB4F, "Hebrew"), (0xFB50, 0xFDFF, "Arabic"), (0xFE30, 0xFE4F, "CJK"),
    (0xFE70, 0xFEFF, "Arabic"), (0xFF00, 0xFFEF, "CJK"), (0x20000, 0x3FFFF, "CJK"),
])
_SCRIPT_STARTS = [first for first, _, _ in _SCRIPT_RANGES]
# Text with any of these needs HarfBuzz (joining, reordering, marks) or the bidi algorithm: combining
# marks left after NFC, Hebrew to Thaana, Indic to Tibetan, Myanmar, Hangul jamo, Khmer, Mongolian,
# joiners and bidi controls, Hebrew and Arabic presentation forms.
_NEEDS_SHAPING = re.compile("[\u0300-\u036f\u0590-\u08ff\u0900-\u0fff\u1000-\u109f\u1100-\u11ff\u1780-\u18af"
                            "\u200c-\u200f\u202a-\u202e\u2066-\u2069\ua8e0-\ua8ff\ufb1d-\ufdff\ufe70-\ufeff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
REPLACEMENT = "\ufffd"
# fpdf2 substitutes this in cell() text with a page count; six digits are reserved for it.
_PAGE_COUNT_ALIAS = "{#nb#}"

# Layout, in mm and pt. Landscape: A4 is 297 x 210 mm, Letter 279.4 x 215.9 mm; 10 mm margins are
# inside every printer's unprintable border, and the table is laid out for the narrower Letter width
# at least (columns only grow on A4).
MARGIN = 10.0
HEADER_H = 17.0
HEADING_H = 6.0
FOOTER_H = 6.0
ROW_H = 8.5          # room for a signature
PAD = 1.0            # left and right padding in a cell
BODY_PT = 8.0
DETAIL_PT = 6.5      # the second line of a cell (national id under the name, a second phone)
HEADING_PT = 7.0
MIN_STRETCH = 0.7    # text is narrowed down to 70% before it is cut with an ellipsis
PT = 25.4 / 72       # mm per point
GRID_GREY, ZEBRA_GREY, DETAIL_GREY = 150, 243, 80


class _FontBook:
    """The document's fonts: found on disk, added to the FPDF when first needed, and what they cover."""

    def __init__(self, pdf: FPDF):
        self.pdf = pdf
        env_dir = os.environ.get(FONT_DIR_ENV)
        self.dirs = (env_dir,) if env_dir else FONT_DIRS
        self.covered: set[int] = set()
        self.fallbacks: list[str] = []            # families added for scripts, in order
        self.script_family: dict[str, str] = {}   # script -> family (only scripts with a font)
        self.tried: set[str] = set()
        self.missing: Counter[str] = Counter()    # script -> characters printed as U+FFFD
        self.widths: dict[str, dict[str, float]] = {}  # font key -> char -> width of 1 pt, in mm
        self.ascii_widest: dict[str, float] = {}
        body, bold = self._find(BODY_FONTS), self._find(BOLD_FONTS)
        self.unicode = body is not None
        if self.unicode:
            pdf.add_font("body", "", body)
            pdf.add_font("body", "B", bold or body)
            self.covered.update(pdf.fonts["body"].cmap)
            self.body = "body"
        else:  # still a valid PDF, in Latin-1
            log.warning("Manifest PDF: no Unicode font (%s) in %s; printing in Helvetica, Latin-1 only",
                        BODY_FONTS[0], ", ".join(self.dirs))
            self.covered.update(range(0x20, 0x7F))
            self.covered.update(range(0xA0, 0x100))
            self.body = "helvetica"
        self.replacement = REPLACEMENT if ord(REPLACEMENT) in self.covered else "?"
        self.ellipsis = "…" if ord("…") in self.covered else "..."

    def _find(self, names: Iterable[str]) -> str | None:
        for name in names:
            for directory in self.dirs:
                path = os.path.join(directory, name)
                if os.path.isfile(path):
                    return path
        return None

    def _load_script(self, script: str) -> bool:
        """Add the font of ``script`` to the document once; False if there is none."""
        if script in self.tried:
            return script in self.script_family
        self.tried.add(script)
        path = self._find(SCRIPT_FONTS.get(script, ())) if self.unicode else None
        if path is None:
            return False
        family = f"script-{script.lower()}"
        self.pdf.add_font(family, "", path)
        self.covered.update(self.pdf.fonts[family].cmap)
        self.script_family[script] = family
        self.fallbacks.append(family)
        self.pdf.set_fallback_fonts([self.body, *self.fallbacks], exact_match=False)
        return True

    def printable(self, text: str) -> str:
        """``text`` with every character some font can print: fonts loaded as needed, the rest U+FFFD."""
        covered = self.covered
        if all(ord(char) in covered for char in text):
            return text
        chars = []
        for char in text:
            code = ord(char)
            if code not in covered:
                script = _script_of(code)
                if script is None or not self._load_script(script) or code not in self.covered:
                    self.missing[script or _unicode_block(char)] += 1
                    char = self.replacement
            chars.append(char)
        return "".join(chars)

    def single_font(self, text: str, style: str) -> str | None:
        """The family (body first) whose font has every character of ``text``, if there is one.

        Script fonts have no bold: bold text outside the body font's coverage has none.
        """
        if not self.unicode:
            return self.body
        body = self.pdf.fonts[f"{self.body}{style}"]
        if all(ord(char) in body.cmap for char in text):
            return self.body
        if style:
            return None
        for family in self.fallbacks:
            cmap = self.pdf.fonts[family].cmap
            if all(ord(char) in cmap for char in text):
                return family
        return None

    def shaping_family(self, text: str) -> str:
        """The font to shape ``text`` with: that of its first character in a script with its own font."""
        for char in text:
            script = _script_of(ord(char))
            if script in self.script_family:
                return self.script_family[script]
        return self.body

    def width(self, text: str, size_pt: float) -> float:
        """Unshaped width of ``text`` in the current font, in mm (what ``FPDF.text`` draws)."""
        pdf = self.pdf
        table = self.widths.setdefault(pdf.current_font.fontkey, {})
        try:
            return sum(map(table.__getitem__, text)) * size_pt
        except KeyError:
            for char in set(text) - table.keys():
                table[char] = pdf.get_string_width(char) / pdf.font_size_pt
            return sum(map(table.__getitem__, text)) * size_pt

    def widest(self, text: str) -> float:
        """Width of 1 pt, in mm, of the current font's widest ASCII character; infinite for other text."""
        if not text.isascii():
            return math.inf
        key = self.pdf.current_font.fontkey
        widest = self.ascii_widest.get(key)
        if widest is None:
            self.width("".join(map(chr, range(0x20, 0x7F))), 1)  # fills the width table
            table = self.widths[key]
            widest = self.ascii_widest[key] = max(table[chr(code)] for code in range(0x20, 0x7F))
        return widest

    def warn_missing(self) -> None:
        for script, count in sorted(self.missing.items()):
            log.warning("Manifest PDF: no font for the %s script in %s; %d characters printed as %r",
                        script, ", ".join(self.dirs), count, self.replacement)


def _script_of(code: int) -> str | None:
    index = bisect.bisect_right(_SCRIPT_STARTS, code) - 1
    if index >= 0 and code <= _SCRIPT_RANGES[index][1]:
        return _SCRIPT_RANGES[index][2]
    return None


def _unicode_block(char: str) -> str:
    """A script's name for a warning ("TIBETAN" from "TIBETAN LETTER KA"), "symbol" for the rest."""
    if unicodedata.category(char)[0] in "LM":
        return unicodedata.name(char, "unnamed").split(" ")[0]
    return "symbol"


def _is_rtl(text: str) -> bool:
    """Whether the first strong character is right-to-left (the paragraph direction of the bidi algorithm)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


@dataclass(frozen=True)
class _Column:
    heading: str
    min_mm: float
    grow: float                                  # share of the width left over on the page
    value: Callable[[dict], str]                 # the first line
    detail: Callable[[dict], str] | None = None  # a second, smaller line


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else ""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _words(value) -> str:
    """A code as words: "needs_assistance" -> "needs assistance"."""
    return _text(value).replace("_", " ")


_PRIORITY_WORDS = {"medical_or_disability": "medical/disability", "minor_or_elderly": "minor/elderly"}
# The row number comes first and the signature (or the reason a person is not assigned) last, whatever
# the columns; both are drawn by _Manifest.add_row.
_NUMBER_MM = 8.0
_LAST_MM, _LAST_GROW = 28.0, 1.0


def _columns(visible: frozenset[str]) -> list[_Column]:
    """The columns between the row number and the signature that ``visible`` allows, in print order."""
    def seen(row: dict, key: str):
        return row.get(key) if key in visible else None

    def plain(key: str) -> Callable[[dict], str]:
        return lambda row: _text(row.get(key))

    def name(row: dict) -> str:
        return ", ".join(_text(part) for part in (seen(row, "family_name"), seen(row, "given_names")) if part)

    def priority(row: dict) -> str:
        label = seen(row, "priority_label")
        return " ".join(part for part in (_text(seen(row, "priority")), _PRIORITY_WORDS.get(label, _words(label)))
                        if part)

    columns = []
    if "seat" in visible:
        columns.append(_Column("Seat", 8, 0, plain("seat")))
    if visible & {"family_name", "given_names"}:
        if "national_id" in visible:  # a UUID: 36 characters fit under the name at DETAIL_PT in 46 mm
            columns.append(_Column("Name / national ID", 46, 2, name, plain("national_id")))
        else:
            columns.append(_Column("Name", 36, 2, name))
    elif "national_id" in visible:
        columns.append(_Column("National ID", 52, 0, plain("national_id")))
    if "native_name" in visible:
        columns.append(_Column("Native name", 30, 3, plain("native_name")))
    if "sex" in visible:
        columns.append(_Column("Sex", 7, 0, plain("sex")))
    if "date_of_birth" in visible:
        columns.append(_Column("Born", 16, 0, plain("date_of_birth")))
    if "household_id" in visible:
        # Who must board together: the id's first 8 characters tell a sheet's households apart, as a
        # short git hash does; the whole id is in the other exports.
        columns.append(_Column("Household", 14, 0, lambda row: _text(row.get("household_id"))[:8]))
    if visible & {"priority", "priority_label"}:
        columns.append(_Column("Priority", 22, 0, priority))
    if "vulnerabilities" in visible:
        columns.append(_Column("Needs", 20, 1, lambda row: ", ".join(map(_words, row.get("vulnerabilities") or ()))))
    if "phones" in visible:  # the first phone, and the others on a second line
        columns.append(_Column("Phone", 25, 0, lambda row: _text((row.get("phones") or [None])[0]),
                               lambda row: ", ".join(map(_text, (row.get("phones") or ())[1:]))))
    if "welfare_status" in visible:
        columns.append(_Column("Welfare", 22, 0, lambda row: _words(row.get("welfare_status"))))
    return columns


def _widths(columns: list[_Column], table_mm: float) -> list[float]:
    """Widths of the number column, ``columns`` and the last column, filling ``table_mm``."""
    minimums = [_NUMBER_MM, *(column.min_mm for column in columns), _LAST_MM]
    grows = [0, *(column.grow for column in columns), _LAST_GROW]
    spare = table_mm - sum(minimums)
    if spare < 0:  # not with the columns above on Letter, but never print past the margin
        return [width * table_mm / sum(minimums) for width in minimums]
    return [width + spare * grow / sum(grows) for width, grow in zip(minimums, grows)]


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware.")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Manifest:
    """Draws pages on an FPDF; a group is one vehicle (or the unassigned), numbered and paged on its own."""

    def __init__(self, meta: dict, columns: list[str], paper: str):
        if paper not in PAPERS:
            raise ValueError(f"paper must be one of {', '.join(PAPERS)}, not {paper!r}.")
        self.meta = meta
        self.generated = _utc_iso(meta["generated_at"])
        self.visible = frozenset(columns)
        pdf = self.pdf = FPDF(orientation="landscape", unit="mm", format=PAPERS[paper])
        pdf.set_auto_page_break(False)  # pages break where this class says, rows are never split
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.c_margin = 0  # cells are padded here (PAD), the same for text() and cell()
        pdf.alias_nb_pages(_PAGE_COUNT_ALIAS)
        pdf.set_creator("Sagip")
        pdf.set_title(f"Evacuation manifest: {meta['crisis_name']}, roster {meta['roster_number']}")
        pdf.set_creation_date(meta["generated_at"])
        self.fonts = _FontBook(pdf)
        pdf.set_font(self.fonts.body, size=BODY_PT)
        self.columns = _columns(self.visible)
        table_mm = pdf.w - 2 * MARGIN
        self.widths = _widths(self.columns, table_mm)
        self.edges = [MARGIN]
        for width in self.widths:
            self.edges.append(self.edges[-1] + width)
        self.table_top = MARGIN + HEADER_H + HEADING_H
        self.rows_per_page = int((pdf.h - MARGIN - FOOTER_H - self.table_top) // ROW_H)
        self.group_title = ""
        self.group_pages: list[int] = []
        self.unassigned = False
        self.number = 0         # row number within the group
        self.row_on_page = 0
        self.page_open = False  # a page whose grid is still to be drawn

    # ------------------------------------------------------------------ text

    def draw(self, text: str, x: float, baseline: float, width: float, *, size: float = BODY_PT,
             style: str = "", align: str = "L", ltr: bool = False) -> None:
        """``text`` in one line of ``width`` mm from ``x``, narrowed or cut with "…" to fit.

        Text in a right-to-left script is right-aligned and read right to left, unless ``ltr`` (a line
        of this module's own words with a name in it).
        """
        if not text:
            return
        fonts, pdf = self.fonts, self.pdf
        family = fonts.body
        if not (text.isascii() and text.isprintable()):
            text = fonts.printable(unicodedata.normalize("NFC", _CONTROL.sub(" ", text)))
            family = fonts.single_font(text, style)
            if family is None or (fonts.unicode and _NEEDS_SHAPING.search(text)):
                self._draw_shaped(text, x, baseline, width, size, style, ltr)
                return
        self._use_font(family, style if family == fonts.body else "", size)
        room = width - 2 * PAD
        # Most values are short: no need to add their widths up when even the widest characters fit.
        text_mm = (fonts.width(text, size) if align != "L" or len(text) * fonts.widest(text) * size > room
                   else 0.0)
        if text_mm > room:
            stretch = max(room / text_mm, MIN_STRETCH)
            if text_mm * stretch > room:
                text = _cut(text, room / stretch, lambda part: fonts.width(part, size), fonts.ellipsis)
                text_mm = fonts.width(text, size)
            pdf.set_stretching(100 * stretch)
            text_mm *= stretch
        left = x + PAD if align == "L" else x + width - PAD - text_mm
        pdf.text(left, baseline, text)
        if pdf.font_stretching != 100:
            pdf.set_stretching(100)

    def _use_font(self, family: str, style: str, size: float) -> None:
        pdf = self.pdf  # what set_font() checks too, at a third of its cost (it is called for every text)
        if pdf.font_family != family or pdf.font_style != style or pdf.font_size_pt != size:
            pdf.set_font(family, style, size)

    def _draw_shaped(self, text: str, x: float, baseline: float, width: float, size: float, style: str,
                     ltr: bool) -> None:
        """Through fpdf2's cell() with HarfBuzz and the bidi algorithm: slow, so only where it is needed."""
        pdf, fonts = self.pdf, self.fonts
        text = text.replace(_PAGE_COUNT_ALIAS, "")
        family = fonts.shaping_family(text)
        self._use_font(family, style if family == fonts.body else "", size)
        room = width - 2 * PAD
        rtl = not ltr and _is_rtl(text)
        pdf.set_text_shaping(True, direction="ltr" if ltr else None)  # else from the first strong character
        # A shaped character other than a mark is rarely wider than 1 em: measure (a second shaping, the
        # cost of a name) only when the text may not fit. If it is wider after all, it is clipped below.
        advancing = sum(1 for char in text if unicodedata.category(char) != "Mn")
        text_mm = pdf.get_string_width(text) if advancing * size * PT > room else 0
        stretch = min(1.0, max(room / text_mm, MIN_STRETCH)) if text_mm else 1.0
        line_h = size * PT * 1.3
        # cell() puts the baseline at y + h/2 + 0.3 font size: where draw() puts it.
        top = baseline - line_h / 2 - 0.3 * size * PT
        with pdf.local_context(font_stretching=100 * stretch):
            # A right-to-left name starts at the right; what does not fit even narrowed is clipped.
            with pdf.rect_clip(x + PAD, top - line_h, room, 3 * line_h):
                pdf.set_xy(x + PAD, top)
                pdf.cell(room, line_h, text, align="R" if rtl else "L")
        pdf.set_text_shaping(False)

    # ------------------------------------------------------------------ pages and groups

    def start_group(self, row: dict | None) -> None:
        self.finish_group()
        if row is None:
            self.group_title, self.unassigned = "No one is on this roster.", False
        elif row.get("assembly_point_id") is None:
            self.group_title, self.unassigned = NOT_ASSIGNED, True
        else:
            point = _text(row.get("assembly_point")) or f"Assembly point {row['assembly_point_id']}"
            kind = _words(row.get("assembly_point_kind"))
            vehicle = row.get("vehicle")
            self.group_title = (f"{point}{f' ({kind})' if kind else ''}  ·  "
                                f"{'Vehicle ' + _text(vehicle) if vehicle is not None else 'No vehicle'}")
            self.unassigned = False
        self.number = 0
        self.new_page()

    def finish_group(self) -> None:
        """Write the group's page count where its pages say "page i of …"."""
        if not self.group_pages:
            return
        self.finish_page()
        total = str(len(self.group_pages))
        # fpdf2 puts a placeholder for the alias and replaces it by the document's page count on output;
        # here each vehicle's pages get their own count first, with fpdf2's own rendering of it.
        for number in self.group_pages:
            page = self.pdf.pages[number]
            for substitution in page.get_text_substitutions():
                placeholder = substitution.get_placeholder_string().encode("latin-1")
                page.contents = page.contents.replace(
                    placeholder, substitution.render_text_substitution(total).encode("latin-1"))
        self.group_pages = []

    def new_page(self) -> None:
        self.finish_page()
        pdf, meta = self.pdf, self.meta
        pdf.add_page()
        self.group_pages.append(pdf.page)
        self.row_on_page = 0
        self.page_open = True
        width = pdf.w - 2 * MARGIN
        pdf.set_text_color(0)
        self.draw(f"Evacuation manifest  ·  {meta['crisis_name']}", MARGIN, MARGIN + 4, width * 0.75,
                  size=12, style="B", ltr=True)
        self.draw(f"Roster {meta['roster_number']}", MARGIN + width * 0.75, MARGIN + 4, width * 0.25,
                  size=12, style="B", align="R")
        self.draw(self.group_title, MARGIN, MARGIN + 10, width * 0.8, size=11, style="B", ltr=True)
        kind = _words(meta.get("crisis_kind"))
        details = (f"{kind[:1].upper() + kind[1:]}  ·  roster {meta['roster_number']}, "
                   f"exposure version {meta['exposure_version']}  ·  generated {self.generated}")
        self.draw(details, MARGIN, MARGIN + 15, width * 0.8, size=7.5, ltr=True)
        # The page count is an alias that only cell() replaces: 6 digits are reserved for it.
        pdf.set_font(self.fonts.body, "", 7.5)
        page_label = f"page {len(self.group_pages)} of {_PAGE_COUNT_ALIAS}"
        pdf.set_xy(pdf.w - MARGIN - 40, MARGIN + 15 - 2 - 0.3 * 7.5 * PT)  # baseline with the details
        pdf.cell(40 - PAD, 4, page_label, align="L")
        self._draw_headings()
        self._draw_footer()

    def _draw_headings(self) -> None:
        pdf = self.pdf
        top = MARGIN + HEADER_H
        pdf.set_fill_color(225)
        pdf.rect(MARGIN, top, self.edges[-1] - MARGIN, HEADING_H, style="F")
        pdf.set_fill_color(0)  # text drawn after a fill is wrapped in a colour change otherwise
        headings = ["#", *(column.heading for column in self.columns),
                    "Reason not assigned" if self.unassigned else "Signature"]
        baseline = top + HEADING_H / 2 + 0.3 * HEADING_PT * PT
        for heading, x, width in zip(headings, self.edges, self.widths):
            self.draw(heading, x, baseline, width, size=HEADING_PT, style="B")

    def _draw_footer(self) -> None:
        pdf, meta = self.pdf, self.meta
        baseline = pdf.h - MARGIN - 1
        width = (pdf.w - 2 * MARGIN) / 2
        pdf.set_text_color(DETAIL_GREY)
        self.draw(f"Crisis {meta['crisis_id']}  ·  roster {meta['roster_id']}", MARGIN, baseline, width, size=6.5)
        pdf.set_text_color(0)
        if not self.unassigned:  # a line to sign on, the width of the signature column
            self.draw("Checked by (name, signature, time):", MARGIN + width, baseline,
                      width - self.widths[-1] - 2 * PAD, size=7, align="R")
            pdf.set_draw_color(0)
            pdf.line(self.edges[-2], baseline + 0.5, self.edges[-1], baseline + 0.5)
        pdf.set_draw_color(GRID_GREY)  # for the rows' rules

    def finish_page(self) -> None:
        """The grid of the rows drawn on the current page: column rules and the table's frame."""
        if not self.page_open:
            return
        self.page_open = False
        pdf = self.pdf
        top = MARGIN + HEADER_H
        bottom = self.table_top + self.row_on_page * ROW_H
        pdf.set_draw_color(GRID_GREY)
        pdf.set_line_width(0.2)
        for x in self.edges:
            pdf.line(x, top, x, bottom)
        pdf.line(MARGIN, top, self.edges[-1], top)
        pdf.line(MARGIN, bottom, self.edges[-1], bottom)

    # ------------------------------------------------------------------ rows

    def add_row(self, row: dict) -> None:
        if self.row_on_page == self.rows_per_page:
            self.new_page()
        pdf = self.pdf
        self.number += 1
        top = self.table_top + self.row_on_page * ROW_H
        self.row_on_page += 1
        if self.number % 2 == 0:
            pdf.set_fill_color(ZEBRA_GREY)
            pdf.rect(MARGIN, top, self.edges[-1] - MARGIN, ROW_H, style="F")
            pdf.set_fill_color(0)
        single = top + ROW_H / 2 + 0.3 * BODY_PT * PT
        first, second = top + 3.7, top + 7.1
        self.draw(str(self.number), MARGIN, single, self.widths[0])
        details = []
        for column, x, width in zip(self.columns, self.edges[1:], self.widths[1:]):
            detail = column.detail(row) if column.detail else ""
            self.draw(column.value(row), x, first if detail else single, width)
            if detail:
                details.append((detail, x, width))
        if self.unassigned and "unassigned_reason" in self.visible:  # in place of the signature
            self.draw(_words(row.get("unassigned_reason")), self.edges[-2], single, self.widths[-1])
        if details:  # after the first lines: one change of size and colour a row
            pdf.set_text_color(DETAIL_GREY)
            for detail, x, width in details:
                self.draw(detail, x, second, width, size=DETAIL_PT)
            pdf.set_text_color(0)
        if top > self.table_top:  # the rule above this row
            pdf.line(MARGIN, top, self.edges[-1], top)

    def output(self, out: BinaryIO) -> None:
        self.finish_group()
        self.fonts.warn_missing()
        # fontTools logs the glyph names of every font subset at INFO: they spell out which characters the
        # people's names use. Nothing of a manifest is logged below a warning.
        logging.getLogger("fontTools.subset").setLevel(logging.WARNING)
        out.write(self.pdf.output())


def _cut(text: str, room: float, measure: Callable[[str], float], ellipsis: str) -> str:
    """The longest start of ``text`` that fits ``room`` mm followed by ``ellipsis``."""
    low, high = 0, len(text)
    while low < high:  # binary search on the number of characters kept
        middle = (low + high + 1) // 2
        if measure(text[:middle] + ellipsis) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ellipsis


def write_pdf(out: BinaryIO, meta: dict, columns: list[str], rows: Iterable[dict], *, paper: str = "a4") -> int:
    """Write manifests to ``out``; return the number of rows written.

    ``rows`` are sorted by assembly point, vehicle and seat, the unassigned (no assembly point) last,
    and are read once. ``paper`` is "a4" or "letter" (landscape).

    :raises ValueError: unknown paper, ``meta["generated_at"]`` not timezone-aware, or rows out of
        order (a vehicle's rows not together, or assigned rows after the unassigned): a manifest
        split across two page groups would be wrong. Nothing is written to ``out`` then.
    """
    manifest = _Manifest(meta, columns, paper)
    seen: set = set()
    key = None
    count = 0
    for row in rows:
        row_key = (row.get("assembly_point_id"), row.get("vehicle"))
        if row_key != key:
            if row_key in seen or (None, None) in seen:
                raise ValueError("Roster rows must be grouped by assembly point and vehicle, the unassigned last.")
            seen.add(row_key)
            key = row_key
            manifest.start_group(row)
        manifest.add_row(row)
        count += 1
    if count == 0:
        manifest.start_group(None)
    manifest.output(out)
    return count
