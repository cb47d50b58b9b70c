"""FastAPI app of the reference source server (contract: docs/sources.md)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from starlette.types import ASGIApp

from egov_index.source_server.faults import Chaos, FaultInjector
from egov_index.source_server.generator import (
    DEFAULT_DOSSIERS_PER_DAY,
    DEFAULT_SEED,
    DossierKey,
    Record,
    commune_reports,
    dossier_export,
    dossier_page,
    procedure_catalogue,
)

DEFAULT_DEFECT_RATE = 0.002
DEFAULT_LEGACY_RATE = 0.01
MAX_WINDOW = timedelta(days=366)


@dataclass(frozen=True)
class ServerSettings:
    """What the server generates and who may read it."""

    token: str = field(repr=False)
    seed: int = DEFAULT_SEED
    dossiers_per_day: int = DEFAULT_DOSSIERS_PER_DAY
    defect_rate: float = DEFAULT_DEFECT_RATE
    legacy_rate: float = DEFAULT_LEGACY_RATE
    max_page_size: int = 1000
    chaos_rate: float = 0.0  # share of API requests given a random transient fault (faults.py, chaos mode)
    chaos_seed: int = 0

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("a non-empty bearer token is required")
        if not 0.0 <= self.defect_rate <= 1.0 or not 0.0 <= self.legacy_rate <= 1.0:
            raise ValueError("defect_rate and legacy_rate must be within [0, 1]")
        if self.dossiers_per_day < 0 or self.max_page_size < 1:
            raise ValueError("dossiers_per_day must be >= 0 and max_page_size >= 1")
        self.chaos  # noqa: B018 - validates the chaos settings

    @property
    def chaos(self) -> Chaos:
        return Chaos(rate=self.chaos_rate, seed=self.chaos_seed)


class DeterministicJSON(Response):
    """Compact UTF-8 JSON with keys in insertion order: same content, same bytes."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def encode_cursor(last: Record) -> str:
    """Opaque cursor: URL-safe base64 of [updated_at, dossier_id] of the last item served."""
    raw = json.dumps([last["updated_at"], last["dossier_id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> DossierKey:
    try:
        updated_at, dossier_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        instant = datetime.fromisoformat(updated_at)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise HTTPException(400, "invalid cursor: pass next_cursor from the previous page unchanged") from exc
    if instant.tzinfo is None or not isinstance(dossier_id, str):
        raise HTTPException(400, "invalid cursor: pass next_cursor from the previous page unchanged")
    return int(instant.timestamp()), dossier_id


def _instant(name: str, value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise HTTPException(
            422,
            f"{name}={value!r} is not an ISO-8601 timestamp with offset, e.g. 2026-09-30T00:00:00+07:00 "
            "or 2026-09-29T17:00:00Z (URL-encode '+' as %2B)",
        )
    return instant


def _page_size(value: int | None, default: int, settings: ServerSettings) -> int:
    size = min(default, settings.max_page_size) if value is None else value
    if not 1 <= size <= settings.max_page_size:
        raise HTTPException(422, f"page size must be between 1 and {settings.max_page_size}, got {size}")
    return size


class _SourceApp(FastAPI):
    """FastAPI with the fault injector outermost, where it gets the server's own ``send``."""

    def __init__(
        self, authorised: Callable[[str | None], bool], chaos: Chaos | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._authorised = authorised
        self._chaos = chaos
        self.fault_injector: FaultInjector | None = None

    def build_middleware_stack(self) -> ASGIApp:
        self.fault_injector = FaultInjector(super().build_middleware_stack(), self._authorised, self._chaos)
        return self.fault_injector


def create_app(settings: ServerSettings) -> FastAPI:
    """The server: /health (open), the bearer-protected /api/v1 endpoints and faults on request."""
    expected = settings.token.encode()

    def authorised(authorization: str | None) -> bool:
        scheme, _, credentials = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(credentials.strip().encode(), expected)

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if not authorised(authorization):
            raise HTTPException(
                401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    @lru_cache(maxsize=16)
    def reports(period: str) -> tuple[Record, ...]:
        return tuple(commune_reports(period, settings.seed, settings.defect_rate, settings.legacy_rate))

    @lru_cache(maxsize=1)
    def catalogue() -> tuple[Record, ...]:
        return tuple(procedure_catalogue(settings.seed))

    app = _SourceApp(
        authorised,
        settings.chaos,
        title="egov-index reference source server",
        description="Deterministic stand-in for a province's reporting system and public-service portal.",
        default_response_class=DeterministicJSON,
    )
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

    @app.get("/health")
    def health() -> DeterministicJSON:
        return DeterministicJSON({"status": "ok"})

    @api.get("/commune-reports")
    def get_commune_reports(
        period: str,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: int | None = None,
    ) -> DeterministicJSON:
        size = _page_size(page_size, 500, settings)
        try:
            records = reports(period)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        items = list(records[(page - 1) * size : page * size])
        return DeterministicJSON(
            {"period": period, "page": page, "page_size": size, "total": len(records), "items": items}
        )

    @api.get("/procedures")
    def get_procedures(
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: int | None = None,
    ) -> DeterministicJSON:
        size = _page_size(page_size, 500, settings)
        records = catalogue()
        items = list(records[(page - 1) * size : page * size])
        return DeterministicJSON({"page": page, "page_size": size, "total": len(records), "items": items})

    @api.get("/dossiers")
    def get_dossiers(
        updated_from: str,
        updated_to: str,
        limit: int | None = None,
        cursor: str | None = None,
        province_code: str | None = None,
    ) -> DeterministicJSON:
        start, end = _instant("updated_from", updated_from), _instant("updated_to", updated_to)
        if end < start:
            raise HTTPException(422, "updated_to must not be before updated_from")
        if end - start > MAX_WINDOW:
            raise HTTPException(422, f"the window may span at most {MAX_WINDOW.days} days")
        result = dossier_page(
            start,
            end,
            seed=settings.seed,
            dossiers_per_day=settings.dossiers_per_day,
            defect_rate=settings.defect_rate,
            after=None if cursor is None else decode_cursor(cursor),
            limit=_page_size(limit, settings.max_page_size, settings),
            province_code=province_code,
        )
        next_cursor = encode_cursor(result.items[-1]) if result.has_more else None
        return DeterministicJSON({"items": result.items, "next_cursor": next_cursor, "total": result.total})

    @api.get("/exports/dossiers")
    def export_dossiers(
        month: str,
        as_of: str,
        province_code: str | None = None,
        format: Annotated[str, Query(pattern="^(parquet|ndjson|csv)$")] = "parquet",  # noqa: A002
    ) -> Response:
        """Bulk export for backfills: every dossier received in ``month`` as of ``as_of``."""
        cut = _instant("as_of", as_of)
        try:
            table = dossier_export(
                month,
                cut,
                province_code=province_code,
                seed=settings.seed,
                dossiers_per_day=settings.dossiers_per_day,
                defect_rate=settings.defect_rate,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        name = f"dossiers_{month}{'' if province_code is None else '_' + province_code}.{format}"
        headers = {"X-Total-Count": str(table.num_rows), "Content-Disposition": f'attachment; filename="{name}"'}
        if format == "parquet":  # the footer comes last: the file is built, then sent with its digest
            body = export_parquet(table)
            headers["X-Content-SHA256"] = hashlib.sha256(body).hexdigest()
            return Response(body, media_type="application/vnd.apache.parquet", headers=headers)
        media = "application/x-ndjson" if format == "ndjson" else "text/csv; charset=utf-8"
        return StreamingResponse(export_text(table, format), media_type=media, headers=headers)

    app.include_router(api)
    return app


EXPORT_BATCH_ROWS = 50_000


def export_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def export_text(table: pa.Table, fmt: str) -> Iterator[bytes]:
    """NDJSON (one record per line, times ISO-8601 with offset) or CSV with a header, batch by batch."""
    if fmt == "csv" and table.num_rows == 0:
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)
        yield sink.getvalue()
    for number, batch in enumerate(table.to_batches(max_chunksize=EXPORT_BATCH_ROWS)):
        if fmt == "csv":
            sink = io.BytesIO()
            pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=number == 0))
            yield sink.getvalue()
            continue
        lines = []
        for record in batch.to_pylist():
            for key, value in record.items():
                if isinstance(value, datetime):
                    record[key] = value.isoformat()
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        yield ("\n".join(lines) + "\n").encode()
