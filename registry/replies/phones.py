"""Sender numbers as nationals' phones are stored (E.164), whatever form the gateway gives them in.

An SMSC passes the sender as ``+639171234567``, ``00639171234567``, ``639171234567`` or in its country's
national format (``09171234567``); Google's libphonenumber (the ``phonenumbers`` package, maintained with
the numbering plans) tells a country code from a trunk prefix and checks the number is valid for its
country. National-format numbers are read as numbers of ``region`` (REGISTRY_NATIONALITY: the service's
nationals' SIM cards, and the country of the gateway's own SMSC).
"""
from __future__ import annotations

import re

import phonenumbers

_SEPARATORS = re.compile(r"[\s\-().\u00a0]")
_DIALLABLE = re.compile(r"^\+?[0-9]{4,20}$")


def normalise(sender: str, region: str) -> str | None:
    """``sender`` in E.164 (``+`` and digits) when it is a valid phone number, else None (a short code, an
    alphanumeric sender, a number valid nowhere)."""
    digits = _SEPARATORS.sub("", sender or "")
    if not _DIALLABLE.match(digits):
        return None
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+"):
        tries = ((digits, None),)
    elif digits.startswith("0"):
        tries = ((digits, region),)  # national format: the trunk prefix of ``region``
    else:
        tries = (("+" + digits, None), (digits, region))  # a country code without its "+", or a local number
    for text, country in tries:
        try:
            number = phonenumbers.parse(text, country)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def stored_sender(sender: str, region: str) -> str:
    """What a reply keeps of its sender: the E.164 number, else the sender cleaned (at most 32 characters)."""
    return normalise(sender, region) or "".join(ch for ch in (sender or "").strip() if ch.isprintable())[:32] or "?"
