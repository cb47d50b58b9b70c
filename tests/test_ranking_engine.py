"""The general engine: scoring families, weighted mean, missing-data treatments, province-only and
mean-of-units indicators, explanations, robustness bands, rank changes (incl. across the 2025
reorganisation) and the properties every ranking must have."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ranking import (
    METHODOLOGY_YAML,
    PERIOD,
    SUBMITTED,
    dossier,
    random_inputs,
    report,
    run,
)

from egov_index.explain import explain
from egov_index.methodology import (
    Methodology,
    MethodologyError,
    Robustness,
    available_methodologies,
    load_methodology,
    parse_methodology,
)
from egov_index.periods import previous_period, year_ago_period
from egov_index.published_rankings import import_published_ranking
from egov_index.rank_changes import Baseline, attach_rank_changes
from egov_index.ranking import compute, score_level
from egov_index.registry import current_units
from egov_index.robustness import rank_bands
from egov_index.schemas import CATEGORIES, EXPLANATION_SCHEMA, RANK_UNCERTAINTY_SCHEMA
from egov_index.scoring import competition_rank, score_fraction, value_for_share
from egov_index.store import DataStore

FIXTURES = Path(__file__).parent / "fixtures" / "published"
METHODOLOGIES = ("mic-six-category", "egdi-relative")


@pytest.fixture(scope="module", params=METHODOLOGIES)
def any_method(request: pytest.FixtureRequest) -> Methodology:
    return load_methodology(request.param)


@pytest.fixture(scope="module")
def mic() -> Methodology:
    return load_methodology("mic-six-category")


@pytest.fixture(scope="module")
def egdi() -> Methodology:
    return load_methodology("egdi-relative")


@pytest.fixture(scope="module")
def national() -> dict[str, Any]:
    registry = current_units()
    return {"registry": registry, "inputs": random_inputs(registry, 30_000, seed=7)}


def indicator(method: Methodology, ident: str):
    return next(i for i in method.indicators if i.id == ident)


def raw(method_id: str = "mic-six-category") -> dict[str, Any]:
    path = METHODOLOGY_YAML.with_name(f"{method_id}.yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- scoring rules ---------------------------------------------------------------------------------


def test_both_methodologies_ship_and_load() -> None:
    assert set(METHODOLOGIES) <= set(available_methodologies())


def test_relative_rules_follow_their_formulas(egdi: Methodology) -> None:
    values = np.array([0.2, 0.5, 0.8, np.nan, 0.5])
    base = indicator(egdi, "r1_officials_with_computer")
    min_max = score_fraction(values, base, rule="min_max")
    assert min_max == pytest.approx([0.0, 0.5, 1.0, 0.0, 0.5])
    z = score_fraction(values, base, rule="z_score")
    known = values[~np.isnan(values)]
    expected = 0.5 + (values - known.mean()) / known.std() / 6
    assert z == pytest.approx(np.nan_to_num(expected, nan=0.0))
    # rank: average rank among the four with a value (0.5 and 0.5 tie at 2.5) -> (r - 1) / 3
    assert score_fraction(values, base, rule="rank") == pytest.approx([0.0, 0.5, 1.0, 0.0, 0.5])
    lower = replace(base, direction="lower_is_better")
    assert score_fraction(values, lower, rule="min_max") == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.5])
    assert score_fraction(values, lower, rule="rank") == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.5])
    tied = np.array([0.4, 0.4, 0.4])
    for rule in ("min_max", "z_score", "rank"):
        assert score_fraction(tied, base, rule=rule) == pytest.approx([0.5] * 3)
    # a unit left out of the comparison (excluded) does not move the others' min and max
    ranked = np.array([True, True, False, True, True])
    assert score_fraction(values, base, ranked, "min_max")[1] == pytest.approx(1.0)


def test_step_lower_is_better_and_relative_to_best(egdi: Methodology) -> None:
    steps = indicator(egdi, "r4_digitised")  # 50/70/80/90 % -> 0.25/0.5/0.75/1
    values = np.array([0.1, 0.5, 0.69, 0.85, 0.95, np.nan])
    assert score_fraction(values, steps) == pytest.approx([0.0, 0.25, 0.25, 0.75, 1.0, 0.0])
    assert value_for_share(values, steps, None, np.array([0.6]))[0] == pytest.approx(0.8)
    late = indicator(egdi, "r4_resolved_late")
    assert late.direction == "lower_is_better"
    assert score_fraction(np.array([0.0, 0.1, 0.2]), late) == pytest.approx([1.0, 0.5, 0.0])
    best = indicator(egdi, "r3_articles")
    assert score_fraction(np.array([0.0, 6.0, 12.0]), best) == pytest.approx([0.0, 0.5, 1.0])
    assert score_fraction(np.array([0.0, 0.0]), best) == pytest.approx([0.0, 0.0])  # nobody has any
    cheaper = replace(best, direction="lower_is_better")
    assert score_fraction(np.array([2.0, 4.0, 8.0]), cheaper) == pytest.approx([1.0, 0.5, 0.25])


def test_competition_rank_is_1224_and_leaves_nan_unranked() -> None:
    assert competition_rank(np.array([0.9, 0.8, 0.8, 0.7, np.nan])).tolist() == [1, 2, 2, 4, 0]


# --- the methodology file --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["categories"]["c1"].update(weight=0.5),
            "weight is only used with overall: weighted_mean",
        ),
        (lambda d: d.update(overall="geometric_mean"), "overall: 'geometric_mean' is not supported"),
        (lambda d: d["indicators"][0].update(direction="up"), "direction 'up' is not one of"),
        (lambda d: d["indicators"][0].pop("source"), "missing required key(s) source"),
        (lambda d: d["indicators"][0].update(scoring="step"), "scoring 'step' needs steps"),
        (
            lambda d: d["indicators"][0].update(scoring="step", steps=[[0.5, 1.0], [0.9, 0.5]]),
            "must not decrease",
        ),
        (lambda d: d["indicators"][0].update(level="district"), "level 'district' is not one of"),
        (lambda d: d["indicators"][0].update(source="province_dossiers"), "set level: province"),
        (lambda d: d["missing_report"].update(commune="impute"), "missing_report.commune: 'impute'"),
        (lambda d: d.update(robustness={"draws": 3}), "robustness.draws"),
        (lambda d: d.update(robustness={"normalisations": ["geometric"]}), "robustness.normalisations"),
    ],
)
def test_loader_refuses_with_a_clear_message(change: Any, message: str) -> None:
    document = raw()
    change(document)
    with pytest.raises(MethodologyError) as raised:
        parse_methodology(document, "edited.yaml")
    assert message in str(raised.value) and "edited.yaml" in str(raised.value)


def test_weights_must_sum_to_one() -> None:
    document = raw("egdi-relative")
    document["categories"]["c4"]["weight"] = 0.25
    with pytest.raises(MethodologyError, match=r"weights sum to 0.95, expected 1"):
        parse_methodology(document)
    del document["categories"]["c4"]["weight"]
    with pytest.raises(MethodologyError, match="needs a weight on every category; missing on c4"):
        parse_methodology(document)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=10), min_size=6, max_size=6))
def test_effective_weights_sum_to_one(raw_weights: list[float]) -> None:
    """Property: for any valid weights and both levels, the effective indicator weights sum to 1."""
    document = raw("egdi-relative")
    total = sum(raw_weights)
    shares = [w / total for w in raw_weights]
    shares[-1] = 1.0 - sum(shares[:-1])
    for code, share in zip(CATEGORIES, shares, strict=True):
        document["categories"][code]["weight"] = share
    method = parse_methodology(document)
    for level in ("commune", "province"):
        assert sum(method.effective_weights(level).values()) == pytest.approx(1.0, abs=1e-9)
    for name in METHODOLOGIES:
        shipped = load_methodology(name)
        for level in ("commune", "province"):
            assert sum(shipped.effective_weights(level).values()) == pytest.approx(1.0, abs=1e-12)


# --- properties of the ranking ------------------------------------------------------------------------


def _scored(
    method: Methodology, values: np.ndarray, level: str = "commune", ranked: np.ndarray | None = None
):
    n = len(values)
    return score_level(
        level,
        np.array([f"{i:05d}" for i in range(n)], dtype=object),
        np.array(["01"] * n, dtype=object),
        values,
        np.ones_like(values),
        np.ones(n, bool) if ranked is None else ranked,
        method,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_improving_an_indicator_never_lowers_the_units_score(
    any_method: Methodology, data: st.DataObject
) -> None:
    """Property: raising a higher-is-better value (or lowering a lower-is-better one) of one unit never
    lowers that unit's overall index, under every scoring rule, absolute or relative."""
    indicators = any_method.indicators_at("commune")
    n = data.draw(st.integers(2, 12))
    cell = st.one_of(st.none(), st.floats(0, 1.5, allow_nan=False))
    rows = data.draw(
        st.lists(st.lists(cell, min_size=len(indicators), max_size=len(indicators)), min_size=n, max_size=n)
    )
    values = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    unit = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, len(indicators) - 1))
    step = data.draw(st.floats(0.001, 1.0))
    before = _scored(any_method, values).overall[unit]
    better = values.copy()
    current = 0.0 if np.isnan(better[unit, j]) else better[unit, j]
    lower = indicators[j].direction == "lower_is_better"
    if lower and np.isnan(better[unit, j]):
        return  # a missing value earns 0; there is no "lower" to move to from nothing
    better[unit, j] = current - step if lower else current + step
    after = _scored(any_method, better).overall[unit]
    assert after >= before - 1e-12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_ranks_do_not_depend_on_row_order(
    any_method: Methodology, national: dict[str, Any], seed: int
) -> None:
    registry = national["registry"]
    reports, dossiers, procedures = national["inputs"]
    rng = np.random.default_rng(seed)
    expected = _baseline_result(any_method.id, national)
    shuffled = compute(
        reports.iloc[rng.permutation(len(reports))],
        dossiers.iloc[rng.permutation(len(dossiers))],
        procedures.iloc[rng.permutation(len(procedures))],
        registry,
        PERIOD,
        any_method,
    )
    pd.testing.assert_frame_equal(shuffled.ranking, expected.ranking)
    pd.testing.assert_frame_equal(shuffled.indicator_values, expected.indicator_values)


_RESULTS: dict[str, Any] = {}


def _baseline_result(method_id: str, national: dict[str, Any]):
    if method_id not in _RESULTS:
        reports, dossiers, procedures = national["inputs"]
        _RESULTS[method_id] = compute(
            reports, dossiers, procedures, national["registry"], PERIOD, load_methodology(method_id)
        )
    return _RESULTS[method_id]


# --- overall index, levels and aggregation -----------------------------------------------------------------


def test_weighted_mean_is_the_weighted_mean_of_unrounded_category_indices(
    egdi: Methodology, national
) -> None:
    result = _baseline_result("egdi-relative", national)
    for name, scores in result.levels.items():
        weights = egdi.category_weights(name)
        category_of = np.array([i.category for i in scores.indicators])
        expected = np.zeros(len(scores.codes))
        for code in CATEGORIES:
            members = category_of == code
            expected += (
                weights[code]
                * scores.points[:, members].sum(axis=1)
                / egdi.category(code).max_points_at(name)
            )
        ranked = scores.ranked
        assert scores.overall[ranked] == pytest.approx(expected[ranked])
        ranking = result.ranking[result.ranking["level"] == name]
        assert ranking["overall_index"].dropna().map(lambda x: round(x, 4) == x).all()  # 4 decimals


def test_province_only_indicator_is_scored_for_provinces_only(mic: Methodology, national) -> None:
    result = _baseline_result("mic-six-category", national)
    values = result.indicator_values
    only = values[values["indicator_id"] == "c4_full_online_services_used"]
    assert set(only["level"]) == {"province"} and len(only) == 34
    _, dossiers, procedures = national["inputs"]
    full = set(procedures.loc[procedures["service_level"] == "full_online", "procedure_code"])
    assert (only["denominator"] == len(full)).all()
    communes = current_units().communes.set_index("commune_code")["province_code"]
    online = dossiers[(dossiers["channel"] == "online") & dossiers["procedure_code"].isin(full)]
    used = (
        online.assign(province=online["commune_code"].map(communes))
        .groupby("province")["procedure_code"]
        .nunique()
    )
    by_province = only.set_index("unit_code")["numerator"]
    assert by_province.to_dict() == pytest.approx(
        used.reindex(by_province.index, fill_value=0).astype(float).to_dict()
    )
    ranking = result.ranking.set_index(["level", "unit_code"])
    assert (ranking.xs("commune")["overall_max_points"] == 97).all()
    assert (ranking.xs("province")["overall_max_points"] == 100).all()


def test_mean_of_units_aggregation_when_the_file_says_so(egdi: Methodology) -> None:
    rows = (
        report("10001", documents_outgoing=100, documents_outgoing_signed=100),
        report("10002", documents_outgoing=10, documents_outgoing_signed=0),
    )
    result = run(egdi, rows)
    values = result.indicator_values.set_index(["unit_code", "indicator_id"])
    province = values.loc[("01", "r2_outgoing_signed")]
    # mean of the two communes' shares (1.0 and 0.0), not 100 / 110 from counts
    assert province["value"] == pytest.approx(0.5)
    assert (province["numerator"], province["denominator"]) == (1.0, 2.0)


# --- missing reports ----------------------------------------------------------------------------------------


def with_policy(method: Methodology, policy: str) -> Methodology:
    return replace(method, missing_report=replace(method.missing_report, commune=policy))


def test_carry_last_period_uses_the_previous_quarters_report(mic: Methodology) -> None:
    method = with_policy(mic, "carry_last_period")
    earlier = previous_period(PERIOD)
    rows = (
        report("10001", officials_total=10, officials_with_computer=10),
        report(
            "10002",
            period=earlier,
            submitted_at=SUBMITTED - pd.Timedelta(days=92),
            officials_total=10,
            officials_with_computer=5,
        ),
    )
    result = run(method, rows)
    ranking = result.ranking.set_index("unit_code")
    assert ranking.loc["10001", "report_treatment"] == "reported"
    assert ranking.loc["10002", "report_treatment"] == "carried_forward"
    assert ranking.loc["10002", "carried_from_period"] == earlier
    assert ranking.loc["10003", "report_treatment"] == "zero_points"  # nothing to carry
    values = result.indicator_values.set_index(["unit_code", "indicator_id"])
    carried = values.loc[("10002", "c1_officials_with_computer")]
    assert carried["value"] == 0.5 and carried["missing_treatment"] == "carried_forward"
    assert carried["points"] == pytest.approx(2.5)
    province = values.loc[("01", "c1_officials_with_computer")]
    assert (province["numerator"], province["denominator"]) == (15.0, 20.0)  # carried counts aggregate
    # the default policy gives the same commune zero points
    assert run(mic, rows).ranking.set_index("unit_code").loc["10002", "report_treatment"] == "zero_points"


def test_exclude_leaves_the_commune_out_of_the_ranking_with_a_flag(mic: Methodology) -> None:
    method = with_policy(mic, "exclude")
    rows = (
        report("10001", officials_total=10, officials_with_computer=10),
        report("10002", officials_total=10, officials_with_computer=5),
    )
    result = run(method, rows, dossier_rows=(dossier(1, "10003", channel="online"),))
    ranking = result.ranking.set_index("unit_code")
    excluded = ranking.loc["10003"]
    assert excluded["report_treatment"] == "excluded"
    index_columns = ["overall_points", "overall_index", "overall_rank", "overall_rank_in_province"]
    assert excluded[index_columns + [f"{c}_rank" for c in CATEGORIES]].isna().all()
    communes = ranking[ranking["level"] == "commune"]
    ranked = communes[communes["report_treatment"] != "excluded"]
    assert sorted(ranked["overall_rank"]) == [1, 2]  # ranks among the communes that reported
    values = result.indicator_values
    assert set(values.loc[values["unit_code"] == "10003", "missing_treatment"]) == {"excluded"}


# --- explanations -------------------------------------------------------------------------------------------


def test_points_lost_are_ordered_largest_first(mic: Methodology, national) -> None:
    scores = _baseline_result("mic-six-category", national).levels["province"]
    frame = explain(scores, mic, PERIOD)
    assert list(frame.columns) == EXPLANATION_SCHEMA.names
    for _, unit in frame.groupby("unit_code"):
        ordered = unit.sort_values("loss_order")["points_lost"].to_numpy()
        assert (np.diff(ordered) <= 1e-9).all()
        assert sorted(unit["loss_order"]) == list(range(1, len(unit) + 1))
    assert frame["points_lost"].to_numpy() == pytest.approx(
        (frame["max_points"] - frame["points"]).to_numpy()
    )


@pytest.mark.parametrize("level", ["province", "commune"])
def test_the_suggested_move_up_really_gains_a_rank(any_method: Methodology, national, level: str) -> None:
    """Applying each unit's best move-up (its target value, everything else equal) reaches the promised
    rank, and that rank is better than the current one."""
    scores = _baseline_result(any_method.id, national).levels[level]
    frame = explain(scores, any_method, PERIOD)
    best = frame[frame["best_move_up"]]
    assert best["unit_code"].is_unique
    below_top = scores.ranked & (scores.rank > 1)
    assert len(best) > 0.5 * below_top.sum()
    position = {code: n for n, code in enumerate(scores.codes)}
    column = {i.id: j for j, i in enumerate(scores.indicators)}
    checked = 0
    for row in best.sample(min(len(best), 40), random_state=1).itertuples():
        ind = scores.indicators[column[row.indicator_id]]
        if ind.scoring in ("rank", "z_score", "min_max", "relative_to_best") or np.isnan(row.target_value):
            continue  # relative rules hold the others fixed: a first-order answer, checked below
        u, j = position[row.unit_code], column[row.indicator_id]
        values = scores.values.copy()
        values[u, j] = row.target_value + (1e-9 if ind.direction == "higher_is_better" else -1e-9)
        moved = score_level(
            level, scores.codes, scores.parents, values, scores.factor, scores.ranked, any_method
        )
        assert moved.rank[u] < scores.rank[u]
        assert moved.rank[u] <= row.rank_if_improved
        checked += 1
    if any_method.id == "mic-six-category":
        assert checked >= 10
    assert (
        best["rank_if_improved"]
        < pd.Series(scores.rank, index=scores.codes).loc[best["unit_code"]].to_numpy()
    ).all()


# --- robustness -------------------------------------------------------------------------------------------------


def test_rank_bands_are_seeded_and_bracket_the_median(mic: Methodology, national) -> None:
    scores = _baseline_result("mic-six-category", national).levels["province"]
    first = rank_bands(scores, mic, PERIOD)
    pd.testing.assert_frame_equal(first, rank_bands(scores, mic, PERIOD))
    assert list(first.columns) == RANK_UNCERTAINTY_SCHEMA.names
    assert (first["rank_p05"] <= first["median_rank"]).all() and (
        first["median_rank"] <= first["rank_p95"]
    ).all()
    assert (first["band_width"] == first["rank_p95"] - first["rank_p05"]).all()
    assert (first["wide_band"] == (first["band_width"] > 0.15 * 34)).all()
    reseeded = replace(mic, robustness=replace(mic.robustness, seed=mic.robustness.seed + 1))
    assert not rank_bands(scores, reseeded, PERIOD)["median_rank"].equals(first["median_rank"])


def test_without_perturbation_every_draw_gives_the_published_rank(mic: Methodology, national) -> None:
    fixed = replace(mic, robustness=Robustness(draws=20, weight_share=0.0, normalisations=("as_configured",)))
    scores = _baseline_result("mic-six-category", national).levels["commune"]
    bands = rank_bands(scores, fixed, PERIOD)
    assert (bands["band_width"] == 0).all() and not bands["wide_band"].any()
    assert (bands["median_rank"] == bands["overall_rank"]).all()


# --- rank changes ----------------------------------------------------------------------------------------------


def test_rank_change_is_baseline_rank_minus_current_rank(mic: Methodology) -> None:
    rows = (report("10001", has_lan=True), report("10002"), report("20001", has_lan=True, has_it_plan=True))
    ranking = run(mic, rows).ranking
    before = pd.DataFrame(
        {
            "level": ["commune", "commune", "province"],
            "unit_code": ["10001", "20001", "02"],
            "overall_rank": [5, 1, 2],
        }
    )
    changed = attach_rank_changes(
        ranking, {"previous": Baseline("2026-Q2", "computed", before), "year_ago": None}
    )
    rows_by_code = changed.set_index("unit_code")
    assert rows_by_code.loc["10001", "previous_rank_change"] == 5 - rows_by_code.loc["10001", "overall_rank"]
    assert rows_by_code.loc["20001", "previous_rank_change"] == 1 - rows_by_code.loc["20001", "overall_rank"]
    assert rows_by_code.loc["10001", "previous_basis"] == "computed"
    assert rows_by_code.loc["10001", "previous_period"] == "2026-Q2"
    assert pd.isna(rows_by_code.loc["10002", "previous_rank_change"]) and pd.isna(
        rows_by_code.loc["10002", "previous_basis"]
    )
    assert changed["year_ago_rank"].isna().all()
    assert (previous_period("2026-Q1"), year_ago_period("2026-Q3"), previous_period("2026")) == (
        "2025-Q4",
        "2025-Q3",
        "2025",
    )


def test_rank_change_across_the_2025_reorganisation_for_every_current_province(
    mic: Methodology, tmp_path: Path
) -> None:
    """A pre-2025 published table (63 provinces) is the year-ago baseline of a current (34-province)
    ranking: every current province gets a rank change, from the crosswalked mean of its predecessors."""
    from egov_index.pipeline import find_baseline

    store = DataStore(tmp_path / "data")
    import_published_ranking(store, FIXTURES / "ict_index_2018_full.csv")
    baseline = find_baseline(store, "2018", mic.id)
    assert baseline is not None and baseline.basis == "published_crosswalk"
    registry = current_units()
    reports, dossiers, procedures = random_inputs(registry, 5_000, seed=3)
    reports = reports.assign(period="2019-Q4", report_id=reports["commune_code"] + "-2019-Q4")
    result = compute(reports, dossiers, procedures, registry, "2019", mic)
    changed = attach_rank_changes(result.ranking, {"previous": baseline, "year_ago": baseline})
    provinces = changed[changed["level"] == "province"]
    assert len(provinces) == 34
    assert provinces["year_ago_rank_change"].notna().all()
    assert (provinces["year_ago_basis"] == "published_crosswalk").all()
    assert (provinces["year_ago_rank_change"] == provinces["year_ago_rank"] - provinces["overall_rank"]).all()
    assert (
        changed.loc[changed["level"] == "commune", "year_ago_rank"].isna().all()
    )  # tables rank provinces only


def test_a_computed_ranking_of_the_period_before_wins_over_a_published_one(
    mic: Methodology, tmp_path: Path
) -> None:
    from egov_index.pipeline import RANKING, find_baseline
    from egov_index.schemas import RANKING_SCHEMA
    from egov_index.store import to_table

    store = DataStore(tmp_path / "data")
    import_published_ranking(store, FIXTURES / "ict_index_2018_full.csv")
    ours = run(mic, (report("10001", has_lan=True),), period="2018").ranking
    store.publish(RANKING, {"period": "2018"}, to_table(ours, RANKING_SCHEMA))
    baseline = find_baseline(store, "2018", mic.id)
    assert baseline is not None and baseline.basis == "computed" and len(baseline.ranks) == len(ours)
    assert find_baseline(store, "2018", "egdi-relative").basis == "published_crosswalk"  # other methodology
    assert find_baseline(store, "2017", mic.id) is None
    assert find_baseline(store, "2018-Q4", mic.id) is None


def test_a_version_1_ranking_still_serves_as_a_baseline(mic: Methodology, tmp_path: Path) -> None:
    import pyarrow as pa

    from egov_index.pipeline import find_baseline

    store = DataStore(tmp_path / "data")
    v1 = pd.DataFrame(
        {
            "period": "2026-Q2",
            "level": ["province", "commune"],
            "unit_code": ["01", "00004"],
            "methodology": mic.id,
            "overall_rank": pd.array([3, 17], dtype="int32"),
        }
    )
    store.publish("ranking", {"period": "2026-Q2"}, pa.Table.from_pandas(v1, preserve_index=False))
    baseline = find_baseline(store, previous_period("2026-Q3"), mic.id)
    assert baseline is not None and baseline.basis == "computed"
    assert baseline.ranks.set_index("unit_code")["overall_rank"].to_dict() == {"01": 3, "00004": 17}
