"""Conform stage: canonical columns and types; unreadable values quarantined, never dropped."""

from __future__ import annotations

import json

import pytest

from egov_index.conform import conform
from egov_index.errors import SchemaDriftError

GOOD = {
    "procedure_code": "P1",
    "procedure_name": "Đăng ký khai sinh",
    "field": "Hộ tịch",
    "service_level": "full_online",
    "updated_at": "2026-09-30T08:00:00+07:00",
}


def test_good_records_get_canonical_types():
    result = conform("procedures", [GOOD], "2026-09-30")
    assert list(result.frame.columns) == ["procedure_code", "procedure_name", "field", "service_level", "updated_at"]
    assert str(result.frame["updated_at"].dt.tz) == "UTC"
    assert result.frame.loc[0, "updated_at"].hour == 1  # 08:00 +07:00
    assert result.rejected.empty


def test_unreadable_values_go_to_quarantine_with_column_and_value():
    bad = {**GOOD, "procedure_code": "P2", "updated_at": "yesterday"}
    result = conform("procedures", [GOOD, bad], "2026-09-30")
    assert len(result.frame) == 1 and len(result.rejected) == 1
    row = result.rejected.iloc[0]
    assert row["record_key"] == "P2" and row["columns"] == "updated_at"
    assert "yesterday" in row["reason"]
    assert json.loads(row["record_json"]) == bad


def test_counts_must_be_whole_numbers_and_booleans_true_booleans():
    base = {
        "dossier_id": "D1", "procedure_code": "P1", "province_code": "01", "commune_code": "00004",
        "channel": "online", "status": "received", "received_at": "2026-09-30T08:00:00+07:00",
        "due_at": "2026-10-03T08:00:00+07:00", "resolved_at": None, "updated_at": "2026-09-30T09:00:00+07:00",
        "fee_vnd": 10000, "paid_online": True, "digitised": False,
    }
    records = [base, {**base, "dossier_id": "D2", "fee_vnd": 1.5}, {**base, "dossier_id": "D3", "paid_online": "yes"}]
    result = conform("dossiers", records, "2026-09-30")
    assert result.frame["dossier_id"].tolist() == ["D1"]
    assert sorted(result.rejected["columns"]) == ["fee_vnd", "paid_online"]
    assert str(result.frame["fee_vnd"].dtype) == "Int64"


def test_missing_required_column_is_schema_drift_naming_it():
    renamed = {k if k != "service_level" else "muc_do" : v for k, v in GOOD.items()}
    with pytest.raises(SchemaDriftError, match="service_level"):
        conform("procedures", [renamed], "2026-09-30")


def test_extra_columns_are_reported():
    result = conform("procedures", [{**GOOD, "ghi_chu": "x"}], "2026-09-30")
    assert result.extra_columns == ("ghi_chu",)
