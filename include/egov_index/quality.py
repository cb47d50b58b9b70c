"""Data-quality gate: run a dataset's Great Expectations suite on one batch.

Every batch is validated with the suite ``expectations/<dataset>.json`` in one GX call and split
three ways, by each expectation's ``severity``:

* a failed **critical table-level** expectation (missing columns, row count, …), a failed critical
  expectation marked ``meta.blocks_batch`` (the ranking's checks) or one that raised an error blocks
  the whole batch: :class:`DataQualityBlocked`;
* a failed **critical row-level** expectation (column-map, column-pair, compound-columns) moves the
  failing rows (GX ``unexpected_index_list``) to quarantine, kept whole with the reasons;
* **warning** (and info) failures never block or quarantine: they are logged and reported.

If the quarantined share exceeds ``max_quarantine_share`` the batch is blocked as well: so many bad
rows mean the source or the mapping is broken, not a few rows.

Every outcome (a blocked one travels in :class:`BatchBlocked`) keeps GX's own validation result
(``gx_result``, per-row lists dropped) for the Data Docs (:mod:`egov_index.data_docs`) and its
expectation results for the validation history (:mod:`egov_index.validation_history`).

Run-time values: small ones (the row-count band) are GX suite parameters (``{"$PARAMETER": name}``);
big code sets (registry communes and provinces, commune-province pairs, the procedure catalogue) are
*reference sets* named in the suite and checked by the custom expectations of
:mod:`egov_index.gx_expectations`, which look the values up at evaluation time: GX re-serialises an
expectation's kwargs over a hundred times per run, so a 3,321-code set in the kwargs costs seconds
per batch whatever its size. Both come from the same ``parameters`` (defaults: :func:`default_parameters`).

Nulls: map expectations skip nulls, so a nullable count (not reported) passes the range and pair
checks; every column the schema declares non-nullable has its own critical not-null expectation.
Duplicates: every row sharing a duplicated key is quarantined, since the gate cannot tell which
copy is current (deduplicate re-sent versions before validating).

GX is imported only inside functions: importing this module stays light for DAG parsing.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from egov_index.errors import DataQualityBlocked
from egov_index.schemas import QUARANTINE_SCHEMA, RECORD_KEYS

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

log = logging.getLogger(__name__)

Action = Literal["passed", "warned", "quarantined", "blocked"]
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
EXAMPLES = 5
DEFAULT_MAX_ROWS = 2_000_000
# GX's per-row lists, dropped from the kept GX result once the quarantine is split off (a few
# examples stay in partial_unexpected_list).
PER_ROW_KEYS = ("unexpected_list", "unexpected_index_list")
# the kwarg of egov_index.gx_expectations' expectations that names their reference set
REFERENCE_SET_KWARG = "reference_set"


class BatchBlocked(DataQualityBlocked):
    """DataQualityBlocked carrying the blocked batch's outcome, so it reaches the history and the docs.

    ``outcome.blocked`` is the message; its ``valid`` and ``quarantine`` are empty (nothing is written).
    """

    def __init__(self, message: str, outcome: ValidationOutcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.results: list[ExpectationResult] = [] if outcome is None else outcome.results


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one expectation on one batch, reduced to plain values."""

    dataset: str
    partition: str
    expectation: str
    columns: tuple[str, ...]
    severity: str
    success: bool
    action: Action
    element_count: int | None
    unexpected_count: int | None
    examples: tuple[Any, ...]
    reason: str
    error: str | None = None

    @property
    def column(self) -> str | None:
        """The column names joined with commas; None for a whole-table expectation."""
        return ",".join(self.columns) or None


@dataclass(frozen=True)
class ValidationOutcome:
    """A validated batch: rows to write, rows held back with reasons, and every expectation's result.

    ``gx_result`` is GX's ExpectationSuiteValidationResult (per-row lists dropped), ``gx_seconds`` the
    wall time of the GX call, ``blocked`` the gate's message when the batch was blocked.
    """

    dataset: str
    partition: str
    rows_in: int
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    results: list[ExpectationResult]
    validated_at: datetime
    gx_seconds: float
    gx_result: ExpectationSuiteValidationResult = field(repr=False, compare=False)
    blocked: str | None = None

    @property
    def status(self) -> Action:
        """The batch's fate: blocked, else quarantined (some rows), warned, or passed."""
        if self.blocked is not None:
            return "blocked"
        if len(self.quarantine):
            return "quarantined"
        return "warned" if any(r.action == "warned" for r in self.results) else "passed"


# --- suites and parameters ------------------------------------------------------------------------


def load_suite(dataset: str, suite_dir: Path) -> dict[str, Any]:
    """Read ``<suite_dir>/<dataset>.json`` and check every expectation has a severity and a reason."""
    path = Path(suite_dir) / f"{dataset}.json"
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if spec.get("name") != dataset:
        raise ValueError(f"{path}: suite name {spec.get('name')!r} must be {dataset!r}")
    for number, expectation in enumerate(spec.get("expectations", []), start=1):
        where = f"{path}: expectation {number} ({expectation.get('type')})"
        if expectation.get("severity") not in SEVERITIES:
            raise ValueError(f"{where}: severity must be one of {SEVERITIES}")
        if not str(expectation.get("meta", {}).get("reason", "")).strip():
            raise ValueError(f"{where}: meta.reason must explain what is wrong and why it matters")
    return spec


def reference_set_names(spec: Mapping[str, Any]) -> set[str]:
    """Names of the reference sets the suite's reference-set expectations look up at run time."""
    return {
        kwargs[REFERENCE_SET_KWARG]
        for e in spec.get("expectations", [])
        if isinstance((kwargs := e.get("kwargs") or {}).get(REFERENCE_SET_KWARG), str)
    }


def gx_parameter_names(spec: Mapping[str, Any]) -> set[str]:
    """Names of the ``{"$PARAMETER": name}`` values (GX suite parameters) in a suite."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("$PARAMETER"), str):
                found.add(node["$PARAMETER"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec.get("expectations", []))
    return found


def suite_parameter_names(spec: Mapping[str, Any]) -> set[str]:
    """Names of every run-time value a suite needs: GX suite parameters and reference sets."""
    return gx_parameter_names(spec) | reference_set_names(spec)


def default_row_count_band(dataset: str) -> dict[str, int]:
    """The wide row-count band used without history: 1 .. communes (reports) or 1 .. 2,000,000."""
    if dataset != "commune_reports":
        return {"row_count_min": 1, "row_count_max": DEFAULT_MAX_ROWS}
    from egov_index.registry import current_units

    return {"row_count_min": 1, "row_count_max": len(current_units().communes)}


def default_parameters(dataset: str) -> dict[str, Any]:
    """Run-time values known without the caller: the registry's reference sets and the row-count band.

    ``procedure_codes`` (dossiers' reference set) has no default: pass the current catalogue's codes.
    A band from recent history: :func:`egov_index.validation_history.row_count_band`.
    """
    from egov_index.registry import current_units

    units = current_units()
    communes = units.communes
    return {
        "commune_codes": units.commune_codes(),
        "province_codes": units.province_codes(),
        "commune_province_pairs": [
            [c, p] for c, p in zip(communes["commune_code"], communes["province_code"], strict=True)
        ],
        **default_row_count_band(dataset),
    }


# --- GX plumbing (imported lazily) -----------------------------------------------------------------


def import_gx() -> ModuleType:
    """Import GX with its usage analytics switched off (the variable must be set first).

    Also registers this project's custom expectations (:mod:`egov_index.gx_expectations`), so every
    suite and every saved result that uses them can be built, validated and rendered.
    """
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import great_expectations

    import egov_index.gx_expectations  # noqa: F401  (registers the expectations and their metrics)

    return great_expectations


@cache
def _batch_definition() -> BatchDefinition:
    """One ephemeral GX context per process, without analytics or progress bars."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX labels every pandas batch with an MD5 of the whole frame (batch_markers, read by nothing),
    # twice per Batch.validate: about 40 % of the GX time on 1 M rows. GX itself skips it above 1 GB.
    if not hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        raise RuntimeError("great_expectations changed: pandas_execution_engine.HASH_THRESHOLD is gone")
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("egov_index").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole_batch")


def _gx_suite(spec: Mapping[str, Any], positions: Iterable[int] | None = None) -> ExpectationSuite:
    """Build the GX suite (only the expectations at ``positions``, if given); GX silently drops
    invalid expectations, so a lost one is an error here."""
    gx = import_gx()
    # ids: the position in the suite as a UUID (GX serialises results only with UUID ids); the
    # results are sorted back into suite order by it
    chosen = range(len(spec["expectations"])) if positions is None else sorted(positions)
    expectations = [{**spec["expectations"][i], "id": str(uuid.UUID(int=i))} for i in chosen]
    suite = gx.ExpectationSuite(name=spec["name"], expectations=expectations, meta=spec.get("meta"))
    if len(suite.expectations) != len(expectations):
        raise ValueError(
            f"suite {spec['name']!r}: GX accepted {len(suite.expectations)} of "
            f"{len(expectations)} expectations; see the GX error logged above"
        )
    return suite


def _position(result: ExpectationValidationResult) -> int:
    """An expectation's position in its suite (its id, see :func:`_gx_suite`)."""
    return uuid.UUID(result.expectation_config.id).int


def _needs_failing_rows(result: ExpectationValidationResult) -> bool:
    """A failed row-level expectation that GX evaluated: the rows it names may go to quarantine."""
    details = result.result or {}
    return not result.success and "unexpected_count" in details and _error(result) is None


def _gx_view(frame: pd.DataFrame, key: str | None) -> pd.DataFrame:
    """The same rows and values in types GX evaluates vectorised (same index, so row labels match).

    String columns other than the record key become categoricals (GX filters and compares codes,
    not Arrow strings); nullable integers without missing values become int64 (GX's range check
    goes value by value on nullable integers).
    """
    view = frame.copy(deep=False)
    for column, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.StringDtype) and column != key:
            view[column] = frame[column].astype("category")
        elif isinstance(dtype, pd.Int64Dtype) and not frame[column].hasnans:
            view[column] = frame[column].to_numpy(dtype="int64")
    return view


def _run_suite(
    spec: Mapping[str, Any], frame: pd.DataFrame, parameters: Mapping[str, Any]
) -> ExpectationSuiteValidationResult:
    """The suite on the batch; the results come back in suite order.

    Two GX calls at most: the whole suite with GX's ``BASIC`` result format (counts, observed values,
    a few examples), then, only if some row-level expectations failed, those expectations again with
    ``COMPLETE``, which lists every failing row (the quarantine needs them). Their ``COMPLETE`` results
    replace the ``BASIC`` ones. ``COMPLETE`` on the whole suite would cost about 60 % more on a small
    batch, since GX plans its per-row metrics for every expectation, passing or not (docs/data-quality.md,
    *Cost*).

    GX gets only the ``$PARAMETER`` values the suite uses; the reference sets are held for the call
    (:func:`egov_index.gx_expectations.reference_sets`), never copied into the expectations.
    """
    from egov_index.gx_expectations import reference_sets

    sets = {name: parameters[name] for name in reference_set_names(spec)}
    gx_parameters = {name: parameters[name] for name in gx_parameter_names(spec)}
    view = _gx_view(frame, RECORD_KEYS.get(spec["name"]))
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": view})

    def validate(suite: ExpectationSuite, result_format: str) -> ExpectationSuiteValidationResult:
        return batch.validate(
            suite,
            expectation_parameters=gx_parameters,
            result_format={
                "result_format": result_format,
                "partial_unexpected_count": EXAMPLES,
                "return_unexpected_index_query": False,
            },
        )

    with warnings.catch_warnings(), reference_sets(sets):
        # GX's pandas engine reads Series.values of tz-aware columns; pandas 3.1 warns on every call.
        warnings.filterwarnings("ignore", "Series.values returning an ndarray", DeprecationWarning)
        validation = validate(_gx_suite(spec), "BASIC")
        if failing := {_position(r) for r in validation.results if _needs_failing_rows(r)}:
            complete = {_position(r): r for r in validate(_gx_suite(spec, failing), "COMPLETE").results}
            if complete.keys() != failing:
                raise RuntimeError(f"suite {spec['name']!r}: GX returned no COMPLETE result for some expectations")
            validation.results = [complete.get(_position(r), r) for r in validation.results]
    validation.results = sorted(validation.results, key=_position)
    return validation


# --- reducing GX results ---------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """A JSON-ready scalar: NaN/NaT/NA -> None, timestamps and dates -> ISO text, numpy -> Python."""
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _error(result: ExpectationValidationResult) -> str | None:
    """The exception message if GX failed to evaluate the expectation (flat or per-metric form)."""
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message"))
    return None


def _reduce(
    raw: ExpectationValidationResult, dataset: str, partition: str, rows_in: int
) -> tuple[ExpectationResult, list[int]]:
    """One GX result as an ExpectationResult, plus the failing row labels when rows are quarantined."""
    config = raw.expectation_config
    kwargs = config.kwargs
    severity = getattr(config.severity, "value", str(config.severity))
    meta = config.meta or {}
    details = raw.result or {}
    error = _error(raw)
    row_level = "unexpected_count" in details  # a map expectation (GX counts its failing rows)

    columns: tuple[str, ...] = tuple(
        c for c in (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")) if c
    ) or tuple(kwargs.get("column_list") or ())
    missing = details.get("details", {}).get("mismatched", {}).get("missing") or []
    if row_level:
        examples = tuple(_json_value(v) for v in details.get("partial_unexpected_list", [])[:EXAMPLES])
        unexpected_count = details.get("unexpected_count")
    elif missing:
        columns, examples, unexpected_count = tuple(missing), tuple(missing[:EXAMPLES]), len(missing)
    else:
        observed = details.get("observed_value")
        examples = () if observed is None else (_json_value(observed),)
        unexpected_count = None

    action: Action
    if raw.success and error is None:
        action = "passed"
    elif severity != "critical":
        action = "warned"
    elif error is None and row_level and not meta.get("blocks_batch", False):
        action = "quarantined"
    else:
        action = "blocked"

    result = ExpectationResult(
        dataset=dataset,
        partition=partition,
        expectation=config.type,
        columns=columns,
        severity=severity,
        success=bool(raw.success) and error is None,
        action=action,
        element_count=details.get("element_count", rows_in),
        unexpected_count=unexpected_count,
        examples=examples,
        reason=str(meta.get("reason", "")),
        error=error,
    )
    labels = [int(i) for i in details.get("unexpected_index_list") or []] if action == "quarantined" else []
    return result, labels


def _describe(result: ExpectationResult) -> str:
    where = ", ".join(result.columns) or "the whole table"
    count = "n/a" if result.unexpected_count is None else str(result.unexpected_count)
    text = (
        f"  - {result.expectation} ({result.severity}) on column(s) {where}: {count} unexpected "
        f"of {result.element_count} rows; examples: {list(result.examples)}\n"
        f"    why it matters: {result.reason}"
    )
    return text + (f"\n    GX error: {result.error}" if result.error else "")


def _blocked_message(dataset: str, partition: str, blocked: list[ExpectationResult]) -> str:
    return (
        f"Data-quality gate blocked dataset {dataset!r}, partition {partition!r}: "
        f"{len(blocked)} critical batch-level check(s) failed.\n"
        + "\n".join(_describe(r) for r in blocked)
        + "\nWhat to do: fix the source export, the pull-stage mapping or (for the ranking) the "
        "computation, then re-run this task; nothing from this batch was written."
    )


def _share_message(
    dataset: str, partition: str, results: list[ExpectationResult], bad: int, pulled: int, threshold: float
) -> str:
    top = sorted((r for r in results if r.action == "quarantined"), key=lambda r: -(r.unexpected_count or 0))
    return (
        f"Data-quality gate blocked dataset {dataset!r}, partition {partition!r}: {bad} of {pulled} "
        f"rows ({bad / pulled:.1%}) failed critical row checks (including rows rejected before "
        f"validation), above the {threshold:.1%} threshold. Top reasons:\n"
        + "\n".join(_describe(r) for r in top[:3])
        + "\nWhat to do: so many bad rows usually mean the source or the mapping is broken; fix it and "
        "re-run. If the rows are genuinely bad, re-run with a higher max_quarantine_share."
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- the gate ----------------------------------------------------------------------------------------


def validate_batch(
    dataset: str,
    frame: pd.DataFrame,
    *,
    partition: str,
    parameters: Mapping[str, Any] | None = None,
    suite_dir: Path,
    max_quarantine_share: float = 0.05,
    rows_already_rejected: int = 0,
) -> ValidationOutcome:
    """Validate one batch with its dataset's suite and split it into valid and quarantined rows.

    ``parameters`` override :func:`default_parameters`. ``rows_already_rejected`` (rows an earlier
    stage quarantined from the same pull) count towards the quarantined share. Raises
    :class:`BatchBlocked` (a :class:`DataQualityBlocked`) when a critical batch-level check fails
    or that share exceeds ``max_quarantine_share``.
    """
    spec = load_suite(dataset, suite_dir)
    values = {**default_parameters(dataset), **(parameters or {})}
    if missing := sorted(suite_parameter_names(spec) - values.keys()):
        raise ValueError(f"suite {dataset!r} needs run-time parameters {missing}")

    data = frame.reset_index(drop=True)
    rows_in = len(data)
    validated_at = datetime.now(UTC)
    started = time.perf_counter()
    validation = _run_suite(spec, data, values)
    gx_seconds = time.perf_counter() - started
    reduced = [_reduce(raw, dataset, partition, rows_in) for raw in validation.results]
    results = [result for result, _ in reduced]
    for raw in validation.results:
        for key in PER_ROW_KEYS:
            (raw.result or {}).pop(key, None)

    def blocked_outcome(message: str) -> BatchBlocked:
        nothing = _quarantine_frame(dataset, partition, data.iloc[:0], [])
        outcome = ValidationOutcome(
            dataset,
            partition,
            rows_in,
            valid=data.iloc[:0],
            quarantine=nothing,
            results=results,
            validated_at=validated_at,
            gx_seconds=gx_seconds,
            gx_result=validation,
            blocked=message,
        )
        return BatchBlocked(message, outcome)

    for result in results:
        if result.action == "warned":
            log.warning("data-quality warning: %s", _describe(result).strip())
    if blocked := [r for r in results if r.action == "blocked"]:
        raise blocked_outcome(_blocked_message(dataset, partition, blocked))

    failures: dict[int, list[ExpectationResult]] = {}
    for result, labels in reduced:
        for label in labels:
            failures.setdefault(label, []).append(result)
    bad_rows, pulled = len(failures) + rows_already_rejected, rows_in + rows_already_rejected
    if pulled and bad_rows / pulled > max_quarantine_share:
        raise blocked_outcome(_share_message(dataset, partition, results, bad_rows, pulled, max_quarantine_share))

    positions = sorted(failures)
    keep = np.ones(rows_in, dtype=bool)
    keep[positions] = False
    valid = data[keep].reset_index(drop=True)
    quarantine = _quarantine_frame(dataset, partition, data.iloc[positions], [failures[p] for p in positions])
    assert len(valid) + len(quarantine) == rows_in, "every input row is either valid or quarantined"

    log.info(
        "data quality %s/%s: %d rows in, %d valid, %d quarantined, %d warning(s); GX %.2f s",
        dataset,
        partition,
        rows_in,
        len(valid),
        len(quarantine),
        sum(r.action == "warned" for r in results),
        gx_seconds,
    )
    return ValidationOutcome(
        dataset, partition, rows_in, valid, quarantine, results, validated_at, gx_seconds, validation
    )


def _quarantine_frame(
    dataset: str, partition: str, rows: pd.DataFrame, failed: list[list[ExpectationResult]]
) -> pd.DataFrame:
    """Rows in QUARANTINE_SCHEMA form: names of the failed checks, their reasons, the whole row as JSON."""
    key = RECORD_KEYS.get(dataset)
    records = rows.to_dict(orient="records")
    return pd.DataFrame(
        {
            "dataset": [dataset] * len(records),
            "partition": [partition] * len(records),
            "record_key": [
                None if key is None or _json_value(rec.get(key)) is None else str(rec[key]) for rec in records
            ],
            "expectations": [",".join(_unique(r.expectation for r in rs)) for rs in failed],
            "columns": [",".join(_unique(c for r in rs for c in r.columns)) for rs in failed],
            "reason": [" | ".join(_unique(r.reason for r in rs)) for rs in failed],
            "record_json": [
                json.dumps({str(k): _json_value(v) for k, v in rec.items()}, ensure_ascii=False)
                for rec in records
            ],
        },
        columns=QUARANTINE_SCHEMA.names,
        dtype=object,
    )


def summarize(items: Iterable[ValidationOutcome | BatchBlocked]) -> list[dict[str, Any]]:
    """Rows for the validation-history table, one per expectation per batch (blocked batches too)."""
    return [
        {
            "dataset": r.dataset,
            "partition": r.partition,
            "expectation": r.expectation,
            "column": r.column,
            "severity": r.severity,
            "success": r.success,
            "action": r.action,
            "element_count": r.element_count,
            "unexpected_count": r.unexpected_count,
        }
        for item in items
        for r in item.results
    ]
