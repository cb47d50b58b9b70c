"""Indicator values and the six-category ranking of communes and provinces (pure pandas).

``compute`` turns one period's commune reports and portal dossiers into

* ``indicator_values``: one row per level x unit x indicator (INDICATOR_VALUE_SCHEMA), and
* ``ranking``: one row per level x unit (RANKING_SCHEMA), provinces first, then communes, each by code.

Every unit of the registry appears exactly once per level, with or without data. Commune values come
from the commune's own report and dossiers; province values are aggregated from commune COUNTS
(sum of numerators / sum of denominators), never from commune ratios. The rules are described for users
in docs/methodology.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from egov_index.methodology import DOSSIER_MEASURES, Indicator, Methodology
from egov_index.periods import Period, local_day_window, parse_period, quarters_of
from egov_index.registry import Registry
from egov_index.schemas import CATEGORIES, INDICATOR_VALUE_SCHEMA, RANKING_SCHEMA

log = logging.getLogger(__name__)

# Report fields counted over the quarter (the others are a state at the end of the quarter). For a year,
# a commune's flow fields are the mean of its quarterly reports, its state fields those of its last report.
FLOW_FIELDS: frozenset[str] = frozenset(
    {
        "documents_outgoing",
        "documents_outgoing_signed",
        "documents_incoming",
        "periodic_reports_total",
        "periodic_reports_online",
        "portal_articles_published",
    }
)

# missing_treatment values
ZERO_POINTS = "zero_points"  # no report for the period, or the field is empty in the report
ZERO_DENOMINATOR = "zero_denominator"  # the denominator is 0 (e.g. no dossiers): value null, 0 points
COVERAGE_WEIGHTED = "coverage_weighted"  # province points scaled down: not every commune reported


@dataclass(frozen=True)
class RankingResult:
    indicator_values: pd.DataFrame  # INDICATOR_VALUE_SCHEMA columns
    ranking: pd.DataFrame  # RANKING_SCHEMA columns


@dataclass(frozen=True)
class _Level:
    """One level's units and per-indicator matrices (units x indicators)."""

    name: str
    codes: np.ndarray
    names: np.ndarray
    parents: np.ndarray  # parent (province) code, or None
    has_report: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray
    value: np.ndarray
    factor: np.ndarray  # multiplier of the score (province reporting coverage), 1 otherwise
    missing: np.ndarray  # missing_treatment or None


def dossier_measures(dossiers: pd.DataFrame, procedures: pd.DataFrame) -> pd.DataFrame:
    """Dossier counts per commune: one row per commune with dossiers, columns commune_code + DOSSIER_MEASURES.

    If a dossier appears more than once (several export partitions), its latest version (updated_at) counts.
    """
    if dossiers["dossier_id"].duplicated().any():
        dossiers = dossiers.sort_values("updated_at", kind="stable").drop_duplicates(
            "dossier_id", keep="last"
        )
    full_online = procedures.loc[procedures["service_level"] == "full_online", "procedure_code"].astype(str)
    channel = dossiers[
        "channel"
    ]  # compared as is: astype(str) of a 1M-row categorical costs more than the rest
    online = (channel == "online").to_numpy(dtype=bool)
    resolved = (dossiers["status"] == "resolved").to_numpy(dtype=bool)
    resolved_at = pd.to_datetime(dossiers["resolved_at"], utc=True)
    on_time = (resolved_at <= pd.to_datetime(dossiers["due_at"], utc=True)).to_numpy()  # NaT compares False
    with_fee = (dossiers["fee_vnd"].fillna(0) > 0).to_numpy()
    is_full_online = dossiers["procedure_code"].isin(full_online.tolist()).to_numpy(dtype=bool)
    flags = pd.DataFrame(
        {
            "commune_code": dossiers["commune_code"].array,
            "received": np.ones(len(dossiers), dtype=bool),
            "online": online,
            "postal": (channel == "postal").to_numpy(dtype=bool),
            "resolved": resolved,
            "resolved_on_time": resolved & on_time,
            "with_fee": with_fee,
            "paid_online": with_fee & _flag(dossiers["paid_online"]),
            "digitised": _flag(dossiers["digitised"]),
            "full_online_procedure": is_full_online,
            "full_online_procedure_online": is_full_online & online,
        }
    )
    counts = flags.groupby("commune_code", observed=True).sum().astype("int64")
    counts.index = counts.index.astype(str)
    counts = counts.sort_index()
    return counts[list(DOSSIER_MEASURES)].reset_index()


def compute(
    reports: pd.DataFrame,
    dossiers: pd.DataFrame,
    procedures: pd.DataFrame,
    registry: Registry,
    period: str,
    methodology: Methodology,
) -> RankingResult:
    """Indicator values and ranking of every commune and province of ``registry`` for ``period``.

    ``reports`` may hold other periods (only the period's quarters are used); ``dossiers`` are those
    received in the period (local Vietnam days), whatever else is passed.
    """
    parsed = parse_period(period)
    indicators = methodology.indicators
    communes = registry.communes.astype({"commune_code": str, "province_code": str}).sort_values(
        "commune_code"
    )
    provinces = registry.provinces.astype({"province_code": str}).sort_values("province_code")
    codes = pd.Index(communes["commune_code"])

    report_values, has_report = _period_reports(reports, parsed, indicators, codes)
    counts = dossier_measures(_received_in(dossiers, parsed), procedures).set_index("commune_code")
    _warn_unknown("dossier", counts.index, counts["received"], codes)
    measures = counts.reindex(codes, fill_value=0)

    commune = _commune_level(communes, report_values, has_report, measures, indicators)
    province_index = pd.Index(provinces["province_code"]).get_indexer(communes["province_code"])
    province = _province_level(provinces, province_index, commune, indicators)

    levels = (province, commune)  # row order of both outputs: provinces first, then communes, each by code
    points = {level.name: _points(level, indicators) for level in levels}
    values = pd.concat(
        [_indicator_frame(level, points[level.name], indicators, period, methodology.id) for level in levels],
        ignore_index=True,
    )
    ranking = pd.concat(
        [_ranking_frame(level, points[level.name], period, methodology) for level in levels],
        ignore_index=True,
    )
    return RankingResult(indicator_values=values, ranking=ranking)


def _flag(column: pd.Series) -> np.ndarray:
    """A yes/no column as a numpy bool array, null = False."""
    return column.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _as_float(column: pd.Series) -> pd.Series:
    """A count or yes/no column as float64 (yes = 1, no = 0), null = NaN."""
    return pd.Series(column.astype("Float64").to_numpy(dtype=float, na_value=np.nan), index=column.index)


def _warn_unknown(what: str, unit_codes: pd.Index, rows: pd.Series, known: pd.Index) -> None:
    """Log how many rows (``rows`` per code) name a commune outside the registry."""
    unknown = int(rows[known.get_indexer(unit_codes) < 0].sum())
    if unknown:
        log.warning("%d %s row(s) name a commune outside the registry and are ignored", unknown, what)


def _period_reports(
    reports: pd.DataFrame, period: Period, indicators: tuple[Indicator, ...], codes: pd.Index
) -> tuple[pd.DataFrame, np.ndarray]:
    """The report fields the indicators use, one row per registry commune (NaN if no report), and has_report.

    The last submitted report of each commune and quarter counts. For a year, flow fields are the mean
    over the commune's quarterly reports and state fields come from its latest quarter.
    """
    fields = sorted(
        {t for i in indicators if i.source == "commune_reports" for t in (i.numerator, i.denominator) if t}
    )
    missing = sorted({"commune_code", "period", "submitted_at", *fields} - set(reports.columns))
    if missing:
        raise ValueError(f"commune reports lack column(s) needed by the methodology: {', '.join(missing)}")
    frame = reports[["commune_code", "period", "submitted_at"]].astype({"commune_code": str, "period": str})
    for field in fields:
        frame[field] = _as_float(reports[field])
    frame = frame[frame["period"].isin(quarters_of(period))]
    per_commune = frame["commune_code"].value_counts()
    _warn_unknown("report", per_commune.index, per_commune, codes)
    frame = frame[codes.get_indexer(frame["commune_code"]) >= 0]
    frame = frame.sort_values(["period", "submitted_at"], kind="stable").drop_duplicates(
        ["commune_code", "period"], keep="last"
    )
    state = [f for f in fields if f not in FLOW_FIELDS]
    flow = [f for f in fields if f in FLOW_FIELDS]
    latest = frame.drop_duplicates("commune_code", keep="last").set_index("commune_code")[state]
    means = frame.groupby("commune_code")[flow].mean()
    values = latest.join(means).reindex(codes)
    has_report = pd.Series(True, index=latest.index).reindex(codes, fill_value=False).to_numpy(dtype=bool)
    return values, has_report


def _received_in(dossiers: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Dossiers received between the period's first and last local (Asia/Ho_Chi_Minh) day."""
    start, end = local_day_window(period.start).start, local_day_window(period.end).end
    received = pd.to_datetime(dossiers["received_at"], utc=True)
    return dossiers[(received >= start) & (received < end)]


def _commune_level(
    communes: pd.DataFrame,
    report_values: pd.DataFrame,
    has_report: np.ndarray,
    measures: pd.DataFrame,
    indicators: tuple[Indicator, ...],
) -> _Level:
    n = len(communes)
    numerator = np.empty((n, len(indicators)))
    denominator = np.empty_like(numerator)
    one_per_report = np.where(has_report, 1.0, np.nan)
    for j, ind in enumerate(indicators):
        if ind.source == "dossiers":
            numerator[:, j] = measures[ind.numerator].to_numpy(dtype=float)
            denominator[:, j] = measures[ind.denominator].to_numpy(dtype=float)
        else:
            numerator[:, j] = report_values[ind.numerator].to_numpy()
            denominator[:, j] = (
                report_values[ind.denominator].to_numpy() if ind.denominator else one_per_report
            )
    valid = ~np.isnan(numerator) & ~np.isnan(denominator)
    positive = valid & (denominator > 0)
    missing = np.where(~valid, ZERO_POINTS, np.where(positive, None, ZERO_DENOMINATOR))
    return _Level(
        name="commune",
        codes=communes["commune_code"].to_numpy(dtype=object),
        names=communes["commune_name"].to_numpy(dtype=object),
        parents=communes["province_code"].to_numpy(dtype=object),
        has_report=has_report,
        numerator=numerator,
        denominator=denominator,
        value=_divide(numerator, denominator),
        factor=np.ones_like(numerator),
        missing=missing,
    )


def _province_level(
    provinces: pd.DataFrame, province_index: np.ndarray, commune: _Level, indicators: tuple[Indicator, ...]
) -> _Level:
    """Aggregate commune counts to provinces.

    Report-based indicators use the communes with a usable value (sum of numerators / sum of denominators)
    and their score is multiplied by the share of communes with a usable value (coverage), so a missing
    report never raises a province's points. Yes/no items are the share of ALL the province's communes
    answering yes (no report = no), which is the same thing. Dossier measures are summed over all communes.
    """
    n_provinces = len(provinces)

    def total(matrix: np.ndarray) -> np.ndarray:
        sums = pd.DataFrame(matrix).groupby(province_index).sum()
        return sums.reindex(range(n_provinces), fill_value=0).to_numpy(dtype=float)

    valid = ~np.isnan(commune.numerator) & ~np.isnan(commune.denominator)
    sum_num = total(np.where(valid, commune.numerator, 0.0))
    sum_den = total(np.where(valid, commune.denominator, 0.0))
    n_valid = total(valid.astype(float))
    n_communes = np.bincount(province_index, minlength=n_provinces).astype(float)[:, None]
    coverage = n_valid / np.maximum(n_communes, 1)

    from_reports = np.array([i.source == "commune_reports" for i in indicators])
    yes_no = np.array([i.scoring == "yes_no" for i in indicators])
    numerator = np.where(from_reports & (n_valid == 0), np.nan, sum_num)
    denominator = np.where(yes_no, n_communes, np.where(from_reports & (n_valid == 0), np.nan, sum_den))
    factor = np.where(from_reports & ~yes_no, coverage, 1.0)
    missing = np.where(
        from_reports & (n_valid == 0),
        ZERO_POINTS,
        np.where(
            ~(denominator > 0),
            ZERO_DENOMINATOR,
            np.where(from_reports & (coverage < 1), COVERAGE_WEIGHTED, None),
        ),
    )
    return _Level(
        name="province",
        codes=provinces["province_code"].to_numpy(dtype=object),
        names=provinces["province_name"].to_numpy(dtype=object),
        parents=np.full(n_provinces, None, dtype=object),
        has_report=total(commune.has_report[:, None].astype(float))[:, 0] > 0,
        numerator=numerator,
        denominator=denominator,
        value=_divide(numerator, denominator),
        factor=factor,
        missing=missing,
    )


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator where the denominator is positive, NaN elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _score_fraction(value: np.ndarray, indicator: Indicator) -> np.ndarray:
    """The share of max points one indicator's values earn, in [0, 1]; NaN values earn 0."""
    if indicator.scoring == "relative_to_best":
        best = np.nanmax(value) if np.isfinite(value).any() else 0.0
        fraction = value / best if best > 0 else np.zeros_like(value)
    elif indicator.scoring == "goalposts":
        assert indicator.goalposts is not None
        lo, hi = indicator.goalposts.lo, indicator.goalposts.hi
        fraction = (value - lo) / (hi - lo)
    else:  # ratio, yes_no
        fraction = value
    return np.nan_to_num(np.clip(fraction, 0.0, 1.0), nan=0.0)


def _points(level: _Level, indicators: tuple[Indicator, ...]) -> np.ndarray:
    fractions = np.column_stack([_score_fraction(level.value[:, j], ind) for j, ind in enumerate(indicators)])
    return fractions * level.factor * np.array([i.max_points for i in indicators])


def _round_half_up(values: np.ndarray, digits: int) -> np.ndarray:
    """Round to the published precision, halves up (0.7575 -> 0.758), immune to binary noise."""
    scale = 10.0**digits
    return np.floor(np.round(values * scale, 6) + 0.5) / scale


def _competition_rank(values: pd.Series) -> pd.Series:
    """Standard competition ranking ("1224"): 1 + number of strictly higher values."""
    return values.rank(method="min", ascending=False).astype("int32")


def _indicator_frame(
    level: _Level, points: np.ndarray, indicators: tuple[Indicator, ...], period: str, methodology_id: str
) -> pd.DataFrame:
    n_units, n_ind = points.shape
    frame = pd.DataFrame(
        {
            "period": period,
            "level": level.name,
            "unit_code": np.repeat(level.codes, n_ind),
            "parent_code": pd.array(np.repeat(level.parents, n_ind), dtype="str"),
            "methodology": methodology_id,
            "category": np.tile([i.category for i in indicators], n_units),
            "indicator_id": np.tile([i.id for i in indicators], n_units),
            "numerator": level.numerator.ravel(),
            "denominator": level.denominator.ravel(),
            "value": level.value.ravel(),
            "points": points.ravel(),
            "max_points": np.tile([i.max_points for i in indicators], n_units).astype(float),
            "missing_treatment": level.missing.ravel(),
        }
    )
    return frame[INDICATOR_VALUE_SCHEMA.names]


def _ranking_frame(level: _Level, points: np.ndarray, period: str, methodology: Methodology) -> pd.DataFrame:
    precision = methodology.published_precision
    category_of = np.array([i.category for i in methodology.indicators])
    frame = pd.DataFrame(
        {
            "period": period,
            "level": level.name,
            "unit_code": level.codes,
            "unit_name": level.names,
            "parent_code": pd.array(level.parents, dtype="str"),
            "methodology": methodology.id,
            "overall_points": points.sum(axis=1),
            "overall_max_points": methodology.max_points,
        }
    )
    frame["overall_index"] = _round_half_up(
        frame["overall_points"].to_numpy() / methodology.max_points, precision
    )
    frame["overall_rank"] = _competition_rank(frame["overall_index"])
    if level.name == "commune":
        in_province = frame.groupby("parent_code")["overall_index"].rank(method="min", ascending=False)
        frame["overall_rank_in_province"] = in_province.astype("Int32")
    else:
        frame["overall_rank_in_province"] = pd.array([pd.NA] * len(frame), dtype="Int32")
    for category in CATEGORIES:
        category_points = points[:, category_of == category].sum(axis=1)
        index = _round_half_up(category_points / methodology.category(category).max_points, precision)
        frame[f"{category}_index"] = index
        frame[f"{category}_rank"] = _competition_rank(frame[f"{category}_index"])
    frame["has_report"] = level.has_report.astype(bool)
    return frame[RANKING_SCHEMA.names]
