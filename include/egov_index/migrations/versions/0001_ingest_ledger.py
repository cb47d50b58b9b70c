"""ingest_ledger: one row per ingest attempt (API pull or inbox file).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_VERSION = sa.text("outcome = 'succeeded' AND file_key IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "ingest_ledger",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file_key", sa.String(512), nullable=True),
        sa.Column("file_name", sa.String(512), nullable=True),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("payload_sha256", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_pulled", sa.Integer(), nullable=True),
        sa.Column("rows_snapshot", sa.Integer(), nullable=True),
        sa.Column("rows_quarantined", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_ledger")),
        sa.CheckConstraint(
            "source IN ('reporting_api', 'service_portal', 'inbox')", name=op.f("ck_ingest_ledger_source")
        ),
        sa.CheckConstraint(
            "outcome IN ('running', 'succeeded', 'failed', 'skipped_duplicate', 'superseded')",
            name=op.f("ck_ingest_ledger_outcome"),
        ),
    )
    op.create_index(op.f("ix_ingest_ledger_dataset_partition"), "ingest_ledger", ["dataset", "partition"])
    op.create_index(op.f("ix_ingest_ledger_file_key"), "ingest_ledger", ["file_key"])
    op.create_index(
        op.f("uq_ingest_ledger_current_file_version"),
        "ingest_ledger",
        ["file_key"],
        unique=True,
        sqlite_where=CURRENT_VERSION,
        postgresql_where=CURRENT_VERSION,
    )


def downgrade() -> None:
    op.drop_table("ingest_ledger")
