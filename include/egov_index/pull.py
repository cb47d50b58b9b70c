"""Pull stage: fetch commune reports, dossiers and the procedure catalogue over HTTP.

Retries, backoff with jitter and ``Retry-After`` come from urllib3's ``Retry``
mounted on a requests ``Session`` (no hand-rolled loop). Every call has a
connect and a read timeout. Pages are checked (declared total vs rows received,
repeated cursor, duplicate records across pages) so wrong data fails loudly
instead of loading. The bearer token is never put into a message or a log line.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from egov_index.errors import SourceDataError, SourceError, SourceRejectedError

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)

# Called with (path, params, status, body bytes) for every page received as-is (the raw archive).
PageHook = Callable[[str, dict[str, Any], int, bytes], None]


@dataclass(frozen=True)
class SourceEndpoint:
    """Where a source lives and how to authenticate. ``token`` is excluded from repr."""

    name: str
    base_url: str
    token: str = field(repr=False)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    retries: int = 5
    backoff_factor_s: float = 0.5
    headers: tuple[tuple[str, str], ...] = ()  # extra request headers (Connection extra "headers")

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def make_session(endpoint: SourceEndpoint) -> requests.Session:
    """A session retrying connection errors, 429 and 5xx with exponential backoff + jitter."""
    retry = Retry(
        total=endpoint.retries,
        connect=endpoint.retries,
        read=endpoint.retries,
        status=endpoint.retries,
        backoff_factor=endpoint.backoff_factor_s,
        backoff_jitter=endpoint.backoff_factor_s,
        backoff_max=60.0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Authorization"] = f"Bearer {endpoint.token}"
    session.headers["Accept"] = "application/json"
    session.headers.update(dict(endpoint.headers))
    return session


def checked_get(
    session: requests.Session, endpoint: SourceEndpoint, path: str, params: dict[str, Any], stream: bool = False
) -> requests.Response:
    """GET with the session's retries; raise SourceError naming the endpoint and status on failure."""
    url = endpoint.url(path)
    try:
        response = session.get(
            url, params=params, timeout=(endpoint.connect_timeout_s, endpoint.read_timeout_s), stream=stream
        )
    except requests.RequestException as exc:
        raise SourceError(
            f"{endpoint.name}: GET {path} failed after {endpoint.retries} retries: "
            f"{type(exc).__name__}. Check that the source is reachable and the connection's host/port."
        ) from exc
    if response.status_code == 401 or response.status_code == 403:
        raise SourceRejectedError(
            f"{endpoint.name}: GET {path} was refused ({response.status_code}). "
            "The bearer token in the Airflow Connection is missing, wrong or expired."
        )
    if response.status_code >= 500 or response.status_code in RETRY_STATUSES:
        raise SourceError(
            f"{endpoint.name}: GET {path} still answered {response.status_code} after "
            f"{endpoint.retries} retries; the source is down or overloaded, retry later."
        )
    if response.status_code >= 400:
        raise SourceRejectedError(
            f"{endpoint.name}: GET {path} answered {response.status_code} "
            f"(params {params}): {response.text[:300]}"
        )
    return response


def get_json(
    session: requests.Session,
    endpoint: SourceEndpoint,
    path: str,
    params: dict[str, Any],
    on_page: PageHook | None = None,
) -> Any:
    """GET one page; raise SourceError naming the endpoint and status on failure."""
    response = checked_get(session, endpoint, path, params)
    try:
        body = response.json()
    except ValueError as exc:
        raise SourceError(
            f"{endpoint.name}: GET {path} returned a body that is not valid JSON "
            f"({len(response.content)} bytes; truncated response?)"
        ) from exc
    if on_page is not None:
        on_page(path, params, response.status_code, response.content)
    return body


def _check_unique(seen: set[str], items: list[dict[str, Any]], key: str, where: str) -> None:
    for item in items:
        value = item.get(key)
        if value is None:
            continue  # a missing key is a data-quality matter: the gate quarantines it
        if value in seen:
            raise SourceDataError(f"{where}: record {key}={value!r} delivered twice across pages")
        seen.add(str(value))


def paged(
    session: requests.Session,
    endpoint: SourceEndpoint,
    path: str,
    params: dict[str, Any],
    key: str,
    page_size: int,
    on_page: PageHook | None = None,
) -> list[dict[str, Any]]:
    """All items of a page-numbered endpoint; checks the declared total against rows received."""
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    page = 1
    declared: int | None = None
    while True:
        body = get_json(session, endpoint, path, {**params, "page": page, "page_size": page_size}, on_page)
        batch = body.get("items")
        if not isinstance(batch, list):
            raise SourceDataError(f"{endpoint.name}: GET {path} page {page} has no 'items' list")
        total = body.get("total")
        if declared is None:
            declared = total
        elif total != declared:
            raise SourceDataError(
                f"{endpoint.name}: GET {path} declared total changed between pages ({declared} -> {total})"
            )
        _check_unique(seen, batch, key, f"{endpoint.name}: GET {path}")
        items.extend(batch)
        if not batch or (len(items) >= declared if declared is not None else len(batch) < page_size):
            break
        page += 1
    if declared is not None and len(items) != declared:
        raise SourceDataError(
            f"{endpoint.name}: GET {path} declared {declared} records but delivered {len(items)}"
        )
    return items


def cursor_paged(
    session: requests.Session,
    endpoint: SourceEndpoint,
    path: str,
    params: dict[str, Any],
    key: str,
    limit: int,
    on_page: PageHook | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield the pages of a cursor-paginated endpoint; checks repeated cursors and the total."""
    seen_keys: set[str] = set()
    seen_cursors: set[str] = set()
    cursor: str | None = None
    received = 0
    declared: int | None = None
    while True:
        query = {**params, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        body = get_json(session, endpoint, path, query, on_page)
        batch = body.get("items")
        if not isinstance(batch, list):
            raise SourceDataError(f"{endpoint.name}: GET {path} has no 'items' list")
        if declared is None:
            declared = body.get("total")
        _check_unique(seen_keys, batch, key, f"{endpoint.name}: GET {path}")
        received += len(batch)
        yield batch
        cursor = body.get("next_cursor")
        if not cursor:
            break
        if cursor in seen_cursors:
            raise SourceDataError(f"{endpoint.name}: GET {path} returned a cursor it had already returned")
        seen_cursors.add(cursor)
    if declared is not None and received != declared:
        raise SourceDataError(
            f"{endpoint.name}: GET {path} declared {declared} records but delivered {received}"
        )


def fetch_commune_reports(
    endpoint: SourceEndpoint, period: str, page_size: int = 500, on_page: PageHook | None = None
) -> list[dict[str, Any]]:
    with make_session(endpoint) as session:
        path = "/api/v1/commune-reports"
        return paged(session, endpoint, path, {"period": period}, "report_id", page_size, on_page)


def fetch_procedures(
    endpoint: SourceEndpoint, page_size: int = 500, on_page: PageHook | None = None
) -> list[dict[str, Any]]:
    with make_session(endpoint) as session:
        return paged(session, endpoint, "/api/v1/procedures", {}, "procedure_code", page_size, on_page)


def fetch_dossiers(
    endpoint: SourceEndpoint,
    updated_from: datetime,
    updated_to: datetime,
    limit: int = 1000,
    on_page: PageHook | None = None,
    province_code: str | None = None,
) -> list[dict[str, Any]]:
    """Dossiers with updated_from <= updated_at < updated_to (timezone-aware bounds); one province's
    only when ``province_code`` is given (the portal's ``province_code`` filter)."""
    if updated_from.tzinfo is None or updated_to.tzinfo is None:
        raise ValueError("dossier window bounds must be timezone-aware")
    params = {"updated_from": updated_from.isoformat(), "updated_to": updated_to.isoformat()}
    if province_code is not None:
        params["province_code"] = province_code
    items: list[dict[str, Any]] = []
    with make_session(endpoint) as session:
        for batch in cursor_paged(session, endpoint, "/api/v1/dossiers", params, "dossier_id", limit, on_page):
            items.extend(batch)
    return items


# --- bulk exports (backfills) ------------------------------------------------------------------------
EXPORT_PATH = "/api/v1/exports/dossiers"
EXPORT_FORMATS = ("parquet", "ndjson", "csv")
PARTIAL_SUFFIX = ".partial"  # an export file being received, beside its destination
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportFile:
    """One bulk export file as received: where it is, what it declared, what it holds."""

    path: Path
    month: str
    province_code: str | None
    format: str
    rows: int  # declared by the source (X-Total-Count) and checked against the file
    sha256: str
    as_of: str


def fetch_dossier_export(
    endpoint: SourceEndpoint,
    month: str,
    as_of: datetime,
    dest: Path,
    province_code: str | None = None,
    fmt: str = "parquet",
) -> ExportFile:
    """Stream one month's dossier export (one province's if given) to ``dest``, checked and atomic.

    The body is written in 1 MiB chunks to a temporary file beside ``dest`` while its SHA-256 is
    computed; it becomes ``dest`` only if the source's ``X-Content-SHA256`` (when sent) and
    ``X-Total-Count`` match what arrived, so a truncated or corrupted transfer never looks complete.
    Retries (429 with Retry-After, 5xx, resets) are the session's.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    params: dict[str, Any] = {"month": month, "as_of": as_of.isoformat(), "format": fmt}
    if province_code is not None:
        params["province_code"] = province_code
    where = f"{endpoint.name}: GET {EXPORT_PATH} ({month}{'' if province_code is None else ', province ' + province_code})"
    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    digest = hashlib.sha256()
    with make_session(endpoint) as session:
        response = checked_get(session, endpoint, EXPORT_PATH, params, stream=True)
        with response:
            declared_rows = response.headers.get("X-Total-Count")
            declared_sha = response.headers.get("X-Content-SHA256")
            # the folder only now, beside the first byte: retention never meets an empty folder of a download
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with partial.open("wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            except requests.RequestException as exc:
                partial.unlink(missing_ok=True)
                raise SourceError(f"{where}: the transfer broke off ({type(exc).__name__}); rerun the pull") from exc
    sha = digest.hexdigest()
    try:
        if declared_sha is not None and declared_sha != sha:
            raise SourceDataError(f"{where}: body SHA-256 {sha[:12]}... differs from the declared {declared_sha[:12]}...")
        if declared_rows is None:
            raise SourceDataError(f"{where}: no X-Total-Count header; cannot check the export is complete")
        rows = export_rows(partial, fmt)
        if rows != int(declared_rows):
            raise SourceDataError(f"{where}: declared {declared_rows} dossiers but the file holds {rows}")
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(dest)
    return ExportFile(dest, month, province_code, fmt, rows, sha, as_of.isoformat())


def export_rows(path: Path, fmt: str) -> int:
    """Rows in an export file (Parquet: from its footer; NDJSON/CSV: lines after the header)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception as exc:  # noqa: BLE001 - any unreadable footer is a broken file
            raise SourceDataError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    return read_export(path, fmt).num_rows


def read_export(path: Path, fmt: str) -> Any:
    """An export file as an Arrow table (CSV columns as text: the conform stage types them)."""
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if fmt == "csv":  # text: each known column parsed as its export type, the others kept as text
            import pyarrow.csv as pacsv

            from egov_index.schemas import DOSSIER_EXPORT_TYPES

            with path.open(encoding="utf-8", newline="") as handle:
                names = next(csv.reader(handle), [])
            types = {name: DOSSIER_EXPORT_TYPES.get(name, pa.string()) for name in names}
            options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False)
            return pacsv.read_csv(path, convert_options=options)
        import pyarrow.json as pajson

        return pajson.read_json(path)
    except pa.ArrowInvalid as exc:
        raise SourceDataError(f"{path.name}: not a readable {fmt} export ({exc})") from exc
