"""SQL publication of a period's ranking and indicator values: migration, idempotence, replacement."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from test_store import synthetic_frame

from egov_index import schemas
from egov_index.ledger import VERSION_TABLE, Base, Ledger
from egov_index.sql_publish import INDICATOR_VALUES_TABLE, RANKING_TABLE, publish_period

INDICATORS = ("c1_has_lan", "c4_online_submission", "c6_vneid")


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'egov-index.sqlite'}"


def results(period: str, units: int, points: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ranking (``units`` communes) and its indicator values, as rank_period produces them."""
    ranking = synthetic_frame(schemas.RANKING_SCHEMA, units, period=period, level="commune")
    ranking["unit_code"] = [f"{i:05d}" for i in range(units)]
    ranking["overall_points"] = points
    ranking.loc[0, "parent_code"] = None
    values = pd.concat(
        [
            synthetic_frame(schemas.INDICATOR_VALUE_SCHEMA, units, period=period, level="commune", indicator_id=i)
            .assign(unit_code=[f"{u:05d}" for u in range(units)], points=points)
            for i in INDICATORS
        ],
        ignore_index=True,
    )
    values.loc[0, ["value", "missing_treatment"]] = [float("nan"), None]
    return ranking, values


def table_rows(url: str, table: sa.Table, period: str) -> list[tuple]:
    with Ledger.open(url) as db, db.engine.connect() as connection:
        query = sa.select(table).where(table.c.period == period).order_by(*table.primary_key.columns)
        return [tuple(row) for row in connection.execute(query)]


def ours(obj, name, type_, reflected, compare_to) -> bool:
    """Compare only the results tables (other modules register their own tables on Base.metadata)."""
    table = name if type_ == "table" else obj.table.name
    return table in (RANKING_TABLE.name, INDICATOR_VALUES_TABLE.name)


def test_the_migration_creates_the_tables_the_code_uses(url):
    with Ledger.open(url) as db, db.engine.connect() as connection:
        opts = {"version_table": VERSION_TABLE, "include_object": ours}
        assert compare_metadata(MigrationContext.configure(connection, opts=opts), Base.metadata) == []
        inspector = sa.inspect(connection)
        for table in ("ranking", "ranking_v2"):  # version 1 stays, version 2 is written
            assert inspector.get_pk_constraint(table)["constrained_columns"] == ["period", "level", "unit_code"]
        assert inspector.get_pk_constraint("indicator_values")["constrained_columns"] == [
            "period",
            "level",
            "unit_code",
            "indicator_id",
        ]


def test_sql_columns_are_the_parquet_contract():
    assert [c.name for c in RANKING_TABLE.columns] == schemas.RANKING_SCHEMA.names
    assert [c.name for c in INDICATOR_VALUES_TABLE.columns] == schemas.INDICATOR_VALUE_SCHEMA.names
    for table, schema in ((RANKING_TABLE, schemas.RANKING_SCHEMA), (INDICATOR_VALUES_TABLE, schemas.INDICATOR_VALUE_SCHEMA)):
        for column in table.columns:
            assert column.nullable == schema.field(column.name).nullable or column.primary_key, column.name


def test_publishing_a_period_twice_gives_the_same_rows(url):
    ranking, values = results("2026-Q3", 40)
    first = publish_period(url, "2026-Q3", ranking, values)
    rows = table_rows(url, RANKING_TABLE, "2026-Q3"), table_rows(url, INDICATOR_VALUES_TABLE, "2026-Q3")
    second = publish_period(url, "2026-Q3", ranking, values)
    assert first == second == {"period": "2026-Q3", "ranking_rows": 40, "indicator_value_rows": 120}
    assert (table_rows(url, RANKING_TABLE, "2026-Q3"), table_rows(url, INDICATOR_VALUES_TABLE, "2026-Q3")) == rows
    first_value = rows[1][0]
    assert first_value[INDICATOR_VALUES_TABLE.c.keys().index("value")] is None  # NaN is stored as NULL
    assert rows[0][0][RANKING_TABLE.c.keys().index("parent_code")] is None


def test_a_changed_period_replaces_its_rows_and_leaves_other_periods(url):
    publish_period(url, "2026-Q2", *results("2026-Q2", 10))
    publish_period(url, "2026-Q3", *results("2026-Q3", 40))
    publish_period(url, "2026-Q3", *results("2026-Q3", 30, points=2.0))
    q3 = table_rows(url, RANKING_TABLE, "2026-Q3")
    assert len(q3) == 30 and {row[RANKING_TABLE.c.keys().index("overall_points")] for row in q3} == {2.0}
    assert len(table_rows(url, INDICATOR_VALUES_TABLE, "2026-Q3")) == 90
    assert len(table_rows(url, RANKING_TABLE, "2026-Q2")) == 10


def test_a_failing_publication_keeps_the_previous_rows(url):
    publish_period(url, "2026-Q3", *results("2026-Q3", 20))
    ranking, values = results("2026-Q3", 20, points=3.0)
    duplicated = pd.concat([values, values.iloc[:1]], ignore_index=True)  # breaks the primary key
    with pytest.raises(sa.exc.IntegrityError):
        publish_period(url, "2026-Q3", ranking, duplicated)
    rows = table_rows(url, RANKING_TABLE, "2026-Q3")
    assert len(rows) == 20 and {row[RANKING_TABLE.c.keys().index("overall_points")] for row in rows} == {1.0}


def test_rows_of_another_period_are_refused(url):
    ranking, values = results("2026-Q3", 5)
    with pytest.raises(ValueError, match="2026-Q3"):
        publish_period(url, "2026-Q4", ranking, values)
