"""The methodology loader and the indicator + ranking engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from egov_index.methodology import (
    DOSSIER_MEASURES,
    Indicator,
    Methodology,
    MethodologyError,
    available_methodologies,
    load_methodology,
    parse_methodology,
)
from egov_index.ranking import RankingResult, compute, dossier_measures
from egov_index.registry import Registry, current_units
from egov_index.schemas import (
    CATEGORIES,
    COMMUNE_REPORT_FIELDS,
    COMMUNE_REPORT_SCHEMA,
    DOSSIER_FIELDS,
    DOSSIER_SCHEMA,
    INDICATOR_VALUE_SCHEMA,
    PROCEDURE_FIELDS,
    PROCEDURE_SCHEMA,
    RANKING_SCHEMA,
)

PERIOD = "2026-Q3"
SUBMITTED = pd.Timestamp("2026-10-03 02:00", tz="UTC")
RECEIVED = pd.Timestamp("2026-08-10 03:00", tz="UTC")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "methodology.md"
METHODOLOGY_YAML = (
    Path(__file__).resolve().parents[1] / "include/egov_index/methodology/mic-six-category.yaml"
)


# --- builders ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def method() -> Methodology:
    return load_methodology()


def small_registry() -> Registry:
    """Province 01 with communes A, B, C and province 02 with communes D, E (codes 10001..20002)."""
    provinces = pd.DataFrame(
        {
            "province_code": ["01", "02"],
            "province_name": ["Province One", "Province Two"],
            "province_short_name": ["One", "Two"],
        }
    )
    communes = pd.DataFrame(
        {
            "commune_code": ["10001", "10002", "10003", "20001", "20002"],
            "commune_name": ["A", "B", "C", "D", "E"],
            "commune_type": ["Xã"] * 5,
            "province_code": ["01", "01", "01", "02", "02"],
            "area_km2": [10.0] * 5,
        }
    )
    return Registry(provinces=provinces, communes=communes)


PROVINCE_OF = {"10001": "01", "10002": "01", "10003": "01", "20001": "02", "20002": "02"}


def reports(*rows: dict[str, Any]) -> pd.DataFrame:
    """Commune reports with every schema column; fields not given are null."""
    columns: dict[str, pd.Series] = {}
    for f in COMMUNE_REPORT_FIELDS:
        values = [row.get(f.name) for row in rows]
        if f.type == pa.int64():
            columns[f.name] = pd.Series(values, dtype="Int64")
        elif f.type == pa.bool_():
            columns[f.name] = pd.Series(values, dtype="boolean")
        else:
            columns[f.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def report(
    code: str, period: str = PERIOD, submitted_at: pd.Timestamp = SUBMITTED, **fields: Any
) -> dict[str, Any]:
    return {
        "report_id": f"{code}-{period}",
        "period": period,
        "province_code": PROVINCE_OF.get(code, code[:2]),
        "commune_code": code,
        "submitted_at": submitted_at,
        **fields,
    }


def dossiers(*rows: dict[str, Any]) -> pd.DataFrame:
    columns = [f.name for f in DOSSIER_FIELDS]
    return pd.DataFrame(list(rows), columns=columns).astype({"fee_vnd": "int64"})


def dossier(n: int, code: str, **fields: Any) -> dict[str, Any]:
    row = {
        "dossier_id": f"D{n}",
        "procedure_code": "P1",
        "province_code": PROVINCE_OF.get(code, code[:2]),
        "commune_code": code,
        "channel": "counter",
        "status": "received",
        "received_at": RECEIVED,
        "due_at": RECEIVED + pd.Timedelta(days=5),
        "resolved_at": pd.NaT,
        "updated_at": RECEIVED,
        "fee_vnd": 0,
        "paid_online": False,
        "digitised": False,
    }
    row.update(fields)
    return row


def procedures() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "procedure_code": ["P1", "P2"],
            "procedure_name": ["Chứng thực bản sao", "Đăng ký khai sinh"],
            "field": ["chung_thuc", "ho_tich"],
            "service_level": ["partial_online", "full_online"],
            "updated_at": [RECEIVED, RECEIVED],
        }
    )
    return frame[[f.name for f in PROCEDURE_FIELDS]]


def run(
    method: Methodology,
    report_rows: tuple[dict[str, Any], ...] = (),
    dossier_rows: tuple[dict[str, Any], ...] = (),
    registry: Registry | None = None,
    period: str = PERIOD,
) -> RankingResult:
    return compute(
        reports(*report_rows),
        dossiers(*dossier_rows),
        procedures(),
        registry or small_registry(),
        period,
        method,
    )


def row(result: RankingResult, unit_code: str) -> pd.Series:
    frame = result.ranking
    return frame[frame["unit_code"] == unit_code].iloc[0]


def value_row(result: RankingResult, unit_code: str, indicator_id: str) -> pd.Series:
    frame = result.indicator_values
    return frame[(frame["unit_code"] == unit_code) & (frame["indicator_id"] == indicator_id)].iloc[0]


def indicator(method: Methodology, indicator_id: str) -> Indicator:
    return next(i for i in method.indicators if i.id == indicator_id)


def via_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """The frame as the snapshot store returns it: Arrow dictionary columns become categoricals."""
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False).to_pandas()


def random_inputs(
    registry: Registry, n_dossiers: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Plausible reports for 90% of the communes and ``n_dossiers`` dossiers received in PERIOD."""
    rng = np.random.default_rng(seed)
    communes = registry.communes.sample(frac=0.9, random_state=seed)
    n = len(communes)
    frame = pd.DataFrame(
        {
            "report_id": communes["commune_code"] + f"-{PERIOD}",
            "period": PERIOD,
            "province_code": communes["province_code"],
            "commune_code": communes["commune_code"],
            "commune_name": communes["commune_name"],
            "submitted_at": SUBMITTED,
        }
    )
    for f in COMMUNE_REPORT_FIELDS:
        if f.category == "key":
            continue
        if f.type == pa.bool_():
            frame[f.name] = pd.array(rng.random(n) < 0.7, dtype="boolean")
        else:
            frame[f.name] = pd.array(rng.integers(0, 40, n), dtype="Int64")
    procs = pd.DataFrame(
        {
            "procedure_code": [f"P{i}" for i in range(300)],
            "procedure_name": "x",
            "field": "f",
            "service_level": rng.choice(["full_online", "partial_online", "offline"], 300),
            "updated_at": RECEIVED,
        }
    )
    received = pd.Timestamp("2026-06-30 17:00", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 92 * 86400, n_dossiers), unit="s"
    )
    docs = pd.DataFrame(
        {
            "dossier_id": [f"D{i}" for i in range(n_dossiers)],
            "procedure_code": rng.choice(procs["procedure_code"], n_dossiers),
            "province_code": "00",
            "commune_code": rng.choice(registry.communes["commune_code"], n_dossiers),
            "channel": rng.choice(["online", "counter", "postal"], n_dossiers),
            "status": rng.choice(["received", "in_progress", "resolved", "returned"], n_dossiers),
            "received_at": received,
            "due_at": received + pd.Timedelta(days=5),
            "resolved_at": received + pd.to_timedelta(rng.integers(0, 10 * 86400, n_dossiers), unit="s"),
            "updated_at": received,
            "fee_vnd": rng.choice([0, 20_000, 50_000], n_dossiers),
            "paid_online": rng.random(n_dossiers) < 0.5,
            "digitised": rng.random(n_dossiers) < 0.8,
        }
    )
    return frame, docs, procs


# --- ranking rules -------------------------------------------------------------------------------------


def test_standard_competition_ranking_1224(method: Methodology) -> None:
    # c5 yes/no points: plan 3, committee 2, budget 3, security 2 (c5 max 10)
    result = run(
        method,
        (
            report("10001", has_it_plan=True, has_it_budget=True),  # 0.6
            report("10002", has_it_plan=True, has_it_budget=True),  # 0.6
            report("10003", has_dt_steering_committee=True, has_security_regulation=True),  # 0.4
            report(
                "20001",
                has_it_plan=True,
                has_dt_steering_committee=True,
                has_it_budget=True,
                has_security_regulation=True,
            ),  # 1.0
        ),
    )
    communes = result.ranking[result.ranking["level"] == "commune"].set_index("unit_code")
    assert communes["c5_index"].to_dict() == {
        "10001": 0.6,
        "10002": 0.6,
        "10003": 0.4,
        "20001": 1.0,
        "20002": 0.0,
    }
    assert communes["c5_rank"].to_dict() == {"10001": 2, "10002": 2, "10003": 4, "20001": 1, "20002": 5}
    assert communes["overall_rank_in_province"].to_dict() == {
        "10001": 1,
        "10002": 1,
        "10003": 3,
        "20001": 1,
        "20002": 2,
    }


def test_ranks_use_the_rounded_published_index(method: Methodology) -> None:
    # c2_outgoing_signed is worth 6 of c2's 25 points: 5.9994 / 25 = 0.239976 and 6 / 25 = 0.24 publish as 0.240
    result = run(
        method,
        (
            report("10001", documents_outgoing=10_000, documents_outgoing_signed=9_999),
            report("10002", documents_outgoing=10_000, documents_outgoing_signed=10_000),
        ),
    )
    a, b = row(result, "10001"), row(result, "10002")
    assert a["overall_points"] < b["overall_points"]
    assert a["c2_index"] == b["c2_index"] == 0.24
    assert a["c2_rank"] == b["c2_rank"] == 1
    assert a["overall_rank"] == b["overall_rank"] == 1


def test_ratio_is_capped_at_max_points(method: Methodology) -> None:
    result = run(method, (report("10001", officials_total=20, officials_with_computer=30),))
    v = value_row(result, "10001", "c1_officials_with_computer")
    assert v["value"] == pytest.approx(1.5)
    assert v["points"] == v["max_points"] == indicator(method, "c1_officials_with_computer").max_points


def test_goalposts_give_full_points_from_hi(method: Methodology) -> None:
    # c1_computers_internet: goalposts 0 .. 0.95
    result = run(
        method,
        (
            report("10001", computers_total=100, computers_internet=95),
            report("10002", computers_total=100, computers_internet=38),
        ),
    )
    full = indicator(method, "c1_computers_internet").max_points
    assert value_row(result, "10001", "c1_computers_internet")["points"] == pytest.approx(full)
    assert value_row(result, "10002", "c1_computers_internet")["points"] == pytest.approx(0.4 * full)


def test_relative_to_best_scores_against_the_best_unit_of_the_level(method: Methodology) -> None:
    # c6_vneid: value / best value among units of the same level x max points
    result = run(
        method,
        (
            report("10001", residents_adult=100, residents_vneid_level2=80),
            report("10002", residents_adult=100, residents_vneid_level2=40),
            report("10003", residents_adult=100, residents_vneid_level2=60),
            report("20001", residents_adult=100, residents_vneid_level2=20),
            report("20002", residents_adult=300, residents_vneid_level2=30),
        ),
    )
    full = indicator(method, "c6_vneid").max_points
    expected = {"10001": 1.0, "10002": 0.5, "10003": 0.75, "20001": 0.25, "20002": 0.125}
    for code, share in expected.items():
        assert value_row(result, code, "c6_vneid")["points"] == pytest.approx(share * full)
    # provinces from counts: 01 = 180/300 = 0.6 (best), 02 = 50/400 = 0.125
    assert value_row(result, "01", "c6_vneid")["value"] == pytest.approx(0.6)
    assert value_row(result, "01", "c6_vneid")["points"] == pytest.approx(full)
    assert value_row(result, "02", "c6_vneid")["points"] == pytest.approx(0.125 / 0.6 * full)


def test_yes_no_at_commune_and_province(method: Methodology) -> None:
    # province 01: A yes, B no, C no report -> 1 of 3 communes; province 02: D yes, E yes -> 2 of 2
    result = run(
        method,
        (
            report("10001", has_lan=True),
            report("10002", has_lan=False),
            report("20001", has_lan=True),
            report("20002", has_lan=True),
        ),
    )
    full = indicator(method, "c1_has_lan").max_points
    assert value_row(result, "10001", "c1_has_lan")[["value", "points"]].tolist() == [1.0, full]
    assert value_row(result, "10002", "c1_has_lan")[["value", "points"]].tolist() == [0.0, 0.0]
    province = value_row(result, "01", "c1_has_lan")
    assert (province["numerator"], province["denominator"]) == (1.0, 3.0)
    assert province["points"] == pytest.approx(full / 3)
    assert pd.isna(province["missing_treatment"])  # the share of all communes: no coverage factor
    assert value_row(result, "02", "c1_has_lan")["points"] == pytest.approx(full)


def test_province_is_aggregated_from_counts_not_from_commune_ratios(method: Methodology) -> None:
    # A: 10 of 10 officials have a computer (1.0); B: 45 of 90 (0.5); C: 0 of 0 (zero denominator).
    # Mean of commune ratios = 0.75; from counts = 55 / 100 = 0.55.
    result = run(
        method,
        (
            report("10001", officials_total=10, officials_with_computer=10),
            report("10002", officials_total=90, officials_with_computer=45),
            report("10003", officials_total=0, officials_with_computer=0),
        ),
    )
    province = value_row(result, "01", "c1_officials_with_computer")
    assert (province["numerator"], province["denominator"]) == (55.0, 100.0)
    assert province["value"] == pytest.approx(0.55)
    assert province["points"] == pytest.approx(
        0.55 * indicator(method, "c1_officials_with_computer").max_points
    )
    assert pd.isna(province["missing_treatment"])


def test_province_points_are_scaled_by_reporting_coverage(method: Methodology) -> None:
    # only A of the three communes of 01 reports, with a perfect ratio: value 1.0, one third of the points
    result = run(method, (report("10001", officials_total=10, officials_with_computer=10),))
    province = value_row(result, "01", "c1_officials_with_computer")
    assert province["value"] == 1.0
    assert province["points"] == pytest.approx(province["max_points"] / 3)
    assert province["missing_treatment"] == "coverage_weighted"
    # no commune of 02 reported: no value, zero points
    empty = value_row(result, "02", "c1_officials_with_computer")
    assert pd.isna(empty["value"]) and empty["points"] == 0.0 and empty["missing_treatment"] == "zero_points"
    assert not row(result, "02")["has_report"] and row(result, "01")["has_report"]


def test_missing_report_gives_zero_points_and_keeps_the_unit(method: Methodology) -> None:
    result = run(
        method,
        (report("10001", has_lan=True, officials_total=5, officials_with_computer=5),),
        (dossier(1, "10002", channel="online"), dossier(2, "10002")),
    )
    b = result.indicator_values[result.indicator_values["unit_code"] == "10002"]
    from_reports = b[b["category"] != "c4"]
    assert (from_reports["points"] == 0).all()
    assert from_reports["value"].isna().all()
    assert (from_reports["missing_treatment"] == "zero_points").all()
    # dossier indicators do not depend on the report
    assert value_row(result, "10002", "c4_online_submission")["value"] == 0.5
    ranking_b = row(result, "10002")
    assert not ranking_b["has_report"]
    assert row(result, "10001")["has_report"]
    assert ranking_b["c1_index"] == 0.0


def test_zero_denominator_gives_null_value_and_zero_points(method: Methodology) -> None:
    result = run(
        method,
        (report("10001", leaders_total=0, leaders_with_signature_cert=0),),
        (dossier(1, "10001", fee_vnd=0, paid_online=True),),
    )
    leaders = value_row(result, "10001", "c2_leaders_signature")
    assert pd.isna(leaders["value"]) and leaders["points"] == 0.0
    assert leaders["missing_treatment"] == "zero_denominator"
    # a free dossier does not count as paid online; with no fee-charging dossier the value is null
    payment = value_row(result, "10001", "c4_online_payment")
    assert (payment["numerator"], payment["denominator"]) == (0.0, 0.0)
    assert pd.isna(payment["value"]) and payment["points"] == 0.0
    # a commune without dossiers: every c4 value null, 0 points
    c4 = result.indicator_values[
        (result.indicator_values["unit_code"] == "10002") & (result.indicator_values["category"] == "c4")
    ]
    assert c4["value"].isna().all() and (c4["points"] == 0).all()


def test_every_registry_unit_appears_once_per_level_even_without_data(method: Methodology) -> None:
    registry = current_units()
    result = run(method, registry=registry)
    ranking = result.ranking
    communes = ranking[ranking["level"] == "commune"]
    provinces = ranking[ranking["level"] == "province"]
    assert len(communes) == 3321 and len(provinces) == 34
    assert communes["unit_code"].tolist() == sorted(registry.communes["commune_code"])
    assert provinces["unit_code"].tolist() == sorted(registry.provinces["province_code"])
    assert ranking["level"].tolist() == ["province"] * 34 + ["commune"] * 3321
    # nobody has points, so everybody ties at rank 1
    assert (ranking["overall_index"] == 0).all() and (ranking["overall_rank"] == 1).all()
    expected_rows = 3321 * len(method.indicators_at("commune")) + 34 * len(method.indicators_at("province"))
    assert len(result.indicator_values) == expected_rows
    assert not ranking["has_report"].any()


def test_outputs_match_the_arrow_schemas_and_are_consistent(method: Methodology) -> None:
    registry = current_units()
    frame, docs, procs = random_inputs(registry, 20_000)
    result = compute(frame, docs, procs, registry, PERIOD, method)
    from_arrow = compute(
        via_arrow(frame, COMMUNE_REPORT_SCHEMA),
        via_arrow(docs, DOSSIER_SCHEMA),
        via_arrow(procs, PROCEDURE_SCHEMA),
        registry,
        PERIOD,
        method,
    )
    pd.testing.assert_frame_equal(from_arrow.ranking, result.ranking)
    pd.testing.assert_frame_equal(from_arrow.indicator_values, result.indicator_values)
    ranking, values = result.ranking, result.indicator_values

    assert list(ranking.columns) == RANKING_SCHEMA.names
    assert list(values.columns) == INDICATOR_VALUE_SCHEMA.names
    pa.Table.from_pandas(ranking, schema=RANKING_SCHEMA, preserve_index=False)
    pa.Table.from_pandas(values, schema=INDICATOR_VALUE_SCHEMA, preserve_index=False)

    assert ranking.groupby("level").size().to_dict() == {"commune": 3321, "province": 34}
    assert not ranking.duplicated(["level", "unit_code"]).any()
    assert not values.duplicated(["level", "unit_code", "indicator_id"]).any()
    index_columns = ["overall_index"] + [f"{c}_index" for c in CATEGORIES]
    assert ((ranking[index_columns] >= 0) & (ranking[index_columns] <= 1)).all().all()
    assert (values["points"] <= values["max_points"] + 1e-12).all() and (values["points"] >= 0).all()

    # overall index = sum of points / sum of max points, rounded to the published precision
    max_points = ranking["level"].map({lvl: method.max_points_at(lvl) for lvl in ("commune", "province")})
    assert (ranking["overall_max_points"] == max_points).all()
    assert method.max_points_at("province") == method.max_points > method.max_points_at("commune")
    scale = 10**method.published_precision
    unrounded = ranking["overall_points"] / max_points
    assert ((ranking["overall_index"] - unrounded).abs() <= 0.5 / scale + 1e-12).all()
    published = ranking[index_columns] * scale
    assert np.allclose(published, published.round())  # indices carry the published precision only
    summed = values.groupby(["level", "unit_code"])["points"].sum()
    by_unit = ranking.set_index(["level", "unit_code"])["overall_points"]
    assert np.allclose(summed.reindex(by_unit.index), by_unit)

    # rank = 1 + number of units of the level with a strictly higher published index
    for _, level in ranking.groupby("level"):
        scores = level["overall_index"].to_numpy()
        higher = (scores[None, :] > scores[:, None]).sum(axis=1)
        assert (level["overall_rank"].to_numpy() == 1 + higher).all()
    provinces = ranking[ranking["level"] == "province"]
    assert provinces["parent_code"].isna().all() and provinces["overall_rank_in_province"].isna().all()
    communes = ranking[ranking["level"] == "commune"]
    assert communes["overall_rank_in_province"].notna().all()
    assert (communes.groupby("parent_code")["overall_rank_in_province"].min() == 1).all()


def test_dossier_measures_counts(method: Methodology) -> None:
    due = RECEIVED + pd.Timedelta(days=5)
    docs = dossiers(
        dossier(
            1, "10001", channel="online", status="resolved", resolved_at=due, fee_vnd=10_000, paid_online=True
        ),
        dossier(2, "10001", channel="postal", status="resolved", resolved_at=due + pd.Timedelta(seconds=1)),
        dossier(3, "10001", procedure_code="P2", channel="online", digitised=True, fee_vnd=5_000),
        dossier(4, "10001", procedure_code="P2", status="returned", paid_online=True),
        dossier(5, "10002", channel="online"),
    )
    counts = dossier_measures(docs, procedures()).set_index("commune_code")
    assert list(counts.columns) == list(DOSSIER_MEASURES)
    assert counts.loc["10001"].to_dict() == {
        "received": 4,
        "online": 2,
        "postal": 1,
        "resolved": 2,
        "resolved_on_time": 1,
        "with_fee": 2,
        "paid_online": 1,
        "digitised": 1,
        "full_online_procedure": 2,
        "full_online_procedure_online": 1,
        "resolved_late": 1,
    }
    assert counts.loc["10002", "received"] == 1
    from_arrow = dossier_measures(via_arrow(docs, DOSSIER_SCHEMA), via_arrow(procedures(), PROCEDURE_SCHEMA))
    pd.testing.assert_frame_equal(from_arrow, counts.reset_index())


def test_dossiers_counted_once_and_by_local_reception_day(method: Methodology) -> None:
    late_q2 = pd.Timestamp("2026-06-30 16:59", tz="UTC")  # 23:59 on 30 June in Vietnam
    early_q3 = pd.Timestamp("2026-06-30 17:00", tz="UTC")  # 00:00 on 1 July in Vietnam
    result = run(
        method,
        dossier_rows=(
            dossier(1, "10001", received_at=late_q2, channel="online"),
            dossier(2, "10001", received_at=early_q3, channel="counter"),
            # an older version of dossier 2, from an earlier export partition: ignored
            dossier(2, "10001", received_at=early_q3, channel="online", updated_at=early_q3),
            dossier(3, "10001", channel="online"),
        ),
    )
    online = value_row(result, "10001", "c4_online_submission")
    assert (online["numerator"], online["denominator"]) == (1.0, 2.0)
    assert value_row(result, "01", "c4_online_submission")["value"] == 0.5


def test_a_year_averages_flows_and_keeps_the_latest_state(method: Methodology) -> None:
    result = run(
        method,
        (
            report("10001", "2026-Q1", documents_outgoing=10, documents_outgoing_signed=2, has_lan=False),
            report("10001", "2026-Q2", documents_outgoing=30, documents_outgoing_signed=30, has_lan=True),
            report("10001", "2025-Q4", documents_outgoing=99, documents_outgoing_signed=0, has_lan=False),
        ),
        period="2026",
    )
    signed = value_row(result, "10001", "c2_outgoing_signed")
    assert (signed["numerator"], signed["denominator"]) == (16.0, 20.0)
    assert value_row(result, "10001", "c1_has_lan")["value"] == 1.0
    assert row(result, "10001")["period"] == "2026"


def test_revised_report_replaces_the_earlier_one(method: Methodology) -> None:
    result = run(
        method,
        (
            report("10001", submitted_at=SUBMITTED + pd.Timedelta(days=2), has_lan=True),
            report("10001", submitted_at=SUBMITTED, has_lan=False),
        ),
    )
    assert value_row(result, "10001", "c1_has_lan")["value"] == 1.0


def test_reports_missing_a_needed_column_are_rejected(method: Methodology) -> None:
    frame = reports(report("10001")).drop(columns=["has_lan"])
    with pytest.raises(ValueError, match="has_lan"):
        compute(frame, dossiers(), procedures(), small_registry(), PERIOD, method)


def test_national_registry_with_100k_dossiers_covers_every_unit(method: Methodology) -> None:
    registry = current_units()
    frame, docs, procs = random_inputs(registry, 100_000)
    ranking = compute(frame, docs, procs, registry, PERIOD, method).ranking
    assert ranking.groupby("level").size().to_dict() == {"commune": 3321, "province": 34}
    assert not ranking.duplicated(["level", "unit_code"]).any()


# --- methodology file and loader ------------------------------------------------------------------------


def test_default_methodology(method: Methodology) -> None:
    assert available_methodologies() == ["egdi-relative", "mic-six-category"]
    assert method.id == "mic-six-category" and method.published_precision == 3
    assert [c.code for c in method.categories] == list(CATEGORIES)
    assert {c.code: c.max_points for c in method.categories} == {
        "c1": 20,
        "c2": 25,
        "c3": 10,
        "c4": 25,
        "c5": 10,
        "c6": 10,
    }
    assert method.max_points == 100
    for category in method.categories:
        assert category.indicators
        assert sum(i.max_points for i in category.indicators) == category.max_points
    assert len({i.id for i in method.indicators}) == len(method.indicators)


def test_docs_describe_every_indicator(method: Methodology) -> None:
    text = DOCS.read_text(encoding="utf-8")
    for ind in method.indicators:
        assert f"`{ind.id}`" in text, f"docs/methodology.md does not describe {ind.id}"


def _raw() -> dict[str, Any]:
    return yaml.safe_load(METHODOLOGY_YAML.read_text(encoding="utf-8"))


def _load_modified(tmp_path: Path, raw: dict[str, Any]) -> Methodology:
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_methodology(str(path))


def test_loader_reads_a_file_by_path(tmp_path: Path) -> None:
    raw = _raw()
    raw["id"] = "custom"
    assert _load_modified(tmp_path, raw).id == "custom"


def test_loader_rejects_an_unknown_source_field(tmp_path: Path) -> None:
    raw = _raw()
    raw["indicators"][0]["numerator"] = "officials_with_laptop"
    with pytest.raises(
        MethodologyError, match=r"c1_officials_with_computer.*unknown source field 'officials_with_laptop'"
    ):
        _load_modified(tmp_path, raw)


def test_loader_rejects_points_that_do_not_sum(tmp_path: Path) -> None:
    raw = _raw()
    raw["indicators"][0]["max_points"] = 6
    with pytest.raises(
        MethodologyError,
        match=r"categories\.c1: indicator max_points sum to 21 but the category max_points is 20",
    ):
        _load_modified(tmp_path, raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["indicators"][0].update(scoring="linear"), r"unknown scoring rule 'linear'"),
        (lambda r: r["indicators"][0].update(weight=2), r"unknown key\(s\) 'weight'"),
        (lambda r: r.update(extra=1), r"top level: unknown key\(s\) 'extra'"),
        (lambda r: r["indicators"][17].update(numerator="submitted"), r"unknown dossier measure 'submitted'"),
        (
            lambda r: r["indicators"][2].update(denominator="officials_total"),
            r"'yes_no' takes no denominator",
        ),
        (lambda r: r["indicators"][1].pop("goalposts"), r"needs goalposts"),
        (lambda r: r.update(tie_rule="dense"), r"tie_rule: 'dense' is not supported"),
        (
            lambda r: r.update(indicators=[i for i in r["indicators"] if i["category"] != "c5"]),
            r"categories\.c5: has no indicators",
        ),
    ],
)
def test_loader_errors_are_clear(tmp_path: Path, change: Any, message: str) -> None:
    raw = _raw()
    change(raw)
    with pytest.raises(MethodologyError, match=message):
        _load_modified(tmp_path, raw)


def test_loader_reports_every_problem_at_once() -> None:
    raw = _raw()
    raw["indicators"][0]["numerator"] = "nope"
    raw["indicators"][3]["scoring"] = "linear"
    with pytest.raises(MethodologyError) as error:
        parse_methodology(raw, "test.yaml")
    assert "'nope'" in str(error.value) and "'linear'" in str(error.value)
    assert "sum to" not in str(error.value)


def test_loader_rejects_duplicate_keys_and_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(METHODOLOGY_YAML.read_text(encoding="utf-8") + "\nid: again\n", encoding="utf-8")
    with pytest.raises(MethodologyError, match="duplicate key 'id'"):
        load_methodology(str(path))
    with pytest.raises(MethodologyError, match="unknown methodology 'dti-2022'; shipped: egdi-relative, mic-six-category"):
        load_methodology("dti-2022")
