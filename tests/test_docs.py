"""Docs follow the code: every published column is in the data dictionary."""

from __future__ import annotations

from pathlib import Path

import pytest

from egov_index import schemas
from egov_index.schemas import VALIDATION_RESULT_SCHEMA

DICTIONARY = (Path(__file__).parents[1] / "docs" / "data-dictionary.md").read_text()


@pytest.mark.parametrize(
    "names",
    [
        schemas.RANKING_SCHEMA.names,
        schemas.INDICATOR_VALUE_SCHEMA.names,
        schemas.QUARANTINE_SCHEMA.names,
        VALIDATION_RESULT_SCHEMA.names,
        [f.name for fields in schemas.SOURCE_FIELDS.values() for f in fields],
    ],
)
def test_every_published_column_is_documented(names):
    missing = [n for n in names if f"| `{n}` |" not in DICTIONARY]
    assert missing == []
