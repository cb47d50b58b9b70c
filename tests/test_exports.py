"""Files for people (CSV / XLSX): Vietnamese labels, and text cells neutralised against formula injection."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from egov_index.exports import neutralise, people_exports, write_people_exports

PERIOD = "2026-Q3"
EVIL = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1+2", "-2+3", "\tTab", "\rCR"]


def ranking() -> pd.DataFrame:
    names = ["Hà Nội", *EVIL]
    rows = [
        {
            "period": PERIOD,
            "level": "province" if i < 2 else "commune",
            "unit_code": f"{i:02d}" if i < 2 else f"{i:05d}",
            "unit_name": name,
            "parent_code": None if i < 2 else "01",
            "methodology": "mic-six-category",
            "overall_index": 90.5 - i,
            "overall_rank": i + 1 if i < 2 else i - 1,
            "overall_rank_in_province": None if i < 2 else i - 1,
            "previous_rank_change": -3 if i == 0 else None,
            "has_report": i % 2 == 0,
        }
        for i, name in enumerate(names)
    ]
    return pd.DataFrame(rows).astype({"overall_rank_in_province": "Int64", "previous_rank_change": "Int64"})


def indicators() -> pd.DataFrame:
    return pd.DataFrame(
        [{"period": PERIOD, "level": "commune", "unit_code": "00002", "category": "c1",
          "indicator_id": "=1+1", "value": 0.5, "points": 2.0, "max_points": 4.0}]
    )  # fmt: skip


@pytest.mark.parametrize("text", EVIL)
def test_text_starting_a_formula_gets_a_quote_and_numbers_stay_numbers(text: str) -> None:
    assert neutralise(text) == "'" + text
    assert neutralise("Xã An Bình") == "Xã An Bình"
    assert neutralise(-3) == -3 and neutralise(1.5) == 1.5 and neutralise(None) is None


def test_csv_is_utf8_with_bom_has_vietnamese_labels_and_no_live_formula() -> None:
    files = people_exports(ranking(), indicators(), PERIOD)
    assert set(files) == {
        f"xep-hang-tinh-{PERIOD}.csv", f"xep-hang-xa-{PERIOD}.csv", f"chi-tieu-{PERIOD}.csv", f"xep-hang-{PERIOD}.xlsx"
    }  # fmt: skip
    for name, data in files.items():
        if not name.endswith(".csv"):
            continue
        assert data.startswith(b"\xef\xbb\xbf"), name
        cells = [c for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")) for c in row]
        assert not [
            c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))
        ]
    communes = list(
        csv.DictReader(io.StringIO(files[f"xep-hang-xa-{PERIOD}.csv"].decode("utf-8-sig"), newline=""))
    )
    assert {r["Tên đơn vị"] for r in communes} == {"'" + e for e in EVIL[1:]}
    assert communes[0]["Mã đơn vị"] == "00002" and communes[0]["Hạng"] == "1"  # sorted by rank, codes kept
    provinces = list(
        csv.DictReader(io.StringIO(files[f"xep-hang-tinh-{PERIOD}.csv"].decode("utf-8-sig"), newline=""))
    )
    assert [r["Tên đơn vị"] for r in provinces] == ["Hà Nội", "'" + EVIL[0]]
    assert provinces[0]["Thay đổi hạng so với kỳ trước"] == "-3"  # a number, not neutralised
    assert provinces[0]["Có báo cáo"] == "Có" and provinces[1]["Có báo cáo"] == "Không"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_xlsx_cells_are_text_never_formulas_and_numbers_are_numbers(tmp_path: Path) -> None:
    paths = write_people_exports(ranking(), indicators(), tmp_path / "out", PERIOD)
    assert {p.name for p in paths} == {p.name for p in (tmp_path / "out").iterdir()}
    workbook = load_workbook(tmp_path / "out" / f"xep-hang-{PERIOD}.xlsx")
    assert workbook.sheetnames == ["Tỉnh", "Xã"]
    cells = [c for sheet in workbook for row in sheet.iter_rows() for c in row if c.value is not None]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    texts = {c.value for c in cells if isinstance(c.value, str)}
    assert {"'" + e for e in EVIL} <= texts and not (set(EVIL) & texts)
    indicator_csv = (tmp_path / "out" / f"chi-tieu-{PERIOD}.csv").read_text(encoding="utf-8-sig")
    assert "'=1+1" in indicator_csv and ",=1+1" not in indicator_csv  # indicator values: CSV only
    header = [c.value for c in workbook["Tỉnh"][1]]
    assert header[:4] == ["Kỳ", "Hạng", "Mã đơn vị", "Tên đơn vị"]
    first = {h: c for h, c in zip(header, workbook["Tỉnh"][2], strict=True)}
    assert first["Hạng"].value == 1 and first["Hạng"].data_type == "n"
    assert first["Chỉ số tổng hợp"].value == 90.5 and first["Thay đổi hạng so với kỳ trước"].value == -3
    assert first["Mã đơn vị"].value == "00" and first["Mã đơn vị"].data_type == "s"  # leading zero kept


def test_the_same_ranking_gives_the_same_bytes() -> None:
    import zipfile

    files = people_exports(ranking(), indicators(), PERIOD)
    assert files == people_exports(ranking(), indicators(), PERIOD)
    with zipfile.ZipFile(io.BytesIO(files[f"xep-hang-{PERIOD}.xlsx"])) as xlsx:  # no wall-clock time inside
        assert {i.date_time for i in xlsx.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = xlsx.read("docProps/core.xml").decode()
    assert core.count("2000-01-01T00:00:00Z") == 2
