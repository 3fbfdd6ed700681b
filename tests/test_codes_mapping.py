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

import csv
from pathlib import Path

from registry.codes import harmonise

CORPUS = Path(__file__).parent / "data" / "mapping_corpus.tsv"
TARGET_ACCURACY = 0.98


def corpus() -> list[dict]:
    with CORPUS.open(encoding="utf-8") as file:
        return list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))


def measure() -> dict[str, dict]:
    """Per kind: values, answered as expected, wrong silent mappings, and the misses listed."""
    figures: dict[str, dict] = {}
    for row in corpus():
        match = (harmonise.match_country if row["kind"] == "country" else harmonise.match_occupation)(row["value"])
        answer = match.code or "refuse"
        kind = figures.setdefault(row["kind"], {"values": 0, "right": 0, "wrong_silent": [], "refused_wrongly": [],
                                                "mapped_not_refused": []})
        kind["values"] += 1
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


if __name__ == "__main__":
    print(report(measure()))
