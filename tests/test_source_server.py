"""The reference source server: auth, paging, cursor, determinism, realism and planted defects."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

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
from egov_index.source_server.app import ServerSettings, create_app
from egov_index.source_server.process import running_server

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PER_DAY = 400
# Tue 29 Sep 10:00 -> Thu 1 Oct 15:30 local: partial first and last days, one full day.
WINDOW = (datetime(2026, 9, 29, 10, tzinfo=LOCAL_TZ), datetime(2026, 10, 1, 15, 30, tzinfo=LOCAL_TZ))
COUNT_FIELDS = [f.name for f in COMMUNE_REPORT_FIELDS if f.category != "key" and str(f.type) == "int64"]
BOOL_FIELDS = [f.name for f in COMMUNE_REPORT_FIELDS if str(f.type) == "bool"]


def make_client(defect_rate: float = 0.0, **settings: Any) -> TestClient:
    defaults: dict[str, Any] = {"token": TOKEN, "dossiers_per_day": PER_DAY, "defect_rate": defect_rate}
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


def test_adjacent_windows_partition_the_covering_window() -> None:
    start, end = WINDOW
    cut = datetime(2026, 9, 30, 13, 17, 41, 500_000, tzinfo=LOCAL_TZ)

    def window(a: datetime, b: datetime) -> list[dict[str, Any]]:
        return generator.dossiers_updated_between(a, b, seed=2026, dossiers_per_day=PER_DAY)

    left, right, whole = window(start, cut), window(cut, end), window(start, end)
    assert left and right
    assert not {d["dossier_id"] for d in left} & {d["dossier_id"] for d in right}
    assert left + right == whole
    # Day by day too: a window covering several days is the union of its days.
    midnight = datetime(2026, 9, 30, tzinfo=LOCAL_TZ)
    assert (
        window(start, midnight)
        + window(midnight, midnight + timedelta(days=1))
        + window(midnight + timedelta(days=1), end)
        == whole
    )


def test_weekends_are_quiet() -> None:
    def day(d: int) -> int:
        start = datetime(2026, 10, d, tzinfo=LOCAL_TZ)
        return len(
            generator.dossiers_updated_between(start, start + timedelta(days=1), dossiers_per_day=PER_DAY)
        )

    friday, saturday, sunday = day(2), day(3), day(4)
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
        assert received <= updated <= received + timedelta(days=20)
        assert due > received
        assert item["dossier_id"].startswith(f"{item['commune_code']}-{updated.strftime('%Y%m%d')}-")
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
        log = next(tmp_path.glob("*.log")).read_text()
    assert TOKEN not in log
