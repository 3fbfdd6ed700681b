"""SMS encodings and parts (registry/gateways/text.py) and campaign templates (registry/campaigns/templates.py):
pure functions, no database."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.campaigns import templates as tpl
from registry.gateways import text
from registry.gateways.sms import KannelClient, classify

GSM_CHARS = sorted(text.GSM7_BASIC | text.GSM7_EXTENSION)


@pytest.mark.parametrize("body, encoding, units, parts", [
    ("", text.GSM7, 0, 1),
    ("a" * 160, text.GSM7, 160, 1),
    ("a" * 161, text.GSM7, 161, 2),
    ("a" * 306, text.GSM7, 306, 2),
    ("a" * 307, text.GSM7, 307, 3),
    ("€" * 80, text.GSM7, 160, 1),           # an extension character takes two septets
    ("€" * 81, text.GSM7, 162, 2),
    ("a" * 159 + "[", text.GSM7, 161, 2),
    ("ع" * 70, text.UCS2, 70, 1),            # Arabic script: UCS-2
    ("ع" * 71, text.UCS2, 71, 2),
    ("ع" * 134, text.UCS2, 134, 2),
    ("ع" * 135, text.UCS2, 135, 3),
    ("😀" * 35, text.UCS2, 70, 1),            # outside the BMP: two UTF-16 code units each
    ("😀" * 36, text.UCS2, 72, 2),
    ("Olá", text.UCS2, 3, 1),                # á is not in the GSM 7-bit alphabet
    ("Olà", text.GSM7, 3, 1),                # à is
])
def test_encoding_units_and_parts_at_the_boundaries(body, encoding, units, parts):
    measure = text.measure(body)
    assert (measure.encoding, measure.units, measure.parts) == (encoding, units, parts)


def test_an_arabic_name_makes_the_whole_message_ucs2():
    body = "Fatima, are you safe? Reply 1 SAFE. Hotline +63 2 8834 4000".replace("Fatima", "فاطمة")
    assert text.measure(body).encoding == text.UCS2
    assert text.measure(body.replace("فاطمة", "Fatima")).encoding == text.GSM7


def test_an_escape_never_straddles_two_parts():
    body = "a" * 152 + "€" + "b" * 10  # 152 septets, then a 2-septet character that would end at 154
    parts = text.split(body)
    assert parts[0] == "a" * 152 and parts[1].startswith("€")
    assert text.measure(body).parts == 2


@given(st.text(alphabet=GSM_CHARS, max_size=800))
def test_gsm7_parts_hold_their_limits_and_join_back(body):
    parts = text.split(body)
    assert "".join(parts) == body
    sizes = [sum(2 if c in text.GSM7_EXTENSION else 1 for c in part) for part in parts]
    if len(parts) == 1:
        assert sizes[0] <= 160
    else:
        assert all(size <= 153 for size in sizes)
        assert text.measure(body).units > 160
    assert text.measure(body).parts == len(parts)


@given(st.text(min_size=1, max_size=400).filter(lambda s: not text.is_gsm7(s)))
def test_ucs2_parts_count_utf16_units(body):
    parts = text.split(body)
    assert "".join(parts) == body
    units = [len(part.encode("utf-16-le")) // 2 for part in parts]
    assert (units[0] <= 70) if len(parts) == 1 else all(u <= 67 for u in units)
    assert text.measure(body).units == len(body.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------- templates

@pytest.mark.parametrize("template, field, named", [
    ("Hello {name}", "template", "{name}"),
    ("Hello {given_name} {0}", "template", "{0}"),
    ("Hello {}", "template", "{}"),
    ("Hello {given_name", "template", "Malformed"),
    ("Hello given_name}", "template", "Malformed"),
    ("Hi {given_name:>10}", "template", "format"),
    ("Hi {given_name!r}", "template", "format"),
    ("Hi {given_name.upper}", "template", "{given_name.upper}"),
])
def test_unknown_or_malformed_placeholders_are_named(template, field, named):
    with pytest.raises(tpl.TemplateError) as caught:
        tpl.check({"en": template})
    assert caught.value.field == field and named in caught.value.message


def test_a_bad_language_template_names_its_field():
    with pytest.raises(tpl.TemplateError) as caught:
        tpl.check({"en": "Hi {given_name}", "fil": "Kumusta {pangalan}"})
    assert caught.value.field == "template.fil" and "{pangalan}" in caught.value.message


def test_the_four_placeholders_render():
    body = tpl.render("{given_name} {crisis_name} {checkin_link} {hotline} {{literal}}", {
        "given_name": "Maria", "crisis_name": "Flood", "checkin_link": "https://x/checkin/t", "hotline": "911"})
    assert body == "Maria Flood https://x/checkin/t 911 {literal}"


def test_languages_choose_the_template():
    templates = {"fil": "F", "en": "E", "ar": "A"}
    assert tpl.choose(templates, ["ar", "fil"]) == "ar"
    assert tpl.choose(templates, ["ja"]) == "en"
    assert tpl.choose({"fil": "F", "ar": "A"}, []) == "fil"
    assert tpl.given_name("Maria Luisa") == "Maria"
    assert len(tpl.given_name("X" * 80)) == tpl.GIVEN_NAME_MAX


def test_worst_case_counts_the_longest_given_name():
    short = "{given_name}: " + "a" * (160 - 2 - tpl.GIVEN_NAME_MAX)
    assert tpl.worst_case(short, "Flood", "", 40).parts == 1
    assert tpl.worst_case(short + "a", "Flood", "", 40).parts == 2


# ---------------------------------------------------------------------- Kannel's request and answers

def test_the_sendsms_request_carries_coding_charset_and_the_dlr_url():
    client = KannelClient("http://127.0.0.1:14113/cgi-bin/sendsms?username=u&password=p", "SAGIP")
    plain = client.query("+971500000001", "Are you safe?", "http://h/api/v1/hooks/sms/dlr/1/m?type=%d")
    assert plain.startswith("/cgi-bin/sendsms?username=u&password=p&to=%2B971500000001")
    assert "coding=0" in plain and "charset=UTF-8" in plain and "from=SAGIP" in plain
    assert "dlr-mask=19" in plain and "dlr-url=http%3A%2F%2Fh%2Fapi%2Fv1%2Fhooks%2Fsms%2Fdlr%2F1%2Fm%3Ftype%3D%25d" in plain
    assert "coding=2" in client.query("+971500000001", "فاطمة")


@pytest.mark.parametrize("status, body, outcome", [
    (202, "0: Accepted for delivery", "accepted"), (202, "Sent.", "accepted"), (200, "Sent.", "accepted"),
    (202, "3: Queued for later delivery", "accepted"), (403, "Denied", "refused"), (400, "Missing", "refused"),
    (503, "Temporal failure, try again later.", "unavailable"), (500, "Internal", "unavailable"),
    (200, "huh", "unavailable"),
])
def test_kannel_answers_are_classified(status, body, outcome):
    assert classify(status, body).outcome == outcome
