"""The statistics page of the console (SPEC §9 ``/console/statistics``, §11), through the Flask client: who may
open it, the table's numbers and margins the same as the API's, suppressed counts marked and explained, errors
beside their field, the downloads, the bar chart, and the map's JSON (the user's jurisdiction only)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.test_console_rosters import console_client, events, field_error, page_of
from tests.test_statistics import STOCKS, cells, people, register, totals  # noqa: F401  (a fixture)

PAGE = "/console/statistics"
MAP = "/console/statistics/map.json"


def table_cells(doc) -> list[list[str]]:
    """The table's body rows: the row's names, then its counts as shown."""
    return [[" ".join(c.text_content().split()) for c in row.xpath("./th|./td")]
            for row in doc.xpath('//table[@id="statistics-table"]/tbody/tr')]


def shown(text: str):
    """A count as the page shows it: a number, or None for the suppressed mark."""
    return None if text.startswith("c") else int(text.replace(",", ""))


# ---------------------------------------------------------------------- who may

@pytest.mark.parametrize("role", ["analyst", "coordinator", "admin", "embassy"])
def test_the_roles_of_statistics_open_the_page_and_find_it_in_the_menu(app, db, role):
    browser, _ = console_client(app, db, role, ["AE"] if role == "embassy" else ())
    response = browser.get(PAGE)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    doc = page_of(response)
    assert doc.xpath('//nav[@aria-label="Main"]//a[@href="/console/statistics"]')
    assert doc.get_element_by_id("statistics-form").get("method") == "get"
    assert browser.get(MAP).status_code == 200


@pytest.mark.parametrize("role", ["desk", "auditor"])
def test_desk_officers_and_auditors_may_not_open_it(app, db, role):
    browser, _ = console_client(app, db, role)
    assert browser.get(PAGE).status_code == 403
    assert browser.get(MAP).status_code == 403
    home = page_of(browser.get("/console/"))
    assert not home.xpath('//a[@href="/console/statistics"]')


def test_signed_out_visitors_are_sent_to_sign_in(app, db):
    response = app.test_client().get(PAGE)
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


# ---------------------------------------------------------------------- the table

def test_the_table_shows_the_apis_cells_and_margins_with_names_and_suppressed_marks(app, client, db, make_user,
                                                                                    people):  # noqa: F811
    _, analyst = make_user("analyst")
    api = client.get(STOCKS, query_string={"by": "host_country,sex"}, headers=analyst).get_json()
    browser, _ = console_client(app, db, "analyst")
    response = browser.get(PAGE, query_string={"mode": "stocks", "by1": "host_country", "by2": "sex"})
    assert response.status_code == 200
    doc = page_of(response)
    heads = [" ".join(th.text_content().split()) for th in doc.xpath('//table[@id="statistics-table"]/thead/tr[2]/th')]
    assert heads == ["Female", "Male", "Total"]
    rows = {r[0]: [shown(v) for v in r[1:]] for r in table_cells(doc)}
    assert set(rows) == {"Qatar", "Saudi Arabia", "United Arab Emirates"}
    by_code = {"Qatar": "QA", "Saudi Arabia": "SA", "United Arab Emirates": "AE"}
    inner, margins = cells(api), totals(api)
    for name, values in rows.items():
        code = by_code[name]
        assert values == [inner.get((code, "F"), 0), inner.get((code, "M"), 0), margins[(code, None)]]
    footer = [" ".join(c.text_content().split()) for c in doc.xpath('//table[@id="statistics-table"]/tfoot/tr/td')]
    assert [shown(v) for v in footer] == [margins.get((None, "F")), margins.get((None, "M")),
                                          margins.get((None, None))]
    # Saudi men (5) are a primary suppression, explained to a screen reader and on hover.
    saudi = doc.xpath('//table[@id="statistics-table"]/tbody/tr[th="Saudi Arabia"]')[0]
    mark = saudi.xpath('.//span[@class="suppressed"]')
    assert mark and mark[0].get("data-reason") in ("primary", "secondary")
    men = saudi.findall("td")[1].xpath('.//span[@class="suppressed"]')[0]
    assert men.get("data-reason") == "primary" and "fewer than 10" in men.get("title")
    assert "fewer than 10 people" in men.xpath('.//span[@class="visually-hidden"]')[0].text_content()
    note = " ".join(doc.get_element_by_id("suppression-note").text_content().split())
    assert "Threshold 10" in note and "hypercube" in note
    assert f"({api['suppression']['suppressed_cells']} in this table)" in note


def test_the_page_never_links_to_a_person(app, db, people):  # noqa: F811
    browser, _ = console_client(app, db, "analyst")
    html = browser.get(PAGE, query_string={"mode": "stocks", "by1": "host_country", "by2": "sex",
                                           "by3": "age_band"}).get_data(as_text=True)
    assert "/console/nationals" not in html and "/api/v1/nationals" not in html


def test_three_dimensions_show_rows_of_two_and_the_other_totals(app, db, people):  # noqa: F811
    browser, _ = console_client(app, db, "coordinator")
    doc = page_of(browser.get(PAGE, query_string={"mode": "stocks", "by1": "host_country", "by2": "sex",
                                                  "by3": "age_band"}))
    rows = [r[:2] for r in table_cells(doc)]
    assert rows == [["Qatar", "Female"], ["Saudi Arabia", "Female"], ["Saudi Arabia", "Male"],
                    ["United Arab Emirates", "Female"], ["United Arab Emirates", "Male"]]
    heads = [" ".join(th.text_content().split()) for th in doc.xpath('//table[@id="statistics-table"]/thead/tr[2]/th')]
    assert heads[-1] == "Total" and "35–39" in heads  # born 1990: 35 or 36 years old
    assert doc.get_element_by_id("margins-table") is not None


def test_one_dimension_and_none(app, db, people):  # noqa: F811
    browser, _ = console_client(app, db, "admin")
    doc = page_of(browser.get(PAGE, query_string={"mode": "stocks", "by1": "occupation"}))
    assert table_cells(doc) == [["9 Elementary occupations", "59"]]
    grand = page_of(browser.get(PAGE, query_string={"mode": "stocks"}))
    assert grand.get_element_by_id("grand-total").text_content().strip() == "59"


def test_flows_by_month_match_the_api(app, client, db, desk, make_user):
    for month, n in (("2026-03", 12), ("2026-04", 4)):
        for _ in range(n):
            register(client, desk, "SA", "F", start=f"{month}-10")
    browser, _ = console_client(app, db, "analyst")
    doc = page_of(browser.get(PAGE, query_string={"mode": "flows", "kind": "departures", "from": "2026-01-01",
                                                  "to": "2026-06-30", "by1": "host_country"}))
    rows = {r[0]: [shown(v) for v in r[1:]] for r in table_cells(doc)}
    _, analyst = make_user("analyst")
    api = client.get("/api/v1/statistics/flows", query_string={"kind": "departures", "by": "month,host_country",
                                                               "from": "2026-01-01", "to": "2026-06-30"},
                     headers=analyst).get_json()
    inner, margins = cells(api), totals(api)
    assert rows["Mar 2026"] == [inner[("2026-03", "SA")], margins[("2026-03", None)]]
    assert rows["Apr 2026"] == [None, None]  # 4: suppressed
    heading = doc.get_element_by_id("result-heading").text_content()
    assert "Departures from 2026-01-01 to 2026-06-30, by month and host country" in heading
    nobody = page_of(browser.get(PAGE, query_string={"mode": "flows", "kind": "returns", "from": "2026-01-01",
                                                     "to": "2026-06-30"}))
    assert "Nobody is counted" in nobody.get_element_by_id("empty-result").text_content()


# ---------------------------------------------------------------------- errors beside their field

def test_errors_are_shown_beside_their_field(app, db):
    browser, _ = console_client(app, db, "analyst")
    future = (date.today() + timedelta(days=3)).isoformat()
    response = browser.get(PAGE, query_string={"mode": "stocks", "at": future, "by1": "host_country"})
    assert response.status_code == 422
    assert "not after today" in field_error(page_of(response), "at")
    response = browser.get(PAGE, query_string={"mode": "stocks", "by1": "shoe_size", "by2": "sex", "by3": "sex"})
    doc = page_of(response)
    assert response.status_code == 422 and "offered dimensions" in field_error(doc, "by1")
    assert "chosen already" in field_error(doc, "by3")
    response = browser.get(PAGE, query_string={"mode": "flows", "kind": "departures", "from": "2026-05-01",
                                               "to": "2026-04-01"})
    assert response.status_code == 422 and "on or after" in field_error(page_of(response), "to")
    response = browser.get(PAGE, query_string={"mode": "flows", "kind": "departures", "from": "May",
                                               "to": "2026-04-01", "by1": "status"})
    doc = page_of(response)
    assert "YYYY-MM-DD" in field_error(doc, "from") and "not counted by status" in field_error(doc, "by1")
    response = browser.get(PAGE, query_string={"mode": "flows", "from": "2026-01-01", "to": "2026-04-01",
                                               "by1": "sex", "by2": "host_country", "by3": "region"})
    assert "at most two" in field_error(page_of(response), "by3")
    # The form keeps what was sent.
    assert page_of(response).get_element_by_id("from").get("value") == "2026-01-01"


# ---------------------------------------------------------------------- downloads, chart, audit

def test_downloads_are_the_same_query_through_the_api_with_the_session(app, db, people):  # noqa: F811
    browser, _ = console_client(app, db, "analyst")
    doc = page_of(browser.get(PAGE, query_string={"mode": "stocks", "by1": "host_country", "by2": "sex"}))
    links = {a.text_content(): a.get("href") for a in doc.xpath('//p[@class="downloads"]/a')}
    assert set(links) == {"CSV", "HXL", "SDMX-CSV"}
    assert "by=host_country%2Csex" in links["CSV"] and "format=csv" in links["CSV"]
    for name, href in links.items():
        response = browser.get(href)
        assert response.status_code == 200, (name, response.get_data(as_text=True)[:300])
        body = response.get_data(as_text=True)
        assert ("SA,M,,yes" in body) if name != "SDMX-CSV" else ("SA,M," in body and ",O,C" in body)


def test_the_chart_draws_the_first_dimensions_published_totals(app, db, people):  # noqa: F811
    browser, _ = console_client(app, db, "analyst")
    doc = page_of(browser.get(PAGE, query_string={"mode": "stocks", "by1": "host_country", "by2": "sex"}))
    svg = doc.xpath('//figure[@id="chart"]//svg')[0]
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "chart-title chart-desc"
    assert svg.xpath('./title') and "table below" in svg.xpath('./desc')[0].text_content()
    bars = {g.get("data-label"): int(g.get("data-count")) for g in svg.xpath('.//g[@class="bar"]')}
    # Qatar (3) is suppressed: left out of the chart, and said so.
    assert "Qatar" not in bars and set(bars) <= {"Saudi Arabia", "United Arab Emirates"}
    assert bars.get("United Arab Emirates") in (26, None) and bars.get("Saudi Arabia") in (30, None)
    assert "Qatar" in doc.xpath('//figure[@id="chart"]/figcaption')[0].text_content()


def test_the_page_and_the_map_are_audited(app, db, people):  # noqa: F811
    browser, user = console_client(app, db, "analyst")
    browser.get(PAGE, query_string={"mode": "stocks", "by1": "host_country"})
    browser.get(MAP)
    found = [e for e in events(db, "console.statistics") if e.actor_id == user.id]
    assert found and found[-1].object_type == "statistics" and found[-1].details["dimensions"] == ["host_country"]
    assert [e for e in events(db, "console.statistics_map") if e.actor_id == user.id]


# ---------------------------------------------------------------------- the map's data

def test_the_map_json_has_the_stocks_by_host_country_with_classes(app, client, db, make_user, people):  # noqa: F811
    browser, _ = console_client(app, db, "analyst")
    answer = browser.get(MAP).get_json()
    assert answer["at"] == date.today().isoformat()
    found = {c["code"]: c for c in answer["countries"]}
    assert set(found) == {"AE", "QA", "SA"}
    assert found["QA"]["suppressed"] and found["QA"]["count"] is None and found["QA"]["class"] is None
    # Qatar (3) could be worked out from the total and the other two: one of them is hidden too.
    assert found["SA"]["count"] in (30, None) and found["AE"]["count"] in (26, None)
    assert found["SA"]["name"] == "Saudi Arabia"
    assert [found[c]["suppressed"] for c in ("AE", "SA")].count(True) == 1
    for code, count in (("SA", 30), ("AE", 26)):
        if not found[code]["suppressed"]:
            shade = answer["classes"][found[code]["class"]]
            assert shade["from"] <= count <= shade["to"] and shade["colour"].startswith("#")
    assert all(len(c["label"]) == 2 for c in answer["countries"])
    _, analyst = make_user("analyst")
    api = client.get(STOCKS, query_string={"by": "host_country"}, headers=analyst).get_json()
    assert {k[0]: v for k, v in cells(api).items()} == {code: c["count"] for code, c in found.items()}
    assert browser.get(MAP, query_string={"at": "yesterday"}).status_code == 422


def test_an_embassy_officer_maps_only_their_jurisdiction(app, db, people):  # noqa: F811
    browser, _ = console_client(app, db, "embassy", ["AE"])
    answer = browser.get(MAP).get_json()
    assert [c["code"] for c in answer["countries"]] == ["AE"] and answer["countries"][0]["count"] == 26
    assert answer["classes"] == [{"from": 26, "to": 26, "colour": "#3182bd"}]
    doc = page_of(browser.get(PAGE, query_string={"mode": "stocks", "by1": "host_country"}))
    assert [r[0] for r in table_cells(doc)] == ["United Arab Emirates"]
