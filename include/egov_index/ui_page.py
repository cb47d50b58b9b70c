"""The ICT department's page in the Airflow UI ("E-gov ranking", issue 7): data, HTML and the FastAPI app.

``plugins/egov_ranking_plugin.py`` mounts :func:`create_app` under ``/egov-ranking`` on the Airflow
api-server and adds the nav entry; everything else is here:

* :func:`page_data` / :func:`province_data`: plain, JSON-able dicts read from the data root (the latest
  ranking view, the quarantine manifests' accounting, the validation results) and the ingest ledger;
* :func:`render_page` / :func:`render_province`: HTML through Jinja2 with autoescaping
  (``templates/ui_page*.html.j2``, inline CSS, no scripts or external assets), Vietnamese labels with
  English small print;
* :func:`resolve_document`: the read-only files the page links to (Data Docs, HTML reports), refusing
  anything outside their two folders;
* :func:`create_app`: the routes, every one behind Airflow's own authentication
  (``requires_access_view(AccessView.WEBSITE)``: a valid Airflow JWT, from the ``Authorization: Bearer``
  header or the UI's ``_token`` cookie; none -> 401).

Routes (relative to the mount point)::

    GET /                          the page (HTML)
    GET /province/{code}           one province's communes (HTML)
    GET /api/ranking               page_data as JSON
    GET /api/province/{code}       province_data as JSON
    GET /files/{kind}/{path}       kind = data_docs | reports: a file under the data root, read-only

The page only reads: it never migrates or writes the ledger database, nor anything under the data root.
Heavy modules (pandas, pyarrow, the pipeline, Airflow's API package) are imported inside functions, so
importing this module stays cheap.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from fastapi import FastAPI

    from egov_index.config import Settings
    from egov_index.store import DataStore

URL_PREFIX = "/egov-ranking"
TEMPLATE_PAGE = "ui_page.html.j2"
TEMPLATE_PROVINCE = "ui_page_province.html.j2"
TEMPLATE_LOGIN = "ui_page_login.html.j2"

# Files the page links to, by kind: the folder under the data root and the first path segments allowed.
DOCUMENT_KINDS: dict[str, tuple[tuple[str, ...], Callable[[str], bool]]] = {
    "data_docs": (("quality", "data_docs"), lambda first: first in ("index.html", "latest", "runs")),
    "reports": (("reports",), lambda first: first.startswith("period=")),
}
MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
# Served files may not run scripts (GX's Data Docs pages pull jQuery/Bootstrap/Vega from CDNs): nothing in
# them can read the Airflow session cookie or call the API. They render without (server-side HTML) and
# their links work. Styles, fonts and images still load; forms and plugins are off.
DOCUMENT_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
PAGE_HEADERS: dict[str, str] = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

# The ingest channels shown under "freshness": (source, dataset) as the ledger records them.
CHANNELS: tuple[tuple[str, str, str, str, str], ...] = (
    # source, dataset, cadence, Vietnamese label, English label
    (
        "service_portal",
        "procedures",
        "daily",
        "Danh mục thủ tục hành chính",
        "Procedure catalogue (service portal)",
    ),
    ("service_portal", "dossiers", "daily", "Hồ sơ dịch vụ công", "Service dossiers (service portal)"),
    (
        "reporting_api",
        "commune_reports",
        "quarterly",
        "Báo cáo của xã (API)",
        "Commune reports (reporting API)",
    ),
    (
        "inbox",
        "commune_reports",
        "on_arrival",
        "Báo cáo của xã (tệp gửi về)",
        "Commune reports (inbox files)",
    ),
)
# A daily batch is stale when its day is more than this many days before today (local): the nightly
# run ingests yesterday, so 2 allows one missed night before the page says so.
DAILY_STALE_DAYS = 2
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "ok": ("Tốt", "OK"),
    "warning": ("Có cảnh báo", "warnings"),
    "stale": ("Chậm cập nhật", "stale"),
    "failed": ("Lần gần nhất bị lỗi", "last attempt failed"),
    "missing": ("Chưa có dữ liệu", "no data yet"),
    "running": ("Đang chạy", "running"),
}
TREATMENT_LABELS: dict[str, tuple[str, str]] = {
    "reported": ("Đã nộp báo cáo", "reported"),
    "partial": ("Chưa đủ báo cáo của các xã", "some communes did not report"),
    "none": ("Không có xã nào nộp báo cáo", "no commune reported"),
    "zero_points": ("Không nộp báo cáo: tính 0 điểm", "no report: zero points"),
    "carried_forward": ("Chưa nộp: dùng số liệu kỳ trước", "no report: previous period carried forward"),
    "excluded": ("Không xếp hạng (không có báo cáo)", "not ranked (no report)"),
}
_UNIT_CODE = re.compile(r"^[0-9A-Za-z_-]{1,16}$")


class DocumentNotFound(LookupError):
    """A requested file is not one the page serves (unknown kind, outside its folder, missing)."""


# --- small null-safe conversions (pandas/NumPy scalars -> plain JSON values) -----------------------------


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _float(value: Any) -> float | None:
    if _is_null(value) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _str(value: Any) -> str | None:
    return None if _is_null(value) else str(value)


def _iso(moment: datetime | None) -> str | None:
    """A moment as ISO 8601 in Vietnam's local time (Asia/Ho_Chi_Minh)."""
    from egov_index.periods import LOCAL_TZ

    return None if moment is None else moment.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError:
        return None


# --- the ranking ------------------------------------------------------------------------------------------


def _categories(methodology_id: str | None) -> tuple[list[dict[str, str]], int, str | None]:
    """The six categories (code, Vietnamese and English names), the published precision and title."""
    from egov_index.schemas import CATEGORIES, CATEGORY_NAMES

    names = {c: CATEGORY_NAMES[c] for c in CATEGORIES}
    vi = dict(names)
    precision, title = 3, None
    if methodology_id:
        try:
            from egov_index.methodology import load_methodology

            methodology = load_methodology(methodology_id)
        except Exception:  # an unknown or retired methodology: English names, 3 decimals
            methodology = None
        if methodology is not None:
            vi |= {c.code: c.vi for c in methodology.categories if c.code in names}
            precision, title = methodology.published_precision, methodology.title
    return [{"code": c, "vi": vi[c], "en": names[c]} for c in CATEGORIES], precision, title


def _latest_ranking(store: DataStore) -> pd.DataFrame | None:
    from egov_index.pipeline import RANKING

    try:
        return store.read_latest(RANKING).to_pandas()
    except FileNotFoundError:
        return None


def _indices(row: Mapping[str, Any]) -> dict[str, float | None]:
    from egov_index.schemas import CATEGORIES

    return {c: _float(row.get(f"{c}_index")) for c in CATEGORIES}


def _previous(row: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison with the previous period: rank change = previous rank - rank (positive = up)."""
    return {
        "period": _str(row.get("previous_period")),
        "rank": _int(row.get("previous_rank")),
        "change": _int(row.get("previous_rank_change")),
        "basis": _str(row.get("previous_basis")),
    }


def _quarantined_reports(store: DataStore, period: str) -> dict[str, int]:
    """Commune reports of ``period`` held in quarantine, per province code (from the rows themselves)."""
    import pyarrow.dataset as ds

    from egov_index.pipeline import QUARANTINE

    try:
        table = store.read(QUARANTINE, ds.field("dataset") == "commune_reports")
    except FileNotFoundError:
        return {}
    counts: dict[str, int] = {}
    for text in table.column("record_json").to_pylist():
        try:
            record = json.loads(text)
        except (TypeError, ValueError):
            continue
        if not isinstance(record, dict) or str(record.get("period")) != period:
            continue
        province = record.get("province_code")
        if province is not None:
            counts[str(province)] = counts.get(str(province), 0) + 1
    return counts


def _province_rows(frame: pd.DataFrame, quarantined: Mapping[str, int]) -> list[dict[str, Any]]:
    provinces = frame[frame["level"].astype(str) == "province"]
    communes = frame[frame["level"].astype(str) == "commune"]
    parents = communes["parent_code"].astype(str)
    totals = parents.value_counts().to_dict()
    reported = communes["has_report"].astype(bool).groupby(parents).sum().to_dict()
    rows = []
    for row in provinces.astype(object).to_dict("records"):
        code = str(row["unit_code"])
        rows.append(
            {
                "rank": _int(row.get("overall_rank")),
                "code": code,
                "name": str(row["unit_name"]),
                "overall_index": _float(row.get("overall_index")),
                "indices": _indices(row),
                "previous": _previous(row),
                "reported_share": _float(row.get("reported_share")),
                "report_treatment": _str(row.get("report_treatment")),
                "communes_total": int(totals.get(code, 0)),
                "communes_reported": int(reported.get(code, 0)),
                "quarantined_reports": int(quarantined.get(code, 0)),
                "href": f"province/{code}",
            }
        )
    return sorted(rows, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["code"]))


def _ranking_summary(store: DataStore, frame: pd.DataFrame) -> dict[str, Any]:
    from egov_index.pipeline import RANKING
    from egov_index.store import LATEST, MANIFEST_FILE

    period = str(frame["period"].iloc[0])
    methodology_id = _str(frame["methodology"].iloc[0])
    categories, precision, title = _categories(methodology_id)
    provinces = _province_rows(frame, _quarantined_reports(store, period))
    published_at = _mtime(Path(str(store.root / LATEST / RANKING / MANIFEST_FILE)))
    return {
        "period": period,
        "methodology": methodology_id,
        "methodology_title": title,
        "precision": precision,
        "published_at": _iso(published_at),
        "categories": categories,
        "provinces": provinces,
        "communes_total": sum(p["communes_total"] for p in provinces),
        "communes_reported": sum(p["communes_reported"] for p in provinces),
    }


# --- freshness and data quality per source ---------------------------------------------------------------


def _ledger_entries(
    sql_url: str, limit: int = 500
) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], str | None]:
    """Ledger entries per (source, dataset), newest first, read without migrating or writing anything.

    Returns ({}, reason) when there is no ledger yet or it cannot be read.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from egov_index.ledger import Ledger

    url = make_url(sql_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            return {}, "chưa có sổ nhập liệu (no ingest ledger yet)"
    engine = create_engine(sql_url)
    try:
        by_channel: dict[tuple[str, str], list[dict[str, Any]]] = {}
        ledger = Ledger(engine)  # not Ledger.open: that would migrate the schema
        for dataset in dict.fromkeys(channel[1] for channel in CHANNELS):
            for entry in ledger.history(dataset, limit=limit):
                by_channel.setdefault((str(entry["source"]), dataset), []).append(entry)
        return by_channel, None
    except Exception as exc:  # the page still shows what the manifests say
        return {}, f"không đọc được sổ nhập liệu (ledger unreadable: {type(exc).__name__})"
    finally:
        engine.dispose()


def _source_of(dataset: str, partition: str) -> str:
    from egov_index.pipeline import SOURCE_OF

    return "inbox" if partition.startswith("file-") else SOURCE_OF.get(dataset, "unknown")


def _manifest_batches(store: DataStore) -> list[dict[str, Any]]:
    """Every ingested batch's accounting (quarantine manifests, via report.accounting_rows), with the
    manifest's modification time as the moment it was published."""
    from egov_index.pipeline import QUARANTINE
    from egov_index.report import accounting_rows
    from egov_index.store import MANIFEST_FILE

    try:
        rows = accounting_rows(store).astype(object).to_dict("records")
    except (FileNotFoundError, OSError):
        return []
    batches = []
    for row in rows:
        dataset, partition = str(row["dataset"]), str(row["partition"])
        where = {"dataset": dataset, "partition": partition}
        manifest = Path(str(store.partition_dir(QUARANTINE, where) / MANIFEST_FILE))
        batches.append(
            {
                "source": _source_of(dataset, partition),
                "dataset": dataset,
                "batch": partition,
                "published_at": _mtime(manifest),
                "rows_pulled": _int(row["rows_pulled"]),
                "rows_snapshot": _int(row["rows_snapshot"]),
                "rows_quarantined": _int(row["rows_quarantined"]),
            }
        )
    return batches


def _failed_checks(store: DataStore) -> dict[tuple[str, str], dict[str, int]]:
    """Failed expectations per (dataset, batch), counted by severity."""
    from egov_index.pipeline import VALIDATION_RESULTS

    try:
        table = store.read(VALIDATION_RESULTS, None)
    except FileNotFoundError:
        return {}
    failed: dict[tuple[str, str], dict[str, int]] = {}
    columns = table.select(["dataset", "partition", "severity", "success"]).to_pylist()
    for row in columns:
        if row["success"]:
            continue
        counts = failed.setdefault((str(row["dataset"]), str(row["partition"])), {})
        counts[str(row["severity"])] = counts.get(str(row["severity"]), 0) + 1
    return failed


def _stale(cadence: str, batch: str | None, today: date) -> bool:
    from egov_index.periods import parse_period, previous_period, quarter_of

    if batch is None:
        return False
    try:
        if cadence == "daily":
            return (today - date.fromisoformat(batch)).days > DAILY_STALE_DAYS
        if cadence == "quarterly":
            expected = previous_period(quarter_of(today))
            return parse_period(batch).end < parse_period(expected).end
    except ValueError:
        return False
    return False


def _channel_status(
    cadence: str,
    last: dict[str, Any] | None,
    newest: dict[str, Any] | None,
    checks: Mapping[str, int],
    today: date,
) -> str:
    if newest is not None and newest.get("outcome") == "failed":
        return "failed"
    if newest is not None and newest.get("outcome") == "running" and last is None:
        return "running"
    if last is None:
        return "missing"
    if _stale(cadence, last["batch"], today):
        return "stale"
    if (last.get("rows_quarantined") or 0) > 0 or checks:
        return "warning"
    return "ok"


def _sources(store: DataStore, sql_url: str, now: datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from egov_index.periods import LOCAL_TZ

    entries, ledger_note = _ledger_entries(sql_url)
    batches = _manifest_batches(store)
    failed = _failed_checks(store)
    today = now.astimezone(LOCAL_TZ).date()
    rows = []
    for source, dataset, cadence, vi, en in CHANNELS:
        published = [b for b in batches if b["source"] == source and b["dataset"] == dataset]
        history = entries.get((source, dataset), [])
        successes = [e for e in history if e["outcome"] in ("succeeded", "superseded")]
        newest = history[0] if history else None
        last: dict[str, Any] | None
        if successes:
            entry = successes[0]
            last = {
                "batch": str(entry["partition"]),
                "finished_at": entry["finished_at"],
                "rows_pulled": entry["rows_pulled"],
                "rows_snapshot": entry["rows_snapshot"],
                "rows_quarantined": entry["rows_quarantined"],
                "from": "ledger",
            }
        elif published:  # no ledger (e.g. a replayed data root): the newest published batch
            newest_batch = max(
                published, key=lambda b: (b["published_at"] or datetime.min.replace(tzinfo=UTC), b["batch"])
            )
            last = {
                "batch": newest_batch["batch"],
                "finished_at": newest_batch["published_at"],
                "rows_pulled": newest_batch["rows_pulled"],
                "rows_snapshot": newest_batch["rows_snapshot"],
                "rows_quarantined": newest_batch["rows_quarantined"],
                "from": "manifest",
            }
        else:
            last = None
        checks = failed.get((dataset, last["batch"]), {}) if last else {}
        status = _channel_status(cadence, last, newest, checks, today)
        age_hours = None
        if last is not None and last["finished_at"] is not None:
            age_hours = round((now - last["finished_at"]).total_seconds() / 3600, 1)
        if last is not None:
            last = {**last, "finished_at": _iso(last["finished_at"])}
        problem = None
        if newest is not None and newest["outcome"] == "failed":
            problem = {
                "batch": str(newest["partition"]),
                "at": _iso(newest["finished_at"] or newest["started_at"]),
                "error": _str(newest.get("error")),
            }
        rows.append(
            {
                "source": source,
                "dataset": dataset,
                "cadence": cadence,
                "label_vi": vi,
                "label_en": en,
                "status": status,
                "last_success": last,
                "age_hours": age_hours,
                "failed_checks": dict(checks),
                "last_failure": problem,
                "batches": len(published),
                "rows_quarantined_total": sum(b["rows_quarantined"] or 0 for b in published),
            }
        )
    return rows, {"available": ledger_note is None, "note": ledger_note}


# --- links to the files under the data root --------------------------------------------------------------


def _links(data_root: Path, period: str | None) -> dict[str, Any]:
    from egov_index.html_report import report_file_name
    from egov_index.pipeline import REPORTS_DIR

    docs = data_root / "quality" / "data_docs"
    reports = []
    for path in sorted((data_root / REPORTS_DIR).glob("period=*/*.html"), reverse=True):
        reports.append(
            {
                "period": path.parent.name.split("=", 1)[1],
                "href": f"files/reports/{path.parent.name}/{path.name}",
            }
        )
    current = None
    if (
        period is not None
        and (data_root / REPORTS_DIR / f"period={period}" / report_file_name(period)).is_file()
    ):
        current = f"files/reports/period={period}/{report_file_name(period)}"
    return {
        "report": current,
        "reports": reports,
        "data_docs": "files/data_docs/latest/index.html"
        if (docs / "latest" / "index.html").is_file()
        else None,
        "data_docs_runs": "files/data_docs/index.html" if (docs / "index.html").is_file() else None,
    }


# --- the page's data --------------------------------------------------------------------------------------


def page_data(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able values.

    ``ranking`` is None until a ranking is published (the page then shows its empty state); ``sources``
    always lists the four ingest channels with their status (failed > missing > stale > warning > ok).
    Times are ISO 8601 in Vietnam's local time; links are relative to the page.
    """
    from egov_index.store import DataStore

    now = now or datetime.now(UTC)
    store = DataStore(settings.data_root)
    frame = _latest_ranking(store)
    ranking = _ranking_summary(store, frame) if frame is not None and len(frame) else None
    sources, ledger = _sources(store, settings.sql_url, now)
    return {
        "generated_at": _iso(now),
        "ranking": ranking,
        "sources": sources,
        "ledger": ledger,
        "links": _links(Path(str(settings.data_root)), ranking["period"] if ranking else None),
    }


def province_data(settings: Settings, code: str) -> dict[str, Any] | None:
    """One province of the latest ranking with its communes (ranked within the province); None if the
    code is not a province of it."""
    from egov_index.store import DataStore

    if not _UNIT_CODE.match(code):
        return None
    store = DataStore(settings.data_root)
    frame = _latest_ranking(store)
    if frame is None or not len(frame):
        return None
    level, units = frame["level"].astype(str), frame["unit_code"].astype(str)
    province = frame[(level == "province") & (units == code)]
    if province.empty:
        return None
    period = str(frame["period"].iloc[0])
    methodology_id = _str(frame["methodology"].iloc[0])
    categories, precision, _ = _categories(methodology_id)
    subset = frame[(units == code) | (frame["parent_code"].astype(str) == code)]
    summary = _province_rows(subset, _quarantined_reports(store, period))[0]
    communes = []
    rows = frame[(level == "commune") & (frame["parent_code"].astype(str) == code)]
    for row in rows.astype(object).to_dict("records"):
        communes.append(
            {
                "rank_in_province": _int(row.get("overall_rank_in_province")),
                "rank": _int(row.get("overall_rank")),
                "code": str(row["unit_code"]),
                "name": str(row["unit_name"]),
                "overall_index": _float(row.get("overall_index")),
                "indices": _indices(row),
                "previous": _previous(row),
                "has_report": bool(row.get("has_report")),
                "report_treatment": _str(row.get("report_treatment")),
                "carried_from_period": _str(row.get("carried_from_period")),
            }
        )
    communes.sort(key=lambda c: (c["rank_in_province"] is None, c["rank_in_province"] or 0, c["code"]))
    return {
        "period": period,
        "methodology": methodology_id,
        "precision": precision,
        "categories": categories,
        "province": summary,
        "communes": communes,
    }


# --- files under the data root ----------------------------------------------------------------------------


def resolve_document(data_root: Path, kind: str, relative: str) -> Path:
    """The file ``relative`` under the folder of ``kind`` (Data Docs or HTML reports), if it is one the
    page serves: a plain relative path (no '..', no hidden parts, no backslashes or NULs) of an allowed
    type that, with every symlink resolved, is still a regular file inside that folder."""
    if kind not in DOCUMENT_KINDS:
        raise DocumentNotFound(f"unknown kind {kind!r}")
    folder, first_allowed = DOCUMENT_KINDS[kind]
    if not relative or "\\" in relative or "\x00" in relative or relative.startswith("/"):
        raise DocumentNotFound("not a plain relative path")
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise DocumentNotFound("not a plain relative path")
    if not first_allowed(parts[0]) or PurePosixPath(relative).suffix.lower() not in MEDIA_TYPES:
        raise DocumentNotFound("not a file the page serves")
    base = Path(data_root).joinpath(*folder)
    try:
        real_base = base.resolve(strict=True)
        target = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # missing, or a symlink loop
        raise DocumentNotFound("no such file") from exc
    if not target.is_relative_to(real_base) or not target.is_file():
        raise DocumentNotFound("outside the served folder")
    return target


# --- HTML -------------------------------------------------------------------------------------------------


def _load_template(name: str) -> str | None:
    resource = resources.files("egov_index").joinpath("templates", name)
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


def fmt_index(value: float | None, precision: int = 3) -> str:
    """An index with a decimal comma (the report's format); '–' when null."""
    from egov_index.html_report import fmt_index as report_fmt_index

    return report_fmt_index(value, precision)


def fmt_share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}".replace(".", ",") + "%"


def fmt_delta(change: int | None) -> dict[str, str]:
    """A rank change as shown: ▲n moved up, ▼n moved down, 0 unchanged, – no comparison."""
    if change is None:
        return {"text": "–", "cls": "na"}
    if change > 0:
        return {"text": f"▲{change}", "cls": "up"}
    if change < 0:
        return {"text": f"▼{-change}", "cls": "down"}
    return {"text": "0", "cls": "same"}


def fmt_time(iso: str | None) -> str:
    """An ISO time as 'dd/mm/yyyy HH:MM' (local)."""
    if not iso:
        return "–"
    moment = datetime.fromisoformat(iso)
    return moment.strftime("%d/%m/%Y %H:%M")


def fmt_count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}".replace(",", ".")


def fmt_age(hours: float | None) -> str:
    if hours is None:
        return ""
    if hours < 1:
        return "(dưới 1 giờ trước)"
    if hours < 48:
        return f"({int(hours)} giờ trước)"
    return f"({int(hours // 24)} ngày trước)"


def least_reported_first(provinces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Provinces by the share of communes that reported, lowest first (then by name)."""
    return sorted(
        provinces, key=lambda p: (p["reported_share"] if p["reported_share"] is not None else -1.0, p["name"])
    )


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        index=fmt_index,
        share=fmt_share,
        delta=fmt_delta,
        time=fmt_time,
        count=fmt_count,
        age=fmt_age,
        least_reported_first=least_reported_first,
    )
    env.globals.update(
        STATUS_LABELS=STATUS_LABELS, TREATMENT_LABELS=TREATMENT_LABELS, DAILY_STALE_DAYS=DAILY_STALE_DAYS
    )
    return env


def render_page(data: Mapping[str, Any]) -> str:
    """The page (``page_data``'s dict) as one HTML document, everything escaped."""
    return str(_environment().get_template(TEMPLATE_PAGE).render(**data))


def render_province(data: Mapping[str, Any]) -> str:
    """One province's commune table (``province_data``'s dict) as one HTML document."""
    return str(_environment().get_template(TEMPLATE_PROVINCE).render(**data))


def render_login_required(login_url: str, status_code: int) -> str:
    return str(
        _environment().get_template(TEMPLATE_LOGIN).render(login_url=login_url, status_code=status_code)
    )


# --- the FastAPI app --------------------------------------------------------------------------------------


def _login_url(request: Any) -> str:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login(next_url=str(request.url)))
    except Exception:  # no auth manager in this process (unit tests): Airflow's default login path
        return "/auth/login"


def create_app(settings_factory: Callable[[], Settings] | None = None, auth: Any = None) -> FastAPI:
    """The page's FastAPI app, mounted by the plugin under ``URL_PREFIX``.

    Every route depends on ``auth``, by default Airflow's
    ``requires_access_view(AccessView.WEBSITE)``: the caller must present a valid Airflow JWT
    (``Authorization: Bearer`` or the UI's ``_token`` cookie) of a user allowed to see the website;
    without one the answer is 401 (an expired token 401, an invalid one 403). Browsers (``Accept:
    text/html``) get that status with a small page linking to the Airflow login. The dependency is kept
    in ``app.state.auth_dependency`` so tests can override it.
    """
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

    from egov_index.config import Settings

    if auth is None:
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
        from airflow.api_fastapi.core_api.security import requires_access_view

        auth = requires_access_view(AccessView.WEBSITE)
    settings_of = settings_factory or Settings.from_env

    app = FastAPI(
        title="E-gov ranking",
        description="The ICT department's page: latest ranking, data freshness and quality.",
        dependencies=[Depends(auth)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.auth_dependency = auth

    @app.exception_handler(HTTPException)
    async def login_page(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
            html = render_login_required(_login_url(request), exc.status_code)
            return HTMLResponse(html, status_code=exc.status_code, headers=PAGE_HEADERS)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(render_page(page_data(settings_of())), headers=PAGE_HEADERS)

    @app.get("/province/{code}", response_class=HTMLResponse)
    def province(code: str) -> HTMLResponse:
        data = province_data(settings_of(), code)
        if data is None:
            raise HTTPException(status_code=404, detail=f"no province {code!r} in the latest ranking")
        return HTMLResponse(render_province(data), headers=PAGE_HEADERS)

    @app.get("/api/ranking")
    def api_ranking() -> JSONResponse:
        return JSONResponse(page_data(settings_of()), headers=PAGE_HEADERS)

    @app.get("/api/province/{code}")
    def api_province(code: str) -> JSONResponse:
        data = province_data(settings_of(), code)
        if data is None:
            raise HTTPException(status_code=404, detail=f"no province {code!r} in the latest ranking")
        return JSONResponse(data, headers=PAGE_HEADERS)

    @app.get("/files/{kind}/{path:path}")
    def document(kind: str, path: str) -> FileResponse:
        try:
            target = resolve_document(Path(str(settings_of().data_root)), kind, path)
        except DocumentNotFound as exc:
            raise HTTPException(status_code=404, detail="not found") from exc
        return FileResponse(target, media_type=MEDIA_TYPES[target.suffix.lower()], headers=DOCUMENT_HEADERS)

    return app
