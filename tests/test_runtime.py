"""Run context -> the local day and period; Airflow connection parts -> endpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from egov_index.runtime import data_day, endpoint_from_parts, ranking_period


def test_nightly_run_ingests_the_previous_local_day():
    # run at 01:30 +07:00 on 1 Oct = 18:30 UTC on 30 Sep; the data is 30 Sep local
    end = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
    assert data_day({"data_interval_end": end, "params": {}}) == date(2026, 9, 30)


def test_manual_run_without_interval_uses_param_or_run_after():
    assert data_day({"params": {"day": "2026-08-15"}}) == date(2026, 8, 15)
    run = SimpleNamespace(run_after=datetime(2026, 10, 1, 3, 0, tzinfo=UTC))
    assert data_day({"params": {}, "data_interval_end": None, "dag_run": run}) == date(2026, 9, 30)


def test_ranking_period_from_param_event_or_run_after():
    assert ranking_period({"params": {"period": "2026"}}) == "2026"
    event = SimpleNamespace(extra={"period": "2026-Q3"})
    assert ranking_period({"params": {}, "triggering_asset_events": {"a": [event]}}) == "2026-Q3"
    run = SimpleNamespace(run_after=datetime(2026, 10, 1, 3, 0, tzinfo=UTC))
    assert ranking_period({"params": {}, "dag_run": run}) == "2026-Q3"
    with pytest.raises(ValueError, match="2026-Q3"):
        ranking_period({"params": {"period": "2026-Q5"}})


def test_endpoint_from_connection_parts():
    e = endpoint_from_parts("c", "127.0.0.1", 8000, "http", "tok", {"retries": 2})
    assert e.base_url == "http://127.0.0.1:8000" and e.retries == 2 and e.token == "tok"
    e = endpoint_from_parts("c", "https://portal.example.vn/api", None, None, "tok")
    assert e.base_url == "https://portal.example.vn/api"
    with pytest.raises(ValueError, match="bearer token"):
        endpoint_from_parts("c", "h", None, None, None)
