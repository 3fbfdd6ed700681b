"""What agencies write → common codes: country names to ISO 3166-1, occupation titles to ISCO-08 (SPEC §11).

The mapping is a lookup in tables that are data (``registry/data/*.tsv``, the
pycountry names, the CLDR names and the ISCO-08 titles), after normalisation
(``registry.codes.normal``). In order:

1. a code: an ISO 3166-1 alpha-2 code (any case) or an ISCO-08 code;
2. the whole value's key in the tables; a key that names several codes (an
   ambiguous row such as "Korea", or two sources disagreeing) or none ("OFW")
   is refused with those candidates;
3. the value's parts ("Dubai, UAE", "waiter/waitress", "Domestic Helper (DH)",
   "Saudi Arabia Jeddah"): mapped when every part is itself an exact key and
   all name the same code;
4. a typo, by the confidence rule (``ACCEPT``): the nearest key, in
   optimal-string-alignment edits (a transposition is one edit), is at most
   1 edit away from a key of 6+ characters or 2 from one of 11+, it names one
   code, and every key of any other code (or of an ambiguous row) is at least
   2 edits further away.

Anything else is refused: ``Unmapped`` (a ``ValueError``) names the value and
the closest candidates. Nothing is ever stored on a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from registry.codes import normal, sources
from registry.validation import COUNTRY_CODES, isco_codes

QUOTED_CHARS = 40
CANDIDATES = 3
CANDIDATE_SCORE = 70  # rapidfuzz WRatio (0–100) of a name shown as a candidate
SOURCES_DISAGREE = "named so by more than one source"
MARGIN_EDITS = 2      # every other code's nearest key is at least this many edits further


def max_edits(key_length: int) -> int:
    """Edits a typo may make in a key of this length and still be mapped (the confidence rule)."""
    return 2 if key_length >= 11 else 1 if key_length >= 6 else 0


@dataclass(frozen=True)
class Entry:
    """One key of an index: the codes it names (one: mapped) and why it is refused otherwise."""
    codes: tuple[str, ...]
    note: str = ""

    @property
    def mapped(self) -> str | None:
        return self.codes[0] if len(self.codes) == 1 and not self.note else None


@dataclass(frozen=True)
class Match:
    code: str | None
    how: str                      # code, exact, parts, typo, refused
    candidates: tuple[str, ...]   # codes, closest first (refused values)
    note: str = ""


class Unmapped(ValueError):
    """A value that cannot be mapped with confidence; the message names it and the closest candidates."""

    def __init__(self, message: str, match: Match):
        super().__init__(message)
        self.match = match


_PARTS = re.compile(r"[,;/()\[\]|]|\s[-–—]\s|\s[-–—]|[-–—]\s")


class Index:
    """Keys → entries for one kind of value, with the names shown beside candidate codes."""

    def __init__(self, kind: str, names: dict[str, str], *, singular: bool = False):
        self.kind = kind
        self.names = names
        self.singular = singular
        self.entries: dict[str, Entry] = {}
        self._spaced: dict[str, str] = {}   # key → its words, for ranking candidates

    def add(self, value: str, codes: tuple[str, ...], note: str = "", *, override: bool = False) -> None:
        """Add a name. A key that two sources give different codes becomes ambiguous; ``override`` (the
        hand-made table) replaces what the generated sources said."""
        words = normal.normal(value, singular=self.singular)
        k = words.replace(" ", "")
        if not k:
            return
        entry = Entry(tuple(codes), note)
        old = self.entries.get(k)
        if old is not None and not override and old != entry:
            if old.note or entry.note or self._lineage(old.codes + entry.codes) is None:
                merged = tuple(dict.fromkeys(old.codes + entry.codes))
                entry = Entry(merged, old.note or entry.note or SOURCES_DISAGREE)
            else:
                entry = Entry((self._lineage(old.codes + entry.codes),))
        self.entries[k] = entry
        self._spaced[k] = words

    def _lineage(self, codes: tuple[str, ...]) -> str | None:
        """The most detailed code when all lie on one line of a hierarchy (ISCO: 512 and 5120), else None."""
        if self.kind != "occupation":
            return None if len(set(codes)) > 1 else codes[0]
        deepest = max(codes, key=len)
        return deepest if all(deepest.startswith(c) for c in codes) else None

    def freeze(self) -> None:
        self._keys = list(self.entries)
        self._words = [self._spaced[k] for k in self._keys]

    # -- matching -------------------------------------------------------------------------------------------

    def match(self, value: str) -> Match:
        raw = str(value).strip()
        code = self._code(raw)
        if code:
            return Match(code, "code", ())
        if self.kind == "occupation" and raw.isdigit():
            within = tuple(raw[:n] for n in range(min(len(raw), 4), 0, -1) if raw[:n] in isco_codes())
            return Match(None, "refused", within[:CANDIDATES], "not an ISCO-08 code")
        k = normal.key(raw, singular=self.singular)
        if not k:
            return Match(None, "refused", (), "no letters or digits")
        entry = self.entries.get(k)
        if entry is not None:
            if entry.mapped:
                return Match(entry.mapped, "exact", ())
            return Match(None, "refused", entry.codes, entry.note)
        parted = self._parts(raw)
        if parted:
            return Match(parted, "parts", ())
        return self._typo(k, raw)

    def _code(self, raw: str) -> str | None:
        if self.kind == "country":
            return raw.upper() if len(raw) == 2 and raw.upper() in COUNTRY_CODES else None
        return raw if raw.isdigit() and raw in isco_codes() else None

    def _exact(self, text: str) -> str | None:
        code = self._code(text.strip())
        if code:
            return code
        entry = self.entries.get(normal.key(text, singular=self.singular))
        return entry.mapped if entry else None

    def _parts(self, raw: str) -> str | None:
        """The one code every part names exactly: split at separators, else at one word boundary."""
        parts = [p for p in _PARTS.split(raw) if p.strip()]
        if len(parts) > 1:
            codes = {self._exact(p) for p in parts}
            return codes.pop() if len(codes) == 1 and None not in codes else None
        words = normal.normal(raw, singular=self.singular).split()
        for cut in range(1, len(words)):
            left, right = self._exact(" ".join(words[:cut])), self._exact(" ".join(words[cut:]))
            if left and left == right:
                return left
        return None

    def _typo(self, k: str, raw: str) -> Match:
        near = process.extract(k, self._keys, scorer=OSA.distance, score_cutoff=max_edits(99) + MARGIN_EDITS - 1,
                               limit=None)
        best_by_group: dict[tuple, int] = {}
        best_key: dict[tuple, str] = {}
        for candidate, distance, _ in near:
            entry = self.entries[candidate]
            group = (entry.mapped,) if entry.mapped else ("?",) + entry.codes
            if distance < best_by_group.get(group, 99):
                best_by_group[group], best_key[group] = distance, candidate
        ranked = sorted(best_by_group.items(), key=lambda item: item[1])
        if ranked:
            (group, distance), others = ranked[0], ranked[1:]
            accepted = (group[0] != "?" and 0 < distance <= max_edits(len(best_key[group]))
                        and all(d >= distance + MARGIN_EDITS for _, d in others))
            if accepted:
                return Match(group[0], "typo", ())
        return Match(None, "refused", self._candidates(raw, ranked))

    def _candidates(self, raw: str, ranked: list) -> tuple[str, ...]:
        found: list[str] = []
        for group, _ in ranked:
            found += [c for c in (group[1:] if group[0] == "?" else group) if c not in found]
        words = normal.normal(raw, singular=self.singular)
        for _, score, i in process.extract(words, self._words, scorer=fuzz.WRatio, limit=30,
                                           score_cutoff=CANDIDATE_SCORE):
            found += [c for c in self.entries[self._keys[i]].codes if c not in found]
        return tuple(found[:CANDIDATES])

    def describe(self, codes) -> str:
        return ", ".join(f"{c} ({self.names.get(c, '?')})" for c in codes)


def _quoted(value: str) -> str:
    """The value as written (cut), for the person who wrote it; never a value holding 5+ digits (a misplaced
    passport or phone number: import results are stored)."""
    text = " ".join(str(value).split())
    if sum(c.isdigit() for c in text) >= 5:
        return "This value (not quoted: it holds a number)"
    return repr(text[:QUOTED_CHARS] + ("…" if len(text) > QUOTED_CHARS else ""))


@lru_cache(maxsize=1)
def country_index() -> Index:
    countries = sources.countries()
    index = Index("country", {c.alpha2: c.name for c in countries})
    for c in countries:
        for name in c.pycountry_names:
            for variant in _variants(name):
                index.add(variant, (c.alpha2,))
        for code in (c.alpha3, c.numeric):
            if code:
                index.add(code, (c.alpha2,))
    for alias in sources.aliases("country_names_cldr.tsv"):
        for variant in _variants(alias.value):
            index.add(variant, alias.codes)
    _add_table(index, "country_aliases.tsv")
    index.freeze()
    return index


@lru_cache(maxsize=1)
def occupation_index() -> Index:
    groups = sources.isco()
    index = Index("occupation", {g["code"]: g["title"] for g in groups}, singular=True)
    for group in groups:
        index.add(group["title"], (group["code"],))
    _add_table(index, "occupation_aliases.tsv")
    index.freeze()
    return index


def _add_table(index: Index, name: str) -> None:
    for alias in sources.aliases(name):
        refused = len(alias.codes) != 1
        index.add(alias.value, alias.codes, alias.note if refused else "", override=True)


def _variants(name: str) -> list[str]:
    """A source's name and the forms agencies write of it: without a parenthesis ("Myanmar (Burma)"),
    with an inverted "X, Republic of" put back in order."""
    found = [name]
    bare = re.sub(r"\s*\([^)]*\)", "", name).strip()
    if bare and bare != name:
        found.append(bare)
    head, comma, tail = name.partition(", ")
    if comma and re.search(r"\bof( the)?$", tail, re.IGNORECASE):
        found.append(f"{tail} {head}")
    return found


@lru_cache(maxsize=4096)
def match_country(value: str) -> Match:
    return country_index().match(value)


@lru_cache(maxsize=4096)
def match_occupation(value: str) -> Match:
    return occupation_index().match(value)


def country(value: str) -> str:
    """The ISO 3166-1 alpha-2 code of a written country. :raises Unmapped:"""
    found = match_country(value)
    if found.code:
        return found.code
    raise Unmapped(_refusal(value, found, country_index(), "a country", "an ISO 3166-1 alpha-2 code", "countries"),
                   found)


def occupation(value: str) -> str:
    """The ISCO-08 code of a written occupation title. :raises Unmapped:"""
    found = match_occupation(value)
    if found.code:
        return found.code
    raise Unmapped(_refusal(value, found, occupation_index(), "an occupation", "an ISCO-08 code", "occupations"),
                   found)


def _refusal(value: str, found: Match, index: Index, what: str, code_kind: str, code_list: str) -> str:
    quoted, note = _quoted(value), re.sub(r"^[A-Z ]+: ", "", found.note)
    if found.note.startswith("AMBIGUOUS") or found.note == SOURCES_DISAGREE:
        head = f"{quoted} names more than one {what.split()[-1]} ({note})"
    elif found.note:
        head = f"{quoted} is not {what} ({note})"
    else:
        head = f"{quoted} is not {what} this service can map with confidence"
    closest = f"; closest: {index.describe(found.candidates)}" if found.candidates else "; no close match"
    return f"{head}{closest}. Write {code_kind} or a name of GET /api/v1/codes/{code_list}."
