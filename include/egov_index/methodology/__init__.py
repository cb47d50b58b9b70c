"""Ranking methodologies: a YAML points table loaded into validated, frozen dataclasses.

A methodology file names the six categories with their max points and, for every indicator, where its
numerator and denominator come from (a commune-report field or a named dossier measure), how its value is
scored, and its max points. ``load_methodology`` rejects anything the engine could not compute, with a
message naming the file, the entry and the allowed values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml

from egov_index.schemas import CATEGORIES, CATEGORY_NAMES, COMMUNE_REPORT_FIELDS

DEFAULT_METHODOLOGY = "mic-six-category"

Source = Literal["commune_reports", "dossiers", "province_dossiers"]
Scoring = Literal["ratio", "yes_no", "relative_to_best", "goalposts", "step", "min_max", "z_score", "rank"]
SOURCES: tuple[str, ...] = ("commune_reports", "dossiers", "province_dossiers")
# Absolute rules score a unit on its own value; relative rules on its place among the units of its level.
ABSOLUTE_RULES: tuple[str, ...] = ("ratio", "yes_no", "goalposts", "step")
RELATIVE_RULES: tuple[str, ...] = ("relative_to_best", "min_max", "z_score", "rank")
SCORING_RULES: tuple[str, ...] = ABSOLUTE_RULES + RELATIVE_RULES
# The normalisation family the robustness analysis draws from ("as_configured" = each indicator's own rule).
NORMALISATIONS: tuple[str, ...] = ("as_configured", "min_max", "z_score", "rank")
DIRECTIONS: tuple[str, ...] = ("higher_is_better", "lower_is_better")
# Which levels an indicator is scored at: every level, or only provinces (a fact that exists only there).
INDICATOR_LEVELS: tuple[str, ...] = ("all", "province")
# How a province's value is made from its communes: sum of numerators / sum of denominators (default), or
# the plain mean of the communes' values (only when the file says so).
AGGREGATIONS: tuple[str, ...] = ("sum_of_counts", "mean_of_units")

# Counts per commune that ``egov_index.ranking.dossier_measures`` computes from the dossier export
# (dossiers received in the period). Counts, so a province's measure is the sum over its communes.
DOSSIER_MEASURES: dict[str, str] = {
    "received": "dossiers received",
    "online": "dossiers submitted online (channel == online)",
    "postal": "dossiers submitted through the postal service (channel == postal)",
    "resolved": "dossiers resolved (status == resolved)",
    "resolved_on_time": "resolved dossiers with resolved_at <= due_at",
    "with_fee": "dossiers with a fee (fee_vnd > 0)",
    "paid_online": "dossiers with a fee that was paid online",
    "digitised": "dossiers whose file and result were digitised",
    "full_online_procedure": "dossiers for a procedure whose catalogue service level is full_online",
    "full_online_procedure_online": "dossiers for a full_online procedure that were submitted online",
    "resolved_late": "resolved dossiers with resolved_at > due_at",
}

# Measures that exist only per province (they are not sums over communes), for ``source: province_dossiers``.
PROVINCE_MEASURES: dict[str, str] = {
    "full_online_procedures": "procedures of the catalogue at service level full_online",
    "full_online_procedures_used_online": (
        "full_online procedures of the catalogue with at least one dossier submitted online in the province"
    ),
}

# Report fields an indicator may use: the c1..c6 fields (not the key columns), by kind.
REPORT_BOOL_FIELDS: frozenset[str] = frozenset(
    f.name for f in COMMUNE_REPORT_FIELDS if f.category != "key" and f.type == pa.bool_()
)
REPORT_COUNT_FIELDS: frozenset[str] = frozenset(
    f.name for f in COMMUNE_REPORT_FIELDS if f.category != "key" and f.type == pa.int64()
)

_TOP_KEYS = {
    "id": True,
    "version": True,
    "title": True,
    "published_precision": True,
    "tie_rule": True,
    "overall": True,
    "missing_report": True,
    "robustness": False,
    "categories": True,
    "indicators": True,
}
_CATEGORY_KEYS = {"vi": True, "max_points": True, "weight": False, "rationale": True}
_INDICATOR_KEYS = {
    "id": True,
    "category": True,
    "description": True,
    "vi": True,
    "source": True,
    "numerator": True,
    "denominator": False,
    "direction": False,
    "level": False,
    "aggregation": False,
    "scoring": True,
    "goalposts": False,
    "steps": False,
    "max_points": True,
    "target_note": True,
}
_MISSING_REPORT_KEYS = {"commune": True, "province": True}
_ROBUSTNESS_KEYS = {
    "draws": False,
    "weight_share": False,
    "normalisations": False,
    "wide_band_share": False,
    "seed": False,
}
_ALLOWED = {
    "tie_rule": ("standard_competition",),
    "overall": ("points_share", "weighted_mean"),
    "missing_report.commune": ("zero_points", "carry_last_period", "exclude"),
    "missing_report.province": ("coverage_weighted",),
}
_INDICATOR_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_METHODOLOGY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_POINTS_TOLERANCE = 1e-9


class MethodologyError(ValueError):
    """A methodology file that cannot be used; the message lists every problem found."""


@dataclass(frozen=True)
class Goalposts:
    lo: float
    hi: float


@dataclass(frozen=True)
class Step:
    """From ``threshold`` (inclusive) up to the next step's threshold, the value earns ``share`` of max points."""

    threshold: float
    share: float


@dataclass(frozen=True)
class Indicator:
    id: str
    category: str
    description: str
    vi: str
    source: Source
    numerator: str
    denominator: str | None
    scoring: Scoring
    max_points: float
    target_note: str
    goalposts: Goalposts | None = None
    steps: tuple[Step, ...] | None = None
    direction: str = "higher_is_better"
    level: str = "all"
    aggregation: str = "sum_of_counts"

    def applies_to(self, level: str) -> bool:
        """Whether the indicator is scored for units of ``level`` ("commune" | "province")."""
        return self.level == "all" or self.level == level


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    vi: str
    max_points: float
    rationale: str
    indicators: tuple[Indicator, ...]
    weight: float | None = None  # share of the overall index, with ``overall: weighted_mean``

    def max_points_at(self, level: str) -> float:
        """The category's max points for units of ``level`` (province-only indicators count for provinces)."""
        return sum(i.max_points for i in self.indicators if i.applies_to(level))


@dataclass(frozen=True)
class MissingReportPolicy:
    commune: str
    province: str


@dataclass(frozen=True)
class Robustness:
    """Monte Carlo settings: each draw scales every category weight by U(1 - weight_share, 1 + weight_share),
    renormalises, and scores every indicator with one normalisation drawn from ``normalisations``."""

    draws: int = 1000
    weight_share: float = 0.25
    normalisations: tuple[str, ...] = NORMALISATIONS
    wide_band_share: float = 0.15
    seed: int = 20251


@dataclass(frozen=True)
class Methodology:
    id: str
    version: str
    title: str
    published_precision: int
    tie_rule: str
    overall: str
    missing_report: MissingReportPolicy
    categories: tuple[Category, ...]
    robustness: Robustness = Robustness()

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        """All indicators, in category order and then file order."""
        return tuple(i for c in self.categories for i in c.indicators)

    def indicators_at(self, level: str) -> tuple[Indicator, ...]:
        """The indicators scored for units of ``level``, in the order of ``indicators``."""
        return tuple(i for i in self.indicators if i.applies_to(level))

    def max_points_at(self, level: str) -> float:
        return sum(i.max_points for i in self.indicators_at(level))

    def category_weights(self, level: str) -> dict[str, float]:
        """Each category's share of the overall index at ``level`` (sums to 1).

        ``points_share``: the category's max points over the level's max points; ``weighted_mean``: the
        configured weights.
        """
        if self.overall == "weighted_mean":
            return {c.code: float(c.weight or 0.0) for c in self.categories}
        total = self.max_points_at(level)
        return {c.code: c.max_points_at(level) / total for c in self.categories}

    def effective_weights(self, level: str) -> dict[str, float]:
        """Each indicator's share of the overall index at ``level``: its category's weight times its share
        of the category's max points. They sum to 1, and overall index = sum(weight x points / max points)."""
        weights = self.category_weights(level)
        return {
            i.id: weights[i.category] * i.max_points / self.category(i.category).max_points_at(level)
            for i in self.indicators_at(level)
        }

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.categories)

    def category(self, code: str) -> Category:
        for c in self.categories:
            if c.code == code:
                return c
        raise KeyError(f"methodology {self.id!r} has no category {code!r}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise MethodologyError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def available_methodologies() -> list[str]:
    """Names of the methodology files shipped with the package."""
    return sorted(
        Path(p.name).stem for p in resources.files(__name__).iterdir() if p.name.endswith((".yaml", ".yml"))
    )


def load_methodology(name_or_path: str = DEFAULT_METHODOLOGY) -> Methodology:
    """Load and validate a shipped methodology by name, or a YAML file by path."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise MethodologyError(f"methodology file {name_or_path!r} does not exist")
        text, origin = path.read_text(encoding="utf-8"), str(path)
    else:
        resource = resources.files(__name__) / f"{name_or_path}.yaml"
        if not resource.is_file():
            raise MethodologyError(
                f"unknown methodology {name_or_path!r}; shipped: {', '.join(available_methodologies())}"
            )
        text, origin = resource.read_text(encoding="utf-8"), f"{name_or_path}.yaml"
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except (yaml.YAMLError, MethodologyError) as exc:
        raise MethodologyError(f"{origin}: not valid YAML: {exc}") from exc
    return parse_methodology(raw, origin)


def parse_methodology(raw: Any, origin: str = "<methodology>") -> Methodology:
    """Validate a parsed YAML document; raise MethodologyError listing every problem."""
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise MethodologyError(f"{origin}: the top level must be a mapping, got {type(raw).__name__}")
    _check_keys(raw, _TOP_KEYS, "top level", errors)
    _check_text(raw, ("id", "version", "title"), "top level", errors)
    if "id" in raw and not _METHODOLOGY_ID.match(str(raw["id"])):
        errors.append(f"id: expected lowercase letters, digits, '.', '_' or '-', got {raw['id']!r}")
    for key in ("tie_rule", "overall"):
        _check_allowed(raw, key, key, errors)
    precision = raw.get("published_precision")
    if not (isinstance(precision, int) and not isinstance(precision, bool) and 0 <= precision <= 6):
        errors.append(f"published_precision: expected an integer from 0 to 6, got {precision!r}")
    missing = raw.get("missing_report")
    if isinstance(missing, dict):
        _check_keys(missing, _MISSING_REPORT_KEYS, "missing_report", errors)
        for key in _MISSING_REPORT_KEYS:
            _check_allowed(missing, key, f"missing_report.{key}", errors)
    elif "missing_report" in raw:
        errors.append("missing_report: expected a mapping with keys commune, province")

    robustness = _parse_robustness(raw.get("robustness", {}), errors)
    indicators = _parse_indicators(raw.get("indicators"), errors)
    categories = _parse_categories(raw.get("categories"), raw.get("indicators"), indicators, errors)
    _check_weights(raw.get("overall"), categories, errors)
    if errors:
        raise MethodologyError(f"{origin}: invalid methodology:\n  - " + "\n  - ".join(errors))
    return Methodology(
        id=str(raw["id"]),
        version=str(raw["version"]),
        title=str(raw["title"]),
        published_precision=precision,
        tie_rule=raw["tie_rule"],
        overall=raw["overall"],
        missing_report=MissingReportPolicy(commune=missing["commune"], province=missing["province"]),
        categories=categories,
        robustness=robustness,
    )


def _parse_robustness(raw: Any, errors: list[str]) -> Robustness:
    if not isinstance(raw, dict):
        errors.append("robustness: expected a mapping")
        return Robustness()
    _check_keys(raw, _ROBUSTNESS_KEYS, "robustness", errors)
    default = Robustness()
    draws = raw.get("draws", default.draws)
    if not (isinstance(draws, int) and not isinstance(draws, bool) and 10 <= draws <= 100_000):
        errors.append(f"robustness.draws: expected an integer from 10 to 100000, got {draws!r}")
    share = raw.get("weight_share", default.weight_share)
    if not (isinstance(share, int | float) and not isinstance(share, bool) and 0 <= share < 1):
        errors.append(f"robustness.weight_share: expected a number in [0, 1), got {share!r}")
    wide = raw.get("wide_band_share", default.wide_band_share)
    if not (isinstance(wide, int | float) and not isinstance(wide, bool) and 0 < wide <= 1):
        errors.append(f"robustness.wide_band_share: expected a number in (0, 1], got {wide!r}")
    seed = raw.get("seed", default.seed)
    if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        errors.append(f"robustness.seed: expected a non-negative integer, got {seed!r}")
    family = raw.get("normalisations", list(default.normalisations))
    if not (isinstance(family, list) and family and all(n in NORMALISATIONS for n in family)):
        errors.append(
            f"robustness.normalisations: expected a non-empty list of {', '.join(NORMALISATIONS)}, got {family!r}"
        )
        family = list(default.normalisations)
    return Robustness(
        draws=draws if isinstance(draws, int) else default.draws,
        weight_share=float(share) if isinstance(share, int | float) else default.weight_share,
        normalisations=tuple(dict.fromkeys(family)),
        wide_band_share=float(wide) if isinstance(wide, int | float) else default.wide_band_share,
        seed=seed if isinstance(seed, int) else default.seed,
    )


def _check_weights(overall: Any, categories: tuple[Category, ...], errors: list[str]) -> None:
    """``weighted_mean`` needs a positive weight per category summing to 1; ``points_share`` takes none."""
    weighted = [c for c in categories if c.weight is not None]
    if overall != "weighted_mean":
        if weighted:
            errors.append(
                f"categories: weight is only used with overall: weighted_mean (set on {', '.join(c.code for c in weighted)})"
            )
        return
    absent = [c.code for c in categories if c.weight is None]
    if absent:
        errors.append(
            f"categories: overall: weighted_mean needs a weight on every category; missing on {', '.join(absent)}"
        )
        return
    total = sum(float(c.weight or 0.0) for c in categories)
    if abs(total - 1.0) > 1e-6:
        listing = ", ".join(f"{c.code}={c.weight:g}" for c in categories)
        errors.append(f"categories: weights sum to {total:g}, expected 1 ({listing})")


def _check_keys(entry: dict[str, Any], keys: dict[str, bool], where: str, errors: list[str]) -> None:
    unknown = sorted(set(entry) - set(keys), key=str)
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(keys)}")
    absent = [k for k, required in keys.items() if required and k not in entry]
    if absent:
        errors.append(f"{where}: missing required key(s) {', '.join(absent)}")


def _check_allowed(entry: dict[str, Any], key: str, label: str, errors: list[str]) -> None:
    if key in entry and entry[key] not in _ALLOWED[label]:
        errors.append(f"{label}: {entry[key]!r} is not supported; supported: {', '.join(_ALLOWED[label])}")


def _check_text(entry: dict[str, Any], keys: tuple[str, ...], where: str, errors: list[str]) -> None:
    """Present keys among ``keys`` must hold non-empty text (missing keys are reported elsewhere)."""
    for key in keys:
        if key in entry and not (isinstance(entry[key], str | int | float) and str(entry[key]).strip()):
            errors.append(f"{where}: {key} must be a non-empty text, got {entry[key]!r}")


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _points(value: Any, where: str, errors: list[str]) -> float:
    if not _is_positive_number(value):
        errors.append(f"{where}: max_points must be a positive number, got {value!r}")
        return 0.0
    return float(value)


def _parse_indicators(raw: Any, errors: list[str]) -> list[Indicator]:
    if not isinstance(raw, list) or not raw:
        errors.append("indicators: expected a non-empty list")
        return []
    parsed: list[Indicator] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        where = f"indicators[{n}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: expected a mapping, got {type(entry).__name__}")
            continue
        where = f"indicators[{n}] ({entry.get('id', '?')})"
        before = len(errors)
        _check_keys(entry, _INDICATOR_KEYS, where, errors)
        _check_text(entry, ("description", "vi", "target_note"), where, errors)
        ident = entry.get("id")
        if not (isinstance(ident, str) and _INDICATOR_ID.match(ident)):
            errors.append(f"{where}: id must be lower_snake_case, got {ident!r}")
        elif ident in seen:
            errors.append(f"{where}: duplicate indicator id {ident!r}")
        seen.add(str(ident))
        if entry.get("category") not in CATEGORIES:
            errors.append(
                f"{where}: category {entry.get('category')!r} is not one of {', '.join(CATEGORIES)}"
            )
        max_points = _points(entry.get("max_points"), where, errors)
        for key, allowed in (
            ("direction", DIRECTIONS),
            ("level", INDICATOR_LEVELS),
            ("aggregation", AGGREGATIONS),
        ):
            if key in entry and entry[key] not in allowed:
                errors.append(f"{where}: {key} {entry[key]!r} is not one of {', '.join(allowed)}")
        goalposts = _check_scoring(entry, where, errors)
        steps = _check_steps(entry, where, errors)
        _check_terms(entry, where, errors)
        if len(errors) == before:
            parsed.append(
                Indicator(
                    id=ident,
                    category=entry["category"],
                    description=str(entry["description"]),
                    vi=str(entry["vi"]),
                    source=entry["source"],
                    numerator=entry["numerator"],
                    denominator=entry.get("denominator"),
                    scoring=entry["scoring"],
                    max_points=max_points,
                    target_note=str(entry["target_note"]),
                    goalposts=goalposts,
                    steps=steps,
                    direction=entry.get("direction", "higher_is_better"),
                    level=entry.get("level", "all"),
                    aggregation=entry.get("aggregation", "sum_of_counts"),
                )
            )
    return parsed


def _check_scoring(entry: dict[str, Any], where: str, errors: list[str]) -> Goalposts | None:
    scoring = entry.get("scoring")
    if scoring not in SCORING_RULES:
        errors.append(f"{where}: unknown scoring rule {scoring!r}; known: {', '.join(SCORING_RULES)}")
        return None
    goalposts = entry.get("goalposts")
    if scoring != "goalposts":
        if goalposts is not None:
            errors.append(f"{where}: goalposts are only used with scoring 'goalposts', not {scoring!r}")
        return None
    if not isinstance(goalposts, dict) or set(goalposts) != {"lo", "hi"}:
        errors.append(f"{where}: scoring 'goalposts' needs goalposts: {{lo: <number>, hi: <number>}}")
        return None
    lo, hi = goalposts["lo"], goalposts["hi"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi)) or lo >= hi:
        errors.append(f"{where}: goalposts need numbers with lo < hi, got lo={lo!r}, hi={hi!r}")
        return None
    return Goalposts(lo=float(lo), hi=float(hi))


def _check_steps(entry: dict[str, Any], where: str, errors: list[str]) -> tuple[Step, ...] | None:
    """``steps: [[threshold, share], ...]``: thresholds ascending, shares in [0, 1] and monotone with the
    direction (non-decreasing when higher is better, non-increasing when lower is better)."""
    steps = entry.get("steps")
    if entry.get("scoring") != "step":
        if steps is not None:
            errors.append(f"{where}: steps are only used with scoring 'step', not {entry.get('scoring')!r}")
        return None
    usage = (
        "scoring 'step' needs steps: [[threshold, share], ...] with thresholds ascending and shares in [0, 1]"
    )
    if not (isinstance(steps, list) and steps and all(isinstance(s, list) and len(s) == 2 for s in steps)):
        errors.append(f"{where}: {usage}")
        return None
    numbers = [
        (t, v)
        for t, v in steps
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in (t, v))
    ]
    thresholds = [float(t) for t, _ in numbers]
    shares = [float(v) for _, v in numbers]
    if (
        len(numbers) != len(steps)
        or thresholds != sorted(set(thresholds))
        or not all(0 <= v <= 1 for v in shares)
    ):
        errors.append(f"{where}: {usage}, got {steps!r}")
        return None
    lower = entry.get("direction") == "lower_is_better"
    pairs = list(zip(shares, shares[1:], strict=False))
    if not all((b <= a) if lower else (b >= a) for a, b in pairs):
        errors.append(
            f"{where}: step shares must {'not increase' if lower else 'not decrease'} with the threshold "
            f"when direction is {entry.get('direction', 'higher_is_better')}, got {steps!r}"
        )
        return None
    return tuple(Step(threshold=t, share=v) for t, v in zip(thresholds, shares, strict=True))


def _check_terms(entry: dict[str, Any], where: str, errors: list[str]) -> None:
    """Check that numerator and denominator exist in the source and suit the scoring rule and level."""
    source, scoring = entry.get("source"), entry.get("scoring")
    numerator, denominator = entry.get("numerator"), entry.get("denominator")
    if source not in SOURCES:
        if "source" in entry:  # a missing source is already reported as a missing key
            errors.append(f"{where}: unknown source {source!r}; known: {', '.join(SOURCES)}")
        return
    if entry.get("aggregation") == "mean_of_units" and entry.get("level") == "province":
        errors.append(
            f"{where}: aggregation 'mean_of_units' needs commune values; a province-only indicator has none"
        )
    if entry.get("aggregation") == "mean_of_units" and scoring == "yes_no":
        errors.append(
            f"{where}: a yes/no item is already the share of communes answering yes; drop aggregation"
        )
    if source == "province_dossiers" and entry.get("level") != "province":
        errors.append(f"{where}: source 'province_dossiers' exists only per province: set level: province")
    measures = {"dossiers": ("dossier", DOSSIER_MEASURES), "province_dossiers": ("province", PROVINCE_MEASURES)}
    if source in measures:
        kind, known_measures = measures[source]
        for role, term in (("numerator", numerator), ("denominator", denominator)):
            if term is None:
                errors.append(f"{where}: a {kind} measure needs a {role}; known measures: {', '.join(known_measures)}")
            elif term not in known_measures:
                errors.append(
                    f"{where}: unknown {kind} measure {term!r} as {role}; known: {', '.join(known_measures)}"
                )
        if scoring == "yes_no":
            errors.append(f"{where}: scoring 'yes_no' needs a commune_reports yes/no field, not {source}")
        return
    known = sorted(REPORT_BOOL_FIELDS | REPORT_COUNT_FIELDS)
    for role, term in (("numerator", numerator), ("denominator", denominator)):
        if term is not None and term not in known:
            errors.append(
                f"{where}: unknown source field {term!r} as {role} for commune_reports; known: {', '.join(known)}"
            )
    if scoring == "yes_no":
        if numerator in REPORT_COUNT_FIELDS:
            errors.append(f"{where}: scoring 'yes_no' needs a yes/no field, {numerator!r} is a count")
        if denominator is not None:
            errors.append(f"{where}: scoring 'yes_no' takes no denominator")
        return
    for role, term in (("numerator", numerator), ("denominator", denominator)):
        if term in REPORT_BOOL_FIELDS:
            errors.append(f"{where}: {term!r} is a yes/no field; as {role} it needs scoring 'yes_no'")
    if scoring == "ratio" and denominator is None:
        errors.append(f"{where}: scoring 'ratio' needs a denominator")


def _parse_categories(
    raw: Any, raw_indicators: Any, indicators: list[Indicator], errors: list[str]
) -> tuple[Category, ...]:
    """Parse c1..c6; check each has indicators whose max_points sum to the category's.

    The sum uses every indicator entry of the file, valid or not, so one bad indicator is reported once
    and not again as a wrong category total.
    """
    if not isinstance(raw, dict):
        errors.append(f"categories: expected a mapping with keys {', '.join(CATEGORIES)}")
        return ()
    unknown = [str(k) for k in raw if k not in CATEGORIES]
    if unknown:
        errors.append(f"categories: unknown category {', '.join(unknown)}; expected {', '.join(CATEGORIES)}")
    entries = [e for e in raw_indicators if isinstance(e, dict)] if isinstance(raw_indicators, list) else []
    categories: list[Category] = []
    for code in CATEGORIES:
        entry = raw.get(code)
        if not isinstance(entry, dict):
            errors.append(f"categories: {code} is missing or not a mapping")
            continue
        _check_keys(entry, _CATEGORY_KEYS, f"categories.{code}", errors)
        _check_text(entry, ("vi", "rationale"), f"categories.{code}", errors)
        max_points = _points(entry.get("max_points"), f"categories.{code}", errors)
        weight = entry.get("weight")
        if weight is not None and not _is_positive_number(weight):
            errors.append(f"categories.{code}: weight must be a positive number, got {weight!r}")
            weight = None
        members = [e for e in entries if e.get("category") == code]
        if not members:
            errors.append(f"categories.{code}: has no indicators")
        elif all(e.get("level") == "province" for e in members):
            errors.append(f"categories.{code}: every indicator is province-only; communes need at least one")
        elif all(_is_positive_number(e.get("max_points")) for e in members):
            total = sum(float(e["max_points"]) for e in members)
            if abs(total - max_points) > _POINTS_TOLERANCE:
                listing = ", ".join(f"{e.get('id')}={e['max_points']:g}" for e in members)
                errors.append(
                    f"categories.{code}: indicator max_points sum to {total:g} but the category max_points is "
                    f"{max_points:g} ({listing})"
                )
        categories.append(
            Category(
                code=code,
                name=CATEGORY_NAMES[code],
                vi=str(entry.get("vi", "")),
                max_points=max_points,
                rationale=str(entry.get("rationale", "")),
                indicators=tuple(i for i in indicators if i.category == code),
                weight=float(weight) if weight is not None else None,
            )
        )
    return tuple(categories)
