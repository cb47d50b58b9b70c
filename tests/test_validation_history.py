"""Validation history in SQL (idempotent per run and batch) and the row-count band from the ledger."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from test_quality import N, good_dossiers, good_procedures, good_reports, run

from egov_index.ledger import Ledger, alembic_config
from egov_index.quality import DEFAULT_MAX_ROWS, BatchBlocked, ValidationOutcome
from egov_index.registry import current_units
from egov_index.validation_history import VALIDATION_RESULTS_TABLE, record_validation, row_count_band

ROW_COUNT = "expect_table_row_count_to_be_between"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'egov-index.sqlite'}"


@pytest.fixture(scope="module")
def outcomes() -> list[ValidationOutcome]:
    dossiers = good_dossiers()
    dossiers.loc[3, "fee_vnd"] = -1
    with pytest.raises(BatchBlocked) as blocked:
        run("procedures", good_procedures().drop(columns=["field"]))
    assert blocked.value.outcome is not None
    return [run("dossiers", dossiers), blocked.value.outcome]


def test_the_migrations_form_one_chain() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_recording_is_idempotent_per_run_and_batch_and_queryable(url: str, outcomes) -> None:
    dossiers, procedures = outcomes
    expected = len(dossiers.results) + len(procedures.results)
    assert record_validation(url, "run-1", outcomes) == expected
    assert record_validation(url, "run-1", outcomes) == expected  # a retried task: same rows, no copies
    record_validation(url, "run-2", [dossiers])

    table = VALIDATION_RESULTS_TABLE
    with Ledger.open(url) as database, database.engine.connect() as connection:
        per_run = dict(
            connection.execute(sa.select(table.c.run_id, sa.func.count()).group_by(table.c.run_id)).all()
        )
        assert per_run == {"run-1": expected, "run-2": len(dossiers.results)}
        failed = connection.execute(
            sa.select(table.c.dataset, table.c.expectation, table.c.column, table.c.action, table.c.unexpected_count)
            .where(table.c.run_id == "run-1", table.c.success.is_(False))
            .order_by(table.c.dataset, table.c.expectation_index)
        ).all()
        stamp = connection.execute(
            sa.select(table.c.validated_at).where(table.c.run_id == "run-1", table.c.dataset == "dossiers")
        ).first()
    assert ("dossiers", "expect_column_values_to_be_between", "fee_vnd", "quarantined", 1) in failed
    assert ("procedures", "expect_table_columns_to_match_set", "field", "blocked", 1) in failed
    assert stamp is not None and stamp[0] == dossiers.validated_at.astimezone(UTC)


def _ledger_days(ledger: Ledger, dataset: str, counts: dict[str, int]) -> None:
    for partition, rows in counts.items():
        entry = ledger.start(run_id="cli", source="service_portal", dataset=dataset, partition=partition)
        ledger.finish(entry, "succeeded", rows_pulled=rows, rows_snapshot=rows, rows_quarantined=0)


def test_row_count_band_comes_from_recent_partitions(url: str) -> None:
    with Ledger.open(url) as ledger:
        _ledger_days(ledger, "dossiers", {"2026-09-26": 900, "2026-09-27": 1000})
        assert row_count_band(ledger, "dossiers", "2026-09-30") == {"row_count_min": 1, "row_count_max": DEFAULT_MAX_ROWS}
        _ledger_days(ledger, "dossiers", {"2026-09-28": 1100, "2026-09-29": 1300, "2026-09-30": 9999})
        # median of 900, 1000, 1100, 1300 (the batch's own partition and later ones left out)
        assert row_count_band(ledger, "dossiers", "2026-09-30") == {"row_count_min": 525, "row_count_max": 1575}
        # a backfilled month is not compared with the days
        assert row_count_band(ledger, "dossiers", "month-2026-10") == {"row_count_min": 1, "row_count_max": DEFAULT_MAX_ROWS}

        communes = len(current_units().communes)
        _ledger_days(ledger, "commune_reports", {"2026-Q1": 1200, "2026-Q2": 1000, "2025-Q4": 800})
        assert row_count_band(ledger, "commune_reports", "2026-Q3") == {"row_count_min": 1, "row_count_max": 1500}
        assert row_count_band(ledger, "commune_reports", "file-0123456789ab") == {
            "row_count_min": 1,
            "row_count_max": communes,
        }


def test_a_batch_far_outside_the_band_warns_and_is_kept(url: str) -> None:
    with Ledger.open(url) as ledger:
        _ledger_days(ledger, "dossiers", {f"2026-09-2{d}": 20_000 + 100 * d for d in range(1, 6)})
        band = row_count_band(ledger, "dossiers", "2026-09-30")
    outcome = run("dossiers", good_dossiers(), parameters=band)  # 60 rows against ~20,000 a day
    [row_count] = [r for r in outcome.results if r.expectation == ROW_COUNT]
    assert row_count.action == "warned" and row_count.severity == "warning"
    assert row_count.examples == (N,)
    assert outcome.status == "warned" and len(outcome.valid) == N and outcome.quarantine.empty


def test_reports_of_a_quarter_in_progress_do_not_warn_low(url: str) -> None:
    with Ledger.open(url) as ledger:
        _ledger_days(ledger, "commune_reports", {"2025-Q4": 3000, "2026-Q1": 3100, "2026-Q2": 3200})
        band = row_count_band(ledger, "commune_reports", "2026-Q3")
    outcome = run("commune_reports", good_reports(), parameters=band)  # 60 reports filed so far
    assert outcome.status == "passed"
