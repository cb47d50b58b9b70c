"""Faults on request, so HTTP clients can be tested against misbehaving sources.

A request to ``/api/v1/*`` carrying the valid bearer token and a fault (header
``X-Egov-Fault`` or query parameter ``fault``) gets that fault instead of, or on top of, the
normal answer. Requests without one are passed through untouched. Forms:

``429[:S[:N]]``      429 with ``Retry-After: S`` (default 1 s); only the first N requests of the fault key
``5xx-burst:N``      the first N requests of the fault key answer 503, 500, 503, ... then the normal answer
``slow:S``           wait S seconds (at most 60; the server stays responsive), then the normal answer
``truncate``         200 with the first half of the normal body (invalid JSON)
``repeat-page``      a cursor page returns the request's cursor as ``next_cursor``; page p > 1 of a
                     page-numbered endpoint holds the items of page p - 1
``total-mismatch``   ``total`` one more than the records the endpoint really has
``reset``            the connection is reset (TCP RST), no response at all

The fault key (header ``X-Egov-Fault-Key`` or parameter ``fault_key``) groups requests for the
counts of ``429:S:N`` and ``5xx-burst:N``; without one, identical requests (same fault, path
and query: a client's retries) count together.

Chaos mode (``ServerSettings.chaos_rate``/``chaos_seed``, ``--chaos-rate``/``--chaos-seed``): API
requests that ask for no fault get a random *transient* fault, the kind a client's retry policy is
built to absorb: 429 with ``Retry-After``, a burst of 5xx, a connection reset, or a slow answer well
within any sane read timeout. The draw is seeded and keyed by the request (path and query), so the
same seed faults the same requests the same way, and only the request's first one or two attempts
fail: its retries get the normal answer. Data-corrupting faults (truncate, repeat-page,
total-mismatch) are never drawn: they must fail a pull, not be absorbed by it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FAULT_HEADER, FAULT_KEY_HEADER = "x-egov-fault", "x-egov-fault-key"
FAULT_PARAM, FAULT_KEY_PARAM = "fault", "fault_key"
MAX_SLOW_S = 60.0
FAULT_FORMS = (
    "429[:S[:N]]",
    "5xx-burst:N",
    "slow:S",
    "truncate",
    "repeat-page",
    "total-mismatch",
    "reset",
)
_NUMBER = r"(\d+(?:\.\d+)?)"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "429": re.compile(rf"429(?::{_NUMBER}(?::(\d+))?)?"),
    "5xx-burst": re.compile(r"5xx-burst:(\d+)"),
    "slow": re.compile(rf"slow:{_NUMBER}"),
    "truncate": re.compile("truncate"),
    "repeat-page": re.compile("repeat-page"),
    "total-mismatch": re.compile("total-mismatch"),
    "reset": re.compile("reset"),
}
log = logging.getLogger(__name__)


CHAOS_KINDS = ("429", "5xx-burst", "reset", "slow")


@dataclass(frozen=True)
class Chaos:
    """Seeded random transient faults on requests that ask for none (``rate`` 0: off)."""

    rate: float = 0.0
    seed: int = 0
    retry_after_s: int = 1  # whole seconds: the only form of Retry-After besides an HTTP date
    slow_s: float = 0.2
    max_failures: int = 2  # a chaos-faulted request fails its first 1..max_failures attempts

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"chaos rate must be within [0, 1], got {self.rate}")
        if self.retry_after_s < 0 or not 0.0 <= self.slow_s <= MAX_SLOW_S or self.max_failures < 1:
            raise ValueError("chaos: retry_after_s >= 0, 0 <= slow_s <= 60 and max_failures >= 1 required")

    def draw(self, request_key: str) -> tuple[Fault, int] | None:
        """The fault of a request and how many of its attempts get it; None: no fault. Pure function of
        (seed, request key): reproducible across runs and server restarts."""
        if self.rate <= 0.0:
            return None
        digest = hashlib.sha256(f"{self.seed}\x00{request_key}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= self.rate:
            return None
        kind = CHAOS_KINDS[digest[8] % len(CHAOS_KINDS)]
        failures = 1 + digest[9] % self.max_failures
        if kind == "429":
            return Fault(kind, float(self.retry_after_s), failures), failures
        if kind == "5xx-burst":
            return Fault(kind, count=failures), failures
        if kind == "slow":
            return Fault(kind, seconds=self.slow_s), failures
        return Fault(kind), failures


@dataclass(frozen=True)
class Fault:
    kind: str  # a key of _PATTERNS
    seconds: float = 0.0  # Retry-After of 429, wait of slow
    count: int | None = None  # 429 and 5xx-burst: requests per fault key that fail (None: all)


def parse_fault(spec: str) -> Fault:
    """'5xx-burst:2' -> Fault('5xx-burst', count=2); ValueError naming the valid forms otherwise."""
    for kind, pattern in _PATTERNS.items():
        match = pattern.fullmatch(spec.strip())
        if match is None:
            continue
        if kind == "429":
            seconds, count = match.groups()
            return Fault(kind, float(seconds or 1), None if count is None else int(count))
        if kind == "5xx-burst":
            return Fault(kind, count=int(match.group(1)))
        if kind == "slow" and float(match.group(1)) <= MAX_SLOW_S:
            return Fault(kind, seconds=float(match.group(1)))
        if kind != "slow":
            return Fault(kind)
    raise ValueError(f"unknown fault {spec!r}: expected one of {', '.join(FAULT_FORMS)} (S seconds <= 60)")


async def _send_json(send: Send, status: int, content: dict, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    await _send_body(send, status, headers, body)


async def _send_body(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reset(send: Send) -> None:
    """Abort the connection with a TCP RST; without access to it (not uvicorn), raise instead."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)  # uvicorn's RequestResponseCycle
    if transport is None:
        raise ConnectionResetError("fault 'reset': connection reset by the reference source server")
    transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    transport.abort()
    await anyio.sleep(0)  # let the server register the lost connection before the app returns


class FaultInjector:
    """ASGI wrapper applying the fault a request asks for; counts requests per fault key."""

    def __init__(
        self, app: ASGIApp, authorised: Callable[[str | None], bool], chaos: Chaos | None = None
    ) -> None:
        self.app = app
        self.authorised = authorised
        self.chaos = chaos or Chaos()
        self.counts: Counter[str] = Counter()
        self.chaos_counts: Counter[str] = Counter()  # attempts per chaos-faulted request
        self.chaos_log: list[tuple[str, str, int]] = []  # (request key, fault kind, attempt) served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        spec, key, query = self._request_fault(scope)
        if spec is None:
            chaos = self._chaos_fault(scope, query)
            if chaos is None:
                await self.app(scope, receive, send)
                return
            fault, spec, key = chaos
        else:
            try:
                fault = parse_fault(spec)
            except ValueError as exc:
                await _send_json(send, 400, {"detail": str(exc)}, [])
                return
        log.info("fault %s on %s", spec, scope["path"])
        if fault.kind in ("429", "5xx-burst"):
            key = key or f"{spec} {scope['path']}?{urlencode(query)}"
            self.counts[key] += 1
            if fault.count is None or self.counts[key] <= fault.count:
                if fault.kind == "429":
                    retry_after = [(b"retry-after", f"{fault.seconds:g}".encode())]
                    await _send_json(send, 429, {"detail": "too many requests (fault)"}, retry_after)
                else:
                    status = 503 if self.counts[key] % 2 else 500
                    await _send_json(send, status, {"detail": f"server error {status} (fault)"}, [])
                return
        elif fault.kind == "slow":
            await anyio.sleep(fault.seconds)
        elif fault.kind == "reset":
            await _reset(send)
            return
        else:  # truncate, repeat-page, total-mismatch
            await self._rewrite(fault.kind, scope, receive, send, query)
            return
        await self.app(scope, receive, send)  # after slow, or once a 429 / 5xx burst is spent

    def _chaos_fault(self, scope: Scope, query: list[tuple[str, str]]) -> tuple[Fault, str, str] | None:
        """(fault, spec for the log, fault key) of a chaos-faulted attempt of an authorised API request
        asking for no fault; None once the request's faulty attempts are spent (or no chaos)."""
        if self.chaos.rate <= 0.0 or not self._is_api(scope):
            return None
        request_key = f"{scope['path']}?{urlencode(sorted(query))}"
        drawn = self.chaos.draw(request_key)
        if drawn is None:
            return None
        fault, failures = drawn
        self.chaos_counts[request_key] += 1
        attempt = self.chaos_counts[request_key]
        if attempt > failures:
            return None
        self.chaos_log.append((request_key, fault.kind, attempt))
        # 429 / 5xx count per fault key: a key per attempt makes this attempt fail whatever came before
        return fault, f"chaos:{fault.kind}", f"chaos {request_key} #{attempt}"

    def _is_api(self, scope: Scope) -> bool:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/"):
            return False
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        return self.authorised(headers.get("authorization"))

    def _request_fault(self, scope: Scope) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        """(fault spec, fault key, query without the fault parameters) of an authorised API request."""
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/"):
            return None, None, []
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.authorised(headers.get("authorization")):
            return None, None, []
        params = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        query = [(k, v) for k, v in params if k not in (FAULT_PARAM, FAULT_KEY_PARAM)]
        found = dict(params)
        spec = headers.get(FAULT_HEADER, found.get(FAULT_PARAM))
        return spec, headers.get(FAULT_KEY_HEADER, found.get(FAULT_KEY_PARAM)), query

    async def _rewrite(
        self, kind: str, scope: Scope, receive: Receive, send: Send, query: list[tuple[str, str]]
    ) -> None:
        """Run the request (page p - 1 for repeat-page) and send its answer altered by the fault."""
        params = dict(query)
        page = int(params["page"]) if params.get("page", "").isdigit() else 1
        if kind == "repeat-page" and page > 1:
            repeated = [(k, str(page - 1) if k == "page" else v) for k, v in query]
            scope = dict(scope, query_string=urlencode(repeated).encode())
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start = messages[0]
        body = b"".join(m.get("body", b"") for m in messages[1:])
        if start["status"] != 200:
            await _send_body(send, start["status"], list(start["headers"]), body)
            return
        if kind == "truncate":
            body = body[: len(body) // 2]
        else:
            content = json.loads(body)
            if kind == "total-mismatch":
                content["total"] += 1
            elif "cursor" in params:
                content["next_cursor"] = params["cursor"]
            elif "page" in content:
                content["page"] = page
            body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
        await _send_body(send, 200, list(start["headers"]), body)
