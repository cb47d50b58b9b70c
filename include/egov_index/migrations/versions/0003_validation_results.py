"""validation_results: one row per expectation per validated batch (the SQL validation history).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "validation_results",
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False),
        sa.Column("expectation_index", sa.Integer(), nullable=False),
        sa.Column("expectation", sa.String(128), nullable=False),
        sa.Column("column", sa.String(512), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("element_count", sa.BigInteger(), nullable=True),
        sa.Column("unexpected_count", sa.BigInteger(), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "dataset", "partition", "expectation_index", name=op.f("pk_validation_results")
        ),
        sa.CheckConstraint(
            "severity IN ('critical', 'warning', 'info')", name=op.f("ck_validation_results_severity")
        ),
        sa.CheckConstraint(
            "action IN ('passed', 'warned', 'quarantined', 'blocked')", name=op.f("ck_validation_results_action")
        ),
    )
    op.create_index(
        op.f("ix_validation_results_dataset_validated_at"), "validation_results", ["dataset", "validated_at"]
    )


def downgrade() -> None:
    op.drop_table("validation_results")
