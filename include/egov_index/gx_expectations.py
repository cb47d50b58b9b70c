"""GX custom expectations that check values against a *reference set* named in the suite.

The registry's codes (3,321 communes, 34 provinces, each commune's province) and the day's procedure
catalogue are too big to sit in an expectation's kwargs: GX re-serialises every expectation's
configuration (pydantic ``dict()``) well over a hundred times per validation, element by element,
so a 3,321-element ``value_set`` costs about 0.5 s and 3,321 ``value_pairs_set`` pairs about 3 s on
every batch, whatever its size. These expectations carry only the set's *name*; the metric looks the
values up when GX evaluates it, from the sets handed in for the duration of one validation call
(:func:`reference_sets`, used by :func:`egov_index.quality.validate_batch` with its run-time
parameters, so a caller's ``parameters`` still override the registry defaults).

* ``expect_column_values_to_be_in_reference_set`` (``column``, ``reference_set``): a column map
  expectation, like ``expect_column_values_to_be_in_set``; nulls are skipped.
* ``expect_column_pair_values_to_be_in_reference_set`` (``column_A``, ``column_B``,
  ``reference_set``, ``ignore_row_if`` default ``both_values_are_missing``): a column pair map
  expectation, like ``expect_column_pair_values_to_be_in_set``; the set holds ``[a, b]`` pairs.

Both report ``unexpected_index_list`` and examples exactly as the built-in ones (they use the same
base classes and map-metric machinery), so the gate quarantines their failing rows the same way.
Pandas only (the gate's one engine). Evaluated outside :func:`reference_sets`, or with a name that
was not handed in, the metric raises: GX records the error and the gate blocks the batch.

Importing this module imports GX and registers the expectations and their metrics;
:func:`egov_index.quality.import_gx` does it, so import GX through that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from great_expectations.compatibility.pydantic import Field, StrictStr
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.renderer_configuration import RendererConfiguration, RendererValueType
from great_expectations.render.util import parse_row_condition_string

REFERENCE_SET_KWARG = "reference_set"  # the kwarg naming the set (egov_index.quality reads it too)
REFERENCE_SET_DESCRIPTION = (
    "The name of a reference set whose values are supplied at validation time "
    "(egov_index.gx_expectations.reference_sets), not stored in the suite."
)


# --- the sets, held for one validation call -------------------------------------------------------


class ReferenceSets:
    """Named reference sets for one validation call, converted on first use (once per call).

    A set is any list-like of values (list, tuple, set, NumPy array, pandas Series) or of ``[a, b]``
    pairs (or a two-column DataFrame); a string, a mapping or a scalar is refused at once.
    """

    def __init__(self, sets: Mapping[str, Iterable[Any]]) -> None:
        for name, raw in sets.items():
            if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Iterable | pd.DataFrame):
                raise TypeError(f"reference set {name!r} must be a list of values, got {type(raw).__name__}")
        self._raw = dict(sets)
        self._values: dict[str, pd.Index] = {}
        self._pairs: dict[str, pd.MultiIndex] = {}

    def _get(self, name: str) -> list[Any]:
        if name not in self._raw:
            raise KeyError(
                f"reference set {name!r} was not supplied for this validation; supplied: {sorted(self._raw)}"
            )
        raw = self._raw[name]
        return raw.to_numpy().tolist() if isinstance(raw, pd.DataFrame) else list(raw)

    def values(self, name: str) -> pd.Index:
        """The set's distinct values."""
        if name not in self._values:
            self._values[name] = pd.Index(self._get(name), dtype=object).unique()
        return self._values[name]

    def pairs(self, name: str) -> pd.MultiIndex:
        """The set's distinct ``(a, b)`` pairs."""
        if name not in self._pairs:
            pairs = [tuple(p) for p in self._get(name)]
            if any(len(p) != 2 for p in pairs):
                raise ValueError(f"reference set {name!r} must hold [a, b] pairs")
            a, b = ([p[0] for p in pairs], [p[1] for p in pairs])
            self._pairs[name] = pd.MultiIndex.from_arrays([a, b], names=["a", "b"]).unique()
        return self._pairs[name]


_ACTIVE: ContextVar[ReferenceSets | None] = ContextVar("egov_index_reference_sets", default=None)


@contextmanager
def reference_sets(sets: Mapping[str, Iterable[Any]]) -> Iterator[ReferenceSets]:
    """Make ``sets`` (name -> values, or name -> [a, b] pairs) the reference sets inside the block."""
    held = ReferenceSets(sets)
    token = _ACTIVE.set(held)
    try:
        yield held
    finally:
        _ACTIVE.reset(token)


def active_reference_sets() -> ReferenceSets:
    held = _ACTIVE.get()
    if held is None:
        raise RuntimeError(
            "reference-set expectations need their sets: validate with egov_index.quality.validate_batch "
            "(or inside egov_index.gx_expectations.reference_sets(...))"
        )
    return held


# --- metrics ----------------------------------------------------------------------------------------


class ColumnValuesInReferenceSet(ColumnMapMetricProvider):
    """Row-wise: the column's value is in the named reference set (nulls are filtered out before)."""

    condition_metric_name = "column_values.in_reference_set"
    condition_value_keys = (REFERENCE_SET_KWARG,)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, reference_set: str, **kwargs: Any) -> pd.Series:
        return column.isin(active_reference_sets().values(reference_set))


class ColumnPairValuesInReferenceSet(ColumnPairMapMetricProvider):
    """Row-wise: the pair (column_A, column_B) is in the named reference set of pairs."""

    condition_metric_name = "column_pair_values.in_reference_set"
    condition_value_keys = (REFERENCE_SET_KWARG,)
    condition_domain_keys = ("batch_id", "table", "column_A", "column_B", "ignore_row_if")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        allowed = active_reference_sets().pairs(kwargs[REFERENCE_SET_KWARG])
        # a missing value (NaN/NA/None) is in no pair, as with expect_column_pair_values_to_be_in_set
        found = pd.MultiIndex.from_arrays([column_A, column_B]).isin(allowed)
        return pd.Series(np.asarray(found, dtype=bool), index=column_A.index)


# --- expectations -------------------------------------------------------------------------------------


def _legacy_rendering(
    configuration: Any, result: Any, runtime_configuration: dict | None, keys: tuple[str, ...], template: str
) -> list:
    """The legacy (Data Docs) rendering of ``template`` with the expectation's ``keys`` (and row condition)."""
    if configuration is None and result is not None:
        configuration = result.expectation_config
    params: dict[str, Any] = {k: None for k in (*keys, "row_condition")}
    params.update(configuration.kwargs if configuration is not None else {})
    return _rendered(template, params, runtime_configuration)


def _rendered(template: str, params: dict[str, Any], runtime_configuration: dict | None) -> list:
    """The legacy (Data Docs) rendering: the sentence, prefixed by the row condition if there is one."""
    styling = dict((runtime_configuration or {}).get("styling") or {})
    if params.get("row_condition"):
        try:
            condition = parse_row_condition_string(params["row_condition"])
        except Exception:  # a form the parser does not know: show it as written
            condition = str(params["row_condition"])
        params = {**params, "condition_content": condition}
        badge = {"classes": ["badge", "badge-secondary"]}
        styling["params"] = {**styling.get("params", {}), "condition_content": badge}
        template = f"If $condition_content, then {template}"
    return [
        RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={"template": template, "params": params, "styling": styling},
        )
    ]


class ExpectColumnValuesToBeInReferenceSet(ColumnMapExpectation):
    """Expect each value of a column to be in the named reference set supplied at validation time.

    Args:
        column (str): The column to check.
        reference_set (str): The name of the set (e.g. ``commune_codes``); its values are handed in
            with :func:`reference_sets` for the validation call, not stored in the suite.

    Other Parameters:
        mostly, row_condition, condition_parser, result_format, catch_exceptions, meta, severity:
            as for every column map expectation.
    """

    reference_set: StrictStr = Field(min_length=1, description=REFERENCE_SET_DESCRIPTION)

    library_metadata: ClassVar[dict[str, Any]] = {
        "maturity": "production",
        "tags": ["egov_index", "column map expectation"],
        "contributors": ["egov-index"],
        "requirements": [],
    }
    map_metric = "column_values.in_reference_set"
    args_keys = ("column", REFERENCE_SET_KWARG)
    success_keys = (REFERENCE_SET_KWARG, "mostly")

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        renderer_configuration.add_param(name="column", param_type=RendererValueType.STRING)
        renderer_configuration.add_param(name=REFERENCE_SET_KWARG, param_type=RendererValueType.STRING)
        template = "values must belong to the reference set $reference_set."
        if renderer_configuration.include_column_name:
            template = f"$column {template}"
        renderer_configuration.template_str = template
        return renderer_configuration

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict | None = None,
        **kwargs: Any,
    ) -> list:
        template = "values must belong to the reference set $reference_set (supplied at validation time)."
        if (runtime_configuration or {}).get("include_column_name", True) is not False:
            template = f"$column {template}"
        keys = ("column", REFERENCE_SET_KWARG)
        return _legacy_rendering(configuration, result, runtime_configuration, keys, template)


class ExpectColumnPairValuesToBeInReferenceSet(ColumnPairMapExpectation):
    """Expect each (column_A, column_B) pair to be in the named reference set of pairs.

    Args:
        column_A (str), column_B (str): The two columns.
        reference_set (str): The name of the set of ``[a, b]`` pairs (e.g. ``commune_province_pairs``),
            handed in with :func:`reference_sets` for the validation call.

    Other Parameters:
        ignore_row_if (str): "both_values_are_missing" (default), "either_value_is_missing" or "neither";
            a row with one value missing is unexpected unless skipped.
        mostly, result_format, catch_exceptions, meta, severity: as for every column pair expectation.
    """

    reference_set: StrictStr = Field(min_length=1, description=REFERENCE_SET_DESCRIPTION)
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "both_values_are_missing"
    )

    library_metadata: ClassVar[dict[str, Any]] = {
        "maturity": "production",
        "tags": ["egov_index", "column pair map expectation"],
        "contributors": ["egov-index"],
        "requirements": [],
    }
    map_metric = "column_pair_values.in_reference_set"
    args_keys = ("column_A", "column_B", REFERENCE_SET_KWARG)
    success_keys = (REFERENCE_SET_KWARG, "ignore_row_if", "mostly")

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        for name in ("column_A", "column_B", REFERENCE_SET_KWARG):
            renderer_configuration.add_param(name=name, param_type=RendererValueType.STRING)
        renderer_configuration.template_str = (
            "Values in $column_A and $column_B must belong, as pairs, to the reference set $reference_set."
        )
        return renderer_configuration

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict | None = None,
        **kwargs: Any,
    ) -> list:
        template = (
            "Values in $column_A and $column_B must belong, as pairs, to the reference set "
            "$reference_set (supplied at validation time)."
        )
        keys = ("column_A", "column_B", REFERENCE_SET_KWARG)
        return _legacy_rendering(configuration, result, runtime_configuration, keys, template)
