"""Administrative units, from the maintained `vietnamadminunits` package.

Current units (since 1 July 2025): 34 provinces, 3,321 communes (xã, phường,
đặc khu), no district level. Nothing here is typed by hand: every code and
name comes from the package's bundled database.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd


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


@lru_cache(maxsize=1)
def current_units() -> Registry:
    """The 34-province / 3,321-commune registry, sorted by code."""
    from vietnamadminunits.database import query

    rows = query(
        "SELECT provinceCode, province, provinceShort, wardCode, ward, wardType, wardAreaKm2 "
        "FROM admin_units ORDER BY provinceCode, wardCode"
    )
    frame = pd.DataFrame(rows)
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
