"""The pull client against the real reference server with its fault modes switched on per request.

Each fault ends in one of the promised outcomes: retried and then loaded, or a clear error (and, in
the pipeline, nothing half-loaded: the batch is only published after a complete pull).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from egov_index import pull
from egov_index.errors import SourceDataError, SourceError
from egov_index.periods import local_day_window
from egov_index.source_server.process import running_server

TOKEN = secrets.token_urlsafe(16)
WINDOW = local_day_window(date(2026, 9, 30))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("faults"), token=TOKEN, dossiers_per_day=300) as base:
        yield base


def endpoint(url: str, fault: str, **kw) -> pull.SourceEndpoint:
    headers = (("X-Egov-Fault", fault), ("X-Egov-Fault-Key", secrets.token_hex(4)))
    return pull.SourceEndpoint("faulty_source", url, TOKEN, headers=headers, backoff_factor_s=0.01, **kw)


def clean_dossiers(url: str) -> list[dict]:
    return pull.fetch_dossiers(pull.SourceEndpoint("clean", url, TOKEN), WINDOW.start, WINDOW.end, limit=100)


def test_429_with_retry_after_then_loaded(url):
    got = pull.fetch_dossiers(endpoint(url, "429:0:2"), WINDOW.start, WINDOW.end, limit=100)
    assert got == clean_dossiers(url)


def test_burst_of_5xx_then_loaded(url):
    got = pull.fetch_dossiers(endpoint(url, "5xx-burst:3"), WINDOW.start, WINDOW.end, limit=100)
    assert got == clean_dossiers(url)


def test_persistent_429_is_a_retryable_error(url):
    with pytest.raises(SourceError, match="429") as err:
        pull.fetch_procedures(endpoint(url, "429:0", retries=2))
    assert type(err.value) is SourceError


def test_slower_than_timeout_is_a_clear_error(url):
    with pytest.raises(SourceError, match="faulty_source"):
        pull.fetch_procedures(endpoint(url, "slow:2", retries=1, read_timeout_s=0.3))


def test_truncated_body_is_a_clear_error(url):
    with pytest.raises(SourceError, match="not valid JSON"):
        pull.fetch_procedures(endpoint(url, "truncate"))


def test_repeated_cursor_and_repeated_page_fail(url):
    with pytest.raises(SourceDataError, match="cursor|twice"):
        pull.fetch_dossiers(endpoint(url, "repeat-page"), WINDOW.start, WINDOW.end, limit=100)
    with pytest.raises(SourceDataError, match="twice"):
        pull.fetch_procedures(endpoint(url, "repeat-page"), page_size=100)


def test_declared_total_not_matching_fails(url):
    with pytest.raises(SourceDataError, match="declared"):
        pull.fetch_procedures(endpoint(url, "total-mismatch"), page_size=100)


def test_connection_reset_is_retried_then_a_clear_error(url):
    with pytest.raises(SourceError, match="faulty_source"):
        pull.fetch_procedures(endpoint(url, "reset", retries=2))


def test_a_failed_pull_publishes_nothing(url, tmp_path: Path):
    from egov_index import pipeline
    from egov_index.config import Settings
    from egov_index.store import DataStore

    settings = Settings(
        **{
            **Settings.from_env().__dict__,
            "data_root": tmp_path,
            "sql_url": f"sqlite:///{tmp_path / 'l.sqlite'}",
        }
    )
    with pytest.raises(SourceDataError):
        pipeline.ingest_procedures(
            DataStore(tmp_path), settings, endpoint(url, "total-mismatch"), date(2026, 9, 30)
        )
    assert not (tmp_path / "snapshots").exists()
    assert not (tmp_path / "quarantine").exists()
    from egov_index.ledger import Ledger

    with Ledger.open(settings.sql_url) as ledger:
        [entry] = ledger.history(dataset="procedures")
    assert entry["outcome"] == "failed" and "declared" in entry["error"]
