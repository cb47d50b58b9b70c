"""ingest_ledger: the outcome ``interrupted`` (an attempt still ``running`` when a newer attempt of the
same batch started: its worker most likely died before it could record an outcome).

Only the CHECK constraint on ``outcome`` changes (SQLite copies the table to alter it). The downgrade
turns ``interrupted`` entries into ``failed`` ones, their error text kept.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES_0001 = ("running", "succeeded", "failed", "skipped_duplicate", "superseded")
OUTCOMES_0005 = (*OUTCOMES_0001, "interrupted")


def _outcome_check(outcomes: tuple[str, ...]) -> None:
    with op.batch_alter_table("ingest_ledger") as batch:
        batch.drop_constraint(op.f("ck_ingest_ledger_outcome"), type_="check")
        batch.create_check_constraint(
            op.f("ck_ingest_ledger_outcome"), "outcome IN (" + ", ".join(f"'{o}'" for o in outcomes) + ")"
        )


def upgrade() -> None:
    _outcome_check(OUTCOMES_0005)


def downgrade() -> None:
    op.execute("UPDATE ingest_ledger SET outcome = 'failed' WHERE outcome = 'interrupted'")
    _outcome_check(OUTCOMES_0001)
