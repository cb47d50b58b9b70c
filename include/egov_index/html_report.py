"""Self-contained HTML report of one period's ranking, for people in a provincial ICT department.

``render_ranking_report`` turns the published ranking, the explanations (points lost per indicator and
the best single move up) and the rank uncertainty of one period into one HTML document in Vietnamese:
a province table with the six category indices drawn as CSS bars, per-province explanations, and the
communes of every province in collapsed ``<details>`` sections.

The document is fully self-contained (inline ``<style>``, no scripts, fonts, images or external links),
so it opens offline and can be mailed as one file. It is deterministic: the same inputs give the same
bytes (no timestamps; rows ordered by rank, then unit code). All data text goes through Jinja2's
autoescaping, so a unit name such as ``<script>`` is shown as text.

The view model (every number already formatted with a decimal comma) is built here in Python; the
template ``templates/ranking_report.html.j2`` only lays it out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
import pandas as pd

from egov_index.methodology import Methodology
from egov_index.schemas import CATEGORIES

TEMPLATE_NAME = "ranking_report.html.j2"
# Indicators listed per province in "points lost" (the rest are summed in one line), and per commune.
PROVINCE_TOP_LOSSES = 8
COMMUNE_TOP_LOSSES = 3

# Words for ``report_treatment`` (schemas.REPORT_TREATMENTS); "reported" needs no note.
_COMMUNE_TREATMENT = {
    "zero_points": "Không nộp báo cáo: tính 0 điểm",
    "carried_forward": "Chưa nộp báo cáo: dùng số liệu kỳ trước",
    "excluded": "Không xếp hạng (không có báo cáo)",
}
_PROVINCE_TREATMENT = {
    "partial": "Chưa đủ báo cáo của các xã",
    "none": "Không có xã nào nộp báo cáo",
}
# Words for ``<baseline>_basis`` (schemas.BASELINE_BASES).
_BASIS = {
    "computed": "hệ thống tính lại theo phương pháp hiện hành",
    "published": "bảng xếp hạng đã công bố",
    "published_crosswalk": "bảng đã công bố, quy đổi từ đơn vị hành chính trước 2025",
}
_BASELINES = (
    ("previous", "Kỳ trước"),
    ("year_ago", "Cùng kỳ năm trước"),
)


def report_file_name(period: str) -> str:
    """File name of a period's report, e.g. ``ranking-report-2026-Q3.html``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(period).strip()) or "unknown"
    return f"ranking-report-{safe}.html"


def render_ranking_report(
    period: str,
    ranking: pd.DataFrame,
    explanations: pd.DataFrame,
    uncertainty: pd.DataFrame,
    methodology: Methodology,
) -> str:
    """One HTML document (``<html lang="vi">``) presenting ``period``'s ranking.

    The frames carry the columns of ``ranking_schema()``, ``EXPLANATION_SCHEMA`` and
    ``RANK_UNCERTAINTY_SCHEMA``; dictionary columns may be categorical or plain strings, integer
    columns nullable or float, and any value may be null. Rows of other periods are ignored.
    """
    context = _context(
        str(period),
        _records(ranking, period),
        _records(explanations, period),
        _records(uncertainty, period),
        methodology,
    )
    return _environment().get_template(TEMPLATE_NAME).render(**context)


# --- template loading ---------------------------------------------------------------------------------


def _load_template(name: str) -> str | None:
    resource = resources.files("egov_index").joinpath("templates", name)
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# --- null-safe access ---------------------------------------------------------------------------------


def _records(frame: pd.DataFrame | None, period: str) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (None for every kind of null), restricted to ``period``."""
    if frame is None or len(frame) == 0:
        return []
    plain = frame.astype(object)
    plain = plain.where(frame.notna(), None)
    rows = plain.to_dict("records")
    if "period" in frame.columns:
        rows = [r for r in rows if r.get("period") is None or str(r["period"]) == str(period)]
    return rows


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    return None if _is_null(value) else str(value)


def _int(row: Mapping[str, Any], key: str) -> int | None:
    value = row.get(key)
    if _is_null(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def _float(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if _is_null(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _flag(row: Mapping[str, Any], key: str) -> bool:
    value = row.get(key)
    if _is_null(value):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


# --- Vietnamese number formatting ---------------------------------------------------------------------


def _decimal_text(value: float, digits: int) -> str:
    """``value`` rounded half-up to ``digits`` decimals, with a decimal comma and '.' thousands."""
    quantum = Decimal(1).scaleb(-digits)
    rounded = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0,000"
    text = f"{rounded:,.{digits}f}"  # 1,234.567
    return text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")


def _trimmed(value: float, digits: int) -> str:
    text = _decimal_text(value, digits)
    if "," in text:
        text = text.rstrip("0").rstrip(",")
    return text


def fmt_index(value: float | None, precision: int) -> str:
    """An index at the published precision, e.g. ``0,485``; "–" when null."""
    return "–" if value is None else _decimal_text(value, precision)


def fmt_value(value: float | None) -> str:
    """An indicator value (a share, a yes/no or a count): up to 3 decimals, trailing zeros dropped."""
    return "không có số liệu" if value is None else _trimmed(value, 3)


def fmt_points(value: float | None) -> str:
    return "–" if value is None else _trimmed(value, 2)


def _percent(value: float) -> str:
    return f"{_trimmed(value * 100, 1)}%"


def _bar_width(value: float | None) -> str:
    share = 0.0 if value is None else min(1.0, max(0.0, value))
    return f"{share * 100:.1f}%"


# --- view model ---------------------------------------------------------------------------------------


def _rank_key(rank: int | None, code: str) -> tuple[int, int, str]:
    return (1, 0, code) if rank is None else (0, rank, code)


def _delta(row: Mapping[str, Any], baseline: str, label: str) -> dict[str, str]:
    change = _int(row, f"{baseline}_rank_change")
    base_period = _text(row, f"{baseline}_period")
    basis = _text(row, f"{baseline}_basis")
    base_rank = _int(row, f"{baseline}_rank")
    parts = [label]
    parts.append(f"{base_period}" if base_period else "không có kỳ so sánh")
    if base_rank is not None:
        parts.append(f"hạng {base_rank}")
    if basis:
        parts.append(f"cơ sở: {_BASIS.get(basis, basis)}")
    title = ", ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")
    if change is None:
        return {"text": "–", "cls": "na", "title": title}
    if change > 0:
        return {"text": f"▲{change}", "cls": "up", "title": title}
    if change < 0:
        return {"text": f"▼{-change}", "cls": "down", "title": title}
    return {"text": "0", "cls": "same", "title": title + " (không đổi)"}


def _band(unc: Mapping[str, Any] | None) -> dict[str, Any]:
    if unc is None:
        return {"text": "–", "wide": False, "title": "Không có kết quả mô phỏng"}
    lo, hi = _int(unc, "rank_p05"), _int(unc, "rank_p95")
    wide = _flag(unc, "wide_band")
    if lo is None or hi is None:
        text = "–"
    elif lo == hi:
        text = str(lo)
    else:
        text = f"{lo}–{hi}"
    median = _float(unc, "median_rank")
    title = "Khoảng hạng 5–95%"
    if median is not None:
        title += f"; trung vị {_trimmed(median, 1)}"
    draws = _int(unc, "draws")
    if draws is not None:
        title += f"; {draws} lần mô phỏng"
    if wide:
        title += "; khoảng rộng: thứ hạng chưa chắc chắn"
    return {"text": text, "wide": wide, "title": title}


class _Labels:
    def __init__(self, methodology: Methodology) -> None:
        self.categories = {c.code: c for c in methodology.categories}
        self.indicators = {i.id: i for i in methodology.indicators}

    def indicator(self, indicator_id: str | None) -> str:
        if indicator_id is None:
            return "(chỉ tiêu không rõ)"
        found = self.indicators.get(indicator_id)
        return found.vi if found is not None else indicator_id

    def indicator_title(self, indicator_id: str | None) -> str:
        found = self.indicators.get(indicator_id) if indicator_id is not None else None
        return f"{indicator_id} — {found.description}" if found is not None else str(indicator_id or "")

    def category_short(self, code: str | None) -> str:
        return code.upper() if code else ""


def _losses(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Explanation rows that lost points, largest loss first (loss_order, then points lost, then id)."""
    lost = [r for r in rows if (_float(r, "points_lost") or 0.0) > 0]

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        order = _int(r, "loss_order")
        return (
            order is None,
            order if order is not None else 0,
            -(_float(r, "points_lost") or 0.0),
            _text(r, "indicator_id") or "",
        )

    return sorted(lost, key=key)


def _best_move(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    moves = [r for r in rows if _flag(r, "best_move_up")]
    if not moves:
        return None
    return min(moves, key=lambda r: (_float(r, "points_needed") or math.inf, _text(r, "indicator_id") or ""))


def _move_text(move: dict[str, Any] | None, rank: int | None, labels: _Labels) -> str:
    if move is None:
        if rank == 1:
            return "Đang đứng đầu."
        return "Không có chỉ tiêu đơn lẻ nào đủ để tăng hạng."
    ind = _text(move, "indicator_id")
    text = f"Nâng “{labels.indicator(ind)}”"
    value, target = _float(move, "value"), _float(move, "target_value")
    if target is not None:
        text += f" từ {fmt_value(value)} lên {fmt_value(target)}"
    needed = _float(move, "points_needed")
    if needed is not None:
        text += f" (thêm {fmt_points(needed)} điểm)"
    new_rank = _int(move, "rank_if_improved")
    if new_rank is not None:
        text += f" → hạng {new_rank}"
        if rank is not None:
            text += f" (hiện hạng {rank})"
    else:
        text += " → tăng hạng"
    return text + "."


def _treatment(row: Mapping[str, Any], level: str) -> str | None:
    treatment = _text(row, "report_treatment")
    if treatment is None or treatment == "reported":
        return None
    words = (_COMMUNE_TREATMENT if level == "commune" else _PROVINCE_TREATMENT).get(treatment, treatment)
    carried = _text(row, "carried_from_period")
    if treatment == "carried_forward" and carried:
        words = f"Chưa nộp báo cáo: dùng số liệu kỳ {carried}"
    return words


def _group(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        level, code = _text(r, "level"), _text(r, "unit_code")
        if level is not None and code is not None:
            grouped.setdefault((level, code), []).append(r)
    return grouped


def _context(
    period: str,
    ranking: list[dict[str, Any]],
    explanations: list[dict[str, Any]],
    uncertainty: list[dict[str, Any]],
    methodology: Methodology,
) -> dict[str, Any]:
    precision = methodology.published_precision
    labels = _Labels(methodology)
    explained = _group(explanations)
    uncertain: dict[tuple[str, str], dict[str, Any]] = {}
    for key, rows in _group(uncertainty).items():
        uncertain[key] = rows[0]
    draws = sorted({d for r in uncertainty if (d := _int(r, "draws")) is not None})

    def unit_rows(level: str) -> list[dict[str, Any]]:
        rows = [r for r in ranking if _text(r, "level") == level and _text(r, "unit_code") is not None]
        return sorted(rows, key=lambda r: _rank_key(_int(r, "overall_rank"), _text(r, "unit_code") or ""))

    provinces = unit_rows("province")
    communes = unit_rows("commune")

    categories = [
        {"code": c, "short": c.upper(), "vi": cat.vi if cat else c, "max_points": fmt_points(cat.max_points)}
        if (cat := labels.categories.get(c)) is not None
        else {"code": c, "short": c.upper(), "vi": c, "max_points": "–"}
        for c in CATEGORIES
    ]

    province_views = []
    explanation_views = []
    for r in provinces:
        code = _text(r, "unit_code") or ""
        name = _text(r, "unit_name") or code
        rank = _int(r, "overall_rank")
        anchor = f"x-{code}"
        share = _float(r, "reported_share")
        province_views.append(
            {
                "code": code,
                "anchor": anchor,
                "name": name,
                "rank": "–" if rank is None else str(rank),
                "index": fmt_index(_float(r, "overall_index"), precision),
                "cats": [
                    {
                        "index": fmt_index(_float(r, f"{c}_index"), precision),
                        "width": _bar_width(_float(r, f"{c}_index")),
                        "title": f"{c.upper()}: hạng {_int(r, f'{c}_rank') or '–'}",
                    }
                    for c in CATEGORIES
                ],
                "deltas": [_delta(r, b, label) for b, label in _BASELINES],
                "band": _band(uncertain.get(("province", code))),
                "coverage": _percent(share) if share is not None and share < 1 else None,
                "note": _treatment(r, "province"),
            }
        )
        unit_expl = explained.get(("province", code), [])
        losses = _losses(unit_expl)
        top = losses[:PROVINCE_TOP_LOSSES]
        rest = losses[PROVINCE_TOP_LOSSES:]
        total_lost = sum(_float(x, "points_lost") or 0.0 for x in unit_expl)
        total_max = sum(_float(x, "max_points") or 0.0 for x in unit_expl)
        explanation_views.append(
            {
                "anchor": anchor,
                "name": name,
                "rank": "–" if rank is None else str(rank),
                "index": fmt_index(_float(r, "overall_index"), precision),
                "has_rows": bool(unit_expl),
                "losses": [
                    {
                        "label": labels.indicator(_text(x, "indicator_id")),
                        "title": labels.indicator_title(_text(x, "indicator_id")),
                        "category": labels.category_short(_text(x, "category")),
                        "value": fmt_value(_float(x, "value")),
                        "points": fmt_points(_float(x, "points")),
                        "max_points": fmt_points(_float(x, "max_points")),
                        "lost": fmt_points(_float(x, "points_lost")),
                        "width": _bar_width(
                            (_float(x, "points_lost") or 0.0) / m if (m := _float(x, "max_points")) else 0.0
                        ),
                    }
                    for x in top
                ],
                "rest_count": len(rest),
                "rest_lost": fmt_points(sum(_float(x, "points_lost") or 0.0 for x in rest)),
                "total_lost": fmt_points(total_lost),
                "total_max": fmt_points(total_max),
                "move": _move_text(_best_move(unit_expl), rank, labels),
            }
        )

    # Communes grouped under their province, in the province table's order; unknown parents last.
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    for r in communes:
        by_parent.setdefault(_text(r, "parent_code"), []).append(r)
    province_names = {(_text(r, "unit_code") or ""): (_text(r, "unit_name") or "") for r in provinces}
    parent_order = [p["code"] for p in province_views if p["code"] in by_parent]
    parent_order += sorted(p for p in by_parent if p is not None and p not in province_names)
    if None in by_parent:
        parent_order.append(None)

    commune_groups = []
    for parent in parent_order:
        members = sorted(
            by_parent[parent],
            key=lambda r: (
                _rank_key(_int(r, "overall_rank_in_province"), "")[:2],
                _rank_key(_int(r, "overall_rank"), _text(r, "unit_code") or ""),
            ),
        )
        rows = []
        for r in members:
            code = _text(r, "unit_code") or ""
            rank = _int(r, "overall_rank")
            rank_in_province = _int(r, "overall_rank_in_province")
            unit_expl = explained.get(("commune", code), [])
            lost = _losses(unit_expl)[:COMMUNE_TOP_LOSSES]
            rows.append(
                {
                    "code": code,
                    "name": _text(r, "unit_name") or code,
                    "rank_in_province": "–" if rank_in_province is None else str(rank_in_province),
                    "rank": "–" if rank is None else str(rank),
                    "index": fmt_index(_float(r, "overall_index"), precision),
                    "band": _band(uncertain.get(("commune", code))),
                    "delta": _delta(r, "previous", "Kỳ trước"),
                    "note": _treatment(r, "commune"),
                    "lost": "; ".join(
                        f"{labels.indicator(_text(x, 'indicator_id'))} −{fmt_points(_float(x, 'points_lost'))}"
                        for x in lost
                    ),
                    "move": _move_text(_best_move(unit_expl), rank, labels) if unit_expl else "",
                }
            )
        unranked = sum(1 for r in members if _int(r, "overall_rank") is None)
        if parent is None:
            title = "Xã chưa xác định tỉnh"
        else:
            title = province_names.get(parent) or f"Tỉnh mã {parent}"
        commune_groups.append(
            {"title": title, "code": parent or "", "count": len(rows), "unranked": unranked, "rows": rows}
        )

    return {
        "period": period,
        "methodology": {
            "id": methodology.id,
            "version": methodology.version,
            "title": methodology.title,
            "precision": precision,
        },
        "province_count": len(provinces),
        "commune_count": len(communes),
        "commune_unranked": sum(1 for r in communes if _int(r, "overall_rank") is None),
        "categories": categories,
        "provinces": province_views,
        "explanations": explanation_views,
        "commune_groups": commune_groups,
        "draws": ", ".join(str(d) for d in draws),
        "top_losses": PROVINCE_TOP_LOSSES,
        "commune_top_losses": COMMUNE_TOP_LOSSES,
        "example_index": fmt_index(0.485, precision),
    }
