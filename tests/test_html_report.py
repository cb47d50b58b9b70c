"""The self-contained HTML ranking report: content, escaping, offline-ness, determinism and size."""

from __future__ import annotations

import random
import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from egov_index.html_report import (
    TEMPLATE_NAME,
    fmt_index,
    fmt_points,
    fmt_value,
    render_ranking_report,
    report_file_name,
)
from egov_index.methodology import Methodology, load_methodology
from egov_index.schemas import (
    CATEGORIES,
    EXPLANATION_SCHEMA,
    RANK_UNCERTAINTY_SCHEMA,
    ranking_schema,
)

PERIOD = "2026-Q3"
PROVINCES: tuple[str, ...] = (
    "Thành phố Hà Nội", "Thành phố Huế", "Tỉnh Lai Châu", "Tỉnh Điện Biên", "Tỉnh Sơn La",
    "Tỉnh Lạng Sơn", "Tỉnh Quảng Ninh", "Tỉnh Thanh Hóa", "Tỉnh Nghệ An", "Tỉnh Hà Tĩnh",
    "Tỉnh Cao Bằng", "Tỉnh Tuyên Quang", "Tỉnh Lào Cai", "Tỉnh Thái Nguyên", "Tỉnh Phú Thọ",
    "Tỉnh Bắc Ninh", "Tỉnh Hưng Yên", "Thành phố Hải Phòng", "Tỉnh Ninh Bình", "Tỉnh Quảng Trị",
    "Thành phố Đà Nẵng", "Tỉnh Quảng Ngãi", "Tỉnh Gia Lai", "Tỉnh Khánh Hòa", "Tỉnh Lâm Đồng",
    "Tỉnh Đắk Lắk", "Thành phố Hồ Chí Minh", "Tỉnh Đồng Nai", "Tỉnh Tây Ninh", "Thành phố Cần Thơ",
    "Tỉnh Vĩnh Long", "Tỉnh Đồng Tháp", "Tỉnh Cà Mau", "Tỉnh An Giang",
)  # fmt: skip
_SYLLABLES = (
    "An", "Bình", "Phú", "Tân", "Hòa", "Thạnh", "Long", "Mỹ", "Đông", "Tây", "Bắc", "Nam", "Vĩnh",
    "Phước", "Thuận", "Hưng", "Lộc", "Sơn", "Trung", "Hải",
)  # fmt: skip
_KINDS = ("Xã", "Phường", "Xã", "Xã")


# --- a builder of synthetic frames matching the published schemas -------------------------------------


def _competition(values: dict[str, float | None]) -> dict[str, int | None]:
    """Standard competition ranks ("1224"), highest value first; None stays unranked."""
    ranks: dict[str, int | None] = {k: None for k, v in values.items() if v is None}
    ordered = sorted(((v, k) for k, v in values.items() if v is not None), key=lambda t: (-t[0], t[1]))
    previous, rank = None, 0
    for position, (value, key) in enumerate(ordered, start=1):
        if value != previous:
            previous, rank = value, position
        ranks[key] = rank
    return ranks


def _max_points(methodology: Methodology) -> float:
    return sum(c.max_points for c in methodology.categories)


class Builder:
    """Rows (plain dicts) of the ranking, explanations and uncertainty of one period.

    Tests edit the rows, then ``frames()`` converts them through the Arrow schemas to pandas, exactly as
    the store hands them over (dictionary columns become categoricals).
    """

    def __init__(
        self,
        methodology: Methodology,
        provinces: int = 5,
        communes: int | None = None,
        communes_per_province: int = 4,
        seed: int = 11,
    ) -> None:
        self.methodology = methodology
        rng = random.Random(seed)
        precision = methodology.published_precision
        self.ranking: list[dict[str, Any]] = []
        self.explanations: list[dict[str, Any]] = []
        self.uncertainty: list[dict[str, Any]] = []
        codes = [f"{n + 1:02d}" for n in range(provinces)]
        counts = [communes_per_province] * provinces
        if communes is not None:
            counts = [
                communes // provinces + (1 if n < communes % provinces else 0) for n in range(provinces)
            ]
        province_rows = [
            self._unit(rng, "province", code, PROVINCES[n], None) for n, code in enumerate(codes)
        ]
        commune_rows = []
        for n, code in enumerate(codes):
            for k in range(counts[n]):
                name = (
                    f"{_KINDS[k % 4]} {_SYLLABLES[k % 20]} {_SYLLABLES[(k // 20 + n) % 20]}"
                    f"{'' if k < 400 else f' {k}'}"
                )
                commune_rows.append(self._unit(rng, "commune", f"{code}{k + 1:03d}", name, code))
        for level, rows in (("province", province_rows), ("commune", commune_rows)):
            for r in rows:
                r["overall_index"] = round(r["overall_index"], precision)
            ranks = _competition({r["unit_code"]: r["overall_index"] for r in rows})
            for c in CATEGORIES:
                cat_ranks = _competition({r["unit_code"]: r[f"{c}_index"] for r in rows})
                for r in rows:
                    r[f"{c}_rank"] = cat_ranks[r["unit_code"]]
            for r in rows:
                r["overall_rank"] = ranks[r["unit_code"]]
                change = rng.randint(-3, 3)
                r["previous_period"] = "2026-Q2"
                r["previous_basis"] = "computed"
                r["previous_rank_change"] = change
                r["previous_rank"] = r["overall_rank"] + change
                r["year_ago_period"] = "2025-Q3"
                r["year_ago_basis"] = "published_crosswalk" if level == "province" else "computed"
                r["year_ago_rank_change"] = None
                r["year_ago_rank"] = None
            if level == "commune":
                by_province: dict[str, dict[str, float | None]] = {}
                for r in rows:
                    by_province.setdefault(r["parent_code"], {})[r["unit_code"]] = r["overall_index"]
                in_province = {k: v for group in by_province.values() for k, v in _competition(group).items()}
                for r in rows:
                    r["overall_rank_in_province"] = in_province[r["unit_code"]]
            for r in rows:
                self.ranking.append(r)
                self._explain(rng, r, len(rows))
                self._band(rng, r, len(rows))

    def _unit(self, rng: random.Random, level: str, code: str, name: str, parent: str | None) -> dict:
        row: dict[str, Any] = {
            "period": PERIOD,
            "level": level,
            "unit_code": code,
            "unit_name": name,
            "parent_code": parent,
            "methodology": self.methodology.id,
            "report_treatment": "reported",
            "carried_from_period": None,
            "reported_share": 1.0,
            "overall_max_points": _max_points(self.methodology),
            "overall_rank_in_province": None,
            "has_report": True,
        }
        points = 0.0
        for cat in self.methodology.categories:
            index = round(rng.uniform(0.2, 0.98), 3)
            row[f"{cat.code}_index"] = index
            row[f"{cat.code}_rank_in_province"] = None
            points += index * cat.max_points
        row["overall_points"] = points
        row["overall_index"] = points / _max_points(self.methodology)
        return row

    def _explain(self, rng: random.Random, unit: dict, unit_count: int) -> None:
        rows = []
        for ind in self.methodology.indicators:
            value = round(rng.uniform(0.1, 1.0), 3)
            points = value * ind.max_points
            rows.append(
                {
                    "period": PERIOD,
                    "level": unit["level"],
                    "unit_code": unit["unit_code"],
                    "methodology": self.methodology.id,
                    "category": ind.category,
                    "indicator_id": ind.id,
                    "value": value,
                    "points": points,
                    "max_points": ind.max_points,
                    "points_lost": ind.max_points - points,
                    "loss_order": 0,
                    "points_needed": None,
                    "target_value": None,
                    "rank_if_improved": None,
                    "best_move_up": False,
                }
            )
        rows.sort(key=lambda r: (-r["points_lost"], r["indicator_id"]))
        for order, r in enumerate(rows, start=1):
            r["loss_order"] = order
        rank = unit["overall_rank"]
        if rank is not None and rank > 1:
            best = rows[0]
            best["best_move_up"] = True
            best["points_needed"] = round(best["points_lost"] / 2, 2)
            best["target_value"] = round(min(1.0, best["value"] + 0.2), 3)
            best["rank_if_improved"] = rank - 1
        self.explanations.extend(rows)

    def _band(self, rng: random.Random, unit: dict, unit_count: int) -> None:
        rank = unit["overall_rank"]
        lo = None if rank is None else max(1, rank - rng.randint(0, 2))
        hi = None if rank is None else min(unit_count, rank + rng.randint(0, 2))
        self.uncertainty.append(
            {
                "period": PERIOD,
                "level": unit["level"],
                "unit_code": unit["unit_code"],
                "methodology": self.methodology.id,
                "draws": 500,
                "overall_rank": rank,
                "median_rank": None if rank is None else float(rank),
                "rank_p05": lo,
                "rank_p95": hi,
                "band_width": None if rank is None else hi - lo,
                "wide_band": False,
            }
        )

    def unit(self, level: str, code: str) -> dict:
        return next(r for r in self.ranking if r["level"] == level and r["unit_code"] == code)

    def band(self, level: str, code: str) -> dict:
        return next(r for r in self.uncertainty if r["level"] == level and r["unit_code"] == code)

    def province_by_rank(self, rank: int) -> dict:
        return next(r for r in self.ranking if r["level"] == "province" and r["overall_rank"] == rank)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        return (
            pa.Table.from_pylist(self.ranking, schema=ranking_schema()).to_pandas(),
            pa.Table.from_pylist(self.explanations, schema=EXPLANATION_SCHEMA).to_pandas(),
            pa.Table.from_pylist(self.uncertainty, schema=RANK_UNCERTAINTY_SCHEMA).to_pandas(),
        )

    def render(self) -> str:
        return render_ranking_report(PERIOD, *self.frames(), self.methodology)


@pytest.fixture(scope="module")
def methodology() -> Methodology:
    return load_methodology()


@pytest.fixture()
def builder(methodology: Methodology) -> Builder:
    return Builder(methodology)


# --- helpers over the rendered document -------------------------------------------------------------


def _section(html: str, start_id: str, end_id: str | None) -> str:
    start = html.index(f'id="{start_id}"')
    end = html.index(f'id="{end_id}"', start) if end_id else len(html)
    return html[start:end]


def _row_of(html: str, text: str) -> str:
    """The first table row containing ``text``."""
    for row in re.findall(r"<tr>.*?</tr>", html, flags=re.S):
        if text in row:
            return row
    raise AssertionError(f"no table row contains {text!r}")


class _Balance(HTMLParser):
    """Checks that container tags open and close in order."""

    CHECKED = {"html", "head", "body", "table", "thead", "tbody", "tr", "td", "th", "details", "summary",
               "header", "main", "footer", "dl", "p", "span", "a", "b", "i", "small", "h1", "h2", "style",
               "title", "dt", "dd"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag in self.CHECKED:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.CHECKED:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def _parse(html: str) -> _Balance:
    parser = _Balance()
    parser.feed(html)
    parser.close()
    return parser


# --- tests --------------------------------------------------------------------------------------------


def test_report_file_name() -> None:
    assert report_file_name("2026-Q3") == "ranking-report-2026-Q3.html"
    assert report_file_name("../x y") == "ranking-report----x-y.html"


def test_template_is_a_package_resource() -> None:
    resource = resources.files("egov_index").joinpath("templates", TEMPLATE_NAME)
    assert resource.is_file()


def test_vietnamese_number_formatting() -> None:
    assert fmt_index(0.485, 3) == "0,485"
    assert fmt_index(0.4855, 3) == "0,486"  # half-up, as the ranking rounds
    assert fmt_index(0.0, 3) == "0,000"
    assert fmt_index(None, 3) == "–"
    assert fmt_value(0.5) == "0,5"
    assert fmt_value(1234.5) == "1.234,5"
    assert fmt_value(12.0) == "12"
    assert fmt_points(2.345) == "2,35"
    assert fmt_points(-0.0001) == "0"


def test_document_header_and_category_labels(builder: Builder, methodology: Methodology) -> None:
    html = builder.render()
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="vi">' in html
    assert '<meta charset="utf-8">' in html
    assert PERIOD in html
    assert methodology.id in html and methodology.version in html and methodology.title in html
    assert "5 tỉnh, thành phố; 20 xã, phường, đặc khu" in html
    assert "Xếp hạng" in html and "Chỉ số tổng hợp" in html
    for category in methodology.categories:
        assert category.vi in html


def test_province_table_is_ordered_by_rank_then_code(builder: Builder) -> None:
    # a tie on the overall index: both get rank 2, ordered by code
    first, second, third = (builder.province_by_rank(r) for r in (1, 2, 3))
    third["overall_index"], third["overall_rank"] = second["overall_index"], 2
    html = builder.render()
    table = _section(html, "provinces", "explanations")
    positions = {
        r["unit_name"]: table.index(r["unit_name"]) for r in builder.ranking if r["level"] == "province"
    }
    assert min(positions, key=positions.get) == first["unit_name"]
    tied = sorted([second, third], key=lambda r: r["unit_code"])
    assert positions[tied[0]["unit_name"]] < positions[tied[1]["unit_name"]]
    assert _row_of(table, first["unit_name"]).startswith('<tr><td class="n">1</td>')
    assert fmt_index(first["overall_index"], 3) in _row_of(table, first["unit_name"])


def test_category_bars_are_css_widths(builder: Builder) -> None:
    top = builder.province_by_rank(1)
    top["c1_index"] = 0.485
    row = _row_of(_section(builder.render(), "provinces", "explanations"), top["unit_name"])
    assert '<span class="bar"><i style="width:48.5%"></i></span>0,485' in row
    assert row.count('class="bar"') == 6


def test_rank_changes_and_their_baselines(builder: Builder) -> None:
    up, down, none = (builder.province_by_rank(r) for r in (1, 2, 3))
    up["previous_rank_change"], up["previous_rank"] = 2, 3
    down["previous_rank_change"], down["previous_rank"] = -1, 1
    none["previous_rank_change"], none["previous_rank"], none["previous_period"] = None, None, None
    none["previous_basis"] = None
    up["year_ago_rank_change"], up["year_ago_rank"] = 4, 5
    table = _section(builder.render(), "provinces", "explanations")
    up_row, down_row, none_row = (_row_of(table, r["unit_name"]) for r in (up, down, none))
    assert '<td class="n up" title="Kỳ trước, 2026-Q2; hạng 3; cơ sở: hệ thống tính lại' in up_row
    assert ">▲2</td>" in up_row
    assert (
        ">▲4</td>" in up_row
        and "Cùng kỳ năm trước, 2025-Q3; hạng 5; cơ sở: bảng đã công bố, quy đổi" in up_row
    )
    assert ">▼1</td>" in down_row and 'class="n down"' in down_row
    assert '<td class="n na" title="Kỳ trước, không có kỳ so sánh">–</td>' in none_row


def test_wide_band_is_flagged(builder: Builder) -> None:
    province = builder.province_by_rank(2)
    band = builder.band("province", province["unit_code"])
    band.update(rank_p05=1, rank_p95=5, band_width=4, wide_band=True)
    narrow = builder.province_by_rank(1)
    builder.band("province", narrow["unit_code"]).update(rank_p05=1, rank_p95=2, wide_band=False)
    table = _section(builder.render(), "provinces", "explanations")
    row = _row_of(table, province["unit_name"])
    assert "1–5 ⚠ rộng" in row and 'class="n wide"' in row
    assert "⚠" not in _row_of(table, narrow["unit_name"])
    assert "1–2" in _row_of(table, narrow["unit_name"])


def test_coverage_and_province_treatment(builder: Builder) -> None:
    province = builder.province_by_rank(4)
    province.update(reported_share=0.873, report_treatment="partial")
    row = _row_of(_section(builder.render(), "provinces", "explanations"), province["unit_name"])
    assert "Báo cáo: 87,3%" in row and "Chưa đủ báo cáo của các xã" in row
    full = _row_of(
        _section(builder.render(), "provinces", "explanations"), builder.province_by_rank(1)["unit_name"]
    )
    assert "Báo cáo:" not in full


def test_province_explanation_lists_losses_and_the_best_move(
    builder: Builder, methodology: Methodology
) -> None:
    province = builder.province_by_rank(3)
    code = province["unit_code"]
    html = builder.render()
    start = html.index(f'<details id="x-{code}">')
    block = html[start : html.index("</details>", start)]
    rows = sorted(
        (r for r in builder.explanations if r["level"] == "province" and r["unit_code"] == code),
        key=lambda r: r["loss_order"],
    )
    labels = {i.id: i.vi for i in methodology.indicators}
    listed = [labels[r["indicator_id"]] for r in rows[:8]]
    assert [block.index(label) for label in listed] == sorted(block.index(label) for label in listed)
    assert labels[rows[8]["indicator_id"]] not in block  # only the top 8 ...
    assert f"{len(rows) - 8} chỉ tiêu khác" in block  # ... and the rest summed
    assert f"Tổng số điểm bị mất (trên tổng {fmt_points(_max_points(methodology))} điểm)" in block
    best = next(r for r in rows if r["best_move_up"])
    expected = (
        f"Nâng “{labels[best['indicator_id']]}” từ {fmt_value(best['value'])} lên "
        f"{fmt_value(best['target_value'])} (thêm {fmt_points(best['points_needed'])} điểm) → hạng 2 (hiện hạng 3)."
    )
    assert expected in block
    assert 'href="#x-' + code + '"' in html  # the table links to the explanation


def test_communes_grouped_by_province_with_treatments(builder: Builder, methodology: Methodology) -> None:
    province = builder.province_by_rank(1)
    members = [r for r in builder.ranking if r["parent_code"] == province["unit_code"]]
    excluded, zero, carried = members[0], members[1], members[2]
    excluded.update(
        unit_name="Xã Ba Vì", report_treatment="excluded", has_report=False, overall_index=None,
        overall_points=None, overall_rank=None, overall_rank_in_province=None,
        **{f"{c}_index": None for c in CATEGORIES}, **{f"{c}_rank": None for c in CATEGORIES},
    )  # fmt: skip
    builder.band("commune", excluded["unit_code"]).update(
        overall_rank=None, median_rank=None, rank_p05=None, rank_p95=None, band_width=None
    )
    builder.explanations = [r for r in builder.explanations if r["unit_code"] != excluded["unit_code"]]
    zero.update(report_treatment="zero_points", has_report=False)
    carried.update(report_treatment="carried_forward", carried_from_period="2026-Q2")
    html = builder.render()
    communes = _section(html, "communes", None)
    assert communes.count("<details>") == 5
    row = _row_of(communes, "Xã Ba Vì")
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[:2] == ["–", "–"] and cells[3] == "–"  # rank in province, national rank, index
    assert "Không xếp hạng (không có báo cáo)" in row
    assert "(1 không xếp hạng)" in communes
    assert "Không nộp báo cáo: tính 0 điểm" in _row_of(communes, zero["unit_name"])
    assert "Chưa nộp báo cáo: dùng số liệu kỳ 2026-Q2" in _row_of(communes, carried["unit_name"])
    # ranked within the province: rank-in-province order, the excluded commune last
    group_start = communes.index(province["unit_name"])
    group = communes[group_start : communes.index("</details>", group_start)]
    ranked = sorted(
        (r for r in members if r["overall_rank_in_province"] is not None),
        key=lambda r: r["overall_rank_in_province"],
    )
    order = [group.index(f"<td>{r['unit_name']}</td>") for r in ranked + [excluded]]
    assert order == sorted(order)
    # top-3 lost indicators and the best move, in one line each
    labels = {i.id: i.vi for i in methodology.indicators}
    best_commune = ranked[1]
    lost = sorted(
        (r for r in builder.explanations if r["unit_code"] == best_commune["unit_code"]),
        key=lambda r: r["loss_order"],
    )
    line = _row_of(communes, f"<td>{best_commune['unit_name']}</td>")
    assert (
        "Mất điểm nhiều nhất: "
        + "; ".join(f"{labels[r['indicator_id']]} −{fmt_points(r['points_lost'])}" for r in lost[:3])
        in line
    )
    assert labels[lost[3]["indicator_id"]] + " −" not in line
    assert f"Tăng hạng: Nâng “{labels[lost[0]['indicator_id']]}”" in line


def test_hostile_text_is_escaped(builder: Builder) -> None:
    builder.province_by_rank(1)["unit_name"] = "<script>alert('x')</script>"
    builder.province_by_rank(2)["unit_name"] = '=HYPERLINK("evil","Bấm vào đây")'
    commune = next(r for r in builder.ranking if r["level"] == "commune")
    commune["unit_name"] = 'Xã "><img src=x onerror=alert(1)>'
    builder.explanations[0]["indicator_id"] = "<b>bold</b>"
    html = builder.render()
    assert "<script" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "=HYPERLINK(&#34;evil&#34;,&#34;Bấm vào đây&#34;)" in html
    assert "Xã &#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert not _parse(html).errors


def test_self_contained_and_offline(builder: Builder) -> None:
    html = builder.render()
    lowered = html.lower()
    for forbidden in (
        "http://",
        "https://",
        "<script",
        "<link",
        "<img",
        "<iframe",
        "@import",
        "url(",
        "src=",
    ):
        assert forbidden not in lowered, forbidden
    assert lowered.count("<style>") == 1
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))


def test_deterministic_and_independent_of_row_order_and_dtypes(builder: Builder) -> None:
    first = builder.render()
    assert builder.render() == first
    ranking, explanations, uncertainty = builder.frames()
    shuffled = [
        frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
        for frame in (ranking, explanations, uncertainty)
    ]
    # dictionary columns as plain object strings instead of categoricals
    plain = [
        f.assign(**{c: f[c].astype(object) for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)})
        for f in shuffled
    ]
    assert render_ranking_report(PERIOD, *plain, builder.methodology) == first


def test_other_periods_are_ignored(builder: Builder) -> None:
    html = builder.render()
    ranking, explanations, uncertainty = builder.frames()
    older = ranking.astype({"period": object}).assign(period="2026-Q2", unit_name="Tỉnh Cũ Kỹ")
    both = pd.concat([ranking.astype({"period": object}), older], ignore_index=True)
    assert render_ranking_report(PERIOD, both, explanations, uncertainty, builder.methodology) == html


def test_null_safe_with_missing_optional_data(builder: Builder, methodology: Methodology) -> None:
    for row in builder.ranking:
        for key in list(row):
            if key.startswith(("previous_", "year_ago_", "c")) and key != "carried_from_period":
                row[key] = None
        row["parent_code"] = (
            None if row["level"] == "commune" and row["unit_code"].endswith("1") else row["parent_code"]
        )
    ranking, _, _ = builder.frames()
    html = render_ranking_report(PERIOD, ranking, pd.DataFrame(), pd.DataFrame(), methodology)
    assert "Xã chưa xác định tỉnh" in html
    assert "Không có dữ liệu giải thích cho tỉnh này." in html
    assert not _parse(html).errors
    empty = render_ranking_report(PERIOD, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), methodology)
    assert "Không có dữ liệu xếp hạng cấp tỉnh cho kỳ này." in empty
    assert "Không có dữ liệu xếp hạng cấp xã cho kỳ này." in empty
    assert not _parse(empty).errors


def test_html_is_well_formed(builder: Builder) -> None:
    html = builder.render()
    parser = _parse(html)
    assert not parser.errors and not parser.stack
    assert parser.counts["details"] == 5 + 5  # one explanation and one commune group per province
    assert parser.counts["summary"] == parser.counts["details"]
    lxml_html = pytest.importorskip("lxml.html")
    root = lxml_html.document_fromstring(html)
    assert root.get("lang") == "vi"
    assert len(root.xpath("//table[@class='p']/tbody/tr")) == 5
    assert len(root.xpath("//table[@class='c']/tbody/tr")) == 20


def test_national_report_stays_small(methodology: Methodology) -> None:
    national = Builder(methodology, provinces=34, communes=3321, seed=5)
    assert sum(1 for r in national.ranking if r["level"] == "commune") == 3321
    assert len(national.explanations) == (34 + 3321) * len(methodology.indicators)
    html = national.render()
    size = len(html.encode("utf-8"))
    print(f"national report: {size / 1e6:.2f} MB")
    assert size < 6_000_000
    parser = _parse(html)
    assert not parser.errors
    assert parser.counts["details"] == 34 * 2
    assert html.count("Mất điểm nhiều nhất: ") == 3321
