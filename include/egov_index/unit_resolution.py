"""Resolve the unit a report names to a current commune and province, across the 2025 reorganisation.

A report may carry a current or legacy commune code, a province code, and the names of its commune,
district and province, in current or legacy (before 1 July 2025) naming, with or without diacritics
(NFC or NFD) and type prefixes ("Phường", "Thị xã", "TP.", ...). Names are matched exactly, after
folding, against the package's names, spelling variants and aliases (``registry.unit_names``);
legacy units are carried to current ones by the package's converter table
(``registry.legacy_commune_crosswalk``). Nothing is guessed: an unknown, ambiguous, split or
contradictory identification stays unresolved, with the reason in plain words.

How the period matters: a report for a period that ends before ``REORGANISATION_DATE`` reads a code
as a legacy code first, any later period as a current code first (the same digits can name different
units: province 52 was Bình Định and is now Gia Lai). Names are tried in the period's naming first,
then in the other; a district name means legacy naming (districts were abolished).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from egov_index.header_mapping import label_key
from egov_index.periods import parse_period
from egov_index.registry import (
    REORGANISATION_DATE,
    current_units,
    legacy_commune_crosswalk,
    legacy_province_crosswalk,
    legacy_units,
    unit_names,
)

if TYPE_CHECKING:
    from egov_index.registry import LegacyRegistry, Registry

Method = Literal["current_code", "legacy_code", "current_name", "legacy_name"]
Vintage = Literal["current", "legacy"]

# Record fields that identify the unit (header_mapping.UNIT_FIELDS plus the province code).
FIELDS: tuple[str, ...] = ("commune_code", "province_code", "commune_name", "district_name", "province_name")

# Usual abbreviations of unit types (not units): "P. Nhơn Thành", "TX An Nhơn", "TP.HCM".
_ABBREVIATIONS: dict[str, str] = {
    "p": "Phường",
    "x": "Xã",
    "tt": "Thị trấn",
    "đk": "Đặc khu",
    "dk": "Đặc khu",
    "q": "Quận",
    "h": "Huyện",
    "tx": "Thị xã",
    "tp": "Thành phố",
    "t": "Tỉnh",
}
_ABBREVIATION = re.compile(r"^(tp|tx|tt|đk|dk|p|q|h|x|t)\s*\.\s*|^(tp|tx|tt)\s+", re.IGNORECASE)
_D_STROKE = str.maketrans("đĐ", "dD")
_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")  # the package's "Kỳ Anh (Huyện)" short names


@dataclass(frozen=True)
class Resolution:
    """The current unit a record names, or why it names none (``reason``)."""

    commune_code: str | None
    province_code: str | None
    method: Method | None
    reason: str | None

    @property
    def resolved(self) -> bool:
        return self.reason is None


def _unresolved(reason: str) -> Resolution:
    return Resolution(commune_code=None, province_code=None, method=None, reason=reason)


def _key(text: str) -> str:
    """Unaccented match key, as the package folds its keywords: "Phường Nhơn Thành" -> "phuongnhonthanh"."""
    decomposed = unicodedata.normalize("NFD", text.translate(_D_STROKE)).lower()
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def _accent_key(text: str) -> str:
    """Accent-sensitive key (tells "Văn Lang" from "Văn Lăng"): NFC, lower case, letters and digits."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFC", text).lower())


@dataclass(frozen=True)
class _Name:
    """A name as given, read with and without a type prefix."""

    text: str
    readings: tuple[tuple[str | None, str], ...]  # (type key or None, unaccented key of the rest)
    accents: frozenset[str]  # accent-sensitive keys; empty when the record has no diacritics


@dataclass(frozen=True)
class _Unit:
    """A nameable unit of one vintage, with the current commune(s) it is or became."""

    code: str
    label: str
    type_keys: frozenset[str]
    accent_keys: frozenset[str]
    province_code: str
    district_code: str | None
    targets: tuple[str, ...]
    target_province: str


class _Index:
    """Exact-match lookup of one level of one vintage by folded name."""

    def __init__(self, entries: Iterable[tuple[_Unit, Iterable[str]]]) -> None:
        self._by_key: dict[str, list[_Unit]] = {}
        for unit, keys in entries:
            for key in set(keys):
                self._by_key.setdefault(key, []).append(unit)

    def find(
        self,
        name: _Name,
        provinces: frozenset[str] | None = None,
        districts: frozenset[str] | None = None,
    ) -> list[_Unit]:
        """Units the name fits (within the given provinces/districts), by code; diacritics break ties."""
        found: dict[int, _Unit] = {}
        for type_key, rest in name.readings:
            keys = {rest, rest.lstrip("0")} if rest.isdigit() else {rest}
            if type_key is not None:
                keys |= {type_key + key for key in keys}
            for key in keys:
                for unit in self._by_key.get(key, ()):
                    if type_key is not None and type_key not in unit.type_keys:
                        continue
                    if provinces is not None and unit.province_code not in provinces:
                        continue
                    if districts is not None and unit.district_code not in districts:
                        continue
                    found[id(unit)] = unit
        units = list(found.values())
        if len(units) > 1 and name.accents:
            units = [u for u in units if u.accent_keys & name.accents] or units
        return sorted(units, key=lambda u: u.code)


@dataclass(frozen=True)
class _Fields:
    """What a record gives besides its commune code, read."""

    province_code: str | None
    commune_name: _Name | None
    district_name: _Name | None
    province_name: _Name | None


def _text(value: Any) -> str | None:
    """A record value as stripped text; None for missing, NaN, NA or blank. 4.0 -> "4"."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _province_labels(units: Registry | LegacyRegistry) -> dict[str, str]:
    return dict(zip(units.provinces["province_code"], units.provinces["province_name"], strict=True))


class _Resolver:
    """The indexes over current and legacy units, built from the registry.

    The current units' indexes are built at once; the legacy ones (10,035 communes, 696 districts, 63
    provinces, and the converter table) on first use, since a current-era record that names its
    current commune code never needs them: about 0.8 s of a reports task otherwise (docs/performance.md).
    """

    def __init__(self) -> None:
        current = current_units()
        table = unit_names()
        self._names = {
            (vintage, level, code): (name, short, kind, keywords)
            for vintage, level, code, name, short, kind, keywords in zip(
                *(table[column].tolist() for column in table.columns), strict=True
            )
        }
        types = sorted(set(table["type"]) | set(_ABBREVIATIONS.values()), key=len, reverse=True)
        self._type_words = [(t.lower(), _key(t)) for t in types]
        self._ascii_type_words = [(label_key(t), _key(t)) for t in types]

        self.successor: dict[str, str] = dict(legacy_province_crosswalk().itertuples(index=False))
        self.predecessors: dict[str, frozenset[str]] = {}
        for old, new in self.successor.items():
            self.predecessors[new] = self.predecessors.get(new, frozenset()) | {old}
        self._labels: dict[Vintage, dict[str, str]] = {"current": _province_labels(current)}

        current_label = self._labels["current"]
        current_communes = [
            self._entry(
                "current",
                "commune",
                c,
                f"{n}, {current_label[p]} ({c})",
                province_code=p,
                district_code=None,
                targets=(c,),
                target_province=p,
            )
            for c, n, p in zip(
                *(current.communes[k].tolist() for k in ("commune_code", "commune_name", "province_code")),
                strict=True,
            )
        ]
        self.current: dict[str, _Unit] = {unit.code: unit for unit, _ in current_communes}
        self._indexes: dict[tuple[Vintage, str], _Index] = {
            ("current", "commune"): _Index(current_communes),
            ("current", "province"): _Index(self._province("current", c) for c in current.province_codes()),
        }
        self._legacy: dict[str, _Unit] | None = None  # legacy commune code -> unit, once built
        self._islands: dict[str, _Unit] = {}  # district code -> the island district that had no communes
        self._legacy_lock = threading.Lock()

    def _entry(self, vintage: Vintage, level: str, code: str, label: str, **links: Any) -> tuple[_Unit, list[str]]:
        """A unit and its match keys: folded names (with each type), then the package's keywords."""
        name, full_short, kind, keywords = self._names[vintage, level, code]
        short = _QUALIFIER.sub("", full_short)
        lower, short_key = name.lower(), _key(short)
        type_keys = {_key(kind)} | {k for w, k in self._type_words if lower.startswith(w + " ")}
        accents = {_accent_key(short), _accent_key(full_short), _accent_key(name)}
        keys = [short_key, _key(name), *(t + short_key for t in type_keys), *keywords]
        return _Unit(code, label, frozenset(type_keys), frozenset(accents), **links), keys

    def _province(self, vintage: Vintage, code: str) -> tuple[_Unit, list[str]]:
        return self._entry(
            vintage,
            "province",
            code,
            self._labels[vintage][code],
            province_code=code,
            district_code=None,
            targets=(),
            target_province=code if vintage == "current" else self.successor[code],
        )

    def _build_legacy(self) -> None:
        """The legacy units' indexes (once; concurrent first users wait for one build)."""
        with self._legacy_lock:
            if self._legacy is not None:
                return
            legacy = legacy_units()
            self._labels["legacy"] = legacy_label = _province_labels(legacy)
            district_label = {
                d: f"{n}, {legacy_label[p]}"
                for d, n, p in zip(
                    *(legacy.districts[k].tolist() for k in ("district_code", "district_name", "province_code")),
                    strict=True,
                )
            }
            commune_name = dict(
                zip(legacy.communes["commune_code"], legacy.communes["commune_name"], strict=True)
            )
            units: dict[str, _Unit] = {}
            legacy_communes = []
            for row in legacy_commune_crosswalk().itertuples(index=False):
                d = row.legacy_district_code
                links = {
                    "province_code": row.legacy_province_code,
                    "district_code": d,
                    "targets": row.candidate_commune_codes,
                    "target_province": row.current_province_code,
                }
                if pd.isna(row.legacy_commune_code):
                    item = self._entry(
                        "legacy", "district", d, f"{district_label[d]} (district {d}, no communes)", **links
                    )
                    self._islands[d] = item[0]
                else:
                    c = row.legacy_commune_code
                    item = self._entry(
                        "legacy", "commune", c, f"{commune_name[c]}, {district_label[d]} ({c})", **links
                    )
                    units[c] = item[0]
                legacy_communes.append(item)
            self._indexes[("legacy", "commune")] = _Index(legacy_communes)
            self._indexes[("legacy", "district")] = _Index(
                self._entry(
                    "legacy",
                    "district",
                    d,
                    district_label[d],
                    province_code=p,
                    district_code=d,
                    targets=(),
                    target_province=self.successor[p],
                )
                for d, p in zip(
                    *(legacy.districts[k].tolist() for k in ("district_code", "province_code")), strict=True
                )
            )
            self._indexes[("legacy", "province")] = _Index(
                self._province("legacy", c) for c in legacy.province_codes()
            )
            self._legacy = units  # last: the other threads read the indexes once this is set

    def _ensure(self, vintage: Vintage) -> None:
        """The legacy indexes are built on first use; the current ones exist from the start."""
        if vintage == "legacy" and self._legacy is None:
            self._build_legacy()

    def index(self, vintage: Vintage, level: str) -> _Index:
        """The name index of one level ("commune", "district" (legacy), "province") of a vintage."""
        self._ensure(vintage)
        return self._indexes[vintage, level]

    def communes(self, vintage: Vintage) -> dict[str, _Unit]:
        """The communes of a vintage by code (the legacy island districts: :meth:`islands`)."""
        self._ensure(vintage)
        units = self.current if vintage == "current" else self._legacy
        assert units is not None
        return units

    def islands(self) -> dict[str, _Unit]:
        """Legacy island districts that had no communes, by district code."""
        self._ensure("legacy")
        return self._islands

    def labels(self, vintage: Vintage) -> dict[str, str]:
        """Province code -> province name of a vintage."""
        self._ensure(vintage)
        return self._labels[vintage]

    # --- reading a record ------------------------------------------------------------------------------

    def name(self, text: str, accented: bool) -> _Name:
        """Read a name: an abbreviation or a type word first, then the rest.

        ``accented``: the record is written with diacritics, so they tell names apart.
        """
        text = " ".join(unicodedata.normalize("NFC", text).split())
        lower = text.lower()
        readings: list[tuple[str | None, str]] = [(None, text)]
        if match := _ABBREVIATION.match(text):
            abbreviation = (match.group(1) or match.group(2)).lower()
            readings = [(_key(_ABBREVIATIONS[abbreviation]), text[match.end() :])]
        elif typed := [(k, text[len(w) + 1 :]) for w, k in self._type_words if lower.startswith(w + " ")]:
            readings = typed[:1]
        elif text.isascii():  # without diacritics "Phuong Lam" may be "Phường Lâm" or "Xã Phương Lâm"
            readings += [
                (k, text[len(w) + 1 :]) for w, k in self._ascii_type_words if lower.startswith(w + " ")
            ][:1]
        accents = {_accent_key(text)} | {_accent_key(rest) for _, rest in readings} if accented else set()
        return _Name(text, tuple((t, _key(rest)) for t, rest in readings), frozenset(accents))

    def resolve(self, record: Mapping[str, Any], era: Vintage) -> Resolution:
        values = {field: _text(record.get(field)) for field in FIELDS}
        commune_code, province_code = values["commune_code"], values["province_code"]
        if commune_code is not None:
            if not (commune_code.isascii() and commune_code.isdigit() and len(commune_code) <= 5):
                return _unresolved(f"commune code '{commune_code}' is not a commune code (5 digits)")
            commune_code = commune_code.zfill(5)
        if province_code is not None:
            if not (province_code.isascii() and province_code.isdigit() and len(province_code) <= 2):
                return _unresolved(f"province code '{province_code}' is not a province code (2 digits)")
            province_code = province_code.zfill(2)
            if province_code not in self.successor and province_code not in self.predecessors:
                return _unresolved(
                    f"province code '{province_code}' is neither a current nor a legacy province code"
                )
        texts = [values[f] for f in ("commune_name", "district_name", "province_name")]
        accented = any(t is not None and not t.isascii() for t in texts)
        commune, district, province = (None if t is None else self.name(t, accented) for t in texts)
        fields = _Fields(province_code, commune, district, province)
        if commune_code is not None:
            return self._by_code(commune_code, fields, era)
        return self._by_names(fields, era)

    # --- by code -------------------------------------------------------------------------------------

    def _by_code(self, code: str, fields: _Fields, era: Vintage) -> Resolution:
        """Read the code in the period's vintage first (legacy first if a district is named) and take
        the first reading the rest of the record agrees with."""
        reasons = []
        for vintage in ("legacy", "current") if fields.district_name is not None else _order(era):
            unit = self.communes(vintage).get(code)
            if unit is None:
                continue
            mismatch = self._disagreement(vintage, unit, fields)
            if mismatch is None:
                if vintage == "current":
                    return Resolution(unit.code, unit.province_code, "current_code", None)
                return self._outcome([unit], f"legacy commune code '{code}'", "legacy_code")
            reasons.append(f"as a {vintage} code it is {unit.label}, but {mismatch}")
        if not reasons:
            return _unresolved(f"commune code '{code}' is neither a current nor a legacy commune code")
        return _unresolved(
            f"commune code '{code}' and the names or province code disagree: " + "; ".join(reasons)
        )

    def _disagreement(self, vintage: Vintage, unit: _Unit, fields: _Fields) -> str | None:
        """What in the record contradicts reading the code as ``unit`` (None if nothing does).

        A legacy unit also accepts the name and province of the current unit it became; a current
        unit cannot be checked against a district name (districts no longer exist).
        """
        legacy = vintage == "legacy"
        if fields.province_code is not None:
            allowed = {unit.province_code, unit.target_province} if legacy else {unit.province_code}
            if fields.province_code not in allowed:
                return f"province code '{fields.province_code}' is another province"
        if fields.province_name is not None:
            fits = unit.province_code in {
                u.code for u in self.index(vintage, "province").find(fields.province_name)
            }
            if legacy and not fits:  # legacy commune, current province name
                fits = unit.target_province in {
                    u.code for u in self.index("current", "province").find(fields.province_name)
                }
            if not fits:
                return f"province name '{fields.province_name.text}' is another province"
        if legacy and fields.district_name is not None:
            if unit.district_code not in {
                u.code for u in self.index("legacy", "district").find(fields.district_name)
            }:
                return f"district name '{fields.district_name.text}' is another district"
        if fields.commune_name is not None:
            fits = unit in self.index(vintage, "commune").find(fields.commune_name)
            if legacy and not fits and len(unit.targets) == 1:  # old code, new name
                fits = self.current[unit.targets[0]] in self.index("current", "commune").find(
                    fields.commune_name
                )
            if not fits:
                return f"commune name '{fields.commune_name.text}' names another commune"
        return None

    # --- by names ------------------------------------------------------------------------------------

    def _by_names(self, fields: _Fields, era: Vintage) -> Resolution:
        if fields.commune_name is None and fields.district_name is None:
            return _unresolved("no commune code and no commune name given")
        order: tuple[Vintage, ...] = ("legacy",) if fields.district_name is not None else _order(era)
        reasons = []
        for vintage in order:
            outcome = (
                self._current_names(fields, era) if vintage == "current" else self._legacy_names(fields, era)
            )
            if isinstance(outcome, Resolution):
                return outcome
            reasons.append(outcome)
        return _unresolved("; ".join(reasons))

    def _current_names(self, fields: _Fields, era: Vintage) -> Resolution | str:
        """The current commune the names give, or why they give none in current naming."""
        provinces, problem = self._provinces("current", era, fields)
        if problem is not None:
            return problem
        if fields.commune_name is None:
            return "no commune name given"
        units = self.index("current", "commune").find(fields.commune_name, provinces)
        if not units:
            return f"no current commune named '{fields.commune_name.text}'{self._where('current', provinces)}"
        if len(units) > 1:
            listed = "; ".join(u.label for u in units)
            return _unresolved(
                f"commune name '{fields.commune_name.text}' is ambiguous: current communes {listed}"
            )
        return Resolution(units[0].code, units[0].province_code, "current_name", None)

    def _legacy_names(self, fields: _Fields, era: Vintage) -> Resolution | str:
        """The current commune legacy names give, or why they give none in legacy naming."""
        provinces, problem = self._provinces("legacy", era, fields)
        if problem is not None:
            return problem
        where = self._where("legacy", provinces)
        districts = None
        if fields.district_name is not None:
            found = self.index("legacy", "district").find(fields.district_name, provinces)
            if not found:
                return f"no legacy district named '{fields.district_name.text}'{where}"
            districts = frozenset(u.code for u in found)
            where = " in " + "; ".join(u.label for u in found)
        if fields.commune_name is None:
            islands = [self.islands()[d] for d in sorted(districts or ()) if d in self.islands()]
            if not islands:
                return "no commune name given"
            return self._outcome(islands, "the district name", "legacy_name")
        units = self.index("legacy", "commune").find(fields.commune_name, provinces, districts)
        if not units:
            return f"no legacy commune named '{fields.commune_name.text}'{where}"
        return self._outcome(units, f"commune name '{fields.commune_name.text}'", "legacy_name")

    def _provinces(
        self, vintage: Vintage, era: Vintage, fields: _Fields
    ) -> tuple[frozenset[str] | None, str | None]:
        """The provinces of ``vintage`` the record's province code and name allow (None: any), or the problem."""
        scope: frozenset[str] | None = None
        code = fields.province_code
        if code is not None:
            if vintage == "current":
                scope = frozenset({code if code in self.predecessors else self.successor[code]})
            elif code in self.successor and (era == "legacy" or code not in self.predecessors):
                scope = frozenset({code})
            else:
                scope = self.predecessors[code]
        if fields.province_name is not None:
            named = frozenset(u.code for u in self.index(vintage, "province").find(fields.province_name))
            if not named:
                return None, f"'{fields.province_name.text}' is not a {vintage} province name"
            if scope is not None and not scope & named:
                return (
                    None,
                    f"province code '{code}' and province name '{fields.province_name.text}' disagree",
                )
            scope = named if scope is None else scope & named
        return scope, None

    # --- outcome -------------------------------------------------------------------------------------

    def _outcome(self, units: list[_Unit], given: str, method: Method) -> Resolution:
        """Resolved if every legacy candidate became the same one current commune; else why not."""
        targets = {t for u in units for t in u.targets}
        if len(targets) == 1:
            code = targets.pop()
            return Resolution(code, self.current[code].province_code, method, None)
        if len(units) == 1:
            became = "; ".join(self.current[t].label for t in units[0].targets)
            return _unresolved(
                f"{given} is legacy commune {units[0].label}, which was split across several current communes: {became}"
            )
        listed = "; ".join(f"{u.label}, now {' or '.join(u.targets)}" for u in units)
        return _unresolved(f"{given} is ambiguous: legacy units {listed}")

    def _where(self, vintage: Vintage, provinces: frozenset[str] | None) -> str:
        if provinces is None:
            return ""
        return " in " + " or ".join(
            f"{self.labels(vintage)[p]} ({vintage})" for p in sorted(provinces)
        )


def _order(era: Vintage) -> tuple[Vintage, Vintage]:
    return ("current", "legacy") if era == "current" else ("legacy", "current")


def era_of(period: str) -> Vintage:
    """Which naming a period's reports use: "legacy" if the period ends before the reorganisation."""
    return "legacy" if parse_period(period).end < REORGANISATION_DATE else "current"


@lru_cache(maxsize=1)
def _resolver() -> _Resolver:
    return _Resolver()


def resolve(record: Mapping[str, Any], period: str) -> Resolution:
    """The current commune and province a record names (its ``FIELDS``) for a period, or why not."""
    return _resolver().resolve(record, era_of(period))


def resolve_frame(
    records: list[dict[str, Any]], period: str
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """Split records of one period into resolved ones (copies with the current ``commune_code`` and
    ``province_code``) and rejected ones (the original record, the reason); order is kept."""
    resolver, era = _resolver(), era_of(period)
    seen: dict[tuple[str | None, ...], Resolution] = {}
    resolved: list[dict[str, Any]] = []
    rejected: list[tuple[dict[str, Any], str]] = []
    for record in records:
        key = tuple(_text(record.get(field)) for field in FIELDS)
        outcome = seen.get(key)
        if outcome is None:
            outcome = seen[key] = resolver.resolve(record, era)
        if outcome.reason is None:
            resolved.append(
                {**record, "commune_code": outcome.commune_code, "province_code": outcome.province_code}
            )
        else:
            rejected.append((record, outcome.reason))
    return resolved, rejected


# --- province names as printed in published tables ----------------------------------------------------

# Spellings of province names that older printed tables use and the package's keywords lack: folded key
# (``_key``, type word removed) -> the registry short name it stands for. Matched only after the
# registry's own names found nothing, and without checking the type word ("Tỉnh Thừa Thiên Huế" was a
# province, the registry knows it as "Thành phố Huế").
_PROVINCE_SPELLINGS: dict[str, str] = {
    "thuathienhue": "Huế",  # "Thừa Thiên Huế" / "Thừa Thiên - Huế", the province's name until 2025
    "daclac": "Đắk Lắk",
    "daclak": "Đắk Lắk",
    "daklac": "Đắk Lắk",
    "dacnong": "Đắk Nông",
    "baccan": "Bắc Kạn",
    "tphcm": "Hồ Chí Minh",
}


@dataclass(frozen=True)
class ProvinceNameMatch:
    """The provinces of one vintage a printed province name matches (exact match after folding)."""

    name: str
    vintage: Vintage
    candidates: tuple[tuple[str, str], ...]  # (province code, registry name), sorted by code

    @property
    def code(self) -> str | None:
        """The province code when the name matches exactly one province, else None."""
        return self.candidates[0][0] if len(self.candidates) == 1 else None


def resolve_province_name(name: str, vintage: Vintage) -> ProvinceNameMatch:
    """The provinces of ``vintage`` ("legacy": the 63 before 1 July 2025, "current": the 34) a printed
    name matches: with or without diacritics, a type word or abbreviation ("Tỉnh", "Thành phố", "TP.")
    and hyphens or spacing ("Bà Rịa - Vũng Tàu", "Ba Ria Vung Tau"), against the package's names and
    aliases, then a few older spellings ("Thừa Thiên Huế", "Đắc Lắc"). Nothing is guessed: no match or
    several matches leave ``code`` None, with the candidates listed."""
    resolver = _resolver()
    text = " ".join(unicodedata.normalize("NFC", str(name)).split())
    if not text:
        return ProvinceNameMatch(str(name), vintage, ())
    index = resolver.index(vintage, "province")
    read = resolver.name(text, not text.isascii())
    units = index.find(read)
    if not units:
        spelled = sorted({s for _, rest in read.readings if (s := _PROVINCE_SPELLINGS.get(rest))})
        found = {u.code: u for s in spelled for u in index.find(resolver.name(s, True))}
        units = [found[code] for code in sorted(found)]
    labels = resolver.labels(vintage)
    return ProvinceNameMatch(str(name), vintage, tuple((u.code, labels[u.code]) for u in units))
