"""Dossiers pulled per province (the nightly run's mapped tasks), then published as one day batch."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from egov_index import pipeline, pull
from egov_index.config import Settings
from egov_index.periods import local_day_window
from egov_index.registry import current_units
from egov_index.source_server.generator import dossier_page
from egov_index.source_server.process import running_server
from egov_index.store import MANIFEST_FILE, DataStore

TOKEN = secrets.token_urlsafe(16)
DAY = date(2026, 9, 30)
WINDOW = local_day_window(DAY)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("provinces"), token=TOKEN, dossiers_per_day=400) as base:
        yield base


def settings_for(root: Path) -> Settings:
    return Settings(**{**Settings.from_env().__dict__, "data_root": root, "sql_url": f"sqlite:///{root / 'l.sqlite'}"})


def digests(root: Path, sub: str) -> dict[str, str]:
    return {
        str(m.relative_to(root)): json.loads(m.read_text())["sha256"] for m in sorted((root / sub).rglob(MANIFEST_FILE))
    }


def test_the_province_filter_splits_the_day_without_loss_or_overlap() -> None:
    whole = dossier_page(WINDOW.start, WINDOW.end, dossiers_per_day=400).items
    parts = {
        code: dossier_page(WINDOW.start, WINDOW.end, dossiers_per_day=400, province_code=code).items
        for code in current_units().province_codes()
    }
    assert all(d["province_code"] == code for code, items in parts.items() for d in items)
    split = sorted(d["dossier_id"] for items in parts.values() for d in items)
    assert split == sorted(d["dossier_id"] for d in whole) and len(split) == len(set(split))
    # cursor pages of one province follow each other without a gap
    code = max(parts, key=lambda c: len(parts[c]))
    first = dossier_page(WINDOW.start, WINDOW.end, dossiers_per_day=400, province_code=code, limit=5)
    assert first.has_more and first.total == len(parts[code])
    last = first.items[-1]
    from egov_index.source_server.app import decode_cursor, encode_cursor

    rest = dossier_page(
        WINDOW.start, WINDOW.end, dossiers_per_day=400, province_code=code, after=decode_cursor(encode_cursor(last))
    )
    assert [d["dossier_id"] for d in first.items + rest.items] == [d["dossier_id"] for d in parts[code]]


def test_mapped_pulls_publish_the_same_day_as_one_pull(url: str, tmp_path: Path) -> None:
    endpoint = pull.SourceEndpoint("portal", url, TOKEN)
    root = tmp_path / "data"
    settings = settings_for(root)
    store = DataStore(root)
    pipeline.ingest_procedures(store, settings, endpoint, DAY)
    provinces = current_units().province_codes()
    pulled = [pipeline.pull_province_dossiers(settings, endpoint, DAY, code) for code in provinces]
    assert not (root / "snapshots" / "dossiers").exists()  # pulling only archives
    summary = pipeline.ingest_province_dossiers(store, settings, DAY, [p["province_code"] for p in pulled])
    served = pull.fetch_dossiers(endpoint, WINDOW.start, WINDOW.end, limit=250)
    assert summary["rows_pulled"] == len(served) == sum(p["rows_pulled"] for p in pulled)
    assert summary["rows_pulled"] == summary["rows_snapshot"] + summary["rows_quarantined"]
    snapshot = store.read("snapshots/dossiers").to_pandas()
    quarantined = store.read("quarantine").to_pandas() if (root / "quarantine").exists() else None
    kept = set(snapshot["dossier_id"]) | (set(quarantined["record_key"]) if quarantined is not None else set())
    assert kept == {d["dossier_id"] for d in served}

    # the same day through the single unmapped pull gives byte-identical snapshots and quarantine
    single = tmp_path / "single"
    single_settings = settings_for(single)
    single_store = DataStore(single)
    pipeline.ingest_procedures(single_store, single_settings, endpoint, DAY)
    pipeline.ingest_from_api(
        single_store,
        single_settings,
        "dossiers",
        DAY.isoformat(),
        "manual",
        lambda hook: pull.fetch_dossiers(endpoint, WINDOW.start, WINDOW.end, limit=250, on_page=hook),
    )
    for sub in ("snapshots", "quarantine"):
        assert digests(root, sub) == digests(single, sub)

    # and the raw archive of the mapped pulls replays to the same snapshots
    replayed = tmp_path / "replayed"
    replay_settings = settings_for(replayed)
    replay_store = DataStore(replayed)
    pipeline.replay(root, replay_store, replay_settings, "procedures", DAY.isoformat())
    pipeline.replay(root, replay_store, replay_settings, "dossiers", DAY.isoformat())
    assert digests(replayed, "snapshots") == digests(root, "snapshots")
