"""How an SMS text travels: GSM-7 or UCS-2, and how many parts it takes (3GPP TS 23.038 / 23.040).

A text whose every character is in the GSM 7-bit default alphabet (or its
extension table, whose characters take an escape and so two septets: ``€``,
``[``, ``]``, ``{``, ``}``, ``\\``, ``^``, ``~``, ``|`` and form feed) goes as
GSM-7: 160 septets in one message, 153 per part once it is split (the user
data header takes the rest). Anything else (Arabic or Thai script, emoji,
most accented letters) makes the whole message UCS-2: 70 UTF-16 code units in
one message, 67 per part. A part never ends between an escape and its
character, nor between the two halves of a surrogate pair. Pure functions.
"""
from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The default alphabet, in code order (0x1B, the escape, is left out: it is not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {GSM7: 160, UCS2: 70}
PER_PART = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class Measure:
    """A text's encoding, its length in that encoding's units (septets or UTF-16 code units) and its parts."""

    encoding: str
    units: int
    parts: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def encoding_of(text: str) -> str:
    return GSM7 if is_gsm7(text) else UCS2


def _unit_lengths(text: str, encoding: str) -> list[int]:
    """Each character's size in units: septets (2 for the extension table) or UTF-16 code units."""
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def split(text: str, encoding: str | None = None) -> list[str]:
    """The text cut into the parts it is sent in (one part: the text itself; empty text: one empty part)."""
    encoding = encoding or encoding_of(text)
    sizes = _unit_lengths(text, encoding)
    if sum(sizes) <= SINGLE[encoding]:
        return [text]
    limit, parts, start, used = PER_PART[encoding], [], 0, 0
    for i, size in enumerate(sizes):
        if used + size > limit:  # a two-unit character never straddles two parts
            parts.append(text[start:i])
            start, used = i, 0
        used += size
    parts.append(text[start:])
    return parts


def measure(text: str) -> Measure:
    encoding = encoding_of(text)
    units = sum(_unit_lengths(text, encoding))
    parts = 1 if units <= SINGLE[encoding] else len(split(text, encoding))
    return Measure(encoding, units, parts)


def parts(text: str) -> int:
    return measure(text).parts
