"""The data-quality gate: every suite loads in GX, good batches pass, each rule catches its bad row."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from egov_index.conform import conform
from egov_index.errors import DataQualityBlocked
from egov_index.quality import (
    PER_ROW_KEYS,
    BatchBlocked,
    ValidationOutcome,
    import_gx,
    load_suite,
    suite_parameter_names,
    summarize,
    validate_batch,
)
from egov_index.registry import current_units
from egov_index.schemas import (
    CATEGORIES,
    CHANNELS,
    DOSSIER_STATUSES,
    LEVELS,
    QUARANTINE_SCHEMA,
    RANKING_SCHEMA,
    RECORD_KEYS,
    REPORT_PART_OF_WHOLE,
    SERVICE_LEVELS,
    SOURCE_FIELDS,
    arrow_schema,
    field_names,
)

SUITE_DIR = Path(__file__).resolve().parents[1] / "expectations"
DATASETS = ("commune_reports", "dossiers", "procedures", "ranking")
PERIOD = "2026-Q3"
PROCEDURE_CODES = ["1.000001", "1.000002", "2.000001", "2.000002"]
N = 60

COUNTS = {
    "officials_total": 20,
    "officials_with_computer": 18,
    "computers_total": 22,
    "computers_internet": 20,
    "villages_total": 8,
    "villages_with_broadband": 7,
    "video_conference_endpoints": 2,
    "documents_outgoing": 300,
    "documents_outgoing_signed": 290,
    "documents_incoming": 500,
    "officials_using_document_system": 19,
    "officials_with_email": 20,
    "leaders_total": 3,
    "leaders_with_signature_cert": 3,
    "periodic_reports_total": 10,
    "periodic_reports_online": 9,
    "portal_info_items_required": 30,
    "portal_info_items_published": 28,
    "portal_articles_published": 12,
    "it_staff_dedicated": 1,
    "officials_trained_it": 15,
    "community_tech_teams": 8,
    "residents_adult": 5000,
    "residents_vneid_level2": 3500,
}
PAIRS = list(REPORT_PART_OF_WHOLE)
# the code columns checked against a named reference set (run-time values), and the set's name
REFERENCE_SETS = {
    "commune_code": "commune_codes",
    "province_code": "province_codes",
    "procedure_code": "procedure_codes",
}


# --- good batches, built from the registry ---------------------------------------------------------


def _communes(n: int = N) -> pd.DataFrame:
    """n real communes spread over the provinces."""
    communes = current_units().communes
    return communes.iloc[:: len(communes) // n].head(n).reset_index(drop=True)


def good_reports() -> pd.DataFrame:
    communes = _communes()
    frame = pd.DataFrame(
        {
            "report_id": communes["commune_code"] + f"-{PERIOD}",
            "period": PERIOD,
            "province_code": communes["province_code"],
            "commune_code": communes["commune_code"],
            "commune_name": communes["commune_name"],
            "submitted_at": pd.Timestamp("2026-10-05T08:30:00.123456", tz="UTC"),
        }
    )
    for field in SOURCE_FIELDS["commune_reports"]:
        if field.name in COUNTS:
            frame[field.name] = pd.array([COUNTS[field.name]] * N, dtype="Int64")
        elif str(field.type) == "bool":
            frame[field.name] = pd.array([True] * N, dtype="boolean")
    return frame[field_names(SOURCE_FIELDS["commune_reports"])]


def good_dossiers() -> pd.DataFrame:
    communes = _communes()
    received = pd.date_range("2026-07-01", periods=N, freq="37min", tz="UTC", unit="us")
    return pd.DataFrame(
        {
            "dossier_id": [f"H01.{i:06d}" for i in range(N)],
            "procedure_code": [PROCEDURE_CODES[i % len(PROCEDURE_CODES)] for i in range(N)],
            "province_code": communes["province_code"],
            "commune_code": communes["commune_code"],
            "channel": [CHANNELS[i % len(CHANNELS)] for i in range(N)],
            "status": [DOSSIER_STATUSES[i % len(DOSSIER_STATUSES)] for i in range(N)],
            "received_at": received,
            "due_at": received + pd.Timedelta(days=5),
            "resolved_at": [
                r + pd.Timedelta(days=2) if i % 4 == 2 else pd.NaT for i, r in enumerate(received)
            ],
            "updated_at": received + pd.Timedelta(days=2),
            "fee_vnd": pd.array([0, 50_000] * (N // 2), dtype="Int64"),
            "paid_online": pd.array([True, False] * (N // 2), dtype="boolean"),
            "digitised": pd.array([True] * N, dtype="boolean"),
        }
    )


def good_procedures() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "procedure_code": PROCEDURE_CODES,
            "procedure_name": [
                "Đăng ký khai sinh",
                "Đăng ký kết hôn",
                "Chứng thực bản sao",
                "Đăng ký thường trú",
            ],
            "field": ["ho_tich", "ho_tich", "chung_thuc", "cu_tru"],
            "service_level": [SERVICE_LEVELS[i % len(SERVICE_LEVELS)] for i in range(len(PROCEDURE_CODES))],
            "updated_at": pd.Timestamp("2026-06-30", tz="UTC"),
        }
    )


def good_ranking() -> pd.DataFrame:
    communes = _communes()
    provinces = current_units().provinces
    units = pd.concat(
        [
            pd.DataFrame(
                {
                    "level": "commune",
                    "unit_code": communes["commune_code"],
                    "unit_name": communes["commune_name"],
                    "parent_code": communes["province_code"],
                }
            ),
            pd.DataFrame(
                {
                    "level": "province",
                    "unit_code": provinces["province_code"],
                    "unit_name": provinces["province_name"],
                    "parent_code": None,
                }
            ),
        ],
        ignore_index=True,
    )
    n = len(units)
    frame = units.assign(
        period=PERIOD,
        methodology="2026.1",
        overall_points=[50.0 + i % 40 for i in range(n)],
        overall_max_points=100.0,
        overall_rank=units.groupby("level").cumcount() + 1,
        overall_rank_in_province=units.groupby(["level", "parent_code"], dropna=False).cumcount() + 1,
        has_report=True,
    )
    frame["overall_index"] = frame["overall_points"] / frame["overall_max_points"]
    frame["report_treatment"] = "reported"
    frame["carried_from_period"] = None
    frame["reported_share"] = 1.0
    for c in CATEGORIES:
        frame[f"{c}_index"] = frame["overall_index"]
        frame[f"{c}_rank"] = frame["overall_rank"]
        frame[f"{c}_rank_in_province"] = frame["overall_rank_in_province"]
    for baseline in ("previous", "year_ago"):
        frame[f"{baseline}_period"] = "2026-Q2" if baseline == "previous" else "2025-Q3"
        frame[f"{baseline}_basis"] = "computed"
        frame[f"{baseline}_rank"] = frame["overall_rank"]
        frame[f"{baseline}_rank_change"] = 0
    province = frame["level"] == "province"
    frame.loc[province, "overall_rank_in_province"] = None
    for c in CATEGORIES:
        frame.loc[province, f"{c}_rank_in_province"] = None
    # a commune excluded for a missing report: no points, index or rank, which the suite accepts
    excluded = frame.index[~province][0]
    frame.loc[excluded, "report_treatment"] = "excluded"
    frame.loc[excluded, "reported_share"] = 0.0
    frame.loc[excluded, ["overall_points", "overall_index", "overall_rank", "overall_rank_in_province"]] = None
    for c in CATEGORIES:
        frame.loc[excluded, [f"{c}_index", f"{c}_rank", f"{c}_rank_in_province"]] = None
    return frame[RANKING_SCHEMA.names]


def small_registry() -> dict[str, Any]:
    """Registry reference sets cut down to the test communes: callers' values override the registry's.

    (The full registry costs no more: reference sets are looked up by name, not copied into GX's
    expectation configurations; the good-batch test uses it.)
    """
    communes = _communes()
    return {
        "commune_codes": communes["commune_code"].tolist(),
        "commune_province_pairs": communes[["commune_code", "province_code"]].values.tolist(),
    }


PARAMS: dict[str, dict[str, Any]] = {
    "commune_reports": small_registry(),
    "dossiers": {**small_registry(), "procedure_codes": PROCEDURE_CODES},
}

GOOD: dict[str, Callable[[], pd.DataFrame]] = {
    "commune_reports": good_reports,
    "dossiers": good_dossiers,
    "procedures": good_procedures,
    "ranking": good_ranking,
}


def run(
    dataset: str, frame: pd.DataFrame, *, full_registry: bool = False, **kwargs: Any
) -> ValidationOutcome:
    """Validate and check the accounting every outcome must keep, blocked ones included."""
    small = {} if full_registry else PARAMS.get(dataset, {})
    parameters = {**small, "procedure_codes": PROCEDURE_CODES, **kwargs.pop("parameters", {})}
    try:
        outcome = validate_batch(
            dataset, frame, partition=PERIOD, parameters=parameters, suite_dir=SUITE_DIR, **kwargs
        )
    except BatchBlocked as blocked:  # nothing of a blocked batch is written: no valid, no quarantine rows
        held = blocked.outcome
        assert held is not None and held.status == "blocked" and held.blocked == str(blocked)
        assert held.rows_in == len(frame) and held.valid.empty and held.quarantine.empty
        assert held.results == blocked.results and held.gx_result.suite_name == dataset
        raise
    assert len(outcome.valid) + len(outcome.quarantine) == outcome.rows_in == len(frame)
    assert list(outcome.quarantine.columns) == QUARANTINE_SCHEMA.names
    return outcome


def reason_of(dataset: str, expectation: str, column: str) -> str:
    for e in load_suite(dataset, SUITE_DIR)["expectations"]:
        kwargs = e["kwargs"]
        columns = [
            kwargs.get("column"),
            kwargs.get("column_A"),
            kwargs.get("column_B"),
            *kwargs.get("column_list", []),
        ]
        if e["type"] == expectation and column in columns:
            return e["meta"]["reason"]
    raise KeyError((dataset, expectation, column))


# --- the suites themselves -------------------------------------------------------------------------


def test_every_suite_loads_with_gx_and_explains_itself() -> None:
    gx = import_gx()  # registers the project's reference-set expectations too

    paths = sorted(SUITE_DIR.glob("*.json"))
    assert {p.stem for p in paths} == set(DATASETS)
    for path in paths:
        spec = json.loads(path.read_text(encoding="utf-8"))
        suite = gx.ExpectationSuite(**spec)
        assert len(suite.expectations) == len(spec["expectations"]), path.name
        for e in spec["expectations"]:
            assert e["severity"] in ("critical", "warning"), e
            assert len(e["meta"]["reason"]) > 30, e
            kwargs = e["kwargs"]
            if kwargs.get("column") in REFERENCE_SETS or kwargs.get("column_A") in REFERENCE_SETS:
                # registry and catalogue codes are named reference sets, never values in the suite
                assert "value_set" not in kwargs and "value_pairs_set" not in kwargs, e
                if e["type"] == IN_REFERENCE:
                    assert kwargs["reference_set"] == REFERENCE_SETS[kwargs["column"]], e
    bands = {"row_count_min", "row_count_max"}
    assert suite_parameter_names(load_suite("commune_reports", SUITE_DIR)) == bands | {
        "commune_codes",
        "province_codes",
        "commune_province_pairs",
    }
    assert suite_parameter_names(load_suite("dossiers", SUITE_DIR)) == bands | {
        "commune_codes",
        "province_codes",
        "procedure_codes",
    }


def test_suites_match_the_schemas() -> None:
    def first(dataset: str, expectation: str, column: str | None = None) -> dict[str, Any]:
        return next(
            e["kwargs"]
            for e in load_suite(dataset, SUITE_DIR)["expectations"]
            if e["type"] == expectation and e["kwargs"].get("column") == column
        )

    for dataset, fields in SOURCE_FIELDS.items():
        assert first(dataset, "expect_table_columns_to_match_set")["column_set"] == field_names(fields)
    assert first("ranking", "expect_table_columns_to_match_set")["column_set"] == RANKING_SCHEMA.names
    in_set = "expect_column_values_to_be_in_set"
    assert first("dossiers", in_set, "channel")["value_set"] == list(CHANNELS)
    assert first("dossiers", in_set, "status")["value_set"] == list(DOSSIER_STATUSES)
    assert first("procedures", in_set, "service_level")["value_set"] == list(SERVICE_LEVELS)
    assert first("ranking", in_set, "level")["value_set"] == list(LEVELS)


def test_module_import_stays_light() -> None:
    modules = "egov_index.quality, egov_index.data_docs, egov_index.validation_history"
    code = f"import sys, {modules}; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gx_dropping_an_invalid_expectation_is_an_error(tmp_path: Path) -> None:
    spec = load_suite("procedures", SUITE_DIR)
    spec["expectations"].append(
        {
            "type": "expect_column_values_to_be_sparkly",
            "kwargs": {"column": "field"},
            "severity": "warning",
            "meta": {"reason": "a typo in the expectation name must not silently disable the rule"},
        }
    )
    (tmp_path / "procedures.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="GX accepted 8 of 9"):
        validate_batch("procedures", good_procedures(), partition=PERIOD, suite_dir=tmp_path)


def test_missing_run_time_parameter_is_named() -> None:
    with pytest.raises(ValueError, match="procedure_codes"):
        validate_batch("dossiers", good_dossiers(), partition=PERIOD, suite_dir=SUITE_DIR)


# --- good batches ----------------------------------------------------------------------------------


def _as_read_back(dataset: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a snapshot reader sees it: canonical Arrow types, codes as categoricals."""
    schema = RANKING_SCHEMA if dataset == "ranking" else arrow_schema(SOURCE_FIELDS[dataset])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False).to_pandas()


def _as_conformed(dataset: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the pipeline hands it to the gate: JSON records through the conform stage."""
    records = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us"))
    conformed = conform(dataset, records, PERIOD)
    assert conformed.rejected.empty
    return conformed.frame


@pytest.mark.parametrize(
    ("dataset", "form"),
    [(d, "pandas") for d in DATASETS]
    + [(d, "arrow") for d in DATASETS]
    + [(d, "conform") for d in SOURCE_FIELDS],
)
def test_good_batch_is_green(dataset: str, form: str) -> None:
    frame = GOOD[dataset]()
    if form == "arrow":
        frame = _as_read_back(dataset, frame)
    elif form == "conform":
        frame = _as_conformed(dataset, frame)
    outcome = run(dataset, frame, full_registry=form == "pandas")
    assert [r for r in outcome.results if not r.success] == []
    assert outcome.quarantine.empty
    pd.testing.assert_frame_equal(outcome.valid, frame)


def test_empty_batch_only_warns_about_its_size() -> None:
    frame = good_dossiers().head(0)
    outcome = run("dossiers", frame)
    assert outcome.rows_in == 0 and outcome.valid.empty and outcome.quarantine.empty
    assert [r.expectation for r in outcome.results if not r.success] == [
        "expect_table_row_count_to_be_between"
    ]


# --- one bad batch per row rule: the right rows are quarantined with the right reason ---------------


@dataclass(frozen=True)
class Bad:
    """One rule broken on one row: this value in this column must trip this expectation."""

    column: str
    value: Any
    expectation: str


IN_SET = "expect_column_values_to_be_in_set"
IN_REFERENCE = "expect_column_values_to_be_in_reference_set"
PAIR_IN_REFERENCE = "expect_column_pair_values_to_be_in_reference_set"
NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
GREATER = "expect_column_pair_values_a_to_be_greater_than_b"
LONG_AGO = pd.Timestamp("2026-06-01", tz="UTC")
BAD_ROWS: dict[str, list[Bad]] = {
    "commune_reports": [
        Bad("commune_code", "99999", IN_REFERENCE),
        Bad("province_code", "99", IN_REFERENCE),
        Bad("period", "2026-Q5", "expect_column_values_to_match_regex"),
        Bad("report_id", None, NOT_NULL),
        Bad("submitted_at", pd.NaT, NOT_NULL),
        *[Bad(c, -1, BETWEEN) for c in COUNTS],
        *[Bad(part, COUNTS[whole] + 1, GREATER) for part, whole in PAIRS],
    ],
    "dossiers": [
        Bad("dossier_id", None, NOT_NULL),
        Bad("channel", "fax", IN_SET),
        Bad("status", "closed", IN_SET),
        Bad("commune_code", "99999", IN_REFERENCE),
        Bad("province_code", "99", IN_REFERENCE),
        Bad("procedure_code", "9.999999", IN_REFERENCE),
        Bad("due_at", LONG_AGO, GREATER),
        Bad("resolved_at", LONG_AGO, GREATER),
        Bad("fee_vnd", -5_000, BETWEEN),
        Bad("received_at", pd.NaT, NOT_NULL),
    ],
    "procedures": [
        Bad("procedure_code", None, NOT_NULL),
        Bad("procedure_name", None, NOT_NULL),
        Bad("service_level", "paper_only", IN_SET),
    ],
}


@pytest.mark.parametrize("dataset", BAD_ROWS)
def test_each_rule_quarantines_its_bad_row_with_its_reason(dataset: str) -> None:
    """Row i breaks rule i (one batch per dataset keeps the suite fast); every other row stays valid."""
    frame = GOOD[dataset]()
    cases = BAD_ROWS[dataset]
    for row, bad in enumerate(cases):
        frame.loc[row, bad.column] = bad.value
    outcome = run(dataset, frame, max_quarantine_share=1.0)

    assert len(outcome.quarantine) == len(cases)
    assert len(outcome.valid) == len(frame) - len(cases)
    key = RECORD_KEYS[dataset]
    for row, (bad, quarantined) in enumerate(zip(cases, outcome.quarantine.itertuples(), strict=True)):
        record = json.loads(quarantined.record_json)
        value = None if pd.isna(bad.value) else bad.value
        assert record[bad.column] == (value.isoformat() if isinstance(value, pd.Timestamp) else value), bad
        assert quarantined.record_key == (None if pd.isna(frame.loc[row, key]) else frame.loc[row, key]), bad
        assert bad.expectation in quarantined.expectations.split(","), bad
        assert bad.column in quarantined.columns.split(","), bad
        assert reason_of(dataset, bad.expectation, bad.column) in quarantined.reason, bad
        assert quarantined.dataset == dataset and quarantined.partition == PERIOD
    assert all(r.severity == "critical" for r in outcome.results if r.action == "quarantined")


@pytest.mark.parametrize("dataset", BAD_ROWS)
def test_the_second_complete_pass_gives_what_one_complete_pass_gives(dataset: str) -> None:
    """_run_suite validates with BASIC, then only the failed row-level expectations with COMPLETE: per
    expectation, the same verdict, counts, examples and failing rows as one COMPLETE pass of the suite."""
    import warnings

    from egov_index import quality
    from egov_index.gx_expectations import reference_sets

    frame = GOOD[dataset]()
    for row, bad in enumerate(BAD_ROWS[dataset]):
        frame.loc[row, bad.column] = bad.value
    if dataset == "dossiers":
        frame.loc[len(BAD_ROWS[dataset]), ["status", "resolved_at"]] = ["resolved", pd.NaT]  # a warning too
    spec = load_suite(dataset, SUITE_DIR)
    values = {**quality.default_parameters(dataset), **PARAMS.get(dataset, {}), "procedure_codes": PROCEDURE_CODES}
    two_pass = quality._run_suite(spec, frame, values).results

    view = quality._gx_view(frame, RECORD_KEYS[dataset])
    batch = quality._batch_definition().get_batch(batch_parameters={"dataframe": view})
    with warnings.catch_warnings(), reference_sets({n: values[n] for n in quality.reference_set_names(spec)}):
        warnings.filterwarnings("ignore", "Series.values returning an ndarray", DeprecationWarning)
        one_pass = batch.validate(
            quality._gx_suite(spec),
            expectation_parameters={n: values[n] for n in quality.gx_parameter_names(spec)},
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": quality.EXAMPLES},
        ).results
    one_pass = sorted(one_pass, key=quality._position)

    assert [r.expectation_config.id for r in two_pass] == [r.expectation_config.id for r in one_pass]
    failed_rows = 0
    for mine, reference in zip(two_pass, one_pass, strict=True):
        assert mine.success == reference.success, reference.expectation_config
        details, expected = mine.result or {}, reference.result or {}
        for key in ("unexpected_count", "element_count", "missing_count", "observed_value", "partial_unexpected_list"):
            assert details.get(key) == expected.get(key), (key, reference.expectation_config)
        if not reference.success and "unexpected_index_list" in expected:
            assert details["unexpected_index_list"] == expected["unexpected_index_list"]
            failed_rows += len(expected["unexpected_index_list"])
    assert failed_rows >= len(BAD_ROWS[dataset])  # the bad rows were found, each by its rule


def test_wrong_province_for_commune_is_quarantined() -> None:
    frame = good_reports()
    other = next(p for p in current_units().province_codes() if p != frame.loc[5, "province_code"])
    frame.loc[5, "province_code"] = other
    outcome = run("commune_reports", frame)
    assert outcome.quarantine["record_key"].tolist() == [frame.loc[5, "report_id"]]
    assert outcome.quarantine.loc[0, "expectations"] == PAIR_IN_REFERENCE
    assert outcome.quarantine.loc[0, "columns"] == "commune_code,province_code"
    reason = reason_of("commune_reports", PAIR_IN_REFERENCE, "commune_code")
    assert outcome.quarantine.loc[0, "reason"] == reason
    [pair] = [r for r in outcome.results if r.expectation == PAIR_IN_REFERENCE]
    assert pair.action == "quarantined" and pair.unexpected_count == 1 and len(pair.examples) == 1


def test_a_pair_with_one_side_missing_is_not_in_the_reference_set() -> None:
    frame = good_reports()
    frame.loc[2, "province_code"] = None  # (a row missing both is left to the not-null checks)
    outcome = run("commune_reports", frame)
    assert outcome.quarantine["record_key"].tolist() == [frame.loc[2, "report_id"]]
    assert set(outcome.quarantine.loc[0, "expectations"].split(",")) == {NOT_NULL, PAIR_IN_REFERENCE}


# --- reference sets: looked up by name at run time, overridable, never copied into GX ----------------


def test_reference_sets_follow_the_callers_parameters() -> None:
    """A caller's values replace the registry's (any list-like), call by call in one process."""
    frame = good_reports()
    dropped = frame.loc[3, "commune_code"]
    codes = np.array([c for c in current_units().commune_codes() if c != dropped])
    outcome = run("commune_reports", frame, full_registry=True, parameters={"commune_codes": codes})
    assert outcome.quarantine["record_key"].tolist() == [frame.loc[3, "report_id"]]
    assert outcome.quarantine.loc[0, "expectations"] == IN_REFERENCE
    [failed] = [r for r in outcome.results if not r.success]
    assert (failed.columns, failed.examples, failed.unexpected_count) == (("commune_code",), (dropped,), 1)
    assert failed.reason == reason_of("commune_reports", IN_REFERENCE, "commune_code")
    assert run("commune_reports", frame, full_registry=True).quarantine.empty  # registry again
    with pytest.raises(TypeError, match="reference set 'commune_codes' must be a list"):
        run("commune_reports", frame, parameters={"commune_codes": dropped})  # one code, not a list


@pytest.mark.parametrize("dataset", ["commune_reports", "dossiers"])
def test_registry_sets_stay_out_of_the_gx_configurations(dataset: str) -> None:
    """GX re-serialises every configuration >100 times per run: a 3,321-code set there costs seconds."""
    outcome = run(dataset, GOOD[dataset](), full_registry=True)
    configs = [r.expectation_config for r in outcome.gx_result.results]
    used = {c.kwargs["reference_set"] for c in configs if c.type == IN_REFERENCE}
    assert used >= {"commune_codes", "province_codes"}
    for result in outcome.gx_result.results:
        config = result.expectation_config
        assert len(json.dumps(config.kwargs, default=str)) < 2_000, config.type


def test_a_reference_set_expectation_without_its_sets_fails_loudly() -> None:
    """Outside validate_batch the sets are unknown: an error (the gate would block), never a pass."""
    gx = import_gx()
    from egov_index.quality import _batch_definition, _error

    suite = gx.ExpectationSuite(
        name="outside",
        expectations=[
            {"type": IN_REFERENCE, "kwargs": {"column": "commune_code", "reference_set": "commune_codes"}}
        ],
    )
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": good_reports()})
    [result] = batch.validate(suite).results
    assert not result.success
    assert "reference-set expectations need their sets" in str(_error(result))


@pytest.mark.parametrize(
    ("dataset", "column", "expectation"),
    [
        ("commune_reports", "report_id", "expect_column_values_to_be_unique"),
        ("commune_reports", "commune_code", "expect_compound_columns_to_be_unique"),
        ("dossiers", "dossier_id", "expect_column_values_to_be_unique"),
        ("procedures", "procedure_code", "expect_column_values_to_be_unique"),
    ],
)
def test_every_copy_of_a_duplicate_is_quarantined(dataset: str, column: str, expectation: str) -> None:
    frame = GOOD[dataset]()
    if expectation == "expect_compound_columns_to_be_unique":  # same commune and period, other report_id
        frame.loc[2, ["commune_code", "province_code"]] = frame.loc[1, ["commune_code", "province_code"]]
    else:
        frame.loc[2, column] = frame.loc[1, column]
    outcome = run(dataset, frame, max_quarantine_share=0.6)
    assert (
        sorted(json.loads(j)[column] for j in outcome.quarantine["record_json"]) == [frame.loc[1, column]] * 2
    )
    assert all(expectation in e for e in outcome.quarantine["expectations"])
    assert len(outcome.valid) == len(frame) - 2


def test_one_row_failing_several_rules_is_quarantined_once_with_every_reason() -> None:
    frame = good_dossiers()
    frame.loc[7, ["channel", "fee_vnd"]] = ["fax", -1]
    outcome = run("dossiers", frame)
    assert len(outcome.quarantine) == 1
    row = outcome.quarantine.iloc[0]
    assert row["record_key"] == frame.loc[7, "dossier_id"]
    assert set(row["columns"].split(",")) == {"channel", "fee_vnd"}
    assert reason_of("dossiers", IN_SET, "channel") in row["reason"]
    assert reason_of("dossiers", BETWEEN, "fee_vnd") in row["reason"]


# --- nulls, warnings, blocking, threshold ----------------------------------------------------------


def test_unreported_counts_and_open_dossiers_pass() -> None:
    reports = good_reports()
    reports.loc[4, ["officials_total", "residents_vneid_level2"]] = pd.NA
    assert run("commune_reports", reports).quarantine.empty
    dossiers = good_dossiers()
    dossiers.loc[0, ["status", "resolved_at"]] = ["in_progress", pd.NaT]
    assert run("dossiers", dossiers).quarantine.empty


def test_warnings_neither_block_nor_quarantine() -> None:
    frame = good_dossiers()
    frame.loc[2, ["status", "resolved_at"]] = ["resolved", pd.NaT]
    outcome = run("dossiers", frame, parameters={"row_count_max": 10})
    assert outcome.quarantine.empty and len(outcome.valid) == N
    warned = {(r.expectation, r.columns) for r in outcome.results if r.action == "warned"}
    assert warned == {
        ("expect_table_row_count_to_be_between", ()),
        ("expect_column_values_to_not_be_null", ("resolved_at",)),
    }


def test_missing_column_blocks_with_a_readable_message() -> None:
    frame = good_reports().drop(columns=["officials_total"])
    with pytest.raises(DataQualityBlocked) as raised:
        run("commune_reports", frame)
    message = str(raised.value)
    assert "expect_table_columns_to_match_set" in message
    assert "officials_total" in message
    assert "'commune_reports'" in message and PERIOD in message and "What to do" in message
    blocked = [r for r in raised.value.results if r.action == "blocked"]
    assert blocked[0].expectation == "expect_table_columns_to_match_set"
    assert blocked[0].columns == ("officials_total",)


@pytest.mark.parametrize(
    ("column", "value", "expectation"),
    [
        ("unit_code", "dup", "expect_compound_columns_to_be_unique"),
        ("overall_index", 1.2, BETWEEN),
        ("c4_index", -0.1, BETWEEN),
        ("c2_rank", 0, BETWEEN),
        ("level", "district", IN_SET),
        ("overall_index", None, NOT_NULL),  # only an excluded commune (row 0) may lack its index
        ("c3_rank", None, NOT_NULL),
        ("report_treatment", "skipped", IN_SET),
        ("previous_basis", "guessed", IN_SET),
        ("reported_share", 1.5, BETWEEN),
    ],
)
def test_bad_ranking_is_blocked_not_quarantined(column: str, value: Any, expectation: str) -> None:
    frame = good_ranking()
    if value == "dup":
        frame.loc[1, column] = frame.loc[0, column]
    else:
        frame.loc[1, column] = value
    with pytest.raises(DataQualityBlocked) as raised:
        run("ranking", frame)
    assert expectation in str(raised.value) and column in str(raised.value)


def test_quarantine_share_above_threshold_blocks() -> None:
    frame = good_dossiers()
    frame.loc[:5, "channel"] = "fax"  # 6 of 60 rows = 10%
    with pytest.raises(DataQualityBlocked) as raised:
        run("dossiers", frame)
    message = str(raised.value)
    assert "10.0%" in message and "5.0% threshold" in message
    assert "expect_column_values_to_be_in_set" in message and "channel" in message
    assert len(run("dossiers", frame, max_quarantine_share=0.1).quarantine) == 6  # at the threshold: kept


def test_rows_rejected_before_validation_count_towards_the_share() -> None:
    frame = good_dossiers()
    frame.loc[0, "channel"] = "fax"  # 1 of 60 rows: fine on its own
    assert len(run("dossiers", frame, rows_already_rejected=2).quarantine) == 1  # 3 of 62 = 4.8%
    with pytest.raises(DataQualityBlocked, match=r"4 of 63 rows \(6\.3%\)"):
        run("dossiers", frame, rows_already_rejected=3)


def test_the_outcome_keeps_gx_result_without_per_row_lists() -> None:
    frame = good_dossiers()
    frame.loc[:2, "channel"] = "fax"
    outcome = run("dossiers", frame, max_quarantine_share=0.1)
    assert outcome.status == "quarantined" and outcome.gx_seconds > 0 and outcome.validated_at.tzinfo is not None
    result = outcome.gx_result
    assert result.suite_name == "dossiers" and not result.success
    [failed] = [r for r in result.results if not r.success]
    assert failed.expectation_config.kwargs["column"] == "channel"
    assert failed.result["unexpected_count"] == 3 and failed.result["partial_unexpected_list"] == ["fax"] * 3
    assert not set(PER_ROW_KEYS) & set(failed.result)
    assert [r.expectation_config.type for r in result.results] == [
        e["type"] for e in load_suite("dossiers", SUITE_DIR)["expectations"]
    ]


def test_record_json_round_trips_the_original_row() -> None:
    frame = good_dossiers()
    frame.loc[5, "fee_vnd"] = -1
    outcome = run("dossiers", frame)
    record = json.loads(outcome.quarantine.loc[0, "record_json"])
    original = frame.loc[5]
    assert record["dossier_id"] == original["dossier_id"] and record["fee_vnd"] == -1
    assert record["paid_online"] is bool(original["paid_online"])
    for column in ("received_at", "due_at", "updated_at"):
        assert pd.Timestamp(record[column]) == original[column]
    assert record["resolved_at"] is None and pd.isna(original["resolved_at"])
    assert set(record) == set(frame.columns)
    table = pa.Table.from_pandas(outcome.quarantine, schema=QUARANTINE_SCHEMA, preserve_index=False)
    assert table.num_rows == 1


def test_summarize_gives_one_history_row_per_expectation() -> None:
    from egov_index.schemas import VALIDATION_RESULT_SCHEMA

    outcome = run("procedures", good_procedures())
    with pytest.raises(BatchBlocked) as raised:
        run("procedures", good_procedures().drop(columns=["field"]))
    rows = summarize([outcome, raised.value])
    assert len(rows) == 2 * len(load_suite("procedures", SUITE_DIR)["expectations"])
    assert set(rows[0]) == {
        "dataset",
        "partition",
        "expectation",
        "column",
        "severity",
        "success",
        "action",
        "element_count",
        "unexpected_count",
    }
    assert any(r["action"] == "blocked" and r["column"] == "field" for r in rows)
    history = pa.Table.from_pandas(
        pd.DataFrame(rows, columns=VALIDATION_RESULT_SCHEMA.names),
        schema=VALIDATION_RESULT_SCHEMA,
        preserve_index=False,
    )
    assert history.num_rows == len(rows)


def test_suite_checks_exactly_the_part_of_whole_pairs_of_the_schema():
    suite = json.loads((SUITE_DIR / "commune_reports.json").read_text())
    pairs = {
        (e["kwargs"]["column_B"], e["kwargs"]["column_A"])
        for e in suite["expectations"]
        if e["type"] == "expect_column_pair_values_a_to_be_greater_than_b"
    }
    assert pairs == set(REPORT_PART_OF_WHOLE)
