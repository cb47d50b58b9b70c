"""The HTTP pull client against a scripted local HTTP server (real sockets, real urllib3 retries)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from egov_index import pull
from egov_index.errors import SourceDataError, SourceError, SourceRejectedError

Responder = Callable[[str, dict[str, list[str]], int], tuple[int, dict[str, str], bytes]]


class Scripted:
    """A loopback HTTP server whose answers come from a function of (path, query, call number)."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.calls: list[tuple[str, dict[str, list[str]], str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                outer.calls.append((parts.path, query, self.headers.get("Authorization")))
                status, headers, body = outer.respond(parts.path, query, len(outer.calls))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Callable[[Responder], Scripted]]:
    servers: list[Scripted] = []

    def start(respond: Responder) -> Scripted:
        s = Scripted(respond)
        s.thread.start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.server.shutdown()
        s.server.server_close()


def ok(payload: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def endpoint(url: str, **kw: object) -> pull.SourceEndpoint:
    return pull.SourceEndpoint(name="test_source", base_url=url, token="s3cret-token", **kw)  # type: ignore[arg-type]


def reports_pages(total: int, page_size: int) -> Responder:
    items = [{"report_id": f"r{i}"} for i in range(total)]

    def respond(path: str, query: dict[str, list[str]], n: int) -> tuple[int, dict[str, str], bytes]:
        page = int(query["page"][0])
        chunk = items[(page - 1) * page_size : page * page_size]
        return ok({"page": page, "total": total, "items": chunk})

    return respond


def test_paged_collects_every_page_and_sends_the_token(scripted):
    server = scripted(reports_pages(25, 10))
    items = pull.fetch_commune_reports(endpoint(server.url), "2026-Q3", page_size=10)
    assert [i["report_id"] for i in items] == [f"r{i}" for i in range(25)]
    assert len(server.calls) == 3
    assert all(auth == "Bearer s3cret-token" for _, _, auth in server.calls)
    assert server.calls[0][1]["period"] == ["2026-Q3"]


def test_retries_429_honouring_retry_after_then_succeeds(scripted):
    def respond(path, query, n):
        if n == 1:
            return 429, {"Retry-After": "0"}, b"slow down"
        if n == 2:
            return 503, {}, b"busy"
        return reports_pages(3, 10)(path, query, n)

    server = scripted(respond)
    items = pull.fetch_commune_reports(endpoint(server.url, backoff_factor_s=0.01), "2026-Q3", page_size=10)
    assert len(items) == 3
    assert len(server.calls) == 3


def test_persistent_5xx_raises_retryable_source_error_naming_endpoint(scripted):
    server = scripted(lambda path, query, n: (500, {}, b"boom"))
    with pytest.raises(SourceError) as err:
        pull.fetch_procedures(endpoint(server.url, retries=2, backoff_factor_s=0.01))
    assert not isinstance(err.value, SourceRejectedError | SourceDataError)
    assert "test_source" in str(err.value) and "/api/v1/procedures" in str(err.value)
    assert len(server.calls) == 3  # first try + 2 retries


def test_4xx_is_not_retried_and_token_is_not_in_message(scripted):
    server = scripted(lambda path, query, n: (401, {}, b"no"))
    with pytest.raises(SourceRejectedError) as err:
        pull.fetch_procedures(endpoint(server.url))
    assert len(server.calls) == 1
    assert "s3cret-token" not in str(err.value)
    assert "token" in str(err.value)
    assert "s3cret-token" not in repr(endpoint(server.url))


def test_declared_total_not_matching_rows_fails(scripted):
    def respond(path, query, n):
        return ok({"total": 5, "items": [{"report_id": "a"}, {"report_id": "b"}] if n == 1 else []})

    server = scripted(respond)
    with pytest.raises(SourceDataError, match="declared 5 records but delivered 2"):
        pull.fetch_commune_reports(endpoint(server.url), "2026-Q3", page_size=2)


def test_duplicate_record_across_pages_fails(scripted):
    def respond(path, query, n):
        return ok({"total": 4, "items": [{"report_id": "a"}, {"report_id": str(n)}]})

    server = scripted(respond)
    with pytest.raises(SourceDataError, match="delivered twice"):
        pull.fetch_commune_reports(endpoint(server.url), "2026-Q3", page_size=2)


def test_cursor_pagination_and_repeated_cursor(scripted):
    def good(path, query, n):
        cursor = query.get("cursor", [None])[0]
        if cursor is None:
            return ok({"total": 3, "items": [{"dossier_id": "1"}, {"dossier_id": "2"}], "next_cursor": "c1"})
        return ok({"total": 3, "items": [{"dossier_id": "3"}], "next_cursor": None})

    server = scripted(good)
    start, end = datetime(2026, 9, 29, 17, tzinfo=UTC), datetime(2026, 9, 30, 17, tzinfo=UTC)
    items = pull.fetch_dossiers(endpoint(server.url), start, end, limit=2)
    assert [i["dossier_id"] for i in items] == ["1", "2", "3"]
    assert server.calls[0][1]["updated_from"] == [start.isoformat()]

    def looping(path, query, n):
        return ok({"total": 99, "items": [{"dossier_id": str(n)}], "next_cursor": "same"})

    server = scripted(looping)
    with pytest.raises(SourceDataError, match="cursor it had already returned"):
        pull.fetch_dossiers(endpoint(server.url), start, end)


def test_truncated_json_is_a_clear_error(scripted):
    server = scripted(lambda path, query, n: (200, {"Content-Type": "application/json"}, b'{"items": [{"re'))
    with pytest.raises(SourceError, match="not valid JSON"):
        pull.fetch_procedures(endpoint(server.url))


def test_naive_window_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        pull.fetch_dossiers(endpoint("http://127.0.0.1:9"), datetime(2026, 9, 30), datetime(2026, 10, 1))


def test_on_page_sees_every_page_as_received(scripted):
    server = scripted(reports_pages(5, 2))
    pages: list[tuple[str, dict, int, bytes]] = []
    pull.fetch_commune_reports(endpoint(server.url), "2026-Q3", page_size=2, on_page=lambda *a: pages.append(a))
    assert [p[1]["page"] for p in pages] == [1, 2, 3]
    assert all(p[2] == 200 for p in pages)
    assert [i["report_id"] for p in pages for i in json.loads(p[3])["items"]] == [f"r{i}" for i in range(5)]


def test_response_slower_than_the_read_timeout_is_retried_then_loaded(scripted):
    import time

    def respond(path, query, n):
        if n == 1:
            time.sleep(1.0)  # the simulated slow source; the client gives up after 0.2 s
        return reports_pages(2, 10)(path, query, n)

    server = scripted(respond)
    fast = endpoint(server.url, read_timeout_s=0.2, backoff_factor_s=0.01)
    assert len(pull.fetch_commune_reports(fast, "2026-Q3", page_size=10)) == 2
    assert len(server.calls) == 2


def test_connection_reset_is_retried(scripted):
    def respond(path, query, n):
        if n == 1:
            raise ConnectionResetError  # handler dies: the socket closes without a response
        return reports_pages(2, 10)(path, query, n)

    server = scripted(respond)
    items = pull.fetch_commune_reports(endpoint(server.url, backoff_factor_s=0.01), "2026-Q3", page_size=10)
    assert len(items) == 2
