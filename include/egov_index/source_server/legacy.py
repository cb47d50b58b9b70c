"""Pre-2025 (legacy) units behind each current commune, for legacy-identified reports.

Everything comes from the maintained ``vietnamadminunits`` package: the legacy units
(``admin_units_legacy``: 63 provinces, districts, communes) and its 2025 converter table
(``data/converter_2025.json``), which lists for every current commune the legacy communes
that merged into it whole (``DICT_PROVINCE_WARD_NO_DIVIDED``). Legacy communes that were
split between several current communes are left out, so a legacy unit identifies exactly
one current commune; so are legacy codes that are also current codes (a current commune
often kept one of its predecessors' codes), so a legacy code is never mistaken for a
current one.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files


@dataclass(frozen=True)
class LegacyUnit:
    """A pre-2025 commune with its district and province, as written on old forms."""

    code: str
    name: str
    district_name: str
    province_code: str
    province_name: str
    unique_without_diacritics: bool  # no other legacy commune's names fold to the same three names


def strip_diacritics(text: str) -> str:
    """'Xã Hòa Bình, Đắk Lắk' -> 'Xa Hoa Binh, Dak Lak' (case and spacing kept)."""
    decomposed = unicodedata.normalize("NFD", text)
    plain = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return plain.replace("đ", "d").replace("Đ", "D")


def _folded(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(strip_diacritics(row[level]).lower() for level in ("ward", "district", "province"))


@lru_cache(maxsize=1)
def legacy_units_by_commune() -> dict[str, tuple[LegacyUnit, ...]]:
    """Current commune code -> the legacy communes merged whole into it (ordered by legacy code)."""
    from vietnamadminunits.database import query

    converter = json.loads(files("vietnamadminunits").joinpath("data/converter_2025.json").read_text("utf-8"))
    merged_whole: dict[str, dict[str, list[str]]] = converter["DICT_PROVINCE_WARD_NO_DIVIDED"]
    current = query("SELECT wardCode, provinceKey, wardKey FROM admin_units")
    current_codes = {row["wardCode"] for row in current}
    rows = query(
        "SELECT province, district, ward, provinceCode, wardCode, provinceKey, districtKey, wardKey "
        "FROM admin_units_legacy WHERE wardCode IS NOT NULL"
    )
    folded = Counter(_folded(row) for row in rows)
    legacy = {
        f"{row['provinceKey']}_{row['districtKey']}_{row['wardKey']}": LegacyUnit(
            code=row["wardCode"],
            name=row["ward"],
            district_name=row["district"],
            province_code=row["provinceCode"],
            province_name=row["province"],
            unique_without_diacritics=folded[_folded(row)] == 1,
        )
        for row in rows
    }
    result: dict[str, tuple[LegacyUnit, ...]] = {}
    for row in current:
        keys = merged_whole.get(row["provinceKey"], {}).get(row["wardKey"], [])
        units = sorted(
            (legacy[key] for key in keys if key in legacy and legacy[key].code not in current_codes),
            key=lambda unit: unit.code,
        )
        result[row["wardCode"]] = tuple(units)
    return result
