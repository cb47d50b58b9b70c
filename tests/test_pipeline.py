"""Pipeline stages without a scheduler: merge of mutable records into their snapshot partitions."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from egov_index import pipeline
from egov_index.config import Settings
from egov_index.registry import current_units
from egov_index.store import MANIFEST_FILE, DataStore

PROCEDURES = ["P1", "P2"]


def dossier(dossier_id: str, received: str, updated: str, status: str = "received", **kw) -> dict:
    commune = current_units().communes.iloc[0]
    return {
        "dossier_id": dossier_id,
        "procedure_code": "P1",
        "province_code": commune["province_code"],
        "commune_code": commune["commune_code"],
        "channel": "online",
        "status": status,
        "received_at": f"{received}T09:00:00+07:00",
        "due_at": "2026-12-31T17:00:00+07:00",
        "resolved_at": f"{updated}T10:00:00+07:00" if status == "resolved" else None,
        "updated_at": f"{updated}T10:00:00+07:00",
        "fee_vnd": 0,
        "paid_online": False,
        "digitised": True,
        **kw,
    }


@pytest.fixture
def env(tmp_path: Path) -> tuple[DataStore, Settings]:
    settings = Settings.from_env()
    settings = Settings(**{**settings.__dict__, "data_root": tmp_path})
    return DataStore(tmp_path), settings


def ingest(env: tuple[DataStore, Settings], day: str, records: list[dict]) -> pipeline.BatchSummary:
    store, settings = env
    parameters = {"procedure_codes": PROCEDURES}
    return pipeline.ingest_batch(store, settings, "dossiers", records, day, parameters)


def sha(store: DataStore, month: str) -> str:
    path = store.partition_dir("snapshots/dossiers", {"received_month": month}) / MANIFEST_FILE
    return json.loads(path.read_text())["sha256"]


def test_late_update_changes_only_its_month(env):
    store, _ = env
    ingest(
        env,
        "2026-08-20",
        [dossier("A", "2026-08-20", "2026-08-20"), dossier("B", "2026-08-20", "2026-08-20")],
    )
    ingest(env, "2026-09-05", [dossier("C", "2026-09-05", "2026-09-05")])
    august, september = sha(store, "2026-08"), sha(store, "2026-09")

    # 10 Oct: a late correction of August's dossier A, and a new October dossier
    late = dossier("A", "2026-08-20", "2026-10-10", status="resolved", digitised=False)
    summary = ingest(env, "2026-10-10", [late, dossier("D", "2026-10-10", "2026-10-10")])
    assert summary.rows_pulled == summary.rows_snapshot + summary.rows_quarantined == 2

    assert sha(store, "2026-08") != august
    assert sha(store, "2026-09") == september
    aug = store.read_partition("snapshots/dossiers", {"received_month": "2026-08"}).to_pandas()
    assert sorted(aug["dossier_id"]) == ["A", "B"]  # still one row per dossier
    row = aug.set_index("dossier_id").loc["A"]
    assert row["status"] == "resolved" and not row["digitised"]


def test_an_older_version_never_overwrites_a_newer_one_and_reruns_are_idempotent(env):
    store, _ = env
    new = dossier("A", "2026-08-20", "2026-08-25", status="resolved")
    old = dossier("A", "2026-08-20", "2026-08-20")
    ingest(env, "2026-08-25", [new])
    first = sha(store, "2026-08")
    ingest(env, "2026-08-20", [old])  # backfill of an earlier day, run later
    ingest(env, "2026-08-25", [new])  # rerun
    assert sha(store, "2026-08") == first
    aug = store.read_partition("snapshots/dossiers", {"received_month": "2026-08"}).to_pandas()
    assert aug["status"].tolist() == ["resolved"]


def test_merge_latest_keeps_the_latest_version_per_key_incoming_wins_ties():
    ts = pd.Timestamp("2026-09-01", tz="UTC")
    existing = pd.DataFrame({"k": ["a", "b"], "v": [ts, ts], "x": [1, 2]})
    incoming = pd.DataFrame({"k": ["b", "c"], "v": [ts, ts], "x": [20, 30]})
    merged = pipeline.merge_latest(existing, incoming, "k", "v").sort_values("k")
    assert merged["x"].tolist() == [1, 20, 30]


def reports_snapshot(env: tuple[DataStore, Settings], period: str) -> pd.DataFrame:
    store, _ = env
    frame = store.read_partition("snapshots/commune_reports", {"period": period}).to_pandas()
    frame = frame.drop(columns=["report_id"]).astype(str)  # a file row's id is derived, the API's is its own
    return frame.sort_values("commune_code").reset_index(drop=True)


FILE_STYLES = (
    "xlsx-table",
    "xlsx-form",
    "csv-utf8-bom-semicolon",
    "csv-utf8-nfd-comma",
    "csv-utf16-semicolon",
    "csv-cp1258-comma",
)


def test_the_same_reports_arrive_whichever_channel(tmp_path: Path):
    """The API's reports and the same reports sent as files (every style) give identical snapshot rows."""
    from egov_index.source_server.files import write_report_files
    from egov_index.source_server.generator import commune_reports

    period, seed = "2026-Q3", 11
    api_env = (DataStore(tmp_path / "api"), _settings(tmp_path / "api"))
    pipeline.ingest_records(
        *api_env, "commune_reports", commune_reports(period, seed=seed, legacy_rate=0.3), period
    )
    api = reports_snapshot(api_env, period).set_index("commune_code")

    file_env = (DataStore(tmp_path / "files"), _settings(tmp_path / "files"))
    hue = current_units().communes_of("46")["commune_code"].tolist()  # 40 communes
    picked: dict[str, list[str]] = {}
    for i, style in enumerate(FILE_STYLES):
        picked[style] = hue[2 * i : 2 * i + 2]
        write_report_files(
            file_env[1].inbox_dir, period, seed=seed, communes=picked[style], styles=[style], legacy_rate=0.3
        )
    write_report_files(
        file_env[1].inbox_dir,
        period,
        seed=seed,
        communes=hue,
        styles=["xlsx-province-table"],
        legacy_rate=0.3,
    )
    outcome = pipeline.ingest_inbox(*file_env)
    assert outcome["failed"] == []

    files = reports_snapshot(file_env, period).set_index("commune_code")
    assert sorted(files.index) == sorted(hue)
    for style, communes in picked.items():
        for code in communes:
            assert files.loc[code].equals(api.loc[code]), (style, code)
    assert files.equals(api.loc[files.index])


def _settings(root: Path) -> Settings:
    import dataclasses

    return dataclasses.replace(
        Settings.from_env(),
        data_root=root,
        inbox_dir=root / "inbox",
        sql_url=f"sqlite:///{root / 'egov.sqlite'}",
    )


def test_inbox_redelivery_is_a_noop_and_a_bad_file_is_set_aside(tmp_path: Path):
    from egov_index.errors import InboxFilesFailed
    from egov_index.source_server.files import write_report_files

    env = (DataStore(tmp_path), _settings(tmp_path))
    inbox = env[1].inbox_dir
    commune = current_units().communes_of("46")["commune_code"].tolist()[:1]
    [first] = write_report_files(inbox, "2026-Q3", seed=3, communes=commune, styles=["csv-utf8-comma"])
    content = first.read_bytes()
    assert len(pipeline.ingest_inbox(*env)["ingested"]) == 1
    before = sha_of(env[0], "snapshots/commune_reports", {"period": "2026-Q3"})

    (inbox / first.name).write_bytes(content)  # the commune sends the same file again
    (inbox / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(InboxFilesFailed, match="broken.xlsx"):
        pipeline.ingest_inbox(*env)
    assert sha_of(env[0], "snapshots/commune_reports", {"period": "2026-Q3"}) == before
    assert [p.name for p in inbox.iterdir() if p.is_file()] == []
    failed = sorted(p.name for p in (inbox / "failed").iterdir())
    assert len(failed) == 2 and failed[1].endswith("broken.xlsx.error.txt")


def sha_of(store: DataStore, dataset: str, partition: dict[str, str]) -> str:
    return json.loads((store.partition_dir(dataset, partition) / MANIFEST_FILE).read_text())["sha256"]
