"""Importing the ministry's published provincial rankings and crosswalking them to the current provinces.

Fixtures (tests/fixtures/published/):
- ict_index_2018_full.csv: all 63 provinces of 2018, as printed (UTF-8 with BOM, ';', decimal comma,
  Vietnamese headers, a numbering column, names in varied styles), with ties in the overall index
  (Cao Bằng = Điện Biên = 0,512; Nam Định = Quảng Trị = 0,485) and in c4 (Quảng Ninh = Hải Dương).
- ict_index_2019_top15.csv: the top 15 of 2019 as a press release prints it (',' and decimal point,
  English headers, names without diacritics); the printed rank on row 8 (Bà Rịa - Vũng Tàu) is wrong.
- unresolved_name_2007.csv: a 2007 table naming Hà Tây (merged into Hà Nội in 2008) on row 4.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from egov_index.cli import main as cli_main
from egov_index.published_rankings import (
    BASELINE_COLUMNS,
    PUBLISHED_RANKINGS,
    PublishedRankingError,
    baseline_on_current_units,
    competition_ranks,
    import_published_ranking,
    load_published,
    read_published_csv,
)
from egov_index.registry import current_units, legacy_province_crosswalk, legacy_units
from egov_index.schemas import CATEGORIES, PUBLISHED_RANKING_SCHEMA
from egov_index.store import DataStore
from egov_index.unit_resolution import resolve_province_name

FIXTURES = Path(__file__).parent / "fixtures" / "published"
FULL_2018 = FIXTURES / "ict_index_2018_full.csv"
TOP15_2019 = FIXTURES / "ict_index_2019_top15.csv"
UNRESOLVED = FIXTURES / "unresolved_name_2007.csv"


@pytest.fixture(scope="module")
def full_2018():
    return read_published_csv(FULL_2018)


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _expected_ranks(values: list[float]) -> list[int]:
    """Competition ranking written the slow way, independently of the module."""
    return [1 + sum(other > v for other in values) for v in values]


# --- ranks -------------------------------------------------------------------------------------------


def test_competition_ranks_share_and_skip():
    assert competition_ranks([0.5, 0.7, 0.7, 0.3, None]) == [3, 1, 1, 4, None]
    assert competition_ranks([Decimal("0.485"), Decimal("0.4850"), Decimal("0.49")]) == [2, 2, 1]
    assert competition_ranks([]) == []


# --- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("printed", "vintage", "code"),
    [
        ("TP. Hồ Chí Minh", "legacy", "79"),
        ("Thành phố Hồ Chí Minh", "legacy", "79"),
        ("TP.HCM", "legacy", "79"),
        ("Tp Ho Chi Minh", "current", "79"),
        ("Thừa Thiên - Huế", "legacy", "46"),
        ("Thừa Thiên Huế", "legacy", "46"),
        ("Tỉnh Thừa Thiên Huế", "legacy", "46"),
        ("Bà Rịa - Vũng Tàu", "legacy", "77"),
        ("Bà Rịa-Vũng Tàu", "legacy", "77"),
        ("Ba Ria Vung Tau", "legacy", "77"),
        ("Hà Nội", "legacy", "01"),
        ("Thành phố Hà Nội", "current", "01"),
        ("Đắk Lắk", "legacy", "66"),
        ("Đắc Lắc", "legacy", "66"),
        ("Dak Lak", "current", "66"),
        ("Tỉnh  Nam   Định", "legacy", "36"),
        ("nam dinh", "legacy", "36"),
        ("Hoà Bình", "legacy", "17"),
        ("Lào Cai", "legacy", "10"),  # same name, another code in each vintage
        ("Lào Cai", "current", "15"),
    ],
)
def test_printed_province_names_resolve_in_their_vintage(printed, vintage, code):
    assert resolve_province_name(printed, vintage).code == code


@pytest.mark.parametrize(
    ("printed", "vintage"),
    [("Bình Dương", "current"), ("Hà Tây", "legacy"), ("Tỉnh Hà Nội", "legacy"), ("", "legacy")],
)
def test_unknown_or_wrong_vintage_names_do_not_resolve(printed, vintage):
    match = resolve_province_name(printed, vintage)
    assert match.code is None and match.candidates == ()


# --- (a) the full 2018 table ------------------------------------------------------------------------------


def test_full_table_reproduces_every_printed_rank(full_2018):
    table = full_2018.tables["2018"]
    assert list(full_2018.tables) == ["2018"]
    assert list(table.columns) == PUBLISHED_RANKING_SCHEMA.names
    assert len(table) == 63
    assert set(table["province_code"]) == set(legacy_units().province_codes())
    assert set(table["unit_set"]) == {"legacy"} and set(table["precision"]) == {3}
    assert full_2018.disagreements.empty
    assert full_2018.missing == {"2018": []}
    for part in ("overall", *CATEGORIES):
        assert table[f"{part}_rank"].tolist() == table[f"{part}_rank_printed"].tolist(), part
        assert table[f"{part}_rank"].tolist() == _expected_ranks(table[f"{part}_index"].tolist()), part
    assert set(table["source"]) == {FULL_2018.name}


def test_full_table_ties_share_a_rank_and_skip_the_next(full_2018):
    table = full_2018.tables["2018"].set_index("province_code")
    # Cao Bằng and Điện Biên both printed 0,512: rank 34 each, nobody 35
    assert table.loc["04", "overall_index"] == table.loc["11", "overall_index"] == 0.512
    assert table.loc["04", "overall_rank"] == table.loc["11", "overall_rank"] == 34
    assert 35 not in set(table["overall_rank"]) and table.loc["38", "overall_rank"] == 36
    # Nam Định (printed "Nam Định") and Quảng Trị both 0,485: rank 41, then 43
    assert table.loc["36", "overall_rank"] == table.loc["45", "overall_rank"] == 41
    assert 42 not in set(table["overall_rank"])
    # a tie in one category: Quảng Ninh and Hải Dương share c4 rank 28
    assert table.loc["22", "c4_rank"] == table.loc["30", "c4_rank"] == 28
    assert 29 not in set(table["c4_rank"])


def test_full_table_names_in_varied_styles_resolve_to_registry_names(full_2018):
    table = full_2018.tables["2018"].set_index("name_as_printed")
    expected = {
        "TP. Hồ Chí Minh": ("79", "Thành phố Hồ Chí Minh"),
        "Thừa Thiên - Huế": ("46", "Thành phố Huế"),
        "Bà Rịa - Vũng Tàu": ("77", "Tỉnh Bà Rịa - Vũng Tàu"),
        "Đắc Lắc": ("66", "Tỉnh Đắk Lắk"),
        "TP. Hà Nội": ("01", "Thành phố Hà Nội"),
        "Cao Bang": ("04", "Tỉnh Cao Bằng"),
        "Tỉnh Tuyên Quang": ("08", "Tỉnh Tuyên Quang"),
        "TP Cần Thơ": ("92", "Thành phố Cần Thơ"),
        "Thanh Hoá": ("38", "Tỉnh Thanh Hóa"),
    }
    for printed, (code, name) in expected.items():
        assert (table.loc[printed, "province_code"], table.loc[printed, "province_name"]) == (code, name)


def test_report_of_the_full_table(full_2018):
    text = full_2018.report_text()
    assert "2018: 63 of 63 provinces imported" in text
    assert "unit set legacy" in text and "precision 3 decimals" in text
    assert "every printed rank agrees" in text
    assert "Missing provinces: none" in text


def test_bom_less_utf8_and_semicolons_read_the_same(tmp_path, full_2018):
    plain = _write(tmp_path / FULL_2018.name, FULL_2018.read_bytes().decode("utf-8-sig"))
    pd.testing.assert_frame_equal(read_published_csv(plain).tables["2018"], full_2018.tables["2018"])


# --- (b) a partial table with a misprinted rank ------------------------------------------------------------


def test_partial_table_lists_missing_provinces_and_the_wrong_rank():
    result = read_published_csv(TOP15_2019)
    table = result.tables["2019"]
    assert len(table) == 15
    assert len(result.missing["2019"]) == 63 - 15
    assert ("36", "Tỉnh Nam Định") in result.missing["2019"]
    assert not {code for code, _ in result.missing["2019"]} & set(table["province_code"])
    assert result.disagreements.to_dict("records") == [
        {
            "year": "2019",
            "row": 8,
            "province_code": "77",
            "province_name": "Tỉnh Bà Rịa - Vũng Tàu",
            "name_as_printed": "Ba Ria Vung Tau",
            "column": "overall_rank",
            "printed": 9,
            "recomputed": 7,
        }
    ]
    row = table.set_index("province_code").loc["77"]
    assert (row["overall_rank_printed"], row["overall_rank"]) == (9, 7)
    assert table["overall_rank"].tolist() == list(range(1, 16))
    assert table[[f"c{i}_index" for i in range(1, 7)]].isna().all().all()
    text = result.report_text()
    assert (
        "row 8, Tỉnh Bà Rịa - Vũng Tàu (77, printed 'Ba Ria Vung Tau'): overall_rank printed 9, recomputed 7"
        in text
    )
    assert "Missing provinces: 48 of 63" in text and "36 Tỉnh Nam Định" in text
    assert "recomputed among the 15 rows present" in text


def test_a_gap_in_the_middle_shifts_recomputed_ranks_and_says_why(tmp_path):
    path = _write(
        tmp_path / "gap.csv",
        "Năm;Tỉnh/Thành phố;Chỉ số;Xếp hạng\n2017;Hà Nội;0,800;1\n2017;Nam Định;0,485;52\n",
    )
    result = read_published_csv(path)
    assert result.disagreements[["row", "printed", "recomputed"]].values.tolist() == [[3, 52, 2]]
    assert "not among all 63 provinces" in result.report_text()


# --- (c) names that do not resolve, and other bad files -----------------------------------------------------


def test_unresolved_name_fails_naming_the_row():
    with pytest.raises(PublishedRankingError) as caught:
        read_published_csv(UNRESOLVED)
    message = str(caught.value)
    assert "row 4" in message and "'Hà Tây'" in message and "63 provinces" in message
    assert "row 2" not in message and "row 3" not in message


def test_close_names_are_offered_as_candidates_not_taken(tmp_path):
    path = _write(tmp_path / "t.csv", "year,province,overall_index\n2018,Quảng Nin,0.5\n")
    with pytest.raises(
        PublishedRankingError, match=r"row 2: 'Quảng Nin'.*closest registry names: Tỉnh Quảng Ninh"
    ):
        read_published_csv(path)


def test_a_current_table_naming_a_merged_province_gets_an_explicit_message(tmp_path):
    path = _write(tmp_path / "t.csv", "Năm;Tỉnh;Chỉ số\n2025;Hà Nội;0,9\n2025;Bình Dương;0,8\n")
    with pytest.raises(PublishedRankingError) as caught:
        read_published_csv(path)
    message = str(caught.value)
    assert "row 3" in message and "Bình Dương" in message
    assert "before 1 July 2025" in message and "merged into 79 Thành phố Hồ Chí Minh" in message


def test_two_rows_for_one_province_fail(tmp_path):
    path = _write(tmp_path / "t.csv", "Năm;Tỉnh;Chỉ số\n2018;Hà Nội;0,9\n2018;Ha Noi;0,8\n")
    with pytest.raises(PublishedRankingError, match=r"rows 2 and 3 both name 01 Thành phố Hà Nội"):
        read_published_csv(path)


def test_unknown_columns_are_named(tmp_path):
    path = _write(tmp_path / "t.csv", "Năm;Tỉnh;Chỉ số;Ghi chú;Điểm\n2018;Hà Nội;0,9;;\n")
    with pytest.raises(PublishedRankingError, match=r"unknown columns 'Ghi chú', 'Điểm'"):
        read_published_csv(path)


def test_every_bad_cell_is_listed_with_its_row(tmp_path):
    path = _write(
        tmp_path / "t.csv",
        "Năm;Tỉnh;Chỉ số;Xếp hạng\n2018;Hà Nội;0,9;1\n2018;Nam Định;abc;2\n2018;Hà Nam;0,4;x\n18;Huế;0,3;3\n",
    )
    with pytest.raises(PublishedRankingError) as caught:
        read_published_csv(path)
    message = str(caught.value)
    assert "3 problems" in message
    assert "row 3: overall_index 'abc'" in message
    assert "row 4: overall_rank 'x'" in message
    assert "row 5: year '18'" in message


def test_year_argument_and_column(tmp_path):
    with_column = _write(tmp_path / "a.csv", "Năm;Tỉnh;Chỉ số\n2018;Hà Nội;0,9\n2019;Hà Nội;0,8\n")
    result = read_published_csv(with_column)
    assert sorted(result.tables) == ["2018", "2019"]  # several years in one file, grouped
    with pytest.raises(
        PublishedRankingError, match=r"row 3: year '2019' disagrees with the year given \(2018\)"
    ):
        read_published_csv(with_column, year="2018")
    without = _write(tmp_path / "b.csv", "Tỉnh;Chỉ số\nHà Nội;0,9\n")
    with pytest.raises(PublishedRankingError, match="no year column"):
        read_published_csv(without)
    assert list(read_published_csv(without, year="2017").tables) == ["2017"]


def test_header_aliases_ignore_case_and_diacritics(tmp_path):
    path = _write(
        tmp_path / "t.csv", "STT;NAM;TINH, THANH PHO;chi so;XẾP HẠNG;Chỉ số C1\n1;2016;Hà Nội;0,90;1;0,7\n"
    )
    table = read_published_csv(path).tables["2016"]
    assert table[
        ["province_code", "overall_index", "overall_rank_printed", "c1_index", "precision"]
    ].values.tolist() == [["01", 0.9, 1, 0.7, 2]]


def test_comma_separated_file_with_quoted_decimal_commas(tmp_path):
    path = _write(tmp_path / "t.csv", 'year,province,overall_index,overall_rank\n2018,Hà Nội,"0,9000",1\n')
    assert read_published_csv(path).tables["2018"]["precision"].tolist() == [4]
    bad = _write(tmp_path / "u.csv", "year,province,overall_index,overall_rank\n2018,Hà Nội,0,9,1\n")
    with pytest.raises(PublishedRankingError, match="must be quoted"):
        read_published_csv(bad)


@pytest.mark.parametrize("encoding", ["cp1258", "utf-16"])
def test_other_encodings_are_refused_clearly(tmp_path, encoding):
    # the tones as Windows-1258 writes them: combining marks after a precomposed base letter
    text = "N\u0103m;Ti\u0309nh;Chi\u0309 s\u00f4\u0301\n2018;H\u00e0 N\u00f4\u0323i;0,9\n"
    path = _write(tmp_path / "t.csv", text, encoding)
    with pytest.raises(PublishedRankingError, match="CSV UTF-8"):
        read_published_csv(path)


# --- (d) the crosswalk to the 34 current provinces -------------------------------------------------------------


def test_crosswalk_gives_every_current_province_a_baseline(full_2018):
    baseline = baseline_on_current_units(full_2018.tables["2018"])
    assert list(baseline.columns) == list(BASELINE_COLUMNS)
    assert baseline["unit_code"].tolist() == sorted(current_units().province_codes())
    assert set(baseline["basis"]) == {"published_crosswalk"}
    assert set(baseline["predecessors_missing"]) == {""}
    crosswalk = legacy_province_crosswalk()
    for code, predecessors in zip(baseline["unit_code"], baseline["predecessors"], strict=True):
        expected = crosswalk.loc[crosswalk["current_province_code"] == code, "legacy_province_code"]
        assert predecessors == ",".join(sorted(expected))
    for part in ("overall", *CATEGORIES):
        assert baseline[f"{part}_rank"].tolist() == _expected_ranks(baseline[f"{part}_index"].tolist()), part


def test_crosswalk_means_by_hand(full_2018):
    baseline = baseline_on_current_units(full_2018.tables["2018"]).set_index("unit_code")
    # Hưng Yên (33) = Hưng Yên 0,497 + Thái Bình 0,500: mean 0.4985, half up at 3 decimals -> 0.499
    # (binary floating point would give 0.498)
    assert baseline.loc["33", "predecessors"] == "33,34"
    assert baseline.loc["33", "overall_index"] == 0.499
    # Ninh Bình (37) = Hà Nam 0,431 + Nam Định 0,485 + Ninh Bình 0,520 = 1.436 / 3 = 0.47866... -> 0.479
    assert baseline.loc["37", "predecessors"] == "35,36,37"
    assert baseline.loc["37", "overall_index"] == 0.479
    # Cao Bằng (04) and Điện Biên (11) kept their borders and tie at 0,512: same rank, the next skipped
    assert baseline.loc["04", "overall_index"] == baseline.loc["11", "overall_index"] == 0.512
    rank = baseline.loc["04", "overall_rank"]
    assert baseline.loc["11", "overall_rank"] == rank
    assert rank + 1 not in set(baseline["overall_rank"])
    assert rank == 1 + (baseline["overall_index"] > 0.512).sum()


def test_crosswalk_of_a_partial_table(full_2018):
    partial = full_2018.tables["2018"]
    partial = partial[~partial["province_code"].isin(["34", "35", "36", "37"])]
    baseline = baseline_on_current_units(partial).set_index("unit_code")
    assert "37" not in baseline.index  # Hà Nam, Nam Định, Ninh Bình all absent: no baseline
    assert len(baseline) == 33
    assert baseline.loc["33", "overall_index"] == 0.497  # Hưng Yên alone
    assert (baseline.loc["33", "predecessors"], baseline.loc["33", "predecessors_missing"]) == ("33", "34")
    assert baseline["overall_rank"].tolist() == _expected_ranks(baseline["overall_index"].tolist())


def test_a_current_table_keeps_its_indices(tmp_path):
    path = _write(
        tmp_path / "t.csv",
        "Năm;Tỉnh/Thành phố;Chỉ số;Xếp hạng\n2025;Thành phố Huế;0,700;2\n2025;Lào Cai;0,650;3\n"
        "2025;TP. Hồ Chí Minh;0,900;1\n",
    )
    result = read_published_csv(path)
    assert set(result.tables["2025"]["unit_set"]) == {"current"}
    assert len(result.missing["2025"]) == 31
    baseline = baseline_on_current_units(result.tables["2025"])
    assert baseline[["unit_code", "overall_index", "overall_rank", "basis"]].values.tolist() == [
        ["15", 0.65, 3, "published"],
        ["46", 0.7, 2, "published"],
        ["79", 0.9, 1, "published"],
    ]
    assert set(baseline["predecessors"]) == {""}


# --- (e) the store ---------------------------------------------------------------------------------------------------


def test_publish_and_reimport_give_the_same_content(tmp_path, full_2018):
    store = DataStore(tmp_path / "data")
    assert load_published(store, "2018") is None
    first = import_published_ranking(store, FULL_2018)
    manifest = store.manifest(PUBLISHED_RANKINGS, {"year": "2018"})
    assert manifest["sha256"] == first.published["2018"].sha256
    assert manifest["source"] == FULL_2018.name and manifest["unit_set"] == "legacy"
    assert manifest["rows"] == 63 and manifest["missing_provinces"] == []
    second = import_published_ranking(store, FULL_2018)
    assert second.published["2018"].sha256 == first.published["2018"].sha256
    assert store.manifest(PUBLISHED_RANKINGS, {"year": "2018"}) == manifest
    assert store.verify(PUBLISHED_RANKINGS, {"year": "2018"})
    loaded = load_published(store, "2018")
    pd.testing.assert_frame_equal(loaded, full_2018.tables["2018"])
    pd.testing.assert_frame_equal(
        baseline_on_current_units(loaded), baseline_on_current_units(full_2018.tables["2018"])
    )
    assert "Stored:" in second.report_text()


def test_a_corrected_file_replaces_the_year(tmp_path):
    store = DataStore(tmp_path / "data")
    text = "Năm;Tỉnh;Chỉ số;Xếp hạng\n2017;Hà Nội;0,700;1\n2017;Nam Định;0,485;2\n"
    path = _write(tmp_path / "t.csv", text)
    before = import_published_ranking(store, path, source="Sách trắng 2018")
    _write(path, text.replace("0,485", "0,495"))
    after = import_published_ranking(store, path, source="Sách trắng 2018")
    assert after.published["2017"].sha256 != before.published["2017"].sha256
    loaded = load_published(store, "2017")
    assert loaded.set_index("province_code").loc["36", "overall_index"] == 0.495
    assert set(loaded["source"]) == {"Sách trắng 2018"}
    assert store.partitions(PUBLISHED_RANKINGS) == [{"year": "2017"}]


# --- (f) the command line -----------------------------------------------------------------------------------------------


def test_cli_imports_and_prints_the_report(tmp_path, capsys):
    root = tmp_path / "data"
    code = cli_main(
        ["import-ranking", str(TOP15_2019), "--data-root", str(root), "--source", "MIC press release"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Published ranking: MIC press release" in out
    assert "overall_rank printed 9, recomputed 7" in out
    loaded = load_published(DataStore(root), "2019")
    assert loaded is not None and len(loaded) == 15


def test_cli_global_data_root_and_year(tmp_path, capsys):
    root = tmp_path / "data"
    path = _write(tmp_path / "t.csv", "Tỉnh;Chỉ số;Xếp hạng\nHà Nội;0,7;1\n")
    assert cli_main(["--data-root", str(root), "import-ranking", str(path), "--year", "2016"]) == 0
    assert "2016: 1 of 63 provinces imported" in capsys.readouterr().out
    assert load_published(DataStore(root), "2016") is not None


@pytest.mark.integration
def test_cli_bad_file_exits_non_zero_without_traceback(tmp_path):
    root = tmp_path / "data"
    completed = subprocess.run(
        [sys.executable, "-m", "egov_index.cli", "import-ranking", str(UNRESOLVED), "--data-root", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode != 0
    assert "row 4" in completed.stderr and "Hà Tây" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (root / PUBLISHED_RANKINGS).exists()
