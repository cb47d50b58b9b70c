"""ranking_v2: the ranking contract version 2 (nullable indices and ranks, treatments, rank changes).

Mirrors the Parquet dataset ``ranking_v2`` (docs/data-dictionary.md). The version-1 table ``ranking``
stays as it was (no longer written), like the Parquet path ``ranking/``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = ("c1", "c2", "c3", "c4", "c5", "c6")
BASELINES = ("previous", "year_ago")


def upgrade() -> None:
    op.create_table(
        "ranking_v2",
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(16), nullable=False),
        sa.Column("unit_name", sa.String(255), nullable=False),
        sa.Column("parent_code", sa.String(16), nullable=True),
        sa.Column("methodology", sa.String(64), nullable=False),
        sa.Column("report_treatment", sa.String(32), nullable=False),
        sa.Column("carried_from_period", sa.String(16), nullable=True),
        sa.Column("reported_share", sa.Double(), nullable=False),
        sa.Column("overall_points", sa.Double(), nullable=True),
        sa.Column("overall_max_points", sa.Double(), nullable=False),
        sa.Column("overall_index", sa.Double(), nullable=True),
        sa.Column("overall_rank", sa.Integer(), nullable=True),
        sa.Column("overall_rank_in_province", sa.Integer(), nullable=True),
        *(
            column
            for category in CATEGORIES
            for column in (
                sa.Column(f"{category}_index", sa.Double(), nullable=True),
                sa.Column(f"{category}_rank", sa.Integer(), nullable=True),
                sa.Column(f"{category}_rank_in_province", sa.Integer(), nullable=True),
            )
        ),
        *(
            column
            for baseline in BASELINES
            for column in (
                sa.Column(f"{baseline}_period", sa.String(16), nullable=True),
                sa.Column(f"{baseline}_basis", sa.String(32), nullable=True),
                sa.Column(f"{baseline}_rank", sa.Integer(), nullable=True),
                sa.Column(f"{baseline}_rank_change", sa.Integer(), nullable=True),
            )
        ),
        sa.Column("has_report", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("period", "level", "unit_code", name=op.f("pk_ranking_v2")),
    )


def downgrade() -> None:
    op.drop_table("ranking_v2")
