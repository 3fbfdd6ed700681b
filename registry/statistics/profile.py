"""The migration profile of a year (SPEC §11 "Profile report"): its standard tables, read from the statistics.

Every table is a statistics answer (``registry.statistics.tables``: the same
counting functions and the same disclosure control as
``GET /statistics/stocks`` and ``/flows``), never rows of persons: stocks at
the end of the year (31 December, or today during the year) by destination,
sex, age band, occupation, destination × sex and age band × sex; departures,
returns and crisis repatriations by month. A suppressed count stays ``None``
here and is printed as ``SUPPRESSED_MARK`` in the files
(``profile_xlsx``, ``profile_pdf``), never as a number; the footnote names
the method and the threshold. ``profile_files`` writes them, on the command
line or in a worker.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from registry.auth.reach import Reach
from registry.codes import services as codes
from registry.errors import Unprocessable
from registry.statistics import tables

FIRST_YEAR = 1990
SUPPRESSED_MARK = "x"
TASK = "statistics.profile"
SOURCES = ("Sagip registry: nationals' deployments and status history (stocks, departures, returns) and crisis "
           "welfare records (repatriations), counted by the statistics service (GET /api/v1/statistics)",
           "Countries: ISO 3166-1 via pycountry",
           "Occupations: ISCO-08 major groups, International Labour Organization")
SEX_NAMES = {"F": "Female", "M": "Male", "X": "Other (X)"}
UNKNOWN = "Unknown"
CUBE = ("host_country", "sex", "age_band")
CUBE_TABLES = {"destination": ("host_country",), "sex": ("sex",), "age": ("age_band",),
               "destination_sex": ("host_country", "sex"), "age_sex": ("age_band", "sex")}


@dataclass
class Row:
    code: str | None  # None: the total row
    label: str
    values: list[int | None]  # None: suppressed


@dataclass
class ProfileTable:
    """One table as printed: a row per category (and a total row), a column per category of the second
    dimension (and a total column), or one column of counts."""

    key: str  # short name: the XLSX sheet's
    title: str
    basis: str  # what is counted, when
    row_heading: str
    columns: list[str]
    column_codes: list[str | None]
    rows: list[Row]
    suppressed_cells: int

    def value(self, row_code, column_code=None) -> int | None:
        """A printed value by codes (None in a code: its total). :raises KeyError:"""
        row = next(r for r in self.rows if r.code == row_code)
        return row.values[self.column_codes.index(column_code)]


@dataclass
class Profile:
    year: int
    stocks_day: date
    first: date
    last: date
    reach: Reach
    generated_at: datetime
    threshold: int
    method: str
    tables: list[ProfileTable] = field(default_factory=list)

    @property
    def scope(self) -> str:
        if self.reach.is_everywhere:
            return "Nationals abroad in every host country"
        return "Nationals in the jurisdiction of " + ", ".join(self.reach.countries or ("no country",))

    @property
    def footnote(self) -> str:
        return (f"{SUPPRESSED_MARK}: suppressed to protect individuals (statistical disclosure control, threshold "
                f"{self.threshold}): {self.method}.")

    def table(self, key: str) -> ProfileTable:
        return next(t for t in self.tables if t.key == key)


def check_year(year: int, *, today: date | None = None) -> None:
    """:raises Unprocessable: naming ``year`` when it is before FIRST_YEAR or after this one."""
    current = (today or tables.today()).year
    if not FIRST_YEAR <= year <= current:
        raise Unprocessable("No profile for that year.", errors={"year": [
            f"A year from {FIRST_YEAR} to {current}."]})


def build(reach: Reach, year: int) -> Profile:
    """The profile of ``year`` as ``reach`` may count it. :raises Unprocessable: a year out of range."""
    check_year(year)
    today = tables.today()
    last = min(date(year, 12, 31), today)
    first = date(year, 1, 1)
    # Five stock tables are sums of one count by destination, sex and age band: counted once (the stock of a
    # past day is the dearest count), each then suppressed as GET /statistics/stocks suppresses it.
    cube = tables.stock_counts(reach, list(CUBE), last)
    answers = {key: tables.stocks_answer(list(dims), _summed(cube, dims), last) for key, dims in CUBE_TABLES.items()}
    answers["occupation"] = tables.stocks(reach, ["occupation"], last)
    answers.update({kind: tables.flows(reach, kind, [], first, last) for kind in tables.FLOW_KINDS})
    suppression = answers["destination"]["suppression"]
    profile = Profile(year, last, first, last, reach, datetime.now(timezone.utc).replace(microsecond=0),
                      suppression["threshold"], suppression["method"])
    at = f"at the end of {last.isoformat()}"
    period = f"{first.isoformat()} to {last.isoformat()}"
    labels = _Labels()
    months = [f"{year}-{m:02d}" for m in range(1, last.month + 1)]
    profile.tables = [
        _table("destination", "Nationals abroad by destination", f"Stock {at}", answers["destination"],
               "Host country", labels.country, order=_by_count),
        _table("sex", "Nationals abroad by sex", f"Stock {at}", answers["sex"], "Sex", labels.sex),
        _table("age", "Nationals abroad by age band", f"Stock {at}; age in whole years on that day",
               answers["age"], "Age band", labels.age),
        _table("occupation", "Nationals abroad by occupation", f"Stock {at}; ISCO-08 major group",
               answers["occupation"], "Occupation (ISCO-08)", labels.occupation),
        _table("destination_sex", "Nationals abroad by destination and sex", f"Stock {at}",
               answers["destination_sex"], "Host country", labels.country, column_labels=labels.sex, order=_by_count),
        _table("age_sex", "Nationals abroad by age band and sex", f"Stock {at}", answers["age_sex"], "Age band",
               labels.age, column_labels=labels.sex),
        _table("departures", "Departures by month", f"Deployments beginning, {period}", answers["departures"],
               "Month", labels.month, categories=months),
        _table("returns", "Returns by month", f"Nationals recorded as returned, {period}", answers["returns"],
               "Month", labels.month, categories=months),
        _table("repatriations", "Crisis repatriations by month",
               f"Nationals repatriated in a crisis, once per person and crisis, {period}",
               answers["repatriations"], "Month", labels.month, categories=months),
    ]
    return profile


def _summed(cube: dict[tuple, int], dimensions: tuple[str, ...]) -> dict[tuple, int]:
    """The counts of ``cube`` (by CUBE) summed over the dimensions not in ``dimensions``."""
    picks = [CUBE.index(d) for d in dimensions]
    inner: dict[tuple, int] = {}
    for key, count in cube.items():
        small = tuple(key[i] for i in picks)
        inner[small] = inner.get(small, 0) + count
    return inner


class _Labels:
    """Names for the codes of each dimension (the code lists of ``registry.codes``)."""

    def __init__(self):
        self._countries = {i["code"]: i["name"] for i in codes.code_list("countries")["items"]}
        self._occupations = {i["code"]: i["name"] for i in codes.code_list("occupations")["items"]
                             if len(i["code"]) == 1}

    def country(self, code: str) -> str:
        return self._countries.get(code, code) if code != "unknown" else UNKNOWN

    def occupation(self, code: str) -> str:
        return f"{code} {self._occupations[code]}" if code in self._occupations else UNKNOWN

    @staticmethod
    def sex(code: str) -> str:
        return SEX_NAMES.get(code, UNKNOWN)

    @staticmethod
    def age(code: str) -> str:
        if code == "unknown":
            return UNKNOWN
        if "-" not in code:
            return code  # 65+
        low, high = code.split("-")
        return f"{int(low)}–{int(high)}"

    @staticmethod
    def month(code: str) -> str:
        return calendar.month_name[int(code[5:7])]


def _by_count(codes_: list[str], published: dict) -> list[str]:
    """Largest published count first, then the suppressed ones by code; "unknown" last. Only what is published
    orders the rows: a suppressed count cannot be guessed from its place."""
    return sorted(codes_, key=lambda c: (c == "unknown", published.get(c) is None, -(published.get(c) or 0), c))


def _table(key, title, basis, answer, row_heading, row_labels, *, column_labels=None, categories=None,
           order=None) -> ProfileTable:
    """A printed table from a statistics answer: inner cells, and the totals the answer publishes (a category
    absent from the answer counts zero, as in the API)."""
    dims = answer["dimensions"]
    values = {tuple(c[d] for d in dims): c["count"] for c in answer["cells"]}
    values.update({tuple(c.get(d) for d in dims): c["count"] for c in answer["totals"]})
    rows = sorted({c[dims[0]] for c in answer["cells"]} | set(categories or ()), key=str)
    if len(dims) == 1:
        column_codes, headings = [None], ["People"]
        get = lambda r, c: values.get((r,), 0)  # noqa: E731
    else:
        seen = sorted({c[dims[1]] for c in answer["cells"]}, key=lambda s: (s == "unknown", s))
        column_codes, headings = [*seen, None], [*(column_labels(s) for s in seen), "Total"]
        get = lambda r, c: values.get((r, c), 0)  # noqa: E731
    if order is not None:
        rows = order(rows, {r: get(r, None) for r in rows})
    elif "unknown" in rows:
        rows = [r for r in rows if r != "unknown"] + ["unknown"]
    printed = [Row(r, row_labels(r), [get(r, c) for c in column_codes]) for r in rows]
    printed.append(Row(None, "Total", [get(None, c) for c in column_codes]))
    return ProfileTable(key, title, basis, row_heading, headings, column_codes, printed,
                        answer["suppression"]["suppressed_cells"])
