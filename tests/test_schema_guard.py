"""Schema guard: the schemas the pipeline publishes against tests/golden/published_schemas.json.

Within a dataset version (its path) a column is never renamed, dropped or retyped, and its
nullability stays; a nullable column may be added, deliberately, by updating the golden file:

    EGOV_UPDATE_SCHEMA_GOLDEN=1 .venv/bin/python -m pytest tests/test_schema_guard.py

A breaking change publishes under a new version path (``egov_index.store.versioned(path, n)``,
e.g. ``ranking_v2``): change the path constant in pipeline.py, then update the golden file, which
adds an entry for the new path and keeps the old one (old versions stay published as they were).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from egov_index import pipeline, schemas
from egov_index.store import breaking_changes, dataset_version, schema_fields, versioned

GOLDEN = Path(__file__).parent / "golden" / "published_schemas.json"
UPDATE = os.environ.get("EGOV_UPDATE_SCHEMA_GOLDEN") == "1"
HOW_TO_UPDATE = "EGOV_UPDATE_SCHEMA_GOLDEN=1 .venv/bin/python -m pytest tests/test_schema_guard.py"


def published_schemas() -> dict[str, pa.Schema]:
    """Dataset path -> the schema the pipeline publishes there (partition columns included)."""
    return {
        pipeline.RANKING: schemas.RANKING_SCHEMA,
        pipeline.INDICATOR_VALUES: schemas.INDICATOR_VALUE_SCHEMA,
        pipeline.QUARANTINE: schemas.QUARANTINE_SCHEMA,
        pipeline.VALIDATION_RESULTS: schemas.VALIDATION_RESULT_SCHEMA,
        **{
            path: schemas.arrow_schema(schemas.SOURCE_FIELDS[name])
            for name, path in pipeline.SNAPSHOT_DATASETS.items()
        },
    }


def review(golden: dict[str, dict], current: dict[str, pa.Schema]) -> tuple[list[str], list[str], dict]:
    """(breaking changes, additive changes, the golden document with the additive ones applied)."""
    breaking, additive, updated = [], [], dict(golden)
    for path, schema in current.items():
        fields = schema_fields(schema)
        entry = golden.get(path)
        if entry is None:
            additive.append(f"{path}: new dataset path (version {dataset_version(path)})")
        else:
            breaking += [f"{path}: {problem}" for problem in breaking_changes(entry["fields"], fields)]
            if entry["fields"] != fields:
                additive.append(f"{path}: columns added or reordered")
        updated[path] = {"version": dataset_version(path), "fields": fields}
    return breaking, additive, dict(sorted(updated.items()))


def golden_text(doc: dict[str, dict]) -> str:
    """The golden file: one line per column, so a review sees each change on its own line."""
    entries = []
    for path, entry in doc.items():
        fields = ",\n".join(f"    {json.dumps(field)}" for field in entry["fields"])
        entries.append(f'  {json.dumps(path)}: {{"version": {entry["version"]}, "fields": [\n{fields}\n  ]}}')
    return "{\n" + ",\n".join(entries) + "\n}\n"


def test_published_schemas_match_the_golden_file():
    golden = json.loads(GOLDEN.read_text())
    breaking, additive, updated = review(golden, published_schemas())
    if breaking:
        pytest.fail(
            "Breaking change to a published schema:\n  " + "\n  ".join(breaking) + "\n"
            "Readers of the current version would break. Keep the old schema, or publish the new one under a "
            f"new version path (e.g. {versioned('ranking', dataset_version(pipeline.RANKING) + 1)!r}: change the path constant in pipeline.py), "
            f"then record it with:\n  {HOW_TO_UPDATE}"
        )
    if additive and UPDATE:
        GOLDEN.write_text(golden_text(updated))
    elif additive:
        pytest.fail(
            "Published schemas differ from tests/golden/published_schemas.json (additive only):\n  "
            + "\n  ".join(additive)
            + f"\nIf deliberate (new columns are nullable, documented in docs/data-dictionary.md), run:\n  {HOW_TO_UPDATE}"
        )


def test_every_golden_entry_is_at_its_version_path():
    for path, entry in json.loads(GOLDEN.read_text()).items():
        assert entry["version"] == dataset_version(path), path


RANKING = schema_fields(schemas.RANKING_SCHEMA)


def mutated(change) -> dict[str, pa.Schema]:
    return {**published_schemas(), pipeline.RANKING: change(schemas.RANKING_SCHEMA)}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.remove(s.get_field_index("c4_index")), "'c4_index' was dropped or renamed"),
        (
            lambda s: s.set(s.get_field_index("unit_name"), pa.field("name", pa.string(), nullable=False)),
            "'unit_name' was dropped or renamed",
        ),
        (
            lambda s: s.set(s.get_field_index("overall_rank"), pa.field("overall_rank", pa.int64(), nullable=False)),
            "'overall_rank' changed type int32 -> int64",
        ),
        (
            lambda s: s.set(s.get_field_index("unit_code"), pa.field("unit_code", pa.string(), nullable=False)),
            "'unit_code' changed type dictionary",
        ),
        (
            lambda s: s.append(pa.field("population", pa.int64(), nullable=False)),
            "'population' was added as non-nullable",
        ),
    ],
    ids=["dropped", "renamed", "retyped", "dictionary-to-plain", "added-non-null"],
)
def test_the_guard_catches_a_rename_drop_or_retype(change, expected):
    breaking, _, _ = review(json.loads(GOLDEN.read_text()), mutated(change))
    assert any(expected in problem for problem in breaking), breaking


def test_an_added_nullable_column_needs_a_deliberate_golden_update():
    change = lambda s: s.append(pa.field("population", pa.int64(), nullable=True))  # noqa: E731
    breaking, additive, updated = review(json.loads(GOLDEN.read_text()), mutated(change))
    assert breaking == [] and additive == [f"{pipeline.RANKING}: columns added or reordered"]
    assert updated[pipeline.RANKING]["fields"][-1] == {"name": "population", "type": "int64", "nullable": True}


def test_a_new_version_path_gets_its_own_entry_and_keeps_the_old_one():
    golden = json.loads(GOLDEN.read_text())
    retyped = schemas.RANKING_SCHEMA.set(0, pa.field("period", pa.string(), nullable=False))
    current_version = dataset_version(pipeline.RANKING)
    following = versioned("ranking", current_version + 1)
    current = {**published_schemas(), following: retyped}
    del current[pipeline.RANKING]
    breaking, additive, updated = review(golden, current)
    assert breaking == [] and additive == [f"{following}: new dataset path (version {current_version + 1})"]
    assert updated[pipeline.RANKING] == golden[pipeline.RANKING]
    assert updated[following]["version"] == current_version + 1
    assert updated["ranking"] == golden["ranking"]  # version 1 stays described as it was published
