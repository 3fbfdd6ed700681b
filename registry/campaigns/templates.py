"""Campaign templates: the four placeholders, their checks, per-language choice and rendering (SPEC §10).

A template is one text, or one per language (``{"en": …, "fil": …}``). Only
``{given_name}``, ``{crisis_name}``, ``{checkin_link}`` and ``{hotline}`` may
appear; any other name, a stray ``{`` or ``}``, or a format spec is refused
with the field (``template`` or ``template.fil``). An SMS template is measured
with its placeholders at their real lengths (crisis name, hotline, the link's
length) and the given name at its longest (``GIVEN_NAME_MAX`` characters: the
rendering cuts longer ones), and refused beyond ``REGISTRY_SMS_MAX_PARTS``.
"""
from __future__ import annotations

import string
from collections.abc import Mapping

from registry.gateways import text as sms_text

PLACEHOLDERS = ("given_name", "crisis_name", "checkin_link", "hotline")
GIVEN_NAME_MAX = 30
# A check-in token is 22 characters (registry/checkin/links.py).
TOKEN_LENGTH = 22
DEFAULT_LANGUAGE = "en"
MAX_TEMPLATE_CHARS = 2000
_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A template that cannot be used: ``field`` names it (``template``, ``template.fil``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def as_dict(template) -> dict[str, str]:
    """``{language: text}`` of a template given as text (English) or per language."""
    if isinstance(template, str):
        return {DEFAULT_LANGUAGE: template}
    return dict(template)


def placeholders(template: str, field: str = "template") -> list[str]:
    """The placeholder names of one template, in order. :raises TemplateError: unknown or malformed."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise TemplateError(field, f"Malformed braces ({exc}); write placeholders as {{given_name}}, and no other "
                                   "{ or }.") from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            shown = "{" + name + "}" if name else "{}"
            raise TemplateError(field, f"Unknown placeholder {shown}; use "
                                       f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}.")
        if spec or conversion:
            raise TemplateError(field, f"The placeholder {{{name}}} takes no format or conversion.")
        names.append(name)
    return names


def check(templates: Mapping[str, str]) -> None:
    """:raises TemplateError: an empty, over-long, unknown or malformed template (the field named)."""
    if not templates:
        raise TemplateError("template", "Give a template, or one per language.")
    for language, template in templates.items():
        field = "template" if len(templates) == 1 and language == DEFAULT_LANGUAGE else f"template.{language}"
        if not isinstance(template, str) or not template.strip():
            raise TemplateError(field, "The template is empty.")
        if len(template) > MAX_TEMPLATE_CHARS:
            raise TemplateError(field, f"Longer than {MAX_TEMPLATE_CHARS} characters.")
        placeholders(template, field)


def field_of(templates: Mapping[str, str], language: str) -> str:
    return "template" if len(templates) == 1 and language == DEFAULT_LANGUAGE else f"template.{language}"


def choose(templates: Mapping[str, str], languages) -> str:
    """The language of the template a national gets: their first language with a template, else English, else
    the first given."""
    for language in languages or ():
        if language in templates:
            return language
    return DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in templates else next(iter(templates))


def given_name(given_names: str | None) -> str:
    """The first given name, cut to ``GIVEN_NAME_MAX`` characters."""
    first = (given_names or "").split()
    return first[0][:GIVEN_NAME_MAX] if first else ""


def render(template: str, values: Mapping[str, str]) -> str:
    return template.format_map({name: values.get(name, "") for name in PLACEHOLDERS})


def worst_case(template: str, crisis_name: str, hotline: str, link_length: int) -> sms_text.Measure:
    """The template's SMS measure with the given name at its longest, in the template's own encoding."""
    filler = "W" if sms_text.is_gsm7(template + crisis_name + hotline) else "ع"
    return sms_text.measure(render(template, {"given_name": filler * GIVEN_NAME_MAX, "crisis_name": crisis_name,
                                              "hotline": hotline, "checkin_link": "x" * link_length}))


def link_length(public_url: str) -> int:
    return len(f"{public_url}/checkin/") + TOKEN_LENGTH
