"""Administrative units, from the maintained `vietnamadminunits` package.

Current units (since 1 July 2025): 34 provinces, 3,321 communes (xã, phường,
đặc khu), no district level. Legacy units (before): 63 provinces, 696 districts,
10,035 communes, plus five island districts that had no communes. The crosswalk
from legacy to current units is the package's 2025 converter table. Nothing here
is typed by hand: every code and name comes from the package's bundled data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import pandas as pd

# The 34 provinces and the two-level local government (no districts) took effect on this day:
# reports for periods ending before it name legacy units.
REORGANISATION_DATE = date(2025, 7, 1)


@dataclass(frozen=True)
class Registry:
    provinces: pd.DataFrame  # province_code, province_name, province_short_name
    communes: pd.DataFrame  # commune_code, commune_name, commune_type, province_code, area_km2

    def province_codes(self) -> list[str]:
        return self.provinces["province_code"].tolist()

    def commune_codes(self) -> list[str]:
        return self.communes["commune_code"].tolist()

    def communes_of(self, province_code: str) -> pd.DataFrame:
        return self.communes[self.communes["province_code"] == province_code]


@dataclass(frozen=True)
class LegacyRegistry:
    """The 63-province / district / commune units in force until 30 June 2025.

    ``provinces``: province_code, province_name, province_short_name; ``districts``: district_code,
    district_name, district_short_name, district_type, province_code; ``communes``: commune_code,
    commune_name, commune_short_name, commune_type, district_code, province_code.
    """

    provinces: pd.DataFrame
    districts: pd.DataFrame
    communes: pd.DataFrame

    def province_codes(self) -> list[str]:
        return self.provinces["province_code"].tolist()

    def commune_codes(self) -> list[str]:
        return self.communes["commune_code"].tolist()


def _query(sql: str) -> pd.DataFrame:
    from vietnamadminunits.database import query

    return pd.DataFrame(query(sql))


@lru_cache(maxsize=1)
def current_units() -> Registry:
    """The 34-province / 3,321-commune registry, sorted by code."""
    frame = _query(
        "SELECT provinceCode, province, provinceShort, wardCode, ward, wardType, wardAreaKm2 "
        "FROM admin_units ORDER BY provinceCode, wardCode"
    )
    communes = pd.DataFrame(
        {
            "commune_code": frame["wardCode"].astype(str),
            "commune_name": frame["ward"].astype(str),
            "commune_type": frame["wardType"].astype(str),
            "province_code": frame["provinceCode"].astype(str),
            "area_km2": frame["wardAreaKm2"].astype(float),
        }
    ).reset_index(drop=True)
    provinces = (
        frame[["provinceCode", "province", "provinceShort"]]
        .drop_duplicates()
        .rename(
            columns={
                "provinceCode": "province_code",
                "province": "province_name",
                "provinceShort": "province_short_name",
            }
        )
        .sort_values("province_code")
        .reset_index(drop=True)
    )
    return Registry(provinces=provinces, communes=communes)


@lru_cache(maxsize=1)
def legacy_units() -> LegacyRegistry:
    """The 63-province registry (provinces, districts, communes), sorted by province, district, commune code.

    The package lists five island districts without communes (Bạch Long Vĩ, Cồn Cỏ,
    Hoàng Sa, Lý Sơn, Côn Đảo): they are in ``districts`` but not in ``communes``.
    """
    frame = _query(
        "SELECT provinceCode, province, provinceShort, districtCode, district, districtShort, "
        "districtType, wardCode, ward, wardShort, wardType FROM admin_units_legacy "
        "ORDER BY provinceCode, districtCode, wardCode"
    )
    provinces = (
        frame[["provinceCode", "province", "provinceShort"]]
        .drop_duplicates()
        .set_axis(["province_code", "province_name", "province_short_name"], axis=1)
        .reset_index(drop=True)
    )
    districts = (
        frame[["districtCode", "district", "districtShort", "districtType", "provinceCode"]]
        .drop_duplicates()
        .set_axis(
            ["district_code", "district_name", "district_short_name", "district_type", "province_code"],
            axis=1,
        )
        .reset_index(drop=True)
    )
    communes = (
        frame.loc[
            frame["wardCode"].notna(),
            ["wardCode", "ward", "wardShort", "wardType", "districtCode", "provinceCode"],
        ]
        .set_axis(
            [
                "commune_code",
                "commune_name",
                "commune_short_name",
                "commune_type",
                "district_code",
                "province_code",
            ],
            axis=1,
        )
        .reset_index(drop=True)
    )
    return LegacyRegistry(provinces=provinces, districts=districts, communes=communes)


@lru_cache(maxsize=1)
def legacy_commune_crosswalk() -> pd.DataFrame:
    """Every legacy commune (and commune-less island district) -> the current unit(s) it became.

    One row per entry of the package's converter table (10,040 in 1.0.4), in legacy code order:
    ``legacy_commune_code`` (missing for the five island districts), ``legacy_district_code``,
    ``legacy_province_code``, ``current_province_code``, ``current_commune_code`` (missing when
    split), ``is_split`` (the legacy commune went to several current communes),
    ``candidate_commune_codes`` (tuple of the current communes it went to, sorted) and
    ``converter_default_commune_code`` (the one ``convert_address`` picks for a split commune
    when no street is given: the package's default, never used to resolve a report).
    """
    from vietnamadminunits.converter import converter_2025 as converter

    legacy = _query(
        "SELECT provinceKey, districtKey, wardKey, provinceCode, districtCode, wardCode "
        "FROM admin_units_legacy ORDER BY provinceCode, districtCode, wardCode"
    )
    current = _query("SELECT provinceKey, wardKey, provinceCode, wardCode FROM admin_units")
    current_code = {
        (p, w): c for p, w, c in current[["provinceKey", "wardKey", "wardCode"]].itertuples(index=False)
    }
    province_code = dict(current[["provinceKey", "provinceCode"]].drop_duplicates().itertuples(index=False))

    targets: dict[str, tuple[str, list[str], str]] = {}  # old key -> (province, candidates, default)
    for new_province, wards in converter.DICT_PROVINCE_WARD_NO_DIVIDED.items():
        for new_ward, old_keys in wards.items():
            code = current_code[(new_province, new_ward)]
            targets.update({old: (province_code[new_province], [code], code) for old in old_keys})
    for new_province, splits in converter.DICT_PROVINCE_WARD_DIVIDED.items():
        for old, new_wards in splits.items():
            codes = [current_code[(new_province, w["newWardKey"])] for w in new_wards]
            default = next(
                current_code[(new_province, w["newWardKey"])] for w in new_wards if w["isDefaultNewWard"]
            )
            targets[old] = (province_code[new_province], codes, default)

    rows: list[dict[str, Any]] = []
    for p_key, d_key, w_key, p_code, d_code, w_code in legacy.itertuples(index=False):
        island = pd.isna(w_code)  # the five island districts have no ward key and no commune code
        new_province, codes, default = targets[f"{p_key}_{d_key}_{'' if island else w_key}"]
        candidates = tuple(sorted(codes))
        rows.append(
            {
                "legacy_commune_code": None if island else w_code,
                "legacy_district_code": d_code,
                "legacy_province_code": p_code,
                "current_province_code": new_province,
                "current_commune_code": candidates[0] if len(candidates) == 1 else None,
                "is_split": len(candidates) > 1,
                "candidate_commune_codes": candidates,
                "converter_default_commune_code": default,
            }
        )
    return pd.DataFrame(rows)


@lru_cache(maxsize=1)
def legacy_province_crosswalk() -> pd.DataFrame:
    """The 63 legacy provinces -> the current province each became (``DICT_PROVINCE`` of the converter).

    Columns ``legacy_province_code``, ``current_province_code``; sorted by legacy code. In the
    package every legacy province went whole into exactly one current province.
    """
    from vietnamadminunits.converter import converter_2025 as converter

    legacy = dict(
        _query("SELECT DISTINCT provinceKey, provinceCode FROM admin_units_legacy").itertuples(index=False)
    )
    current = dict(
        _query("SELECT DISTINCT provinceKey, provinceCode FROM admin_units").itertuples(index=False)
    )
    rows = [
        {"legacy_province_code": legacy[old], "current_province_code": current[new]}
        for new, olds in converter.DICT_PROVINCE.items()
        for old in olds
    ]
    return pd.DataFrame(rows).sort_values("legacy_province_code").reset_index(drop=True)


def predecessors_of(current_province_code: str) -> list[str]:
    """The legacy province codes merged into a current province, sorted; ValueError if unknown."""
    crosswalk = legacy_province_crosswalk()
    codes = crosswalk.loc[crosswalk["current_province_code"] == current_province_code, "legacy_province_code"]
    if codes.empty:
        raise ValueError(f"{current_province_code!r} is not a current province code")
    return sorted(codes)


@lru_cache(maxsize=1)
def unit_names() -> pd.DataFrame:
    """What names every unit can be matched on, for resolving reports.

    One row per unit: ``vintage`` ("current" | "legacy"), ``level`` ("province" | "district" |
    "commune"), ``code``, ``name``, ``short_name``, ``type`` (e.g. "Tỉnh", "Thị xã", "Phường") and
    ``keywords``: the package's folded names, spelling variants and aliases (tuple of str).
    """
    current = _query(
        "SELECT provinceCode, province, provinceShort, provinceKeywords, "
        "wardCode, ward, wardShort, wardType, wardKeywords FROM admin_units"
    )
    legacy = _query(
        "SELECT provinceCode, province, provinceShort, provinceKeywords, districtCode, district, "
        "districtShort, districtType, districtKeywords, wardCode, ward, wardShort, wardType, wardKeywords "
        "FROM admin_units_legacy WHERE 1"
    )
    parts = [
        _names(current, "current", "province", "province", None),
        _names(current, "current", "commune", "ward", "wardType"),
        _names(legacy, "legacy", "province", "province", None),
        _names(legacy, "legacy", "district", "district", "districtType"),
        _names(legacy[legacy["wardCode"].notna()], "legacy", "commune", "ward", "wardType"),
    ]
    return pd.concat(parts, ignore_index=True)


def _names(
    frame: pd.DataFrame, vintage: str, level: str, column: str, type_column: str | None
) -> pd.DataFrame:
    """The name rows of one level of one table (``column`` is the package's column prefix)."""
    columns = [f"{column}Code", column, f"{column}Short", f"{column}Keywords"]
    units = frame[columns + ([type_column] if type_column else [])].drop_duplicates(f"{column}Code")
    names, shorts = units[column].astype(str), units[f"{column}Short"].astype(str)
    types = (
        units[type_column].astype(str)
        if type_column
        # provinces carry no type column: the type is the name without its short name
        else pd.Series(
            [n[: len(n) - len(s)].strip() for n, s in zip(names, shorts, strict=True)], index=units.index
        )
    )
    return pd.DataFrame(
        {
            "vintage": vintage,
            "level": level,
            "code": units[f"{column}Code"].astype(str),
            "name": names,
            "short_name": shorts,
            "type": types,
            "keywords": [tuple(json.loads(k)) for k in units[f"{column}Keywords"]],
        }
    ).reset_index(drop=True)
