"""A loopback HTTP proxy that answers some requests late: the slow execution API of a loaded machine, on demand.

On a loaded 2-core machine the api-server answered a worker's ``PATCH /execution/task-instances/<id>/run``
in 4.4 s, close to the Task SDK's default ``[workers] execution_api_timeout`` of 5 s. When the answer is
later than the timeout, the worker retries the call; the server already marked the task running, answers
409, and the worker gives the task up before running it (``TaskAlreadyRunningError``). The scheduler
then fails the task instance ("finished with state failed, but the task instance's state attribute is
running"). This proxy makes that lateness certain instead of a matter of load: put it between the
workers and the api-server (``[core] execution_api_server_url``) and every matching request is forwarded
at once, processed by the server, and its answer held back ``delay_s`` before it is returned.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class SlowAnswers:
    """Forwards every request to ``upstream``; answers to ``method`` requests whose path matches ``path_re``
    are returned ``delay_s`` after the upstream answered. ``delayed`` counts them."""

    def __init__(self, upstream: str, method: str, path_re: str, delay_s: float) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.method, self.path_re, self.delay_s = method, re.compile(path_re), delay_s
        self.delayed = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SlowAnswers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=300)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                finally:
                    upstream.close()
                if self.command == proxy.method and proxy.path_re.search(self.path):
                    with proxy._lock:
                        proxy.delayed += 1
                    time.sleep(proxy.delay_s)  # the injected fault: the answer is late
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        return Handler
