"""results: the ranking and indicator values of each period, for BI tools that prefer SQL.

One row per period x level x unit (ranking) and per period x level x unit x indicator
(indicator values), as in the Parquet datasets of the same names (docs/data-dictionary.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = ("c1", "c2", "c3", "c4", "c5", "c6")


def upgrade() -> None:
    op.create_table(
        "ranking",
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(16), nullable=False),
        sa.Column("unit_name", sa.String(255), nullable=False),
        sa.Column("parent_code", sa.String(16), nullable=True),
        sa.Column("methodology", sa.String(64), nullable=False),
        sa.Column("overall_points", sa.Double(), nullable=False),
        sa.Column("overall_max_points", sa.Double(), nullable=False),
        sa.Column("overall_index", sa.Double(), nullable=False),
        sa.Column("overall_rank", sa.Integer(), nullable=False),
        sa.Column("overall_rank_in_province", sa.Integer(), nullable=True),
        *(
            column
            for category in CATEGORIES
            for column in (
                sa.Column(f"{category}_index", sa.Double(), nullable=False),
                sa.Column(f"{category}_rank", sa.Integer(), nullable=False),
            )
        ),
        sa.Column("has_report", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("period", "level", "unit_code", name=op.f("pk_ranking")),
    )
    op.create_table(
        "indicator_values",
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_code", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(16), nullable=True),
        sa.Column("methodology", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("indicator_id", sa.String(64), nullable=False),
        sa.Column("numerator", sa.Double(), nullable=True),
        sa.Column("denominator", sa.Double(), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("points", sa.Double(), nullable=False),
        sa.Column("max_points", sa.Double(), nullable=False),
        sa.Column("missing_treatment", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint(
            "period", "level", "unit_code", "indicator_id", name=op.f("pk_indicator_values")
        ),
    )


def downgrade() -> None:
    op.drop_table("indicator_values")
    op.drop_table("ranking")
