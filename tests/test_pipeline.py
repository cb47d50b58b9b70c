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
    ingest(env, "2026-08-20", [dossier("A", "2026-08-20", "2026-08-20"), dossier("B", "2026-08-20", "2026-08-20")])
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
