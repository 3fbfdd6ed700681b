"""The migration profile's charts (matplotlib, Agg, PNG in memory), drawn from the printed tables only.

A suppressed count is never drawn, not even as a bar of some size: it is left out, and the chart's caption
says how many were. matplotlib is imported when a chart is drawn (it takes a while), never at import.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

from registry.statistics.profile import Profile, ProfileTable

TOP_DESTINATIONS = 15
WIDTH_IN, DPI = 7.0, 150
FEMALE, MALE, THIRD = "#b2182b", "#2166ac", "#4d9221"


@dataclass
class Chart:
    title: str
    png: bytes | None  # None: nothing published to draw
    caption: str


def charts(profile: Profile) -> dict[str, Chart]:
    """The charts of the profile, by the key of the table they follow."""
    return {"destination": destinations(profile), "age_sex": pyramid(profile),
            "occupation": occupations(profile), "repatriations": flows(profile)}


def _left_out(count: int, what: str) -> str:
    if not count:
        return ""
    return f" {count} {what} with a suppressed count {'is' if count == 1 else 'are'} left out."


def _figure(height_in: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, the Agg canvas by default
    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _published(table: ProfileTable, column=None) -> tuple[list[tuple[str, str, int]], int]:
    """(code, label, count) of every published category of ``column`` (None: the totals) and how many are
    suppressed; the total row left out."""
    index = table.column_codes.index(column)
    shown, hidden = [], 0
    for row in table.rows:
        if row.code is None:
            continue
        if row.values[index] is None:
            hidden += 1
        else:
            shown.append((row.code, row.label, row.values[index]))
    return shown, hidden


def _bars(title: str, items: list[tuple[str, int]], caption: str, colour: str = MALE) -> Chart:
    if not any(count for _, count in items):
        return Chart(title, None, caption + " Nothing published to draw.")
    figure, axes = _figure(max(2.0, 0.6 + 0.28 * len(items)))
    labels = [label for label, _ in items][::-1]
    values = [count for _, count in items][::-1]
    bars = axes.barh(labels, values, color=colour)
    axes.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=7)
    axes.set_xlabel("People")
    axes.tick_params(labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    axes.margins(x=0.12)
    return Chart(title, _png(figure), caption)


def destinations(profile: Profile) -> Chart:
    table = profile.table("destination")
    shown, hidden = _published(table)
    shown = sorted(shown, key=lambda s: -s[2])
    top = shown[:TOP_DESTINATIONS]
    more = f" The {len(top)} largest of {len(shown)} destinations with a published count." \
        if len(shown) > len(top) else ""
    caption = f"Nationals abroad by destination, at the end of {profile.stocks_day.isoformat()}.{more}" \
              + _left_out(hidden, "destination" if hidden == 1 else "destinations")
    return _bars("Nationals abroad by destination", [(label, count) for _, label, count in top], caption)


def occupations(profile: Profile) -> Chart:
    table = profile.table("occupation")
    shown, hidden = _published(table)
    caption = f"Nationals abroad by ISCO-08 major group, at the end of {profile.stocks_day.isoformat()}." \
              + _left_out(hidden, "group" if hidden == 1 else "groups")
    return _bars("Nationals abroad by occupation", [(label, count) for _, label, count in shown], caption, THIRD)


def pyramid(profile: Profile) -> Chart:
    """Age bands by sex, men to the left and women to the right."""
    table = profile.table("age_sex")
    title = "Nationals abroad by age band and sex"
    sides = {}
    hidden = 0
    for code in ("M", "F"):
        if code in table.column_codes:
            shown, left_out = _published(table, code)
            sides[code] = {row_code: count for row_code, _, count in shown}
            hidden += left_out
    others = [c for c in table.column_codes if c not in ("M", "F", None)]
    caption = f"Men (left) and women (right) by age band, at the end of {profile.stocks_day.isoformat()}." \
              + _left_out(hidden, "cell" if hidden == 1 else "cells") \
              + (" Other and unknown sex are in the table, not in the chart." if others else "")
    if not any(sides.get(c) for c in ("M", "F")):
        return Chart(title, None, caption + " Nothing published to draw.")
    bands = [r for r in table.rows if r.code is not None]
    figure, axes = _figure(3.6)
    y = list(range(len(bands)))
    men = [-(sides.get("M", {}).get(r.code) or 0) for r in bands]
    women = [sides.get("F", {}).get(r.code) or 0 for r in bands]
    axes.barh(y, men, color=MALE, label="Men")
    axes.barh(y, women, color=FEMALE, label="Women")
    axes.set_yticks(y, [r.label for r in bands])
    axes.axvline(0, color="black", linewidth=0.6)
    axes.xaxis.set_major_formatter(lambda value, _: f"{abs(int(value)):,}")
    axes.set_xlabel("People")
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return Chart(title, _png(figure), caption)


def flows(profile: Profile) -> Chart:
    """Departures, returns and repatriations by month, a gap where a month's count is suppressed."""
    title = "Departures, returns and crisis repatriations by month"
    lines, hidden = [], 0
    for key, label, colour in (("departures", "Departures", MALE), ("returns", "Returns", FEMALE),
                               ("repatriations", "Crisis repatriations", THIRD)):
        table = profile.table(key)
        values = [row.values[0] for row in table.rows if row.code is not None]
        hidden += sum(v is None for v in values)
        lines.append((label, colour, [math.nan if v is None else v for v in values], table))
    caption = f"People by month, {profile.first.isoformat()} to {profile.last.isoformat()}." \
              + _left_out(hidden, "month" if hidden == 1 else "months (of the three series)")
    if all(all(math.isnan(v) or v == 0 for v in values) for _, _, values, _ in lines):
        return Chart(title, None, caption + " Nothing published to draw.")
    figure, axes = _figure(3.0)
    months = [row.label[:3] for row in lines[0][3].rows if row.code is not None]
    for label, colour, values, _ in lines:
        axes.plot(months, values, marker="o", markersize=3, color=colour, label=label)
    axes.set_ylabel("People")
    axes.set_ylim(bottom=0)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return Chart(title, _png(figure), caption)
