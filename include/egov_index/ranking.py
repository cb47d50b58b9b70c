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
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from egov_index.methodology import DOSSIER_MEASURES, Indicator, Methodology
from egov_index.periods import Period, local_day_window, parse_period, previous_period, quarters_of
from egov_index.registry import Registry
from egov_index.schemas import CATEGORIES, INDICATOR_VALUE_SCHEMA, RANK_BASELINES, RANKING_SCHEMA
from egov_index.scoring import (
    competition_rank,
    competition_rank_within,
    nullable_ranks,
    round_half_up,
    score_fraction,
)

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

# missing_treatment values of indicator_values (and report_treatment values of the ranking)
ZERO_POINTS = "zero_points"  # no report for the period, or the field is empty in the report
ZERO_DENOMINATOR = "zero_denominator"  # the denominator is 0 (e.g. no dossiers): value null, 0 points
COVERAGE_WEIGHTED = "coverage_weighted"  # province points scaled down: not every commune reported
CARRIED_FORWARD = "carried_forward"  # no report for the period: the previous period's report is used
EXCLUDED = "excluded"  # no report for the period: the commune is left out of the ranking


@dataclass(frozen=True)
class LevelScores:
    """One level's scored units: what explanations and the robustness analysis start from.

    Matrices are units x ``indicators`` (the indicators scored at this level).
    """

    name: str  # "province" | "commune"
    codes: np.ndarray
    parents: np.ndarray  # province code of a commune, None for a province
    indicators: tuple[Indicator, ...]
    values: np.ndarray
    factor: np.ndarray  # multiplier of the score (province reporting coverage), 1 otherwise
    fractions: np.ndarray  # share of max points earned, before the factor
    points: np.ndarray
    ranked: np.ndarray  # bool per unit: takes part in the ranking (False = excluded)
    weights: np.ndarray  # effective weight per indicator (sums to 1)
    overall: np.ndarray  # unrounded overall index (NaN when not ranked)
    index: np.ndarray  # overall index at the published precision (NaN when not ranked)
    rank: np.ndarray  # overall rank, 0 when not ranked


@dataclass(frozen=True)
class RankingResult:
    indicator_values: pd.DataFrame  # INDICATOR_VALUE_SCHEMA columns
    ranking: pd.DataFrame  # RANKING_SCHEMA columns (rank changes still empty: see rank_changes)
    levels: dict[str, LevelScores]


@dataclass(frozen=True)
class _Level:
    """One level's units and per-indicator matrices (units x indicators)."""

    name: str
    codes: np.ndarray
    names: np.ndarray
    parents: np.ndarray  # parent (province) code, or None
    has_report: np.ndarray
    reported_share: np.ndarray
    treatment: np.ndarray  # report_treatment per unit
    carried_from: np.ndarray  # period a carried-forward report comes from, or None
    numerator: np.ndarray
    denominator: np.ndarray
    value: np.ndarray
    factor: np.ndarray  # multiplier of the score (province reporting coverage), 1 otherwise
    missing: np.ndarray  # missing_treatment or None


DOSSIER_TALLY_COLUMNS = (
    "dossier_id",
    "commune_code",
    "procedure_code",
    "channel",
    "status",
    "received_at",
    "due_at",
    "resolved_at",
    "updated_at",
    "fee_vnd",
    "paid_online",
    "digitised",
)
"""The dossier columns the indicators read (a snapshot scan needs no other)."""


@dataclass(frozen=True)
class DossierTally:
    """What the indicators need from a period's dossiers, small whatever the number of dossiers.

    ``counts``: one row per commune with dossiers (commune_code + DOSSIER_MEASURES, by code);
    ``online_procedures``: communes (index, by code) x full-online procedures (columns, by code), True
    where the commune had a dossier for that procedure submitted online (a province's "full-online
    procedures used online" is the number of columns with a True in any of its communes).
    """

    counts: pd.DataFrame
    online_procedures: pd.DataFrame


_TIME = pa.timestamp("us", tz="UTC")


def _as_arrow(chunk: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(chunk, pd.DataFrame):
        chunk = pa.Table.from_pandas(chunk[list(DOSSIER_TALLY_COLUMNS)], preserve_index=False)
    table = chunk.select([c for c in DOSSIER_TALLY_COLUMNS if c in chunk.column_names])
    for name in ("commune_code", "procedure_code", "channel", "status"):  # text, or dictionaries of text
        column = table[name]
        if not (pa.types.is_dictionary(column.type) or pa.types.is_string(column.type)):
            table = table.set_column(table.schema.get_field_index(name), name, column.cast(pa.string()))
    for name in ("received_at", "due_at", "resolved_at", "updated_at"):  # one type for comparisons
        if name in table.column_names and table[name].type != _TIME:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, table[name].cast(_TIME))
    return table


def _latest_versions(table: pa.Table) -> pa.Table:
    """One row per dossier_id, the latest updated_at winning (a dossier in several export partitions)."""
    if pc.count_distinct(table["dossier_id"]).as_py() == table.num_rows:
        return table
    frame = table.to_pandas()
    frame = frame.sort_values("updated_at", kind="stable").drop_duplicates("dossier_id", keep="last")
    return pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False)


@dataclass(frozen=True)
class _Codes:
    """A text column as an index per row into its distinct values (-1 for a missing value)."""

    index: np.ndarray
    values: np.ndarray  # object array of the distinct texts

    def matches(self, wanted: set[str]) -> np.ndarray:
        """Per row: is the value one of ``wanted`` (decided once per distinct value; missing: no)."""
        hit = np.array([value in wanted for value in self.values] + [False], dtype=bool)
        return hit[self.index]  # index -1 picks the appended False


def _codes(column: pa.ChunkedArray | pa.Array) -> _Codes:
    """The column's codes, from its dictionary when it has one (snapshot columns do), else encoded."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    array = column.unify_dictionaries().combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    index = pc.fill_null(array.indices, -1).to_numpy(zero_copy_only=False)
    return _Codes(index, np.asarray(array.dictionary.to_pylist(), dtype=object))


def _flag(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A yes/no Arrow column as numpy booleans, missing = no."""
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _chunk_flags(table: pa.Table, full_online: set[str]) -> dict[str, np.ndarray]:
    """The per-dossier yes/no measures of one chunk (DOSSIER_MEASURES but received, as numpy booleans).

    Text columns are compared once per distinct value (their dictionary), not once per row.
    """
    channel, status = _codes(table["channel"]), _codes(table["status"])
    online, resolved = channel.matches({"online"}), status.matches({"resolved"})
    on_time = _flag(pc.less_equal(table["resolved_at"], table["due_at"]))  # still open: not on time
    with_fee = _flag(pc.greater(table["fee_vnd"], 0))
    full = _codes(table["procedure_code"]).matches(full_online)
    return {
        "online": online,
        "postal": channel.matches({"postal"}),
        "resolved": resolved,
        "resolved_on_time": resolved & on_time,
        "resolved_late": resolved & ~on_time,
        "with_fee": with_fee,
        "paid_online": with_fee & _flag(table["paid_online"]),
        "digitised": _flag(table["digitised"]),
        "full_online_procedure": full,
        "full_online_procedure_online": full & online,
    }


def _chunk_tally(table: pa.Table, full_online: set[str]) -> _ChunkCounts:
    """Counts per commune of one chunk: np.bincount over the commune's code index, per measure.

    A dossier without a commune code counts nowhere (it cannot be attributed).
    """
    flags = _chunk_flags(table, full_online)
    communes = _codes(table["commune_code"])
    known = communes.index >= 0
    if not known.all():
        flags = {name: flag & known for name, flag in flags.items()}
    commune = np.where(known, communes.index, 0)  # rows without a commune weigh 0 below
    size = len(communes.values)
    counts = {"received": np.bincount(commune, weights=known, minlength=size)}
    # weighted bincount: float sums of 0/1, exact far beyond any count of dossiers
    counts |= {name: np.bincount(commune, weights=flag, minlength=size) for name, flag in flags.items()}
    present = counts["received"] > 0
    matrix = np.column_stack([counts[name][present] for name in DOSSIER_MEASURES]).astype(np.int64)
    used = flags["full_online_procedure_online"] & known
    procedures = _codes(table["procedure_code"].filter(pa.array(used)))
    width = max(len(procedures.values), 1)
    seen = np.zeros(size * width, dtype=bool)
    seen[communes.index[used].astype(np.int64) * width + procedures.index] = True
    seen = seen.reshape(size, width)[:, : len(procedures.values)]
    rows = seen.any(axis=1)
    online = pd.DataFrame(seen[rows], index=pd.Index(communes.values[rows], dtype=object), columns=procedures.values)
    return _ChunkCounts(communes.values[present], matrix, online)


@dataclass(frozen=True)
class _ChunkCounts:
    """One chunk's counts (rows: communes, columns: DOSSIER_MEASURES) and its online-use matrix."""

    communes: np.ndarray
    counts: np.ndarray
    online: pd.DataFrame  # communes x procedures, True where used online


def tally_dossiers(
    chunks: Iterable[pa.Table | pd.DataFrame],
    procedures: pd.DataFrame,
    window: tuple[datetime, datetime] | None = None,
    distinct_ids: bool = False,
) -> DossierTally:
    """Count the dossiers measures chunk by chunk (snapshot partitions, row groups, frames).

    Only dossiers received in ``window`` (if given) count. Within a chunk a dossier_id seen twice counts
    once, at its latest version, unless ``distinct_ids`` says every chunk already holds each dossier once
    (snapshot partitions do: the merge keeps one row per dossier). Chunks must hold different dossiers
    (snapshot partitions do: each dossier lives in the partition of its received month). Memory: one
    chunk at a time; each is reduced to counts per commune at once.
    """
    full_online = set(
        procedures.loc[procedures["service_level"].astype(str) == "full_online", "procedure_code"].astype(str)
    )
    parts: list[_ChunkCounts] = []
    for chunk in chunks:
        table = _as_arrow(chunk)
        if window is not None:
            received = table["received_at"]
            inside = pc.and_(
                pc.greater_equal(received, pa.scalar(window[0], received.type)),
                pc.less(received, pa.scalar(window[1], received.type)),
            )
            inside = pc.fill_null(inside, False)
            if not pc.all(inside).as_py():  # a snapshot partition is usually all inside
                table = table.filter(inside)
        if table.num_rows:
            parts.append(_chunk_tally(table if distinct_ids else _latest_versions(table), full_online))
    columns = ["commune_code", *DOSSIER_MEASURES]
    if not parts:
        empty = pd.DataFrame({c: pd.Series(dtype="int64" if c != "commune_code" else object) for c in columns})
        return DossierTally(empty, pd.DataFrame(index=pd.Index([], dtype=object, name="commune_code"), dtype=bool))
    stacked = pd.DataFrame(np.vstack([p.counts for p in parts]), columns=list(DOSSIER_MEASURES))
    stacked.insert(0, "commune_code", np.concatenate([p.communes for p in parts]).astype(str))
    counts = stacked.groupby("commune_code", sort=True).sum().reset_index()[columns]
    used = pd.concat([p.online for p in parts]).fillna(False).astype(bool).groupby(level=0).any()
    used = used.reindex(columns=sorted(used.columns)).sort_index()
    used.index = used.index.astype(str)
    return DossierTally(counts.astype({name: "int64" for name in DOSSIER_MEASURES}), used)


def dossier_measures(dossiers: pd.DataFrame | pa.Table, procedures: pd.DataFrame) -> pd.DataFrame:
    """Dossier counts per commune: one row per commune with dossiers, columns commune_code + DOSSIER_MEASURES.

    If a dossier appears more than once (several export partitions), its latest version (updated_at) counts.
    """
    return tally_dossiers([dossiers], procedures).counts


def _as_float(column: pd.Series) -> pd.Series:
    """A count or yes/no column as float64 (yes = 1, no = 0), null = NaN."""
    return pd.Series(column.astype("Float64").to_numpy(dtype=float, na_value=np.nan), index=column.index)


def _warn_unknown(what: str, unit_codes: pd.Index, rows: pd.Series, known: pd.Index) -> None:
    """Log how many rows (``rows`` per code) name a commune outside the registry."""
    unknown = int(rows[known.get_indexer(unit_codes) < 0].sum())
    if unknown:
        log.warning("%d %s row(s) name a commune outside the registry and are ignored", unknown, what)


def province_measures(
    dossiers: DossierTally, procedures: pd.DataFrame, province_of: pd.Series
) -> pd.DataFrame:
    """PROVINCE_MEASURES per province code (index): facts that are not sums over communes.

    ``province_of`` maps commune code -> province code (the registry's); dossiers of unknown communes
    are ignored.
    """
    full_online = procedures.loc[procedures["service_level"] == "full_online", "procedure_code"].astype(str)
    offered = int(full_online.nunique())
    matrix = dossiers.online_procedures
    provinces_of_rows = pd.Series(matrix.index, index=matrix.index).map(province_of)
    known = provinces_of_rows.notna().to_numpy()
    per_province = matrix[known].groupby(provinces_of_rows[known].to_numpy()).any().sum(axis=1)
    provinces = pd.Index(sorted(set(province_of)))
    return pd.DataFrame(
        {
            "full_online_procedures": float(offered),
            "full_online_procedures_used_online": per_province.reindex(provinces, fill_value=0).astype(float),
        },
        index=provinces,
    )


def compute(
    reports: pd.DataFrame,
    dossiers: pd.DataFrame | DossierTally,
    procedures: pd.DataFrame,
    registry: Registry,
    period: str,
    methodology: Methodology,
) -> RankingResult:
    """Indicator values and ranking of every commune and province of ``registry`` for ``period``.

    ``reports`` may hold other periods: the period's quarters are used, and the previous period's when
    the methodology carries a missing report forward; of ``dossiers`` those received in the period
    (local Vietnam days) count, whatever else is passed. A :class:`DossierTally` (from
    :func:`tally_dossiers`, e.g. over snapshot partitions one at a time) must already be the period's.
    """
    parsed = parse_period(period)
    communes = registry.communes.astype({"commune_code": str, "province_code": str}).sort_values(
        "commune_code"
    )
    provinces = registry.provinces.astype({"province_code": str}).sort_values("province_code")
    codes = pd.Index(communes["commune_code"])
    # every indicator whose commune values exist (province-only dossier indicators aggregate from them)
    from_communes = tuple(i for i in methodology.indicators if i.source != "province_dossiers")

    report_values, has_report = _period_reports(reports, parsed, from_communes, codes)
    treatment = np.where(has_report, "reported", methodology.missing_report.commune).astype(object)
    treatment[treatment == "carry_last_period"] = ZERO_POINTS  # unless a previous report is found below
    treatment[treatment == "exclude"] = EXCLUDED
    carried_from = np.full(len(codes), None, dtype=object)
    if methodology.missing_report.commune == "carry_last_period":
        before = previous_period(period)
        old_values, old_has = _period_reports(reports, parse_period(before), from_communes, codes)
        carried = ~has_report & old_has
        report_values.iloc[np.flatnonzero(carried)] = old_values.iloc[np.flatnonzero(carried)].to_numpy()
        treatment[carried] = CARRIED_FORWARD
        carried_from[carried] = before

    if not isinstance(dossiers, DossierTally):
        dossiers = tally_dossiers([dossiers], procedures, period_window(parsed))
    counts = dossiers.counts.set_index("commune_code")
    _warn_unknown("dossier", counts.index, counts["received"], codes)
    measures = counts.reindex(codes, fill_value=0)

    commune = _commune_level(
        communes, report_values, has_report, treatment, carried_from, measures, from_communes
    )
    province_index = pd.Index(provinces["province_code"]).get_indexer(communes["province_code"])
    province_of = pd.Series(communes["province_code"].to_numpy(), index=codes)
    province = _province_level(
        provinces,
        province_index,
        commune,
        methodology.indicators_at("province"),
        from_communes,
        province_measures(dossiers, procedures, province_of),
    )
    commune = _select(commune, from_communes, methodology.indicators_at("commune"))

    levels = (province, commune)  # row order of both outputs: provinces first, then communes, each by code
    scores = {level.name: _score(level, methodology) for level in levels}
    values = pd.concat(
        [_indicator_frame(level, scores[level.name], period, methodology.id) for level in levels],
        ignore_index=True,
    )
    ranking = pd.concat(
        [_ranking_frame(level, scores[level.name], period, methodology) for level in levels],
        ignore_index=True,
    )
    return RankingResult(indicator_values=values, ranking=ranking, levels=scores)


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


def period_window(period: Period) -> tuple[datetime, datetime]:
    """The period's first to last local (Asia/Ho_Chi_Minh) day as a half-open interval of instants."""
    return local_day_window(period.start).start, local_day_window(period.end).end


def _commune_level(
    communes: pd.DataFrame,
    report_values: pd.DataFrame,
    has_report: np.ndarray,
    treatment: np.ndarray,
    carried_from: np.ndarray,
    measures: pd.DataFrame,
    indicators: tuple[Indicator, ...],
) -> _Level:
    n = len(communes)
    numerator = np.empty((n, len(indicators)))
    denominator = np.empty_like(numerator)
    with_report = (treatment == "reported") | (treatment == CARRIED_FORWARD)
    one_per_report = np.where(with_report, 1.0, np.nan)
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
    from_reports = np.array([i.source == "commune_reports" for i in indicators])
    unit_treatment = treatment[:, None]
    missing = np.where(
        unit_treatment == EXCLUDED,
        EXCLUDED,
        np.where(
            ~valid,
            ZERO_POINTS,
            np.where(
                ~positive,
                ZERO_DENOMINATOR,
                np.where(from_reports & (unit_treatment == CARRIED_FORWARD), CARRIED_FORWARD, None),
            ),
        ),
    )
    return _Level(
        name="commune",
        codes=communes["commune_code"].to_numpy(dtype=object),
        names=communes["commune_name"].to_numpy(dtype=object),
        parents=communes["province_code"].to_numpy(dtype=object),
        has_report=has_report,
        reported_share=has_report.astype(float),
        treatment=treatment,
        carried_from=carried_from,
        numerator=numerator,
        denominator=denominator,
        value=_divide(numerator, denominator),
        factor=np.ones_like(numerator),
        missing=missing,
    )


def _select(level: _Level, indicators: tuple[Indicator, ...], keep: tuple[Indicator, ...]) -> _Level:
    """The level restricted to the ``keep`` indicators (columns of ``indicators``)."""
    columns = [indicators.index(i) for i in keep]
    return replace(
        level,
        numerator=level.numerator[:, columns],
        denominator=level.denominator[:, columns],
        value=level.value[:, columns],
        factor=level.factor[:, columns],
        missing=level.missing[:, columns],
    )


def _province_level(
    provinces: pd.DataFrame,
    province_index: np.ndarray,
    commune: _Level,
    indicators: tuple[Indicator, ...],
    commune_indicators: tuple[Indicator, ...],
    measures: pd.DataFrame,
) -> _Level:
    """Aggregate commune counts to provinces; province-only measures come from ``measures``.

    Report-based indicators use the communes with a usable value (sum of numerators / sum of denominators,
    or the mean of the communes' values with ``aggregation: mean_of_units``) and their score is multiplied
    by the share of communes with a usable value (coverage), so a missing report never raises a province's
    points. Yes/no items are the share of ALL the province's communes answering yes (no report = no),
    which is the same thing. Dossier measures are summed over all communes.
    """
    n_provinces = len(provinces)

    def total(matrix: np.ndarray) -> np.ndarray:
        sums = pd.DataFrame(matrix).groupby(province_index).sum()
        return sums.reindex(range(n_provinces), fill_value=0).to_numpy(dtype=float)

    columns = [commune_indicators.index(i) if i in commune_indicators else -1 for i in indicators]
    take = [max(c, 0) for c in columns]
    numerator_c, denominator_c = commune.numerator[:, take], commune.denominator[:, take]
    valid = ~np.isnan(numerator_c) & ~np.isnan(denominator_c)
    mean_of_units = np.array([i.aggregation == "mean_of_units" for i in indicators])
    value_c = _divide(numerator_c, denominator_c)
    usable = valid & (~mean_of_units | ~np.isnan(value_c))
    sum_num = total(np.where(usable, np.where(mean_of_units, value_c, numerator_c), 0.0))
    sum_den = total(np.where(usable, np.where(mean_of_units, 1.0, denominator_c), 0.0))
    n_valid = total(usable.astype(float))
    n_communes = np.bincount(province_index, minlength=n_provinces).astype(float)[:, None]
    coverage = n_valid / np.maximum(n_communes, 1)

    from_reports = np.array([i.source == "commune_reports" for i in indicators])
    yes_no = np.array([i.scoring == "yes_no" for i in indicators])
    numerator = np.where(from_reports & (n_valid == 0), np.nan, sum_num)
    denominator = np.where(yes_no, n_communes, np.where(from_reports & (n_valid == 0), np.nan, sum_den))
    codes = provinces["province_code"].to_numpy(dtype=object)
    for j, ind in enumerate(indicators):
        if ind.source == "province_dossiers":
            numerator[:, j] = measures[ind.numerator].reindex(codes, fill_value=0).to_numpy(dtype=float)
            denominator[:, j] = measures[ind.denominator].reindex(codes, fill_value=0).to_numpy(dtype=float)
    factor = np.where(from_reports & ~yes_no, coverage, 1.0)
    missing = np.where(
        from_reports & (n_valid == 0),
        ZERO_POINTS,
        np.where(
            ~(denominator > 0),
            ZERO_DENOMINATOR,
            np.where(from_reports & ~yes_no & (coverage < 1), COVERAGE_WEIGHTED, None),
        ),
    )
    reported = total(commune.has_report[:, None].astype(float))[:, 0]
    share = reported / np.maximum(n_communes[:, 0], 1)
    return _Level(
        name="province",
        codes=codes,
        names=provinces["province_name"].to_numpy(dtype=object),
        parents=np.full(n_provinces, None, dtype=object),
        has_report=reported > 0,
        reported_share=share,
        treatment=np.where(share >= 1, "reported", np.where(share > 0, "partial", "none")).astype(object),
        carried_from=np.full(n_provinces, None, dtype=object),
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


def score_level(
    name: str,
    codes: np.ndarray,
    parents: np.ndarray,
    values: np.ndarray,
    factor: np.ndarray,
    ranked: np.ndarray,
    methodology: Methodology,
) -> LevelScores:
    """Points, overall index and rank of one level's units from their indicator values.

    ``values`` is units x ``methodology.indicators_at(name)``; relative rules compare the ranked units.
    """
    indicators = methodology.indicators_at(name)
    fractions = np.zeros_like(values, dtype=float)
    for j, ind in enumerate(indicators):
        fractions[:, j] = np.where(ranked, score_fraction(values[:, j], ind, ranked), 0.0)  # excluded: none
    max_points = np.array([i.max_points for i in indicators])
    points = fractions * factor * max_points
    weights = np.array([methodology.effective_weights(name)[i.id] for i in indicators])
    overall = np.where(ranked, (points / max_points) @ weights, np.nan)
    index = round_half_up(overall, methodology.published_precision)
    return LevelScores(
        name=name,
        codes=codes,
        parents=parents,
        indicators=indicators,
        values=values,
        factor=factor,
        fractions=fractions,
        points=points,
        ranked=ranked,
        weights=weights,
        overall=overall,
        index=index,
        rank=competition_rank(index),
    )


def _score(level: _Level, methodology: Methodology) -> LevelScores:
    return score_level(
        level.name,
        level.codes,
        level.parents,
        level.value,
        level.factor,
        level.treatment != EXCLUDED,
        methodology,
    )


def _indicator_frame(level: _Level, scores: LevelScores, period: str, methodology_id: str) -> pd.DataFrame:
    indicators = scores.indicators
    n_units, n_ind = scores.points.shape
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
            "points": scores.points.ravel(),
            "max_points": np.tile([i.max_points for i in indicators], n_units).astype(float),
            "missing_treatment": level.missing.ravel(),
        }
    )
    return frame[INDICATOR_VALUE_SCHEMA.names]


def _ranking_frame(level: _Level, scores: LevelScores, period: str, methodology: Methodology) -> pd.DataFrame:
    precision = methodology.published_precision
    ranked = scores.ranked
    category_of = np.array([i.category for i in scores.indicators])
    frame = pd.DataFrame(
        {
            "period": period,
            "level": level.name,
            "unit_code": level.codes,
            "unit_name": level.names,
            "parent_code": pd.array(level.parents, dtype="str"),
            "methodology": methodology.id,
            "report_treatment": level.treatment,
            "carried_from_period": pd.array(level.carried_from, dtype="str"),
            "reported_share": level.reported_share,
            "overall_points": np.where(ranked, scores.points.sum(axis=1), np.nan),
            "overall_max_points": methodology.max_points_at(level.name),
            "overall_index": scores.index,
            "overall_rank": nullable_ranks(scores.rank),
        }
    )
    is_commune = level.name == "commune"
    frame["overall_rank_in_province"] = (
        nullable_ranks(competition_rank_within(scores.index, level.parents))
        if is_commune
        else pd.array([pd.NA] * len(frame), dtype="Int32")
    )
    for category in CATEGORIES:
        category_max = methodology.category(category).max_points_at(level.name)
        category_points = scores.points[:, category_of == category].sum(axis=1)
        index = np.where(ranked, round_half_up(category_points / category_max, precision), np.nan)
        frame[f"{category}_index"] = index
        frame[f"{category}_rank"] = nullable_ranks(competition_rank(index))
        frame[f"{category}_rank_in_province"] = (
            nullable_ranks(competition_rank_within(index, level.parents))
            if is_commune
            else pd.array([pd.NA] * len(frame), dtype="Int32")
        )
    for baseline in RANK_BASELINES:
        frame[f"{baseline}_period"] = pd.array([None] * len(frame), dtype="str")
        frame[f"{baseline}_basis"] = pd.array([None] * len(frame), dtype="str")
        frame[f"{baseline}_rank"] = pd.array([pd.NA] * len(frame), dtype="Int32")
        frame[f"{baseline}_rank_change"] = pd.array([pd.NA] * len(frame), dtype="Int32")
    frame["has_report"] = level.has_report.astype(bool)
    return frame[RANKING_SCHEMA.names]
