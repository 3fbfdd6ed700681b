"""Reply keywords (SPEC §10): the first word of a reply says what it means, whatever its case or accents.

The defaults are SPEC's (``1``/``SAFE``/``LIGTAS`` safe, ``2``/``HELP``/``TULONG`` needs_assistance,
``3``/``EVACUATE`` needs_evacuation) and ``STOP``/``START`` (no more campaign messages / again).
``REGISTRY_SMS_KEYWORDS`` (a JSON object ``{"keyword": "status"}``) replaces the status keywords; ``STOP`` and
``START`` stay unless the object gives those words another meaning. It is checked when the app is built: a
bad setting is a ``ConfigError`` that names what is wrong.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from registry.config import ConfigError

STOP, START = "stop", "start"
# What a person can say of themselves by SMS.
STATUSES = ("safe", "needs_assistance", "needs_evacuation")
MEANINGS = (*STATUSES, STOP, START)
DEFAULTS = {"1": "safe", "SAFE": "safe", "LIGTAS": "safe",
            "2": "needs_assistance", "HELP": "needs_assistance", "TULONG": "needs_assistance",
            "3": "needs_evacuation", "EVACUATE": "needs_evacuation"}
ALWAYS = {"STOP": STOP, "START": START}
MAX_KEYWORD = 40
# The first word: a run of letters and digits (any script), after any leading punctuation or spaces.
_FIRST_WORD = re.compile(r"^[\W_]*([^\W_]+)(.*)$", re.DOTALL)


def fold(word: str) -> str:
    """A keyword as compared: compatibility forms unified (full-width digits), accents dropped, upper case."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


@dataclass(frozen=True)
class Reading:
    """What a reply says: the keyword found (folded) and its meaning, or None for both; the rest as a note."""

    keyword: str | None
    meaning: str | None
    note: str


@lru_cache(maxsize=8)
def table(setting: str) -> dict[str, str]:
    """The keyword table of a REGISTRY_SMS_KEYWORDS value (empty: the defaults). :raises ConfigError:"""
    if not setting.strip():
        configured = DEFAULTS
    else:
        try:
            configured = json.loads(setting)
        except ValueError as exc:
            raise ConfigError(f"REGISTRY_SMS_KEYWORDS is not JSON: {exc}") from None
        if not isinstance(configured, dict) or not configured:
            raise ConfigError('REGISTRY_SMS_KEYWORDS must be a JSON object of keywords, e.g. {"SAFE": "safe"}')
    found: dict[str, str] = {}
    for keyword, meaning in configured.items():
        folded = fold(keyword.strip()) if isinstance(keyword, str) else ""
        if not folded or not re.fullmatch(r"[^\W_]+", folded) or len(folded) > MAX_KEYWORD:
            raise ConfigError(f"REGISTRY_SMS_KEYWORDS: {keyword!r} is not one word of letters or digits "
                              f"(at most {MAX_KEYWORD})")
        if meaning not in MEANINGS:
            raise ConfigError(f"REGISTRY_SMS_KEYWORDS: {keyword!r} means {meaning!r}; a keyword means one of "
                              f"{', '.join(MEANINGS)}")
        if found.get(folded, meaning) != meaning:
            raise ConfigError(f"REGISTRY_SMS_KEYWORDS: {keyword!r} is given two meanings (keywords are compared "
                              "without case or accents)")
        found[folded] = meaning
    return {**ALWAYS, **found}


def read(text: str, keywords: dict[str, str]) -> Reading:
    """The first word as a keyword of ``keywords`` (folded), and the rest as the note; text that does not start
    with a keyword is all note."""
    match = _FIRST_WORD.match(text or "")
    if match:
        word = fold(match.group(1))
        meaning = keywords.get(word)
        if meaning is not None:
            return Reading(word, meaning, match.group(2).strip(" \t\r\n.,;:!?-—–").strip())
    return Reading(None, None, (text or "").strip())
