"""Bulk backfill (issue 8): the export endpoint, the checked download, and a quarter backfilled from
export files equal to the same quarter pulled night by night (same snapshots, same indicator values)."""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from egov_index import bulk, pipeline, pull
from egov_index.config import Settings
from egov_index.errors import SourceDataError
from egov_index.ledger import Ledger
from egov_index.periods import LOCAL_TZ
from egov_index.source_server.generator import EXPORT_SCHEMA, day_factor, dossier_export, month_days
from egov_index.source_server.process import running_server
from egov_index.store import DataStore

TOKEN = secrets.token_urlsafe(16)
PER_DAY = 3000
QUARTER, MONTHS = "2026-Q3", ["2026-07", "2026-08", "2026-09"]
AS_OF = datetime(2026, 10, 1, tzinfo=LOCAL_TZ)  # the end of the quarter: what the nightly runs have seen
SAMPLE = ["12", "31"]  # two provinces (Lai Châu, Hải Phòng): small and large


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # defect_rate 0: with defects, a dossier whose latest version is invalid is held back by the bulk path
    # while the nightly path keeps its last valid version (docs/decisions.md, B10)
    with running_server(tmp_path_factory.mktemp("bulk"), token=TOKEN, dossiers_per_day=PER_DAY, defect_rate=0.0) as base:
        yield base


def endpoint(url: str, name: str = "service_portal") -> pull.SourceEndpoint:
    return pull.SourceEndpoint(name, url, TOKEN, retries=1, backoff_factor_s=0.01)


def settings_for(root: Path) -> Settings:
    return Settings(
        **{
            **Settings.from_env().__dict__,
            "data_root": root,
            "inbox_dir": root / "inbox",
            "sql_url": f"sqlite:///{root / 'egov.sqlite'}",
        }
    )


def test_seasonality_follows_weekdays_months_and_public_holidays() -> None:
    assert day_factor(date(2026, 9, 30)) > 0.9  # a Wednesday
    assert day_factor(date(2026, 10, 4)) < 0.1  # a Sunday
    assert day_factor(date(2026, 9, 2)) < 0.1  # National Day, a Wednesday
    assert day_factor(date(2026, 2, 17)) < 0.1  # Tết (lunar new year 2026), a Tuesday
    january = sum(day_factor(d) for d in month_days("2026-01"))
    february = sum(day_factor(d) for d in month_days("2026-02"))
    assert february < 0.8 * january  # the Tết lull


def test_the_export_holds_what_the_paged_api_served(url: str) -> None:
    """Every dossier received in the month, as of its last change before as_of, equal to the API's."""
    day = date(2026, 7, 6)
    window_start = datetime(2026, 7, 6, tzinfo=LOCAL_TZ)
    api = {}
    for offset in range(0, 3):  # its versions: received, in progress and closed within a few days
        start = window_start + timedelta(days=offset)
        for record in pull.fetch_dossiers(endpoint(url), start, start + timedelta(days=1), province_code="31"):
            api[record["dossier_id"]] = record  # the latest version seen wins, as in the snapshot merge
    cut = window_start + timedelta(days=3)
    export = dossier_export("2026-07", cut, province_code="31", dossiers_per_day=PER_DAY)
    received = {r["dossier_id"]: r for r in export.to_pylist() if r["received_at"].astimezone(LOCAL_TZ).date() == day}
    same_day = {k: v for k, v in api.items() if v["received_at"].startswith("2026-07-06")}
    assert received and set(received) == set(same_day)
    for key, record in same_day.items():
        got = received[key]
        assert got["updated_at"] == datetime.fromisoformat(record["updated_at"])
        assert got["status"] == record["status"] and got["channel"] == record["channel"]


@pytest.mark.parametrize("fmt", ["parquet", "ndjson", "csv"])
def test_every_export_format_reads_back_to_the_same_conformed_rows(url: str, tmp_path: Path, fmt: str) -> None:
    got = pull.fetch_dossier_export(endpoint(url), "2026-08", AS_OF, tmp_path / f"x.{fmt}", province_code="12", fmt=fmt)
    expected = dossier_export("2026-08", AS_OF, province_code="12", dossiers_per_day=PER_DAY)
    assert got.rows == expected.num_rows > 0
    assert got.sha256 == hashlib.sha256((tmp_path / f"x.{fmt}").read_bytes()).hexdigest()
    from egov_index.conform import conform_table

    ours = conform_table("dossiers", pull.read_export(got.path, fmt), "b").frame
    reference = conform_table("dossiers", expected, "b").frame
    pd.testing.assert_frame_equal(ours, reference)
    assert not list(tmp_path.glob("*.partial"))


def test_the_export_refuses_bad_requests_and_strangers(url: str) -> None:
    ok = {"month": "2026-08", "as_of": AS_OF.isoformat(), "province_code": "12"}
    path = url + pull.EXPORT_PATH
    assert requests.get(path, params=ok, timeout=30).status_code == 401
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for bad in ({"month": "2026-13"}, {"month": "August"}, {"as_of": "2026-10-01T00:00:00"}, {"format": "xlsx"}):
        assert requests.get(path, params={**ok, **bad}, headers=headers, timeout=30).status_code == 422, bad
    response = requests.get(path, params=ok, headers=headers, timeout=30)
    assert response.status_code == 200
    assert int(response.headers["X-Total-Count"]) == pq.read_table(io.BytesIO(response.content)).num_rows
    assert pq.read_schema(io.BytesIO(response.content)).remove_metadata() == EXPORT_SCHEMA


def test_a_truncated_or_altered_download_never_becomes_the_file(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_iter = requests.Response.iter_content

    def truncated(self: requests.Response, chunk_size: int = 1) -> Iterator[bytes]:
        data = b"".join(real_iter(self, chunk_size))
        yield data[: len(data) // 2]

    monkeypatch.setattr(requests.Response, "iter_content", truncated)
    dest = tmp_path / "province=12.parquet"
    with pytest.raises(SourceDataError, match=r"SHA-256 .* differs"):
        pull.fetch_dossier_export(endpoint(url), "2026-08", AS_OF, dest, province_code="12")
    assert not dest.exists() and not list(tmp_path.iterdir())


def test_a_resumed_backfill_downloads_only_the_missing_files(url: str, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = bulk.pull_month(settings, endpoint(url), "2026-08", AS_OF, SAMPLE)
    first[0].path.unlink()  # an interrupted backfill: one file missing
    kept = first[1].path.stat().st_mtime_ns
    again = bulk.pull_month(settings, endpoint(url), "2026-08", AS_OF, SAMPLE)
    assert [f.sha256 for f in again] == [f.sha256 for f in first]
    assert first[0].path.exists() and first[1].path.stat().st_mtime_ns == kept


def nightly_root(url: str, root: Path) -> DataStore:
    """The quarter as the nightly DAG builds it: every day, the catalogue, then the sample provinces'
    dossiers pulled per province and published as the day's batch."""
    store, settings = DataStore(root), settings_for(root)
    pipeline.ingest_commune_reports(store, settings, endpoint(url, "reporting_api"), QUARTER)
    day = date(2026, 7, 1)
    while day < AS_OF.date():
        pipeline.ingest_procedures(store, settings, endpoint(url), day)
        for code in SAMPLE:
            pipeline.pull_province_dossiers(settings, endpoint(url), day, code)
        pipeline.ingest_province_dossiers(store, settings, day, SAMPLE)
        day += timedelta(days=1)
    pipeline.rank_period(store, settings, QUARTER)
    return store


def bulk_root(url: str, root: Path) -> DataStore:
    store, settings = DataStore(root), settings_for(root)
    pipeline.ingest_commune_reports(store, settings, endpoint(url, "reporting_api"), QUARTER)
    pipeline.ingest_procedures(store, settings, endpoint(url), date(2026, 9, 30))
    summaries = bulk.backfill(store, settings, endpoint(url), MONTHS, AS_OF, SAMPLE)
    assert [s["partition"] for s in summaries] == [f"month-{m}" for m in MONTHS]
    assert all(s["rows_pulled"] == s["rows_snapshot"] + s["rows_quarantined"] > 0 for s in summaries)
    pipeline.rank_period(store, settings, QUARTER)
    return store


def sorted_table(table: pa.Table, key: str) -> pd.DataFrame:
    frame = table.to_pandas()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(str)
    return frame.sort_values(key).reset_index(drop=True)


@pytest.mark.integration
def test_a_backfilled_quarter_equals_the_same_quarter_pulled_night_by_night(url: str, tmp_path: Path) -> None:
    nightly = nightly_root(url, tmp_path / "nightly")
    backfilled = bulk_root(url, tmp_path / "bulk")
    for month in MONTHS:
        where = {"received_month": month}
        a = sorted_table(nightly.read_partition("snapshots/dossiers", where), "dossier_id")
        b = sorted_table(backfilled.read_partition("snapshots/dossiers", where), "dossier_id")
        assert len(a) > 100 and set(a["province_code"]) == set(SAMPLE)
        pd.testing.assert_frame_equal(a, b)
    key = ["level", "unit_code", "indicator_id"]
    values_a = sorted_table(nightly.read_partition("indicator_values", {"period": QUARTER}), "unit_code")
    values_b = sorted_table(backfilled.read_partition("indicator_values", {"period": QUARTER}), "unit_code")
    values_a, values_b = (v.sort_values(key).reset_index(drop=True) for v in (values_a, values_b))
    dossier_based = values_a["indicator_id"].isin(values_a.loc[values_a["denominator"] > 0, "indicator_id"])
    assert dossier_based.any()
    pd.testing.assert_frame_equal(values_a, values_b)
    ranking_a = nightly.read_partition("ranking_v2", {"period": QUARTER}).to_pandas()
    ranking_b = backfilled.read_partition("ranking_v2", {"period": QUARTER}).to_pandas()
    pd.testing.assert_frame_equal(ranking_a, ranking_b)
    with Ledger.open(settings_for(tmp_path / "bulk").sql_url) as ledger:
        batches = {e["partition"]: e for e in ledger.history("dossiers")}
    assert set(batches) == {f"month-{m}" for m in MONTHS}
    assert all(e["outcome"] == "succeeded" for e in batches.values())


def asset_event_extras(home: Path, dag_id: str) -> list[dict]:
    """The extras of the asset events a DAG emitted, from the local metadata DB (Airflow's table)."""
    import json
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(home / "airflow.db")) as db:
        query = "select extra from asset_event where source_dag_id = ? order by id"
        return [json.loads(extra) for (extra,) in db.execute(query, (dag_id,))]


@pytest.mark.integration
def test_the_backfill_dag_publishes_a_month_through_airflow(tmp_path: Path) -> None:
    """`airflow dags test egov_bulk_backfill` for one month: 34 province files, one checked batch, and
    the snapshot event names the periods the ranking DAG ranks (the month's quarter, then its year)."""
    from airflow_home import migrate_home

    from egov_index.local_airflow import airflow_env, dags_test, source_connections

    home, data = tmp_path / "airflow", tmp_path / "data"
    env = airflow_env(home, data, inbox_dir=tmp_path / "inbox")
    migrate_home(env)
    token = secrets.token_urlsafe(24)
    with running_server(tmp_path, token=token, dossiers_per_day=600) as base:
        env.update(source_connections(base, token))
        conf = {"first_month": "2026-08", "last_month": "2026-08", "as_of": AS_OF.isoformat()}
        dags_test(env, "egov_bulk_backfill", conf=conf)
    store = DataStore(data)
    files = sorted((data / bulk.EXPORTS_DIR).rglob("province=*.parquet"))
    assert len(files) == 34
    august = store.read_partition("snapshots/dossiers", {"received_month": "2026-08"})
    quarantined = store.read_partition("quarantine", {"dataset": "dossiers", "partition": "month-2026-08"})
    exported = dossier_export("2026-08", AS_OF, dossiers_per_day=600, defect_rate=0.002)
    assert august.num_rows + quarantined.num_rows == exported.num_rows
    assert quarantined.num_rows > 0  # the reference server's defects were held back, not lost
    [extra] = asset_event_extras(home, "egov_bulk_backfill")
    assert extra == {"period": "2026-Q3", "periods": ["2026-Q3"], "backfill": ["2026-08"]}  # no year from August


def test_a_backfill_plan_covers_its_months_quarters_and_catalogue_day() -> None:
    now = datetime(2026, 11, 22, 9, 0, tzinfo=LOCAL_TZ)
    year = bulk.plan("2026-01", "2026-12", datetime(2027, 1, 1, tzinfo=LOCAL_TZ), now)
    assert year["months"] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert year["quarters"] == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert year["catalogue_day"] == "2026-12-31"
    to_date = bulk.plan("2026-10", "2026-11", None, now)  # as_of defaults to now: the month so far
    assert to_date["as_of"] == now.isoformat() and to_date["catalogue_day"] == "2026-11-22"
    assert bulk.months_of("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    with pytest.raises(ValueError, match="starts after as_of"):
        bulk.plan("2026-12", "2026-12", None, now)
    with pytest.raises(ValueError, match="before first month"):
        bulk.months_of("2026-03", "2026-01")
    with pytest.raises(ValueError, match="timezone-aware"):
        bulk.plan("2026-01", "2026-01", datetime(2026, 3, 1), now)
