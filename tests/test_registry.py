"""The administrative-unit registry (current and legacy), the 2025 crosswalk and unit resolution.

Expected values come from the `vietnamadminunits` package itself (its database and its converter),
never from hand-typed units; the seed example is the only address typed here.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from vietnamadminunits import ParseMode, convert_address, parse_address
from vietnamadminunits.converter import converter_2025
from vietnamadminunits.database import query

from egov_index.registry import (
    current_units,
    legacy_commune_crosswalk,
    legacy_province_crosswalk,
    legacy_units,
    predecessors_of,
    unit_names,
)
from egov_index.unit_resolution import FIELDS, era_of, resolve, resolve_frame

CURRENT = "2026-Q3"  # a period after the reorganisation
LEGACY = "2025-Q2"  # the last quarter before it


@pytest.fixture(autouse=True)
def _no_geocoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The converter geocodes addresses with a street over the network; these tests never may."""

    def refuse(address: str) -> None:
        raise AssertionError(f"the converter tried to geocode {address!r}")

    monkeypatch.setattr(converter_2025, "get_geo_location", refuse)


def _count(sql: str) -> int:
    return int(query(sql)[0]["n"])


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFD", text).replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def _legacy_communes() -> pd.DataFrame:
    """Legacy communes with their district and province names and their crosswalk row."""
    legacy = legacy_units()
    frame = legacy.communes.merge(
        legacy.districts[["district_code", "district_name", "district_short_name"]], on="district_code"
    ).merge(legacy.provinces, on="province_code")
    return frame.merge(legacy_commune_crosswalk(), left_on="commune_code", right_on="legacy_commune_code")


def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    """Three legacy communes of every legacy province: its first, middle and last by code."""
    picks = []
    for _, group in frame.sort_values("commune_code").groupby("province_code"):
        picks.append(group.iloc[sorted({0, len(group) // 2, len(group) - 1})])
    return pd.concat(picks, ignore_index=True)


def _converted(row: Any) -> Any:
    return convert_address(f"{row.commune_name}, {row.district_name}, {row.province_name}")


# --- counts and frames ---------------------------------------------------------------------------------


def test_counts_equal_the_package_database() -> None:
    current, legacy = current_units(), legacy_units()
    assert len(current.provinces) == _count("SELECT COUNT(DISTINCT provinceCode) n FROM admin_units") == 34
    assert len(current.communes) == _count("SELECT COUNT(DISTINCT wardCode) n FROM admin_units") == 3321
    assert (
        len(legacy.provinces) == _count("SELECT COUNT(DISTINCT provinceCode) n FROM admin_units_legacy") == 63
    )
    assert len(legacy.districts) == _count("SELECT COUNT(DISTINCT districtCode) n FROM admin_units_legacy")
    assert len(legacy.communes) == _count("SELECT COUNT(DISTINCT wardCode) n FROM admin_units_legacy")
    assert len(legacy_commune_crosswalk()) == _count("SELECT COUNT(*) n FROM admin_units_legacy")


def test_current_registry_api_is_unchanged() -> None:
    units = current_units()
    assert list(units.provinces.columns) == ["province_code", "province_name", "province_short_name"]
    assert list(units.communes.columns) == [
        "commune_code",
        "commune_name",
        "commune_type",
        "province_code",
        "area_km2",
    ]
    assert len(set(units.commune_codes())) == len(units.communes)
    assert sum(len(units.communes_of(p)) for p in units.province_codes()) == len(units.communes)


def test_legacy_frames_are_consistent() -> None:
    legacy = legacy_units()
    assert list(legacy.districts.columns) == [
        "district_code",
        "district_name",
        "district_short_name",
        "district_type",
        "province_code",
    ]
    assert list(legacy.communes.columns) == [
        "commune_code",
        "commune_name",
        "commune_short_name",
        "commune_type",
        "district_code",
        "province_code",
    ]
    assert len(set(legacy.commune_codes())) == len(legacy.communes)
    assert legacy.districts["district_code"].is_unique
    district_province = legacy.districts.set_index("district_code")["province_code"]
    assert (legacy.communes["district_code"].map(district_province) == legacy.communes["province_code"]).all()
    assert set(legacy.districts["province_code"]) == set(legacy.province_codes())


def test_unit_names_cover_every_unit() -> None:
    names = unit_names()
    sizes = names.groupby(["vintage", "level"]).size().to_dict()
    legacy = legacy_units()
    assert sizes == {
        ("current", "province"): 34,
        ("current", "commune"): 3321,
        ("legacy", "province"): len(legacy.provinces),
        ("legacy", "district"): len(legacy.districts),
        ("legacy", "commune"): len(legacy.communes),
    }
    assert names["keywords"].map(len).min() >= 1


# --- crosswalks ----------------------------------------------------------------------------------------


def test_commune_crosswalk_follows_the_converter_table() -> None:
    crosswalk = legacy_commune_crosswalk()
    current = set(current_units().commune_codes())
    legacy_codes = crosswalk["legacy_commune_code"].dropna()
    assert legacy_codes.is_unique and set(legacy_codes) == set(legacy_units().commune_codes())
    assert (crosswalk["is_split"] == (crosswalk["candidate_commune_codes"].map(len) > 1)).all()
    assert (crosswalk["current_commune_code"].isna() == crosswalk["is_split"]).all()
    assert crosswalk["candidate_commune_codes"].map(lambda codes: set(codes) <= current).all()
    assert all(
        d in c
        for d, c in zip(
            crosswalk["converter_default_commune_code"], crosswalk["candidate_commune_codes"], strict=True
        )
    )
    assert (
        set().union(*crosswalk["candidate_commune_codes"]) == current
    )  # every current commune has a predecessor
    split = sum(len(wards) for wards in converter_2025.DICT_PROVINCE_WARD_DIVIDED.values())
    assert int(crosswalk["is_split"].sum()) == split
    # a commune lands in the province its legacy province became
    successor = legacy_province_crosswalk().set_index("legacy_province_code")["current_province_code"]
    assert (crosswalk["legacy_province_code"].map(successor) == crosswalk["current_province_code"]).all()
    commune_province = current_units().communes.set_index("commune_code")["province_code"]
    for codes, province in zip(
        crosswalk["candidate_commune_codes"], crosswalk["current_province_code"], strict=True
    ):
        assert {commune_province[c] for c in codes} == {province}


def test_province_crosswalk_maps_63_onto_34_and_predecessors_match() -> None:
    crosswalk = legacy_province_crosswalk()
    assert sorted(crosswalk["legacy_province_code"]) == legacy_units().province_codes()
    assert crosswalk["legacy_province_code"].is_unique
    assert sorted(set(crosswalk["current_province_code"])) == current_units().province_codes()
    seen: list[str] = []
    for code in current_units().province_codes():
        predecessors = predecessors_of(code)
        assert predecessors == sorted(
            crosswalk.loc[crosswalk["current_province_code"] == code, "legacy_province_code"]
        )
        seen += predecessors
    assert sorted(seen) == legacy_units().province_codes()  # a partition: each legacy province once
    with pytest.raises(ValueError, match="not a current province code"):
        predecessors_of("00")


# --- resolving current units ---------------------------------------------------------------------------


def test_every_current_code_resolves_to_itself() -> None:
    communes = current_units().communes
    records = [
        {"commune_code": c, "province_code": p}
        for c, p in zip(communes["commune_code"], communes["province_code"], strict=True)
    ]
    resolved, rejected = resolve_frame(records, CURRENT)
    assert rejected == []
    assert resolved == records
    assert {resolve(r, CURRENT).method for r in records[::300]} == {"current_code"}


def test_legacy_indexes_are_built_only_when_a_record_needs_them() -> None:
    """A current-era record naming its current commune never reads legacy units (their indexes are
    most of the resolver's build time); the first record that needs them builds them, once."""
    from egov_index.unit_resolution import _Resolver

    resolver = _Resolver()
    communes = current_units().communes.iloc[::97]
    for code, province, name in communes[["commune_code", "province_code", "commune_name"]].itertuples(index=False):
        outcome = resolver.resolve({"commune_code": code, "province_code": province, "commune_name": name}, "current")
        assert (outcome.commune_code, outcome.method) == (code, "current_code")
    assert resolver._legacy is None

    legacy = _legacy_communes()
    only_legacy = legacy[~legacy["commune_code"].isin(current_units().commune_codes()) & ~legacy["is_split"]].iloc[0]
    outcome = resolver.resolve({"commune_code": only_legacy["commune_code"]}, "current")
    assert (outcome.commune_code, outcome.method) == (only_legacy["current_commune_code"], "legacy_code")
    built = resolver._legacy
    assert built is not None and len(built) == len(legacy_units().communes)
    resolver.resolve({"commune_name": "Phường 1", "district_name": "Quận 3", "province_name": "Hồ Chí Minh"}, "legacy")
    assert resolver._legacy is built  # not rebuilt


@pytest.mark.parametrize("form", ["nfc", "nfd", "ascii", "ascii upper case"])
def test_current_names_resolve_when_unique_in_their_province(form: str) -> None:
    units = current_units()
    province_name = units.provinces.set_index("province_code")["province_name"]
    spell = {"nfc": str, "nfd": _nfd, "ascii": _ascii, "ascii upper case": lambda s: _ascii(s).upper()}[form]
    communes = units.communes
    folded = Counter(
        zip(communes["province_code"], communes["commune_name"].map(lambda n: _ascii(n).lower()), strict=True)
    )
    records = [
        {"commune_name": spell(n), "province_name": spell(province_name[p]), "expected": c}
        for c, n, p in zip(
            communes["commune_code"], communes["commune_name"], communes["province_code"], strict=True
        )
    ]
    resolved, rejected = resolve_frame(records, CURRENT)
    assert all(r["commune_code"] == r["expected"] for r in resolved)
    if form in ("nfc", "nfd"):
        assert rejected == []  # diacritics tell every current commune apart within its province
    else:
        unique = {
            c
            for c, n, p in zip(
                communes["commune_code"], communes["commune_name"], communes["province_code"], strict=True
            )
            if folded[p, _ascii(n).lower()] == 1
        }
        assert {r["expected"] for r in resolved} == unique
        assert rejected and all("ambiguous" in reason for _, reason in rejected)
    assert resolve(records[0], CURRENT).method == "current_name"


def test_diacritics_tell_apart_names_that_fold_alike() -> None:
    communes = current_units().communes
    communes = communes.assign(folded=communes["commune_name"].map(lambda n: _ascii(n).lower()))
    pairs = communes[communes.duplicated(["province_code", "folded"], keep=False)].sort_values("commune_code")
    first = pairs.iloc[0]
    twin = pairs[
        (pairs["province_code"] == first["province_code"]) & (pairs["folded"] == first["folded"])
    ].iloc[1]
    for unit in (first, twin):
        outcome = resolve(
            {"commune_name": unit["commune_name"], "province_code": unit["province_code"]}, CURRENT
        )
        assert outcome.commune_code == unit["commune_code"]
    outcome = resolve(
        {"commune_name": _ascii(first["commune_name"]), "province_code": first["province_code"]}, CURRENT
    )
    reason = outcome.reason or ""
    assert outcome.commune_code is None and "ambiguous" in reason
    assert first["commune_code"] in reason and twin["commune_code"] in reason


def test_a_name_shared_across_provinces_is_ambiguous_without_a_province() -> None:
    communes = current_units().communes
    counts = communes["commune_name"].value_counts()
    name = counts.index[0]
    assert counts.iloc[0] > 1
    outcome = resolve({"commune_name": name}, CURRENT)
    assert not outcome.resolved and outcome.method is None and outcome.commune_code is None
    assert "ambiguous" in (outcome.reason or "")
    for code in communes.loc[communes["commune_name"] == name, "commune_code"]:
        assert code in (outcome.reason or "")


# --- resolving legacy units ----------------------------------------------------------------------------


def test_legacy_sample_of_every_province_resolves_as_the_converter_says() -> None:
    frame = _legacy_communes()
    folded = Counter(
        zip(frame["district_code"], frame["commune_name"].map(lambda n: _ascii(n).lower()), strict=True)
    )
    sample = _sample(frame)
    assert set(sample["province_code"]) == set(legacy_units().province_codes())
    assert sample["is_split"].any() and not sample["is_split"].all()
    for row in sample.itertuples(index=False):
        converted = _converted(row)
        by_code = resolve({"commune_code": row.commune_code}, LEGACY)
        named = {
            "commune_name": row.commune_name,
            "district_name": row.district_name,
            "province_name": row.province_name,
        }
        short = {
            "commune_name": row.commune_short_name,
            "district_name": row.district_short_name,
            "province_name": row.province_short_name,
        }
        plain = {
            k: _ascii(v) for k, v in named.items()
        }  # without diacritics: resolves if unique in the district
        if folded[row.district_code, _ascii(row.commune_name).lower()] > 1:
            assert "ambiguous" in (resolve(plain, LEGACY).reason or "")
            plain = named
        if row.is_split:
            assert converted.ward_code == row.converter_default_commune_code
            for outcome in (by_code, resolve(named, CURRENT)):
                assert not outcome.resolved and "split" in (outcome.reason or "")
                assert all(code in (outcome.reason or "") for code in row.candidate_commune_codes)
            continue
        assert converted.ward_code == row.current_commune_code
        expected = (converted.ward_code, converted.province_code)
        assert (by_code.commune_code, by_code.province_code, by_code.method) == (*expected, "legacy_code")
        for record in (named, {k: _nfd(v) for k, v in named.items()}, short, plain):
            for period in (CURRENT, LEGACY):
                outcome = resolve(record, period)
                assert (outcome.commune_code, outcome.province_code) == expected, (record, outcome)
                assert outcome.method == "legacy_name"


def test_legacy_codes_resolve_in_a_current_period_when_they_are_not_current_codes() -> None:
    frame = _legacy_communes()
    current = set(current_units().commune_codes())
    only_legacy = frame[~frame["commune_code"].isin(current) & ~frame["is_split"]]
    records = [{"commune_code": c} for c in only_legacy["commune_code"]]
    resolved, rejected = resolve_frame(records, CURRENT)
    assert rejected == []
    assert [r["commune_code"] for r in resolved] == only_legacy["current_commune_code"].tolist()


def test_a_split_legacy_commune_is_unresolved_with_its_candidates() -> None:
    frame = _legacy_communes()
    row = frame[frame["is_split"]].iloc[0]
    records = [
        {"commune_code": row["commune_code"]},
        {
            "commune_name": row["commune_name"],
            "district_name": row["district_name"],
            "province_name": row["province_name"],
        },
    ]
    for record in records:
        outcome = resolve(record, LEGACY)
        assert (outcome.commune_code, outcome.province_code, outcome.method) == (None, None, None)
        assert "split across several current communes" in (outcome.reason or "")
        for code in row["candidate_commune_codes"]:
            assert code in (outcome.reason or "")


def test_the_period_decides_how_a_shared_code_is_read() -> None:
    """Codes kept by a new commune also named a legacy commune; a split one tells the readings apart."""
    frame = _legacy_communes()
    current = set(current_units().commune_codes())
    row = frame[frame["is_split"] & frame["commune_code"].isin(current)].iloc[0]
    now = resolve({"commune_code": row["commune_code"]}, CURRENT)
    assert (now.commune_code, now.method) == (row["commune_code"], "current_code")
    before = resolve({"commune_code": row["commune_code"]}, LEGACY)
    assert not before.resolved and "split" in (before.reason or "")
    # with its legacy names and district, the code is read as legacy even in a current period
    named = resolve(
        {
            "commune_code": row["commune_code"],
            "commune_name": row["commune_name"],
            "district_name": row["district_name"],
        },
        CURRENT,
    )
    assert not named.resolved and "split" in (named.reason or "")
    assert era_of("2025-Q2") == "legacy" and era_of("2025-Q3") == era_of("2025") == "current"


def test_island_districts_without_communes_resolve_by_district_name() -> None:
    crosswalk = legacy_commune_crosswalk()
    islands = crosswalk[crosswalk["legacy_commune_code"].isna()]
    districts = legacy_units().districts.set_index("district_code")
    provinces = legacy_units().provinces.set_index("province_code")
    assert len(islands) == _count("SELECT COUNT(*) n FROM admin_units_legacy WHERE wardCode IS NULL")
    for row in islands.itertuples(index=False):
        district = districts.loc[row.legacy_district_code, "district_name"]
        province = provinces.loc[row.legacy_province_code, "province_name"]
        converted = convert_address(f"{district}, {province}")
        outcome = resolve({"district_name": district, "province_name": province}, LEGACY)
        assert (outcome.commune_code, outcome.province_code) == (converted.ward_code, converted.province_code)
        assert outcome.commune_code == row.current_commune_code and outcome.method == "legacy_name"


# --- the seed example ----------------------------------------------------------------------------------


SEED = {"commune_name": "phường Nhơn Thành", "district_name": "thị xã An Nhơn", "province_name": "Bình Định"}


def test_the_seed_address_resolves_as_the_converter_says() -> None:
    converted = convert_address(", ".join(SEED.values()))
    assert converted.ward_code and converted.province_code
    legacy_province = legacy_units().provinces
    binh_dinh = legacy_province.loc[
        legacy_province["province_short_name"] == SEED["province_name"], "province_code"
    ]
    assert binh_dinh.iloc[0] in predecessors_of(converted.province_code)  # Bình Định merged into it
    current_province = current_units().provinces.set_index("province_code").loc[converted.province_code]
    assert current_province["province_short_name"] != SEED["province_name"]  # under another name
    variants = [
        SEED,
        {k: _nfd(v) for k, v in SEED.items()},
        {k: _ascii(v) for k, v in SEED.items()},
        {"commune_name": "P. Nhơn Thành", "district_name": "TX. An Nhơn", "province_name": "Tỉnh Bình Định"},
        {"commune_name": "Nhơn Thành", "province_name": "Bình Định"},  # no district: unique in the province
    ]
    for record in variants:
        for period in (CURRENT, LEGACY):
            outcome = resolve(record, period)
            assert outcome == resolve(SEED, CURRENT), record
            assert (outcome.commune_code, outcome.province_code) == (
                converted.ward_code,
                converted.province_code,
            )
            assert outcome.method == "legacy_name" and outcome.reason is None
    # the same commune by its current name and province
    current = current_units()
    name = current.communes.set_index("commune_code").loc[converted.ward_code, "commune_name"]
    province = current.provinces.set_index("province_code").loc[converted.province_code, "province_name"]
    outcome = resolve({"commune_name": name, "province_name": province}, CURRENT)
    assert (outcome.commune_code, outcome.method) == (converted.ward_code, "current_name")


# --- what stays unresolved -----------------------------------------------------------------------------


def test_unknown_codes_and_names_are_unresolved_with_a_reason() -> None:
    known = set(current_units().commune_codes()) | set(legacy_units().commune_codes())
    unknown = next(f"{n:05d}" for n in range(99999, 0, -1) if f"{n:05d}" not in known)
    cases = {
        "neither a current nor a legacy commune code": {"commune_code": unknown},
        "is not a commune code": {"commune_code": "12a45"},
        "is not a province code": {"commune_name": SEED["commune_name"], "province_code": "x1"},
        "neither a current nor a legacy province code": {
            "commune_name": SEED["commune_name"],
            "province_code": "00",
        },
        "no commune code and no commune name": {"province_name": SEED["province_name"]},
        "is not a current province name": {"commune_name": SEED["commune_name"], "province_name": "Atlantis"},
    }
    for expected, record in cases.items():
        outcome = resolve(record, CURRENT)
        assert outcome == resolve(record, CURRENT)
        assert (outcome.commune_code, outcome.province_code, outcome.method) == (None, None, None)
        assert expected in (outcome.reason or ""), (record, outcome.reason)


def test_an_unknown_ward_never_falls_back_to_its_province() -> None:
    province = current_units().provinces.iloc[0]
    address = f"Phường Không Có Thật, {province['province_name']}"
    parsed = parse_address(address, mode=ParseMode.FROM_2025, keep_street=False)
    assert (
        parsed.ward_code is None and parsed.province_code == province["province_code"]
    )  # the parser's fallback
    outcome = resolve(
        {"commune_name": "Phường Không Có Thật", "province_name": province["province_name"]}, CURRENT
    )
    assert (outcome.commune_code, outcome.province_code) == (None, None)
    assert "no current commune named 'Phường Không Có Thật'" in (outcome.reason or "")


def test_code_and_names_that_disagree_are_unresolved() -> None:
    communes = current_units().communes
    provinces = current_units().provinces.set_index("province_code")["province_name"]
    a, b = communes.iloc[0], communes.iloc[-1]  # first and last province
    cases = [
        {"commune_code": a["commune_code"], "commune_name": b["commune_name"]},
        {"commune_code": a["commune_code"], "province_code": b["province_code"]},
        {"commune_code": a["commune_code"], "province_name": provinces[b["province_code"]]},
    ]
    for record in cases:
        outcome = resolve(record, CURRENT)
        assert not outcome.resolved and outcome.commune_code is None
        assert "disagree" in (outcome.reason or "") and a["commune_code"] in (outcome.reason or "")
    # the province code and name of a name-only record must agree too
    outcome = resolve(
        {
            "commune_name": a["commune_name"],
            "province_code": b["province_code"],
            "province_name": provinces[a["province_code"]],
        },
        CURRENT,
    )
    assert not outcome.resolved and "disagree" in (outcome.reason or "")
    # agreeing code and name resolve
    agreeing = {
        "commune_code": a["commune_code"],
        "commune_name": a["commune_name"],
        "province_name": provinces[a["province_code"]],
    }
    assert resolve(agreeing, CURRENT).commune_code == a["commune_code"]


# --- resolve_frame ---------------------------------------------------------------------------------------


def test_resolve_frame_sets_current_codes_and_returns_rejected_originals() -> None:
    frame = _legacy_communes()
    good = frame[~frame["is_split"]].iloc[0]
    split = frame[frame["is_split"]].iloc[0]
    records = [
        # a legacy code that lost its leading zeros (Excel), then legacy names, a split code, nothing
        {"commune_code": int(good["commune_code"]), "province_code": None, "officials_total": 12},
        {
            "commune_code": float("nan"),
            "commune_name": good["commune_name"],
            "district_name": good["district_name"],
            "province_name": good["province_name"],
            "officials_total": 7,
        },
        {"commune_code": split["commune_code"], "officials_total": 3},
        {"commune_code": "  ", "commune_name": None, "officials_total": 1},
    ]
    before = [dict(r) for r in records]
    resolved, rejected = resolve_frame(records, LEGACY)
    assert records == before  # inputs untouched
    assert [r["commune_code"] for r in resolved] == [good["current_commune_code"]] * 2
    assert {r["province_code"] for r in resolved} == {good["current_province_code"]}
    assert [r["officials_total"] for r in resolved] == [12, 7]
    assert all(
        set(r) == set(o) | {"commune_code", "province_code"}
        for r, o in zip(resolved, records[:2], strict=True)
    )
    assert [r for r, _ in rejected] == records[2:] and all(
        r is o for (r, _), o in zip(rejected, records[2:], strict=True)
    )
    assert "split" in rejected[0][1] and "no commune code and no commune name" in rejected[1][1]
    assert set(FIELDS) == {"commune_code", "province_code", "commune_name", "district_name", "province_name"}


def test_an_invalid_period_is_refused() -> None:
    with pytest.raises(ValueError, match="period"):
        resolve({"commune_code": "00004"}, "Q3-2026")
