"""The mapping test (issue 14): a corpus of what agencies write, each with its expected code or "refuse".

``tests/data/mapping_corpus.tsv`` (kind, value, expected, note) holds country
spellings and occupation titles in English, Filipino, Arabic and other
languages, abbreviations and typos. It was written before the alias tables
(``registry/data/*.tsv``) and is not a copy of them: many of its values
(typos, diacritics, taa marbuta, plurals, "Dubai, UAE") reach a code only
through the normaliser, the parts rule or the typo rule. Run with ``-s`` to
see the figures (or ``python -m tests.test_codes_mapping``):

    accuracy: the share of values answered as expected (mapped to the expected code, or refused);
    wrong silent mappings: values mapped to a code other than the expected one (must be 0).
"""
from __future__ import annotations

import collections
import csv
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from registry.codes import harmonise, normal, sources

CORPUS = Path(__file__).parent / "data" / "mapping_corpus.tsv"
TARGET_ACCURACY = 0.98


def corpus() -> list[dict]:
    with CORPUS.open(encoding="utf-8") as file:
        return list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))


def hand_written_keys(kind: str) -> set[str]:
    table = "country_aliases.tsv" if kind == "country" else "occupation_aliases.tsv"
    return {normal.key(a.value, singular=kind == "occupation") for a in sources.aliases(table)}


def measure() -> dict[str, dict]:
    """Per kind: values, answered as expected, wrong silent mappings, how each was answered, the misses."""
    figures: dict[str, dict] = {}
    for row in corpus():
        occupation = row["kind"] == "occupation"
        match = (harmonise.match_occupation if occupation else harmonise.match_country)(row["value"])
        answer = match.code or "refuse"
        kind = figures.setdefault(row["kind"], {"values": 0, "right": 0, "wrong_silent": [], "refused_wrongly": [],
                                                "mapped_not_refused": [], "how": collections.Counter(),
                                                "hand_written": hand_written_keys(row["kind"])})
        kind["values"] += 1
        how = match.how
        if how == "exact":
            how = "hand-written row" if normal.key(row["value"], singular=occupation) in kind["hand_written"] \
                else "standard name (ISO, CLDR, ISCO)"
        kind["how"][how] += 1
        if answer == row["expected"]:
            kind["right"] += 1
        elif match.code is None:
            kind["refused_wrongly"].append((row["value"], row["expected"], match.candidates))
        elif row["expected"] == "refuse":
            kind["mapped_not_refused"].append((row["value"], answer))
        else:
            kind["wrong_silent"].append((row["value"], row["expected"], answer))
    return figures


def report(figures: dict[str, dict]) -> str:
    lines = []
    for kind, f in figures.items():
        wrong = len(f["wrong_silent"]) + len(f["mapped_not_refused"])
        lines.append(f"{kind}: {f['values']} values, accuracy {f['right'] / f['values']:.1%} "
                     f"({f['right']}/{f['values']}), wrong silent mappings {wrong}")
        lines.append("  answered by: " + ", ".join(f"{how} {n}" for how, n in f["how"].most_common()))
        lines += [f"  refused, expected {e}: {v!r} (candidates {', '.join(c)})" for v, e, c in f["refused_wrongly"]]
        lines += [f"  WRONG: {v!r} mapped to {a}, expected {e}" for v, e, a in f["wrong_silent"]]
        lines += [f"  WRONG: {v!r} mapped to {a}, expected a refusal" for v, a in f["mapped_not_refused"]]
    return "\n".join(lines)


def test_the_corpus_is_large_enough_and_well_formed():
    rows = corpus()
    kinds = [r["kind"] for r in rows]
    assert kinds.count("country") >= 300 and kinds.count("occupation") >= 200
    assert all(r["expected"] for r in rows) and set(kinds) == {"country", "occupation"}
    assert sum(r["expected"] == "refuse" for r in rows) >= 40  # the refusals are tested too


def test_mapping_accuracy_and_no_wrong_silent_mapping():
    figures = measure()
    print("\n" + report(figures))
    for kind, f in figures.items():
        assert not f["wrong_silent"] and not f["mapped_not_refused"], report(figures)
        assert f["right"] / f["values"] >= TARGET_ACCURACY, report(figures)


def _edited(draw, key: str) -> str:
    """``key`` with one or two random edits (insert, delete, substitute, transpose)."""
    letters = st.sampled_from("abcdefghijklmnopqrstuvwxyz")
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, max(len(key) - 1, 0)))
        edit = draw(st.sampled_from(("insert", "delete", "substitute", "transpose")))
        if edit == "insert":
            key = key[:i] + draw(letters) + key[i:]
        elif edit == "delete" and len(key) > 1:
            key = key[:i] + key[i + 1:]
        elif edit == "substitute":
            key = key[:i] + draw(letters) + key[i + 1:]
        elif i + 1 < len(key):
            key = key[:i] + key[i + 1] + key[i] + key[i + 2:]
    return key


@st.composite
def typos(draw, index_of):
    index = index_of()
    mapped = sorted(k for k, e in index.entries.items() if e.mapped and k.isascii() and k.isalpha())
    original = draw(st.sampled_from(mapped))
    return index, original, _edited(draw, original)


@settings(max_examples=400, deadline=None, database=None)
@given(typos(harmonise.country_index) | typos(harmonise.occupation_index))
def test_a_typo_of_a_name_is_never_mapped_to_another_code(case):
    """The margin rule makes it impossible by construction: a value within 2 edits of a name of X that
    maps by the typo rule to Y would need every key of X at least 2 edits further than Y's (> 2)."""
    index, original, typo = case
    match = index.match(typo)
    if match.how == "typo":
        assert match.code == index.entries[original].mapped or \
            OSA.distance(normal.key(typo, singular=index.singular), original) > 2, (original, typo, match)


if __name__ == "__main__":
    print(report(measure()))
