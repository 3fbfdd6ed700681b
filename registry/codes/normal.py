"""The normal form in which written names are compared (country names, occupation titles).

Case, accents, punctuation and spacing never make two names differ; nor do
Arabic spelling variants: diacritics (tashkeel) and tatweel are dropped, the
alef forms (أ إ آ ٱ) become ا, taa marbuta ة becomes ه, alef maksura ى and
Persian yeh ی become ي, hamza on a seat (ؤ ئ) becomes its seat and a lone hamza
goes; the article ال is taken off each word. English "the" is dropped, "&" is
"and". Occupation titles are also put in the singular and the masculine (``singular=True``): an
English plural "s" and an Arabic feminine ending (ة, by then ه) never change an occupation's code.
"""
from __future__ import annotations

import re
import unicodedata

_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")  # tashkeel, tatweel
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي", "ی": "ي",
                                 "ؤ": "و", "ئ": "ي", "ء": "", "ک": "ك"})
_APOSTROPHES = str.maketrans("", "", "'’‘`ʼ´")
_STOP_WORDS = frozenset({"the"})


def normal(text: str, *, singular: bool = False) -> str:
    """Words in normal form, joined by single spaces ("" for text with no letters or digits)."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = _ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES).replace("&", " and ")
    text = "".join(c if c.isalnum() else " " for c in text)
    words = []
    for word in text.split():
        if word.startswith("ال") and len(word) > 3:
            word = word[2:]
        if word in _STOP_WORDS:
            continue
        words.append(_singular(word) if singular else word)
    return " ".join(words)


def key(text: str, *, singular: bool = False) -> str:
    """The lookup key: the normal form without spaces ("Hong Kong" and "HongKong" are one key)."""
    return normal(text, singular=singular).replace(" ", "")


def _singular(word: str) -> str:
    if word.endswith("ه") and len(word) > 3 and "\u0600" <= word[0] <= "\u06ff":
        return word[:-1]
    if len(word) <= 3 or not word.isascii() or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1]
