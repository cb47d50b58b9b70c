"""Run context -> the local day and the periods to rank; Airflow connection parts -> endpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from egov_index.runtime import (
    backfill_snapshot_event,
    data_day,
    endpoint_from_parts,
    rank_in_order,
    ranking_periods,
)


def test_nightly_run_ingests_the_previous_local_day():
    # run at 01:30 +07:00 on 1 Oct = 18:30 UTC on 30 Sep; the data is 30 Sep local
    end = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
    assert data_day({"data_interval_end": end, "params": {}}) == date(2026, 9, 30)


def test_manual_run_without_interval_uses_param_or_run_after():
    assert data_day({"params": {"day": "2026-08-15"}}) == date(2026, 8, 15)
    run = SimpleNamespace(run_after=datetime(2026, 10, 1, 3, 0, tzinfo=UTC))
    assert data_day({"params": {}, "data_interval_end": None, "dag_run": run}) == date(2026, 9, 30)


RUN = SimpleNamespace(run_after=datetime(2026, 10, 1, 3, 0, tzinfo=UTC))  # 1 Oct 10:00 local


def events(*extras: dict | None) -> dict:
    return {"egov_snapshots": [SimpleNamespace(extra=extra) for extra in extras]}


def test_ranking_periods_param_alone_overrides_the_events():
    triggered = events({"period": "2026-Q3", "periods": ["2026-Q3", "2026"]})
    assert ranking_periods({"params": {"period": "2026"}, "triggering_asset_events": triggered}) == ["2026"]
    assert ranking_periods({"params": {"period": "2025-Q4"}, "dag_run": RUN}) == ["2025-Q4"]
    with pytest.raises(ValueError, match="2026-Q3"):
        ranking_periods({"params": {"period": "2026-Q5"}})


def test_ranking_periods_of_a_backfill_event_are_its_quarters_then_the_years_it_covers_from_january():
    covered = {"months": ["2025-11", "2025-12", "2026-01", "2026-02"], "quarters": ["2025-Q4", "2026-Q1"]}
    extra = backfill_snapshot_event(covered)
    assert extra == {
        "period": "2026-Q1",  # the last quarter, for readers of the old extra
        "periods": ["2025-Q4", "2026-Q1", "2026"],  # 2025 entered in November: not ranked as a year
        "backfill": covered["months"],
    }
    context = {"params": {}, "triggering_asset_events": events(extra), "dag_run": RUN}
    assert ranking_periods(context) == ["2025-Q4", "2026-Q1", "2026"]
    august = backfill_snapshot_event({"months": ["2026-08"], "quarters": ["2026-Q3"]})
    assert august["periods"] == ["2026-Q3"]
    gap = backfill_snapshot_event({"months": ["2026-01", "2026-03"], "quarters": ["2026-Q1"]})
    assert gap["periods"] == ["2026-Q1"]  # February missing: the year to date is not covered
    quarters = ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    year = backfill_snapshot_event({"months": [f"2026-{m:02d}" for m in range(1, 13)], "quarters": quarters})
    assert year["periods"] == [*quarters, "2026"] and year["period"] == "2026-Q4"


def test_ranking_periods_of_nightly_events_are_their_quarters_once_each():
    nightly = events({"day": "2026-09-29", "period": "2026-Q3"}, {"day": "2026-09-30", "period": "2026-Q3"})
    assert ranking_periods({"params": {}, "triggering_asset_events": nightly}) == ["2026-Q3"]
    across = events({"day": "2026-10-01", "period": "2026-Q4"}, {"day": "2026-09-30", "period": "2026-Q3"})
    assert ranking_periods({"params": {}, "triggering_asset_events": across}) == ["2026-Q3", "2026-Q4"]


def test_ranking_periods_of_mixed_events_merge_and_order_quarters_then_years():
    triggered = {
        "egov_snapshots": [
            SimpleNamespace(extra={"day": "2026-10-01", "period": "2026-Q4"}),
            SimpleNamespace(extra={"period": "2025-Q2", "periods": ["2025-Q1", "2025-Q2", "2025"]}),
            SimpleNamespace(extra={"periods": ["2024-Q4", "2024"]}),  # a future producer: periods only
            SimpleNamespace(extra=None),
            SimpleNamespace(extra={}),
        ]
    }
    ordered = ["2024-Q4", "2025-Q1", "2025-Q2", "2026-Q4", "2024", "2025"]
    assert ranking_periods({"params": {}, "triggering_asset_events": triggered, "dag_run": RUN}) == ordered
    with pytest.raises(ValueError, match="2026-Q9"):
        ranking_periods({"params": {}, "triggering_asset_events": events({"periods": ["2026-Q9"]})})


def test_ranking_periods_without_param_or_event_is_the_quarter_of_yesterday():
    assert ranking_periods({"params": {}, "dag_run": RUN}) == ["2026-Q3"]  # yesterday: 30 Sep local
    nothing = {"params": {"period": None}, "triggering_asset_events": events(None, {}), "dag_run": RUN}
    assert ranking_periods(nothing) == ["2026-Q3"]
    assert ranking_periods({"params": {}, "triggering_asset_events": {}, "dag_run": RUN}) == ["2026-Q3"]


def test_rank_in_order_ranks_one_after_the_other_and_names_the_period_that_failed(caplog):
    ranked: list[str] = []

    def rank(period: str) -> dict:
        if period == "2026":
            raise FileNotFoundError("no commune-report snapshot")
        ranked.append(period)
        return {"period": period}

    assert rank_in_order(["2026-Q1", "2026-Q2"], rank) == [{"period": "2026-Q1"}, {"period": "2026-Q2"}]
    ranked.clear()
    with pytest.raises(FileNotFoundError) as failed:  # the type is kept: it decides the retry policy
        rank_in_order(["2026-Q1", "2026-Q2", "2026", "2027"], rank)
    assert ranked == ["2026-Q1", "2026-Q2"]
    [note] = failed.value.__notes__
    assert note == "ranking of 2026 failed; published before it in this run: 2026-Q1, 2026-Q2"
    assert note in caplog.text


def test_endpoint_from_connection_parts():
    e = endpoint_from_parts("c", "127.0.0.1", 8000, "http", "tok", {"retries": 2})
    assert e.base_url == "http://127.0.0.1:8000" and e.retries == 2 and e.token == "tok"
    e = endpoint_from_parts("c", "https://portal.example.vn/api", None, None, "tok")
    assert e.base_url == "https://portal.example.vn/api"
    with pytest.raises(ValueError, match="bearer token"):
        endpoint_from_parts("c", "h", None, None, None)


def test_ranking_periods_take_a_lone_label_given_as_text():
    context = {"params": {}, "triggering_asset_events": events({"periods": "2026"}), "dag_run": RUN}
    assert ranking_periods(context) == ["2026"]
