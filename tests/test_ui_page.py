"""The "E-gov ranking" page (issue 7): its data, its HTML, the files it serves, and its login requirement,
both in-process (the app factory with Airflow's auth dependency) and on a real ``airflow api-server``."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient

from egov_index import ui_page
from egov_index.config import Settings
from egov_index.periods import LOCAL_TZ
from egov_index.report import accounting_rows
from egov_index.store import DataStore

if TYPE_CHECKING:
    from airflow_server import ApiServer

pytest_plugins = ["airflow_server"]  # the session's data root and api-server, shared with test_browser.py

PERIOD = "2026-Q3"
PLUGIN_PREFIX = "/egov-ranking"
# the day after the sample day's nightly run: every daily batch is fresh
NEXT_MORNING = datetime(2026, 10, 1, 8, 0, tzinfo=LOCAL_TZ)


@pytest.fixture(scope="module")
def data(published: Settings) -> dict:
    return ui_page.page_data(published, now=NEXT_MORNING)


# --- page_data ---------------------------------------------------------------------------------------------


def test_the_latest_ranking_is_listed_by_rank(top: dict, data: dict):
    ranking = data["ranking"]
    assert ranking["period"] == PERIOD and ranking["methodology"] == "mic-six-category"
    provinces = ranking["provinces"]
    assert len(provinces) == 34
    assert [p["rank"] for p in provinces] == sorted(p["rank"] for p in provinces)
    assert (provinces[0]["code"], provinces[0]["name"]) == (top["code"], top["name"])
    assert [c["code"] for c in ranking["categories"]] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert ranking["categories"][0]["vi"] == "Hạ tầng kỹ thuật công nghệ thông tin"
    assert all(set(p["indices"]) == {"c1", "c2", "c3", "c4", "c5", "c6"} for p in provinces)
    # the previous quarter was ranked too: rank changes, signed as in the data dictionary
    changes = [p["previous"] for p in provinces]
    assert all(c["period"] == "2026-Q2" for c in changes)
    assert any(c["change"] for c in changes)
    assert all(c["change"] == c["rank"] - p["rank"] for c, p in zip(changes, provinces, strict=True))
    json.dumps(data)  # plain JSON values only (the API returns it as is)


def test_per_province_reporting_comes_from_the_ranking(published: Settings, data: dict):
    frame = DataStore(published.data_root).read_latest("ranking_v2").to_pandas()
    communes = frame[frame["level"] == "commune"]
    provinces = data["ranking"]["provinces"]
    assert data["ranking"]["communes_total"] == len(communes) == 3321
    assert data["ranking"]["communes_reported"] == int(communes["has_report"].sum())
    shares = frame[frame["level"] == "province"].set_index("unit_code")["reported_share"]
    for p in provinces:
        assert p["reported_share"] == pytest.approx(float(shares[p["code"]]))
        assert 0 <= p["communes_reported"] <= p["communes_total"]
    # the quarantined reports of the period (defects injected by the generator) are attributed to provinces
    quarantined = sum(p["quarantined_reports"] for p in provinces)
    assert quarantined > 0
    assert any(p["report_treatment"] == "partial" for p in provinces)


def test_freshness_and_quality_per_source(published: Settings, data: dict):
    by_channel = {(s["source"], s["dataset"]): s for s in data["sources"]}
    assert list(by_channel) == [
        ("service_portal", "procedures"),
        ("service_portal", "dossiers"),
        ("reporting_api", "commune_reports"),
        ("inbox", "commune_reports"),
    ]
    assert data["ledger"] == {"available": True, "note": None}
    procedures = by_channel["service_portal", "procedures"]
    assert procedures["status"] == "ok"
    assert procedures["last_success"]["batch"] == "2026-09-30"
    assert procedures["last_success"]["from"] == "ledger"
    dossiers = by_channel["service_portal", "dossiers"]
    assert dossiers["status"] == "warning"  # one quarantined dossier, a failed critical check
    assert dossiers["last_success"]["rows_quarantined"] >= 1 and dossiers["failed_checks"]
    reports = by_channel["reporting_api", "commune_reports"]
    assert reports["status"] == "warning" and reports["last_success"]["batch"] == PERIOD
    assert reports["batches"] == 2
    accounting = accounting_rows(DataStore(published.data_root))
    assert reports["rows_quarantined_total"] == int(
        accounting.loc[accounting["dataset"] == "commune_reports", "rows_quarantined"].sum()
    )
    assert by_channel["inbox", "commune_reports"]["status"] == "missing"
    # seven weeks later, without a nightly run since, the daily sources are stale
    later = ui_page.page_data(published, now=datetime(2026, 11, 20, 8, 0, tzinfo=LOCAL_TZ))
    stale = {s["dataset"]: s["status"] for s in later["sources"] if s["source"] == "service_portal"}
    assert stale == {"procedures": "stale", "dossiers": "stale"}


def test_a_failed_newest_attempt_is_shown_with_its_error(published: Settings, tmp_path: Path):
    from egov_index.ledger import Ledger

    database = tmp_path / "ledger.sqlite"
    shutil.copy(published.sql_url.removeprefix("sqlite:///"), database)
    settings = dataclasses.replace(published, sql_url=f"sqlite:///{database}")
    with Ledger.open(settings.sql_url) as ledger:
        entry = ledger.start(run_id="r", source="service_portal", dataset="dossiers", partition="2026-10-01")
        ledger.finish(entry, "failed", error="HTTPError: 503 <Service Unavailable>")
    data = ui_page.page_data(settings, now=NEXT_MORNING)
    dossiers = next(s for s in data["sources"] if s["dataset"] == "dossiers")
    assert dossiers["status"] == "failed"
    assert dossiers["last_failure"]["batch"] == "2026-10-01"
    assert dossiers["last_success"]["batch"] == "2026-09-30"  # the data shown is still the last good batch
    html = ui_page.render_page(data)
    assert "HTTPError: 503 &lt;Service Unavailable&gt;" in html


def test_without_a_ledger_the_manifests_tell_the_last_batch(published: Settings, tmp_path: Path):
    settings = dataclasses.replace(published, sql_url=f"sqlite:///{tmp_path / 'none.sqlite'}")
    data = ui_page.page_data(settings, now=NEXT_MORNING)
    assert not data["ledger"]["available"]
    assert not (tmp_path / "none.sqlite").exists()  # read-only: no database created
    procedures = data["sources"][0]
    assert procedures["last_success"]["from"] == "manifest"
    assert procedures["last_success"]["batch"] == "2026-09-30" and procedures["status"] == "ok"


def test_links_point_to_the_report_and_the_data_docs(published: Settings, data: dict):
    links = data["links"]
    assert links["report"] == f"files/reports/period={PERIOD}/ranking-report-{PERIOD}.html"
    assert links["data_docs"] == "files/data_docs/latest/index.html"
    for href in (links["report"], links["data_docs"], links["data_docs_runs"]):
        _, kind, relative = href.split("/", 2)
        assert ui_page.resolve_document(published.data_root, kind, relative).is_file()
    assert {r["period"] for r in links["reports"]} == {"2026-Q2", PERIOD}


def test_province_data_lists_its_communes(published: Settings, top: dict):
    data = ui_page.province_data(published, top["code"])
    assert data is not None and data["province"]["name"] == top["name"]
    communes = data["communes"]
    assert len(communes) == data["province"]["communes_total"] > 0
    ranks = [c["rank_in_province"] for c in communes if c["rank_in_province"] is not None]
    assert ranks == sorted(ranks) and ranks[0] == 1
    json.dumps(data)
    for code in ("00", "../01", "01/../02", "", "x" * 40):
        assert ui_page.province_data(published, code) is None


# --- HTML ---------------------------------------------------------------------------------------------------


def test_the_page_shows_the_ranking_and_has_no_external_assets(published: Settings, top: dict, data: dict):
    html = ui_page.render_page(data)
    assert '<html lang="vi">' in html and "Xếp hạng chính quyền điện tử" in html
    assert "E-government ranking" in html  # English small print
    first_row = re.search(r'<tbody>\s*<tr data-code="([^"]+)">(.*?)</tr>', html, flags=re.S)
    assert first_row and first_row.group(1) == top["code"] and top["name"] in first_row.group(2)
    assert f'href="province/{top["code"]}"' in html
    assert f'href="files/reports/period={PERIOD}/ranking-report-{PERIOD}.html"' in html
    assert "<script" not in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing loaded from elsewhere
    province = ui_page.render_province(ui_page.province_data(published, top["code"]) or {})
    assert 'id="commune-ranking"' in province and 'href="../"' in province


def test_everything_from_the_data_is_escaped(data: dict):
    evil = "<script>alert(1)</script>"
    hostile = json.loads(json.dumps(data))
    hostile["ranking"]["provinces"][0]["name"] = evil
    hostile["ranking"]["provinces"][0]["code"] = '"><img src=x onerror=alert(1)>'
    hostile["ranking"]["period"] = evil
    hostile["sources"][0]["last_success"]["batch"] = evil
    html = ui_page.render_page(hostile)
    assert evil not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_empty_state_before_anything_is_published(tmp_path: Path):
    root = tmp_path / "data"
    settings = dataclasses.replace(
        Settings.from_env(), data_root=root, sql_url=f"sqlite:///{root / 'egov-index.sqlite'}"
    )
    data = ui_page.page_data(settings)
    assert data["ranking"] is None
    assert {s["status"] for s in data["sources"]} == {"missing"}
    assert data["links"] == {"report": None, "reports": [], "data_docs": None, "data_docs_runs": None}
    html = ui_page.render_page(data)
    assert 'id="empty"' in html and "Chưa có bảng xếp hạng nào được công bố" in html
    assert ui_page.province_data(settings, "01") is None
    assert not root.exists()  # the page wrote nothing


# --- files under the data root ------------------------------------------------------------------------------


def test_documents_resolve_only_inside_their_folders(published: Settings, tmp_path: Path):
    root = published.data_root
    report = ui_page.resolve_document(root, "reports", f"period={PERIOD}/ranking-report-{PERIOD}.html")
    assert report == (root / "reports" / f"period={PERIOD}" / f"ranking-report-{PERIOD}.html").resolve()
    latest = ui_page.resolve_document(root, "data_docs", "latest/index.html")  # through the `latest` symlink
    assert latest.is_relative_to((root / "quality" / "data_docs" / "runs").resolve())
    refused = [
        ("reports", "../egov-index.sqlite"),
        ("reports", f"period={PERIOD}/../../egov-index.sqlite"),
        ("reports", f"period={PERIOD}/./ranking-report-{PERIOD}.html"),
        ("reports", "/etc/passwd"),
        ("reports", f"period={PERIOD}\\..\\..\\egov-index.sqlite"),
        ("reports", f"period={PERIOD}/ranking-report-{PERIOD}.html\x00.png"),
        ("reports", f"period={PERIOD}"),  # a folder
        ("reports", f"period={PERIOD}/missing.html"),
        ("data_docs", "latest/../../../egov-index.sqlite"),
        ("data_docs", ".locks/site.lock"),
        ("data_docs", "results/anything.json"),  # not a served part of the site
        ("ranking_v2", "period=2026-Q3/data.parquet"),  # not a served kind
        ("../quality", "data_docs/index.html"),
        ("reports", ""),
    ]
    for kind, relative in refused:
        with pytest.raises(ui_page.DocumentNotFound):
            ui_page.resolve_document(root, kind, relative)
    # a symlink inside the folder that points outside it is refused too
    fake = tmp_path / "data"
    (fake / "reports" / "period=X").mkdir(parents=True)
    (fake / "secret.html").write_text("secret")
    (fake / "reports" / "period=X" / "leak.html").symlink_to(fake / "secret.html")
    (fake / "reports" / "period=X" / "ok.html").write_text("ok")
    assert ui_page.resolve_document(fake, "reports", "period=X/ok.html").read_text() == "ok"
    with pytest.raises(ui_page.DocumentNotFound):
        ui_page.resolve_document(fake, "reports", "period=X/leak.html")
    with pytest.raises(ui_page.DocumentNotFound):  # a type the page does not serve
        (fake / "reports" / "period=X" / "data.parquet").write_bytes(b"PAR1")
        ui_page.resolve_document(fake, "reports", "period=X/data.parquet")


# --- the FastAPI app, in-process ----------------------------------------------------------------------------


def test_the_app_requires_airflow_login(published: Settings):
    """The factory's default dependency is Airflow's own; without credentials it answers 401."""
    client = TestClient(ui_page.create_app(lambda: published))
    for path in (
        "/",
        "/api/ranking",
        "/province/01",
        f"/files/reports/period={PERIOD}/ranking-report-{PERIOD}.html",
    ):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json() == {"detail": "Not authenticated"}
    browser = client.get("/", headers={"Accept": "text/html"})
    assert browser.status_code == 401 and 'id="login-link"' in browser.text
    assert "Tỉnh" not in browser.text  # nothing of the ranking


def test_the_app_serves_page_api_and_files_once_authorised(published: Settings, top: dict):
    app = ui_page.create_app(lambda: published)
    app.dependency_overrides[app.state.auth_dependency] = lambda: None  # what a valid session passes
    client = TestClient(app)
    page = client.get("/")
    assert page.status_code == 200 and top["name"] in page.text
    assert page.headers["content-type"].startswith("text/html")
    api = client.get("/api/ranking").json()
    assert api["ranking"]["provinces"][0]["name"] == top["name"]
    assert client.get(f"/province/{top['code']}").status_code == 200
    assert client.get(f"/api/province/{top['code']}").json()["province"]["code"] == top["code"]
    assert client.get("/province/00").status_code == 404
    report = client.get(f"/files/reports/period={PERIOD}/ranking-report-{PERIOD}.html")
    assert report.status_code == 200 and "<html" in report.text
    assert "script-src 'none'" in report.headers["content-security-policy"]
    assert report.headers["x-content-type-options"] == "nosniff"
    assert client.get("/files/data_docs/latest/index.html").status_code == 200
    for encoded in (
        "/files/reports/..%2F..%2Fegov-index.sqlite",
        f"/files/reports/period={PERIOD}/%2e%2e/%2e%2e/egov-index.sqlite",
        "/files/data_docs/latest%2F..%2F..%2F..%2Fegov-index.sqlite",
        "/files/reports/%2Fetc%2Fpasswd",
    ):
        assert client.get(encoded).status_code == 404, encoded


# --- a real airflow api-server ------------------------------------------------------------------------------


@pytest.mark.integration
def test_real_api_server_rejects_anonymous_requests(api_server: ApiServer):
    with httpx.Client(base_url=api_server.base_url, timeout=60) as client:
        for path in (
            "/",
            "/api/ranking",
            "/province/01",
            f"/files/reports/period={PERIOD}/ranking-report-{PERIOD}.html",
        ):
            response = client.get(PLUGIN_PREFIX + path)
            assert response.status_code == 401, (path, response.text)
            assert response.json() == {"detail": "Not authenticated"}
        page = client.get(PLUGIN_PREFIX + "/", headers={"Accept": "text/html"})
        assert page.status_code == 401 and "/auth/login?next=" in page.text  # a link to Airflow's login
        forged = client.get(
            PLUGIN_PREFIX + "/api/ranking", headers={"Authorization": "Bearer forged.jwt.token"}
        )
        assert forged.status_code == 403
    with httpx.Client(base_url=api_server.base_url, timeout=60, cookies={"_token": "forged"}) as browser:
        assert browser.get(PLUGIN_PREFIX + "/api/ranking").status_code == 403
    with httpx.Client(base_url=api_server.base_url, timeout=60) as client:
        wrong = client.post("/auth/token", json={"username": "admin", "password": "not-the-password"})
        assert wrong.status_code == 401


@pytest.mark.integration
def test_real_api_server_serves_the_page_to_a_logged_in_user(api_server: ApiServer, top: dict):
    token = api_server.token()  # POST /auth/token with the admin's generated password
    with httpx.Client(base_url=api_server.base_url, timeout=60) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        page = client.get(PLUGIN_PREFIX + "/", headers=bearer)
        assert page.status_code == 200, page.text
        assert top["name"] in page.text
        api = client.get(PLUGIN_PREFIX + "/api/ranking", headers=bearer)
        assert api.status_code == 200 and api.json()["ranking"]["provinces"][0]["name"] == top["name"]
    # the UI's session: the same JWT in the `_token` cookie (what the browser sends to the iframe's page)
    with httpx.Client(base_url=api_server.base_url, timeout=60, cookies={"_token": token}) as browser:
        province = browser.get(PLUGIN_PREFIX + f"/province/{top['code']}")
        assert province.status_code == 200 and top["name"] in province.text
    with httpx.Client(base_url=api_server.base_url, timeout=60) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        report = client.get(
            PLUGIN_PREFIX + f"/files/reports/period={PERIOD}/ranking-report-{PERIOD}.html", headers=bearer
        )
        assert report.status_code == 200 and "script-src 'none'" in report.headers["content-security-policy"]
        escape = client.get(PLUGIN_PREFIX + "/files/reports/..%2F..%2Fegov-index.sqlite", headers=bearer)
        assert escape.status_code == 404
        # the nav entry, as Airflow lists it
        plugins = client.get("/api/v2/plugins", headers=bearer).json()["plugins"]
        [plugin] = [p for p in plugins if p["name"] == "egov_ranking"]
        [view] = plugin["external_views"]
        assert view["name"] == "E-gov ranking" and view["destination"] == "nav"
        assert (view["href"], view["url_route"], view["category"]) == (
            "egov-ranking/",
            "egov-ranking",
            "browse",
        )
