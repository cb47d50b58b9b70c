"""The reference source server: auth, paging, cursor, dossier versions, determinism, realism, planted
defects, legacy-identified reports, report files and faults on request."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient

from egov_index.header_mapping import HEADER_LABELS
from egov_index.periods import LOCAL_TZ
from egov_index.registry import current_units
from egov_index.schemas import (
    CHANNELS,
    COMMUNE_REPORT_FIELDS,
    DOSSIER_FIELDS,
    DOSSIER_STATUSES,
    PROCEDURE_FIELDS,
    REPORT_PART_OF_WHOLE,
    SERVICE_LEVELS,
    field_names,
)
from egov_index.source_server import generator
from egov_index.source_server.__main__ import main as server_main
from egov_index.source_server.app import DEFAULT_LEGACY_RATE, ServerSettings, create_app
from egov_index.source_server.files import FILE_STYLES, encode_cp1258, write_report_files
from egov_index.source_server.process import running_server

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PER_DAY = 400
# Tue 29 Sep 10:00 -> Thu 1 Oct 15:30 local: partial first and last days, one full day.
WINDOW = (datetime(2026, 9, 29, 10, tzinfo=LOCAL_TZ), datetime(2026, 10, 1, 15, 30, tzinfo=LOCAL_TZ))
COUNT_FIELDS = [f.name for f in COMMUNE_REPORT_FIELDS if f.category != "key" and str(f.type) == "int64"]
BOOL_FIELDS = [f.name for f in COMMUNE_REPORT_FIELDS if str(f.type) == "bool"]
UNIT_KEYS = ("report_id", "province_code", "commune_code", "commune_name", "district_name", "province_name")


def make_client(defect_rate: float = 0.0, legacy_rate: float = 0.0, **settings: Any) -> TestClient:
    defaults: dict[str, Any] = {
        "token": TOKEN,
        "dossiers_per_day": PER_DAY,
        "defect_rate": defect_rate,
        "legacy_rate": legacy_rate,
    }
    return TestClient(create_app(ServerSettings(**(defaults | settings))))


@pytest.fixture(scope="module")
def client() -> TestClient:
    return make_client()


def ts(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


def all_reports(client: TestClient, period: str = "2026-Q3") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(
            "/api/v1/commune-reports",
            params={"period": period, "page": page, "page_size": 1000},
            headers=AUTH,
        ).json()
        if not body["items"]:
            assert len(items) == body["total"]
            return items
        items += body["items"]
        page += 1


def all_dossiers(
    client: TestClient, start: datetime | str, end: datetime | str, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Follow next_cursor to the end; return the items and the total announced by every page."""
    params: dict[str, Any] = {
        "updated_from": start if isinstance(start, str) else start.isoformat(),
        "updated_to": end if isinstance(end, str) else end.isoformat(),
        "limit": limit,
    }
    items: list[dict[str, Any]] = []
    totals = set()
    while True:
        response = client.get("/api/v1/dossiers", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        totals.add(body["total"])
        if body["next_cursor"] is None:
            assert len(totals) == 1
            return items, totals.pop()
        params["cursor"] = body["next_cursor"]


def report_defects(record: dict[str, Any], communes: set[str]) -> list[str]:
    found = []
    if any(record[name] is not None and record[name] < 0 for name in COUNT_FIELDS):
        found.append("negative_count")
    if any(record[num] > record[den] for num, den in REPORT_PART_OF_WHOLE):
        found.append("numerator_exceeds_denominator")
    if record["commune_code"] not in communes:
        found.append("unknown_commune")
    return found


def dossier_defects(record: dict[str, Any], catalogue: set[str]) -> list[str]:
    found = []
    if record["resolved_at"] is not None and ts(record["resolved_at"]) < ts(record["received_at"]):
        found.append("resolved_before_received")
    if record["channel"] not in CHANNELS:
        found.append("unknown_channel")
    if record["procedure_code"] not in catalogue:
        found.append("unknown_procedure")
    if record["fee_vnd"] < 0:
        found.append("negative_fee")
    return found


# --- auth and errors ----------------------------------------------------------------------
def test_health_needs_no_token(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/commune-reports?period=2026-Q3",
        "/api/v1/commune-reports",  # auth is checked before parameters
        "/api/v1/procedures",
        "/api/v1/dossiers?updated_from=2026-09-30T00:00:00Z&updated_to=2026-10-01T00:00:00Z",
    ],
)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_api_rejects_missing_or_wrong_token(client: TestClient, path: str, headers: dict[str, str]) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert TOKEN not in response.text


def test_settings_repr_hides_token() -> None:
    assert TOKEN not in repr(ServerSettings(token=TOKEN))


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/commune-reports", {"period": "2026-Q5"}, "2026-Q3"),
        ("/api/v1/commune-reports", {"period": "2026"}, "quarterly"),
        ("/api/v1/commune-reports", {"period": "2026-Q3", "page_size": 1001}, "page size"),
        ("/api/v1/dossiers", {"updated_from": "2026-09-30", "updated_to": "2026-10-01T00:00:00Z"}, "offset"),
        (
            "/api/v1/dossiers",
            {"updated_from": "2026-09-30 07:00", "updated_to": "2026-10-01T00:00:00Z"},
            "%2B",
        ),
        (
            "/api/v1/dossiers",
            {"updated_from": "2026-10-02T00:00Z", "updated_to": "2026-10-01T00:00Z"},
            "before",
        ),
        ("/api/v1/dossiers", {"updated_from": "2025-01-01T00:00Z", "updated_to": "2026-10-01T00:00Z"}, "366"),
    ],
)
def test_bad_parameters_get_a_clear_422(client: TestClient, path: str, params: dict, message: str) -> None:
    response = client.get(path, params=params, headers=AUTH)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_garbage_cursor_is_a_400(client: TestClient) -> None:
    params = {
        "updated_from": "2026-09-30T00:00Z",
        "updated_to": "2026-10-01T00:00Z",
        "cursor": "not-a-cursor",
    }
    assert client.get("/api/v1/dossiers", params=params, headers=AUTH).status_code == 400


# --- commune reports ------------------------------------------------------------------------
def test_reports_cover_every_commune_exactly_once_with_canonical_fields(client: TestClient) -> None:
    items = all_reports(client)
    codes = [item["commune_code"] for item in items]
    assert codes == current_units().commune_codes()  # all 3,321, once each, ordered by code
    assert len(codes) == 3321
    names = field_names(COMMUNE_REPORT_FIELDS)
    for item in items:
        assert list(item) == names
        assert item["report_id"] == f"{item['commune_code']}-2026-Q3"
        assert item["period"] == "2026-Q3"
        assert all(type(item[name]) is int for name in COUNT_FIELDS)
        assert all(type(item[name]) is bool for name in BOOL_FIELDS)
        assert (
            datetime(2026, 9, 15, tzinfo=LOCAL_TZ)
            <= ts(item["submitted_at"])
            < datetime(2026, 10, 1, tzinfo=LOCAL_TZ)
        )


def test_clean_reports_respect_counts_and_ratios(client: TestClient) -> None:
    communes = set(current_units().commune_codes())
    items = all_reports(client)
    assert [item for item in items if report_defects(item, communes)] == []
    for item in items:
        assert 15 <= item["officials_total"] <= 40
        assert 3 <= item["villages_total"] <= 30
        assert 2_000 <= item["residents_adult"] <= 40_000
        assert 0 <= item["video_conference_endpoints"] <= 25


# --- procedures ------------------------------------------------------------------------------
def test_procedure_catalogue(client: TestClient) -> None:
    body = client.get("/api/v1/procedures", params={"page_size": 1000}, headers=AUTH).json()
    items = body["items"]
    assert body["total"] == len(items) == 300
    assert all(list(item) == field_names(PROCEDURE_FIELDS) for item in items)
    codes = [item["procedure_code"] for item in items]
    assert codes == sorted(set(codes))
    levels = [item["service_level"] for item in items]
    assert {level: levels.count(level) for level in SERVICE_LEVELS} == {
        "full_online": 150,
        "partial_online": 90,
        "offline": 60,
    }
    assert all(ts(item["updated_at"]) for item in items)
    second = client.get("/api/v1/procedures", params={"page": 2, "page_size": 250}, headers=AUTH).json()
    assert second["items"] == items[250:]


# --- dossiers -----------------------------------------------------------------------------------
def test_cursor_pagination_yields_the_window_exactly_once(client: TestClient) -> None:
    start, end = WINDOW
    items, total = all_dossiers(client, start, end, limit=97)
    assert len(items) == total > 3 * 97
    keys = [(ts(item["updated_at"]), item["dossier_id"]) for item in items]
    assert keys == sorted(keys)
    assert len(set(item["dossier_id"] for item in items)) == total
    assert all(start <= ts(item["updated_at"]) < end for item in items)
    # The same window in UTC ('Z'), in one page, and straight from the generator.
    assert all_dossiers(client, "2026-09-29T03:00:00Z", "2026-10-01T08:30:00Z", limit=1000) == (items, total)
    assert generator.dossiers_updated_between(start, end, seed=2026, dossiers_per_day=PER_DAY) == items


def test_window_boundaries_are_half_open(client: TestClient) -> None:
    items, _ = all_dossiers(client, *WINDOW, limit=1000)
    first = ts(items[0]["updated_at"])
    from_first, _ = all_dossiers(client, first, WINDOW[1], limit=1000)
    assert from_first[0] == items[0]
    before_first, count = all_dossiers(client, WINDOW[0], first, limit=1000)
    assert count == 0 and before_first == []


def window(a: datetime, b: datetime, **settings: Any) -> list[dict[str, Any]]:
    return generator.dossiers_updated_between(a, b, seed=2026, dossiers_per_day=PER_DAY, **settings)


def day_window(day: date) -> list[dict[str, Any]]:
    start = datetime.combine(day, time(0), tzinfo=LOCAL_TZ)
    return window(start, start + timedelta(days=1))


def latest(*windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last version of each dossier over consecutive windows, in (updated_at, dossier_id) order."""
    merged = {record["dossier_id"]: record for records in windows for record in records}
    return sorted(merged.values(), key=lambda r: (ts(r["updated_at"]), r["dossier_id"]))


def test_adjacent_windows_compose_into_the_covering_window() -> None:
    start, end = WINDOW
    cut = datetime(2026, 9, 30, 13, 17, 41, 500_000, tzinfo=LOCAL_TZ)
    left, right, whole = window(start, cut), window(cut, end), window(start, end)
    # A dossier that changed on both sides is in both windows, each time as of its last change there.
    both = {d["dossier_id"] for d in left} & {d["dossier_id"] for d in right}
    assert both and len(whole) == len(left) + len(right) - len(both)
    assert latest(left, right) == whole
    # Day by day too: a window covering several days holds the latest version over its days.
    midnight = datetime(2026, 9, 30, tzinfo=LOCAL_TZ)
    days = [window(start, midnight), day_window(midnight.date()), window(midnight + timedelta(days=1), end)]
    assert latest(*days) == whole


def test_each_daily_window_shows_a_dossiers_last_change_that_day() -> None:
    received_day = date(2026, 7, 6)
    lifecycles = generator.dossier_versions(received_day, dossiers_per_day=PER_DAY)
    stamp = received_day.strftime("%Y%m%d")
    seen: dict[str, list[dict[str, Any]]] = {}
    for k in range(generator.CORRECTION_LAG_DAYS[1] + 1):
        for record in day_window(received_day + timedelta(days=k)):
            if record["dossier_id"].split("-")[1] == stamp:
                seen.setdefault(record["dossier_id"], []).append(record)
    expected = {
        dossier_id: list({ts(v["updated_at"]).date(): v for v in versions}.values())
        for dossier_id, versions in lifecycles.items()
    }
    assert seen == expected
    assert any(len(versions) < len(lifecycles[d]) for d, versions in seen.items())  # same-day changes fold


def test_dossier_lifecycles() -> None:
    lifecycles = generator.dossier_versions(date(2026, 7, 6), dossiers_per_day=PER_DAY)
    stable = [
        "dossier_id",
        "procedure_code",
        "province_code",
        "commune_code",
        "channel",
        "received_at",
        "due_at",
    ]
    corrections = []
    for versions in lifecycles.values():
        statuses = [v["status"] for v in versions]
        assert statuses[:2] == ["received", "in_progress"] and statuses[2] in ("resolved", "returned")
        updated = [ts(v["updated_at"]) for v in versions]
        assert updated == sorted(updated) and len(set(updated)) == len(updated)
        assert all({v[name] for v in versions} == {versions[0][name]} for name in stable)
        assert updated[2] - ts(versions[2]["received_at"]) < timedelta(days=21)
        if len(versions) == 4:  # a late correction of a resolved dossier
            first, fixed = versions[2], versions[3]
            assert statuses[3] == "resolved" == statuses[2]
            assert timedelta(days=20) <= updated[3] - ts(first["resolved_at"]) <= timedelta(days=60)
            changed = [k for k in ("fee_vnd", "digitised", "resolved_at") if first[k] != fixed[k]]
            assert len(changed) == 1
            corrections.append(changed[0])
        else:
            assert len(versions) == 3
    assert set(corrections) == {"fee_vnd", "digitised", "resolved_at"}
    assert len(corrections) < 0.06 * len(lifecycles)


def test_late_corrections_reach_back_to_earlier_months() -> None:
    items = day_window(date(2026, 9, 15))
    late = [r for r in items if ts(r["updated_at"]) - ts(r["received_at"]) > timedelta(days=30)]
    assert late and any(ts(r["received_at"]).month == 7 for r in late)
    assert all(r["status"] == "resolved" for r in late)
    assert all(ts(r["updated_at"]) - ts(r["resolved_at"]) >= timedelta(days=20) for r in late)


def test_a_quarter_window_holds_the_latest_version_of_its_daily_windows(client: TestClient) -> None:
    start = date(2026, 7, 1)
    daily = latest(*(day_window(start + timedelta(days=k)) for k in range(92)))
    quarter = (datetime(2026, 7, 1, tzinfo=LOCAL_TZ), datetime(2026, 10, 1, tzinfo=LOCAL_TZ))
    items, total = all_dossiers(client, *quarter, limit=1000)
    assert total == len(items) == len(daily)
    assert items == daily


def test_weekends_are_quiet() -> None:
    def received(d: int) -> int:
        day = date(2026, 10, d)
        return sum(r["dossier_id"].split("-")[1] == day.strftime("%Y%m%d") for r in day_window(day))

    friday, saturday, sunday = received(2), received(3), received(4)
    assert 0.8 * PER_DAY < friday < 1.2 * PER_DAY
    assert saturday < 0.3 * friday and sunday < 0.3 * friday


def test_clean_dossiers_satisfy_the_contract(client: TestClient) -> None:
    catalogue = {p["procedure_code"]: p for p in generator.procedure_catalogue(2026)}
    communes = current_units().communes.set_index("commune_code")["province_code"].to_dict()
    items, _ = all_dossiers(client, *WINDOW, limit=1000)
    for item in items:
        assert list(item) == field_names(DOSSIER_FIELDS)
        assert dossier_defects(item, set(catalogue)) == []
        assert item["status"] in DOSSIER_STATUSES
        assert communes[item["commune_code"]] == item["province_code"]
        received, due, updated = ts(item["received_at"]), ts(item["due_at"]), ts(item["updated_at"])
        assert received <= updated
        if updated > received + timedelta(days=30):  # a late correction
            assert item["status"] == "resolved"
            assert updated - timedelta(days=60) <= ts(item["resolved_at"]) <= updated - timedelta(days=20)
        assert due > received
        assert item["dossier_id"].startswith(f"{item['commune_code']}-{received.strftime('%Y%m%d')}-")
        if item["status"] in ("resolved", "returned"):
            assert received <= ts(item["resolved_at"]) <= updated
        else:
            assert item["resolved_at"] is None
        assert not item["paid_online"] or item["fee_vnd"] > 0
        assert type(item["fee_vnd"]) is int and type(item["digitised"]) is bool
    statuses = {item["status"] for item in items}
    assert statuses == set(DOSSIER_STATUSES)
    assert {item["channel"] for item in items} == set(CHANNELS)
    resolved = [item for item in items if item["status"] == "resolved"]
    late = [item for item in resolved if ts(item["resolved_at"]) > ts(item["due_at"])]
    assert 0 < len(late) < 0.15 * len(resolved)


def test_offline_procedures_never_have_online_dossiers() -> None:
    offline = {
        p["procedure_code"] for p in generator.procedure_catalogue(2026) if p["service_level"] == "offline"
    }
    start = datetime(2026, 9, 28, tzinfo=LOCAL_TZ)
    items = generator.dossiers_updated_between(
        start, start + timedelta(days=5), dossiers_per_day=2_000, defect_rate=0.05
    )
    assert any(item["procedure_code"] in offline for item in items)
    assert not [i for i in items if i["procedure_code"] in offline and i["channel"] == "online"]


# --- determinism -----------------------------------------------------------------------------------
def test_same_request_same_bytes_across_calls_and_instances() -> None:
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/commune-reports", {"period": "2026-Q2", "page": 3, "page_size": 700}),
        ("/api/v1/procedures", {"page": 1}),
        (
            "/api/v1/dossiers",
            {"updated_from": WINDOW[0].isoformat(), "updated_to": WINDOW[1].isoformat(), "limit": 50},
        ),
    ]
    first, second, other_seed = (make_client(defect_rate=0.01, seed=seed) for seed in (2026, 2026, 7))
    for path, params in requests:
        body = first.get(path, params=params, headers=AUTH).content
        assert body == first.get(path, params=params, headers=AUTH).content
        assert body == second.get(path, params=params, headers=AUTH).content
        assert body != other_seed.get(path, params=params, headers=AUTH).content


def test_generation_does_not_depend_on_call_order() -> None:
    seed = 99
    later = generator.commune_reports("2026-Q4", seed)
    earlier = generator.commune_reports("2026-Q1", seed)
    generator._communes.cache_clear()
    generator._maturity.cache_clear()
    assert generator.commune_reports("2026-Q1", seed) == earlier
    assert generator.commune_reports("2026-Q4", seed) == later


# --- planted defects -----------------------------------------------------------------------------------
def defect_kinds(
    find: Callable[[dict[str, Any]], list[str]], items: list[dict[str, Any]]
) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for item in items:
        for kind in find(item):
            kinds.setdefault(kind, set()).add(json.dumps(item, sort_keys=True))
    return kinds


def test_report_defects_are_planted_deterministically() -> None:
    communes = set(current_units().commune_codes())
    clean = generator.commune_reports("2026-Q3", 2026)
    dirty = generator.commune_reports("2026-Q3", 2026, defect_rate=0.02)
    assert generator.commune_reports("2026-Q3", 2026, defect_rate=0.02) == dirty
    bad = [i for i, record in enumerate(dirty) if report_defects(record, communes)]
    assert 0.01 * len(clean) < len(bad) < 0.03 * len(clean)
    assert set(defect_kinds(lambda r: report_defects(r, communes), dirty)) == set(generator.REPORT_DEFECTS)
    # Only the planted records differ, and a higher rate keeps the lower rate's defects.
    assert [i for i, (a, b) in enumerate(zip(clean, dirty, strict=True)) if a != b] == bad
    dirtier = generator.commune_reports("2026-Q3", 2026, defect_rate=0.05)
    assert all(dirtier[i] == dirty[i] for i in bad)


def test_dossier_defects_are_planted_deterministically() -> None:
    catalogue = {p["procedure_code"] for p in generator.procedure_catalogue(2026)}
    start, end = WINDOW
    clean = generator.dossiers_updated_between(start, end, dossiers_per_day=PER_DAY)
    dirty = generator.dossiers_updated_between(start, end, dossiers_per_day=PER_DAY, defect_rate=0.05)
    kinds = defect_kinds(lambda d: dossier_defects(d, catalogue), dirty)
    assert set(kinds) == set(generator.DOSSIER_DEFECTS)
    planted = sum(map(len, kinds.values()))
    assert 0.02 * len(dirty) < planted < 0.08 * len(dirty)
    assert [d["dossier_id"] for d in clean] == [d["dossier_id"] for d in dirty]
    assert sum(a != b for a, b in zip(clean, dirty, strict=True)) == planted
    # The app's paging serves exactly these records.
    served, total = all_dossiers(make_client(defect_rate=0.05), start, end, limit=333)
    assert served == dirty and total == len(dirty)


# --- realism -----------------------------------------------------------------------------------
def maturity_proxy(record: dict[str, Any]) -> float:
    pairs = [
        ("residents_vneid_level2", "residents_adult"),
        ("computers_internet", "computers_total"),
        ("officials_with_email", "officials_total"),
        ("community_tech_teams", "villages_total"),
    ]
    return sum(record[num] / record[den] for num, den in pairs) / len(pairs)


def test_provinces_differ_wards_lead_and_later_quarters_improve() -> None:
    reports = generator.commune_reports("2026-Q3", 2026)
    communes = current_units().communes.set_index("commune_code")["commune_type"]
    by_province: dict[str, list[float]] = {}
    for record in reports:
        by_province.setdefault(record["province_code"], []).append(maturity_proxy(record))
    means = sorted(sum(v) / len(v) for v in by_province.values())
    assert len(means) == 34
    assert means[-1] - means[0] > 0.1
    wards = [maturity_proxy(r) for r in reports if communes[r["commune_code"]] == "Phường"]
    rural = [maturity_proxy(r) for r in reports if communes[r["commune_code"]] == "Xã"]
    assert sum(wards) / len(wards) > sum(rural) / len(rural) + 0.02

    def national(period: str) -> float:
        values = [maturity_proxy(r) for r in generator.commune_reports(period, 2026)]
        return sum(values) / len(values)

    assert national("2025-Q3") < national("2026-Q3") < national("2027-Q4")


def test_best_communes_reach_the_seed_figures() -> None:
    reports = generator.commune_reports("2026-Q3", 2026)

    def share(record: dict[str, Any], num: str, den: str) -> float:
        return record[num] / record[den]

    assert any(share(r, "officials_with_computer", "officials_total") == 1 for r in reports)
    assert any(share(r, "documents_outgoing_signed", "documents_outgoing") == 1 for r in reports)
    assert any(share(r, "periodic_reports_online", "periodic_reports_total") == 1 for r in reports)
    assert any(share(r, "community_tech_teams", "villages_total") == 1 for r in reports)
    assert 0.74 < max(share(r, "residents_vneid_level2", "residents_adult") for r in reports) < 0.9
    weak = min(share(r, "officials_with_computer", "officials_total") for r in reports)
    assert weak < 0.75


# --- legacy-identified reports ------------------------------------------------------------------
def test_legacy_identified_reports_name_the_commune_the_pre_2025_way() -> None:
    from vietnamadminunits import convert_address
    from vietnamadminunits.database import query

    current = generator.commune_reports("2026-Q3", 2026, defect_rate=0.01)
    legacy = generator.commune_reports("2026-Q3", 2026, defect_rate=0.01, legacy_rate=0.1)
    changed = [(a, b) for a, b in zip(current, legacy, strict=True) if a != b]
    assert 0.07 * len(current) < len(changed) < 0.13 * len(current)
    communes = set(current_units().commune_codes())
    old = {
        r["wardCode"]: r for r in query("SELECT ward, district, province, wardCode FROM admin_units_legacy")
    }
    names = field_names(COMMUNE_REPORT_FIELDS)
    forms = set()
    for before, after in changed:
        assert not report_defects(before, communes)  # defective reports keep their current identity
        values = {k: v for k, v in after.items() if k not in UNIT_KEYS}
        assert values == {k: v for k, v in before.items() if k not in UNIT_KEYS}
        if after["commune_code"] is not None:  # a legacy code, never a current one
            forms.add("legacy_code")
            assert list(after) == names and after["commune_code"] not in communes
            assert after["report_id"] == f"{after['commune_code']}-2026-Q3"
            unit = old[after["commune_code"]]
            address = f"{unit['ward']}, {unit['district']}, {unit['province']}"
            assert after["commune_name"] == unit["ward"]
        else:  # names only: legacy commune, district and province, maybe without diacritics
            forms.add("names" if not after["commune_name"].isascii() else "names_ascii")
            at = names.index("commune_name") + 1
            assert list(after) == [*names[:at], "district_name", "province_name", *names[at:]]
            assert after["report_id"] is None and after["province_code"] is None
            address = f"{after['commune_name']}, {after['district_name']}, {after['province_name']}"
        assert convert_address(address).ward_code == before["commune_code"], address
    assert forms == set(generator.LEGACY_IDENTIFICATIONS)
    # Deterministic, and a higher rate keeps the lower rate's legacy reports.
    more = generator.commune_reports("2026-Q3", 2026, defect_rate=0.01, legacy_rate=0.3)
    assert all(more[current.index(a)] == b for a, b in changed)


def test_the_app_serves_legacy_reports_by_default() -> None:
    assert ServerSettings(token=TOKEN).legacy_rate == DEFAULT_LEGACY_RATE > 0
    served = all_reports(make_client(legacy_rate=DEFAULT_LEGACY_RATE))
    assert served == generator.commune_reports("2026-Q3", 2026, legacy_rate=DEFAULT_LEGACY_RATE)
    assert any(item["commune_code"] is None for item in served)


# --- report files ------------------------------------------------------------------------------------
FILE_COMMUNES = current_units().communes_of("01")["commune_code"].tolist()[:10]
LABEL_FIELDS = {labels[0]: name for name, labels in HEADER_LABELS.items()}


def decode_csv(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1258")


def typed(name: str, value: Any) -> Any:
    """A cell as the API types it."""
    if value is None or value == "":
        return None
    if name == "period":
        quarter = ("I", "II", "III", "IV").index(value.split()[1].split("/")[0]) + 1
        return f"{value.split('/')[1]}-Q{quarter}"
    if name == "submitted_at":
        moment = value if isinstance(value, datetime) else datetime.strptime(value, "%d/%m/%Y %H:%M:%S")
        return moment.replace(tzinfo=LOCAL_TZ).isoformat()
    if name in BOOL_FIELDS:
        return {"Có": True, "Không": False}[value]
    if name in COUNT_FIELDS:
        return int(str(value).replace(".", ""))
    return unicodedata.normalize("NFC", str(value))


def read_back(path: Path) -> list[dict[str, Any]]:
    """The reports in a file written by write_report_files, typed as the API types them."""
    if path.suffix == ".csv":
        text = unicodedata.normalize("NFC", decode_csv(path.read_bytes()))
        delimiter = ";" if text.splitlines()[0].count(";") > 5 else ","
        header, *rows = csv.reader(io.StringIO(text), delimiter=delimiter)
        return [
            {LABEL_FIELDS[h]: typed(LABEL_FIELDS[h], v) for h, v in zip(header, row, strict=True)}
            for row in rows
        ]
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0].startswith("ỦY BAN NHÂN DÂN") and "QUÝ III/2026" in rows[3][0]
    assert any(str(r[0]).startswith("Ghi chú:") for r in rows) and ("Người lập biểu",) == rows[-2][:1]
    if sheet.title == "Biểu mẫu":  # label | value; the period only in the title
        form = {LABEL_FIELDS[r[0]]: typed(LABEL_FIELDS[r[0]], r[1]) for r in rows if r[0] in LABEL_FIELDS}
        return [{"period": "2026-Q3", **form}]
    top = next(i for i, r in enumerate(rows) if r[0] == "STT")
    labels = [child or parent for parent, child in zip(rows[top], rows[top + 1], strict=True)]
    merged = {str(m) for m in sheet.merged_cells.ranges}
    assert "A6:A7" in merged and any(m.endswith("6") and ":" in m for m in merged)  # two-row header
    assert rows[top + 2][:3] == ("(1)", "(2)", "(3)")
    records = []
    for row in rows[top + 3 :]:
        if not isinstance(row[0], int):
            break
        records.append(
            {LABEL_FIELDS[lb]: typed(LABEL_FIELDS[lb], v) for lb, v in zip(labels[1:], row[1:], strict=True)}
        )
    return records


def without_report_id(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "report_id"}


def as_reported(record: dict[str, Any]) -> dict[str, Any]:
    """A row read back; a province table's empty name columns are absent from coded reports."""
    return {k: v for k, v in record.items() if v is not None or k not in ("district_name", "province_name")}


@pytest.mark.parametrize("style", list(FILE_STYLES))
def test_report_files_hold_the_api_values(tmp_path: Path, style: str) -> None:
    rates = {"defect_rate": 0.05, "legacy_rate": 0.4}
    paths = write_report_files(tmp_path, "2026-Q3", 2026, FILE_COMMUNES, [style], **rates)
    expected = {
        code: r
        for code, r in zip(
            current_units().commune_codes(), generator.commune_reports("2026-Q3", 2026, **rates), strict=True
        )
    }
    wanted = sorted((without_report_id(expected[c]) for c in FILE_COMMUNES), key=json.dumps)
    assert sorted((as_reported(r) for p in paths for r in read_back(p)), key=json.dumps) == wanted
    assert {p.parent for p in paths} == {tmp_path} and not list(tmp_path.glob(".*"))
    if style == "xlsx-province-table":
        assert [p.name for p in paths] == ["01_tong-hop_2026-Q3.xlsx"]
    else:
        assert len(paths) == len(FILE_COMMUNES)
        stems = {f"{r['province_code']}_{r['commune_code']}_2026-Q3" for r in wanted if r["commune_code"]}
        assert stems <= {p.stem for p in paths}
    file_style = FILE_STYLES[style]
    if file_style.layout != "csv":  # Excel: numbers, some of them as Vietnamese text ('13.417')
        cells = [
            v
            for p in paths
            for row in openpyxl.load_workbook(p).active.iter_rows(values_only=True)
            for v in row
        ]
        assert any(isinstance(v, str) and re.fullmatch(r"\d{1,3}(\.\d{3})+", v) for v in cells)
        assert any(type(v) is int and v >= 1000 for v in cells)
        return
    data = paths[0].read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") == (file_style.encoding == "utf-8-sig")
    assert data.startswith(b"\xff\xfe") == (file_style.encoding == "utf-16")
    text = decode_csv(data)
    assert unicodedata.is_normalized("NFD", text) == (file_style.normal_form == "NFD")
    assert len(next(csv.reader(io.StringIO(text), delimiter=file_style.delimiter))) > 30
    # ';' files write numbers the Vietnamese way (the adult residents are always >= 2,000)
    assert bool(re.search(r"\d\.\d{3}", text)) == (file_style.delimiter == ";")


def test_report_files_mix_styles_and_are_reproducible(tmp_path: Path) -> None:
    communes = current_units().commune_codes()[::60]
    first = write_report_files(tmp_path / "a", "2026-Q3", 2026, communes, legacy_rate=0.2)
    again = write_report_files(tmp_path / "b", "2026-Q3", 2026, communes, legacy_rate=0.2)
    assert [p.name for p in first] == [p.name for p in again]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, again, strict=True))
    kinds = Counter(
        openpyxl.load_workbook(p).active.title if p.suffix == ".xlsx" else p.suffix for p in first
    )
    assert set(kinds) == {"Báo cáo", "Biểu mẫu", "Tổng hợp", ".csv"}
    assert any(not p.name[:2].isdigit() for p in first)  # a names-only report: named by its names
    assert kinds["Tổng hợp"] > 1  # one table per province


def test_cp1258_encoding_round_trips_every_unit_name_and_label() -> None:
    from vietnamadminunits.database import query

    units = query("SELECT DISTINCT ward, district, province FROM admin_units_legacy WHERE ward IS NOT NULL")
    texts = [*current_units().communes["commune_name"], *(v for row in units for v in row.values())]
    texts += [label for labels in HEADER_LABELS.values() for label in labels]
    for text in texts:
        assert unicodedata.normalize("NFC", encode_cp1258(text).decode("cp1258")) == text, text


def test_write_inbox_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server_main(["write-inbox", "--inbox", str(tmp_path), "--period", "2026-Q3", "--limit", "5",
                 "--styles", "csv-utf8-comma", "xlsx-form", "--defect-rate", "0"])  # fmt: skip
    files = sorted(tmp_path.iterdir())
    assert len(files) == 5 and {p.suffix for p in files} <= {".csv", ".xlsx"}
    assert "5 report files written" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        server_main(["write-inbox", "--inbox", str(tmp_path), "--period", "2026"])
    with pytest.raises(SystemExit):
        server_main(["serve", "--token", TOKEN, "--legacy-rate", "2"])


# --- faults on request -----------------------------------------------------------------------------
PROCEDURES = ("/api/v1/procedures", {"page": 2, "page_size": 100})


def fault(
    client: TestClient, spec: str, path: str = PROCEDURES[0], params: dict | None = None, **headers: str
):
    params = dict(PROCEDURES[1] if params is None else params)
    return client.get(path, params=params, headers=AUTH | {"X-Egov-Fault": spec} | headers)


def test_fault_429_with_retry_after(client: TestClient) -> None:
    normal = client.get(PROCEDURES[0], params=PROCEDURES[1], headers=AUTH).content
    answer = fault(client, "429")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert fault(client, "429").status_code == 429  # without a count: every time
    assert fault(client, "429:0").headers["Retry-After"] == "0"
    key = {"X-Egov-Fault-Key": "rate-limit-once"}
    assert [fault(client, "429:0:1", **key).status_code for _ in range(3)] == [429, 200, 200]
    assert fault(client, "429:0:1", **key).content == normal


def test_fault_5xx_burst_counts_per_key(client: TestClient) -> None:
    normal = client.get(PROCEDURES[0], params=PROCEDURES[1], headers=AUTH).content
    statuses = [fault(client, "5xx-burst:3", **{"X-Egov-Fault-Key": "k1"}).status_code for _ in range(4)]
    assert statuses == [503, 500, 503, 200]
    assert fault(client, "5xx-burst:3", **{"X-Egov-Fault-Key": "k2"}).status_code == 503  # its own count
    # Without a key, identical requests (a client's retries) count together; another page counts apart.
    assert [fault(client, "5xx-burst:1").status_code for _ in range(2)] == [503, 200]
    assert fault(client, "5xx-burst:1").content == normal
    other = fault(client, "5xx-burst:1", params={"page": 1, "page_size": 100})
    assert other.status_code == 503


def test_fault_slow_truncate_total_mismatch(client: TestClient) -> None:
    normal = client.get(PROCEDURES[0], params=PROCEDURES[1], headers=AUTH)
    assert fault(client, "slow:0.01").content == normal.content
    cut = fault(client, "truncate")
    assert (
        cut.status_code == 200
        and normal.content.startswith(cut.content)
        and len(cut.content) < len(normal.content)
    )
    with pytest.raises(ValueError):
        cut.json()
    mismatch = fault(client, "total-mismatch").json()
    assert mismatch["total"] == normal.json()["total"] + 1 and mismatch["items"] == normal.json()["items"]
    # The query parameter works too.
    by_param = client.get(PROCEDURES[0], params={**PROCEDURES[1], "fault": "total-mismatch"}, headers=AUTH)
    assert by_param.json() == mismatch


def test_fault_repeat_page(client: TestClient) -> None:
    first = client.get(PROCEDURES[0], params={"page": 1, "page_size": 100}, headers=AUTH).json()
    repeated = fault(client, "repeat-page").json()
    assert repeated["page"] == 2 and repeated["items"] == first["items"]
    params = {"updated_from": WINDOW[0].isoformat(), "updated_to": WINDOW[1].isoformat(), "limit": 50}
    page = client.get("/api/v1/dossiers", params=params, headers=AUTH).json()
    again = fault(client, "repeat-page", "/api/v1/dossiers", {**params, "cursor": page["next_cursor"]}).json()
    assert again["next_cursor"] == page["next_cursor"]


def test_fault_reset_and_bad_or_unauthorised_faults(client: TestClient) -> None:
    with pytest.raises(
        ConnectionResetError
    ):  # in-process; over HTTP see test_running_server_serves_over_http
        fault(client, "reset")
    answer = fault(client, "teapot")
    assert answer.status_code == 400 and "5xx-burst:N" in answer.json()["detail"]
    assert fault(client, "slow:61").status_code == 400
    unauthorised = client.get(PROCEDURES[0], headers={"X-Egov-Fault": "reset", "Authorization": "Bearer x"})
    assert unauthorised.status_code == 401  # faults only for callers holding the token
    assert client.get("/health", headers={"X-Egov-Fault": "reset"}).json() == {"status": "ok"}


# --- the real subprocess ------------------------------------------------------------------------
def test_running_server_serves_over_http(tmp_path: Path) -> None:
    with running_server(tmp_path, token=TOKEN, dossiers_per_day=200) as base_url:
        with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
            assert json.load(response) == {"status": "ok"}
        request = urllib.request.Request(
            f"{base_url}/api/v1/commune-reports?period=2026-Q3&page=1&page_size=10", headers=AUTH
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert body["total"] == 3321 and len(body["items"]) == 10
        reset = urllib.request.Request(
            f"{base_url}/api/v1/procedures", headers=AUTH | {"X-Egov-Fault": "reset"}
        )
        with pytest.raises(ConnectionError):  # no response at all: the connection is reset
            urllib.request.urlopen(reset, timeout=30)
        log = next(tmp_path.glob("*.log")).read_text()
    assert TOKEN not in log
