"""The worked example of docs/methodology.md, read from the page and recomputed by the engine.

The tables that follow a ``<!-- worked-example:inputs … -->`` marker are the example's inputs (commune
reports, dossier counts, the procedure catalogue); those after ``<!-- worked-example:expected … -->`` are
what the page says the engine gives. The inputs are turned into reports and dossiers, ranked with the
default methodology on the 3,321 communes of the registry, and every expected number is compared with
the engine's: a number written with k decimals must be the engine's value rounded to k decimals, a
whole number (a count, a rank, 3 points) and a published index must be exact. Changing a number of the
page or of the engine fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_ranking import RECEIVED, dossier, procedures, report, run

from egov_index.explain import explain
from egov_index.methodology import DOSSIER_MEASURES, Methodology, load_methodology
from egov_index.ranking import RankingResult, dossier_measures
from egov_index.registry import current_units
from egov_index.schemas import CATEGORIES, COMMUNE_REPORT_FIELDS

DOC = Path(__file__).resolve().parents[1] / "docs" / "methodology.md"
PERIOD = "2026-Q3"
MARKER = re.compile(r"<!-- worked-example:(inputs|expected) ([a-z-]+)(?: (\w+))? -->")
# every table of the example, so that a new one cannot go unchecked
TABLES = {
    ("inputs", "reports", None),
    ("inputs", "dossiers", None),
    ("inputs", "procedures", None),
    ("expected", "indicators", "00004"),
    ("expected", "category-points", None),
    ("expected", "ranking", None),
    ("expected", "province", "01"),
    ("expected", "province-ranking", None),
    ("expected", "points-lost", "00004"),
    ("expected", "move-up", "00004"),
}
NULL = {"—", "-", ""}


# --- reading the page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    header: list[str]  # cells of the header row, backticks removed
    rows: list[dict[str, str]]  # header -> cell text


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_tables(text: str) -> dict[tuple[str, str, str | None], Table]:
    """The markdown table after each worked-example marker, keyed by (kind, name, argument)."""
    lines = text.splitlines()
    tables: dict[tuple[str, str, str | None], Table] = {}
    for n, line in enumerate(lines):
        found = MARKER.fullmatch(line.strip())
        if not found:
            continue
        key = (found.group(1), found.group(2), found.group(3))
        assert key not in tables, f"two tables marked {key}"
        start = n + 1
        while not lines[start].strip():
            start += 1
        block = []
        for row in lines[start:]:
            if not row.lstrip().startswith("|"):
                break
            block.append(row)
        assert len(block) >= 3 and set(block[1].replace("|", "").strip()) <= set("-: "), key
        header = [cell.replace("`", "") for cell in _cells(block[0])]
        body = [dict(zip(header, _cells(row), strict=True)) for row in block[2:]]
        tables[key] = Table(header, body)
    return tables


def _clean(cell: str) -> str:
    return cell.replace("*", "").replace("`", "").replace(",", "").strip()


def number(cell: str) -> float | None:
    """A cell as a number: '6,000' -> 6000, 'yes'/'no' -> 1/0, '4/126' -> 4/126, '—' -> None."""
    text = _clean(cell)
    if text in NULL:
        return None
    if text in ("yes", "no"):
        return 1.0 if text == "yes" else 0.0
    if "/" in text:
        numerator, denominator = text.split("/")
        return float(numerator) / float(denominator)
    return float(text)


def tolerance(cell: str) -> float:
    """Half a unit of the last decimal written; a whole number, a fraction or yes/no is exact."""
    text = _clean(cell)
    if "/" in text or "." not in text:
        return 1e-9
    return 0.5 * 10.0 ** -len(text.split(".")[1]) + 1e-9


def check(engine: Any, cell: str, what: str) -> None:
    """The engine's value matches the page's cell, to the decimals written there."""
    expected = number(cell)
    if expected is None:
        assert engine is None or pd.isna(engine), f"{what}: the page says null, the engine gives {engine}"
        return
    assert engine is not None and not pd.isna(engine), f"{what}: the engine gives null, the page {cell}"
    assert abs(float(engine) - expected) <= tolerance(cell), f"{what}: engine {engine}, page {cell}"


def code_of(cell: str) -> str | None:
    found = re.search(r"\((\d{5}|\d{2})\)", cell)
    return found.group(1) if found else None


def indicator_of(cell: str) -> str:
    found = re.fullmatch(r"`([a-z0-9_]+)`", cell.strip())
    assert found, f"expected an indicator id in backticks, got {cell!r}"
    return found.group(1)


# --- building the inputs ---------------------------------------------------------------------------


def commune_columns(table: Table) -> dict[str, str]:
    """Header cell -> commune code, for the columns naming a commune."""
    return {h: code for h in table.header if (code := code_of(h)) is not None}


def report_rows(table: Table) -> tuple[dict[str, Any], ...]:
    kinds = {f.name: f.type for f in COMMUNE_REPORT_FIELDS if f.category != "key"}
    fields: dict[str, dict[str, Any]] = {}
    for row in table.rows:
        name = indicator_of(row[table.header[0]])
        assert name in kinds, f"{name} is not a commune-report field"
        for header, code in commune_columns(table).items():
            value = number(row[header])
            is_yes_no = _clean(row[header]) in ("yes", "no")
            assert value is not None and is_yes_no == (str(kinds[name]) == "bool"), (name, code)
            fields.setdefault(code, {})[name] = bool(value) if is_yes_no else int(value)
    return tuple(report(code, **values) for code, values in fields.items())


def dossier_counts(table: Table) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for row in table.rows:
        measure = indicator_of(row[table.header[0]])
        assert measure in DOSSIER_MEASURES, f"{measure} is not a dossier measure"
        for header, code in commune_columns(table).items():
            counts.setdefault(code, {})[measure] = int(number(row[header]) or 0)
    return counts


def dossier_rows(counts: dict[str, dict[str, int]]) -> tuple[dict[str, Any], ...]:
    """Dossiers of each commune matching its counts: the first `online` dossiers are online, the
    full-online ones (procedure P2) straddle the end of the online ones so that exactly
    `full_online_procedure_online` of them are online, the first `resolved` are resolved (the first
    `resolved_on_time` of them on time), the first `with_fee` have a fee (the first `paid_online` of them
    paid online) and the first `digitised` are digitised."""
    rows: list[dict[str, Any]] = []
    for code, c in counts.items():
        first_full = c["online"] - c["full_online_procedure_online"]
        assert 0 <= first_full and first_full + c["full_online_procedure"] <= c["received"], code
        for j in range(c["received"]):
            fields: dict[str, Any] = {
                "channel": "online" if j < c["online"] else "counter",
                "procedure_code": "P2" if first_full <= j < first_full + c["full_online_procedure"] else "P1",
                "fee_vnd": 20_000 if j < c["with_fee"] else 0,
                "paid_online": j < c["paid_online"],
                "digitised": j < c["digitised"],
            }
            if j < c["resolved"]:
                late = j >= c["resolved_on_time"]
                fields.update(status="resolved", resolved_at=RECEIVED + pd.Timedelta(days=10 if late else 1))
            rows.append(dossier(len(rows) + 1, code, **fields))
    return tuple(rows)


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables() -> dict[tuple[str, str, str | None], Table]:
    return read_tables(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def method() -> Methodology:
    return load_methodology()


@pytest.fixture(scope="module")
def inputs(tables) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    reports = report_rows(tables[("inputs", "reports", None)])
    dossiers = dossier_rows(dossier_counts(tables[("inputs", "dossiers", None)]))
    return reports, dossiers


@pytest.fixture(scope="module")
def result(method, inputs) -> RankingResult:
    reports, dossiers = inputs
    return run(method, reports, dossiers, registry=current_units(), period=PERIOD)


@pytest.fixture(scope="module")
def explanations(method, result) -> pd.DataFrame:
    return explain(result.levels["commune"], method, PERIOD)


def indicator_values(result: RankingResult, unit_code: str) -> pd.DataFrame:
    frame = result.indicator_values
    return frame[frame["unit_code"].astype(str) == unit_code].set_index("indicator_id")


def ranking_row(result: RankingResult, unit_code: str) -> pd.Series:
    frame = result.ranking
    return frame[frame["unit_code"].astype(str) == unit_code].iloc[0]


def unrounded_index(result: RankingResult, level: str, unit_code: str) -> float:
    scores = result.levels[level]
    return float(scores.overall[list(scores.codes).index(unit_code)])


# --- the checks ------------------------------------------------------------------------------------


def test_the_page_has_every_table_of_the_example(tables):
    assert set(tables) == TABLES


def test_the_inputs_are_what_the_engine_counts(tables, inputs):
    """The dossiers built from the page give back the page's counts; the catalogue is the test one."""
    _, dossiers = inputs
    from test_ranking import dossiers as dossier_frame

    counts = dossier_counts(tables[("inputs", "dossiers", None)])
    measured = dossier_measures(dossier_frame(*dossiers), procedures()).set_index("commune_code")
    for code, expected in counts.items():
        for measure, count in expected.items():
            assert measured.loc[code, measure] == count, (code, measure)
    catalogue = tables[("inputs", "procedures", None)]
    page = {(row["procedure_code"], row["service_level"]) for row in catalogue.rows}
    assert page == set(zip(procedures()["procedure_code"], procedures()["service_level"], strict=True))


def test_one_commune_indicator_by_indicator(tables, method, result):
    table = tables[("expected", "indicators", "00004")]
    values = indicator_values(result, "00004")
    listed = []
    for row in table.rows:
        if _clean(row["Indicator"]) == "Total":
            ranked = ranking_row(result, "00004")
            check(ranked["overall_max_points"], row["Max points"], "total max points")
            check(ranked["overall_points"], row["Points"], "total points")
            continue
        ind = indicator_of(row["Indicator"])
        listed.append(ind)
        engine = values.loc[ind]
        for column, header in (
            ("numerator", "Numerator"),
            ("denominator", "Denominator"),
            ("value", "Value"),
            ("max_points", "Max points"),
            ("points", "Points"),
        ):
            check(engine[column], row[header], f"00004 {ind} {column}")
        check(engine["points"] / engine["max_points"], row["Share"], f"00004 {ind} share")
    assert listed == [i.id for i in method.indicators_at("commune")]  # in full, in file order


def test_category_points(tables, method, result):
    table = tables[("expected", "category-points", None)]
    for row in table.rows:
        code = code_of(row["Commune"])
        assert code is not None
        values = indicator_values(result, code)
        for header in table.header[1:]:
            category = header.split()[0]
            if category in CATEGORIES:
                points = values.loc[values["category"].astype(str) == category, "points"].sum()
                check(points, row[header], f"{code} {category} points")
                check(
                    method.category(category).max_points_at("commune"), number_in(header), f"{category} max"
                )
            else:
                check(ranking_row(result, code)["overall_points"], row[header], f"{code} total points")
                check(method.max_points_at("commune"), number_in(header), "commune max points")


def number_in(header: str) -> str:
    found = re.search(r"\((\d+)\)", header)
    assert found, header
    return found.group(1)


def _check_ranking_columns(row: dict[str, str], header: list[str], engine: pd.Series, what: str) -> None:
    for column in header[1:]:
        if column == "report_treatment":
            assert str(engine[column]) == row[column], f"{what}: {column}"
        elif column in engine.index:
            cell = row[column]
            if column.endswith("_index"):  # published indices: exactly
                assert float(engine[column]) == pytest.approx(number(cell), abs=1e-12), f"{what}: {column}"
            else:
                check(engine[column], cell, f"{what}: {column}")


def test_indices_and_ranks(tables, result):
    table = tables[("expected", "ranking", None)]
    ranking = result.ranking
    communes = ranking[ranking["level"] == "commune"]
    example = [code for row in table.rows if (code := code_of(row["Communes"])) and len(code) == 5]
    others_seen = 0
    for row in table.rows:
        label = row["Communes"]
        code = code_of(label)
        if code is not None and len(code) == 5:
            engine = ranking_row(result, code)
            _check_ranking_columns(row, table.header, engine, code)
            check(unrounded_index(result, "commune", code), row["Unrounded index"], f"{code} unrounded index")
            continue
        # a group of communes without report: those of the named province, or of every other province
        rest = communes[~communes["unit_code"].astype(str).isin(example)]
        in_province = rest["parent_code"].astype(str) == (code or "01")
        group = rest[in_province] if code is not None else rest[~in_province]
        count = re.search(r"([\d,]+) communes", label)
        assert count and len(group) == int(count.group(1).replace(",", "")), label
        others_seen += len(group)
        for column in table.header[1:]:
            if column in group.columns:
                distinct = group[column].astype(str).unique()
                assert len(distinct) == 1, f"{label}: {column} differs: {distinct[:5]}"
        _check_ranking_columns(row, table.header, group.iloc[0], label)
        scores = result.levels["commune"]
        overall = scores.overall[np.isin(scores.codes, group["unit_code"].astype(str))]
        check(float(np.max(overall)), row["Unrounded index"], f"{label} unrounded index")
    assert others_seen + len(example) == len(communes) == 3321


def test_the_province_from_counts_with_the_coverage_factor(tables, method, result):
    table = tables[("expected", "province", "01")]
    values = indicator_values(result, "01")
    scores = result.levels["province"]
    unit = list(scores.codes).index("01")
    ids = [i.id for i in scores.indicators]
    for row in table.rows:
        ind = indicator_of(row["Indicator"])
        engine = values.loc[ind]
        for column in ("numerator", "denominator", "value", "points"):
            check(engine[column], row[column], f"01 {ind} {column}")
        check(scores.factor[unit, ids.index(ind)], row["Coverage factor"], f"01 {ind} coverage factor")
        treatment = engine["missing_treatment"]
        expected = None if _clean(row["missing_treatment"]) in NULL else _clean(row["missing_treatment"])
        assert (None if pd.isna(treatment) else str(treatment)) == expected, f"01 {ind} missing_treatment"
    province_only = [i.id for i in method.indicators if i.level == "province"]
    assert set(province_only) <= {indicator_of(row["Indicator"]) for row in table.rows}


def test_the_province_row(tables, result):
    table = tables[("expected", "province-ranking", None)]
    for row in table.rows:
        code = code_of(row["Province"])
        assert code is not None and len(code) == 2
        _check_ranking_columns(row, table.header, ranking_row(result, code), code)


def test_points_lost(tables, explanations):
    table = tables[("expected", "points-lost", "00004")]
    rows = explanations[explanations["unit_code"].astype(str) == "00004"].set_index("indicator_id")
    for row in table.rows:
        ind = indicator_of(row["Indicator"])
        for column in ("loss_order", "points", "max_points", "points_lost"):
            check(rows.loc[ind, column], row[column], f"00004 {ind} {column}")
    orders = [int(number(row["loss_order"]) or 0) for row in table.rows]
    assert orders == list(range(1, len(orders) + 1))


def test_what_would_move_us_up(tables, explanations):
    table = tables[("expected", "move-up", "00004")]
    rows = explanations[explanations["unit_code"].astype(str) == "00004"].set_index("indicator_id")
    listed = []
    for row in table.rows:
        ind = indicator_of(row["Indicator"])
        listed.append(ind)
        for column in ("value", "points_needed", "target_value", "rank_if_improved"):
            check(rows.loc[ind, column], row[column], f"00004 {ind} {column}")
        assert bool(rows.loc[ind, "best_move_up"]) == (_clean(row["best_move_up"]) == "yes"), ind
    # the page lists every indicator that could move the commune up, and only those
    assert set(listed) == set(rows.index[rows["points_needed"].notna()])
    assert int(rows["best_move_up"].sum()) == 1
