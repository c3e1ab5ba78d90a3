"""A fault-injecting HTTP reverse proxy (toxiproxy-style) to put between a client and a server.

Real APIs fail: rate limits (429), overloaded or restarting backends (503), answers slower than the
client will wait, connections dropped mid-request, and whole outages. Retry and fallback code is only
tested when those failures happen for real, at the HTTP level, to the real client library. So::

    from genai_roadmap.faults import FaultProxy, Faults
    with serve("course-chat") as server, FaultProxy(server.base_url, Faults(rate_limit=0.1, seed=0)) as proxy:
        client = OpenAI(base_url=proxy.base_url, api_key="local", max_retries=0, timeout=0.3)
        ...                       # ~10% of requests now get a 429, the rest reach the server

Each request the proxy receives gets a number (0, 1, 2, ...), and its fault is drawn from a random
generator seeded with (seed, number): a client sending requests one after another meets the same faults
on every run. The faults:

- ``rate_limit``: answer 429 in OpenAI's error shape, with a ``Retry-After`` header; the server never sees it;
- ``unavailable``: answer 503 in the same shape;
- ``slow``: wait ``slow_seconds`` before forwarding (a client with a shorter timeout gives up; the server
  still does the work, as a real one would: a timed-out request is still paid for);
- ``drop``: read the request, then close the connection without an answer (the client sees a
  connection error);
- ``outage`` (an attribute to switch on and off): every request gets a 503, whatever was drawn.

``proxy.log`` records (number, fault, status) per request: None for the fault when it was forwarded; status
0 when no answer was sent, None while the answer is still on its way (a slow one). Taught in phase4_production/18_cost_engineering.ipynb.
"""
from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from genai_roadmap.serve import APIError  # the OpenAI error shape the server answers with

HOST = "127.0.0.1"
KINDS = ("rate_limit", "unavailable", "slow", "drop")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


@dataclass(frozen=True)
class Faults:
    """Per-request fault probabilities (their sum at most 1), drawn per request number from `seed`."""
    rate_limit: float = 0.0
    unavailable: float = 0.0
    slow: float = 0.0
    drop: float = 0.0
    slow_seconds: float = 1.0
    retry_after: float = 0.05  # the Retry-After header of a 429, in seconds
    seed: int = 0

    def __post_init__(self):
        rates = [getattr(self, k) for k in KINDS]
        if any(r < 0 for r in rates) or sum(rates) > 1 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {dict(zip(KINDS, rates))}")
        if self.slow_seconds < 0 or self.retry_after < 0:
            raise ValueError("slow_seconds and retry_after must be >= 0")

    def draw(self, number: int) -> str | None:
        """The fault of request `number` (one of KINDS), or None: forward it untouched."""
        u = random.Random(f"faults-{self.seed}-{number}").random()
        for kind in KINDS:
            rate = getattr(self, kind)
            if u < rate:
                return kind
            u -= rate
        return None


class FaultProxy:
    """A reverse proxy on a free port of 127.0.0.1 that forwards to `upstream` and injects `faults`.

    upstream: the server's base URL (``http://127.0.0.1:PORT/v1`` or just ``http://127.0.0.1:PORT``); the
    proxy keeps the path, so ``proxy.base_url`` is the same URL with the proxy's port.
    """

    def __init__(self, upstream: str, faults: Faults | None = None):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be an http://host:port URL, got {upstream!r}")
        self.upstream_host, self.upstream_port, self.path = parts.hostname, parts.port, parts.path.rstrip("/")
        self.faults = faults or Faults()
        self.outage = False
        self.log: list[tuple[int, str | None, int]] = []
        self._count = 0
        self._lock = threading.Lock()
        self._server = self._thread = None
        self.port = 0

    # ------------------------------------------------------------------ control
    def set_faults(self, faults: Faults | None = None, **changes) -> None:
        """Replace the faults (or change some fields), restart the numbering and clear the log."""
        with self._lock:
            self.faults = replace(faults or self.faults, **changes)
            self._count, self.log = 0, []

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not running: use `with FaultProxy(...) as proxy:` or call start()")
        return f"http://{HOST}:{self.port}{self.path}"

    def counts(self) -> dict[str, int]:
        """How many requests met each fault (and "outage", "forwarded") since the last set_faults."""
        out = {k: 0 for k in (*KINDS, "outage", "forwarded")}
        for _, fault, _ in self.log:
            out[fault or "forwarded"] += 1
        return out

    def _next(self) -> tuple[int, str | None]:
        with self._lock:
            number, self._count = self._count, self._count + 1
            fault = "outage" if self.outage else self.faults.draw(number)
            self.log.append((number, fault, None))  # the status comes when the answer is sent
            return number, fault

    def _record(self, number: int, fault: str | None, status: int) -> None:
        with self._lock:
            if number < len(self.log) and self.log[number][:2] == (number, fault):  # not cleared meanwhile
                self.log[number] = (number, fault, status)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                number, fault = proxy._next()
                try:
                    if fault == "drop":
                        proxy._record(number, fault, 0)
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)  # no status line: a connection error
                        return
                    if fault in ("rate_limit", "unavailable", "outage"):
                        status = 429 if fault == "rate_limit" else 503
                        message = ("Rate limit reached: slow down." if status == 429 else
                                   "The service is temporarily unavailable.")
                        extra = {"Retry-After": f"{proxy.faults.retry_after:g}"} if status == 429 else {}
                        proxy._record(number, fault, status)
                        self._answer(status, json.dumps(APIError(status, message, type=fault).body()).encode(), extra)
                        return
                    if fault == "slow":
                        time.sleep(proxy.faults.slow_seconds)
                    status, headers, answer = self._forward(body)
                    proxy._record(number, fault, status)
                    self._answer(status, answer, headers)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True  # the client gave up (a timeout) before the answer

            def _forward(self, body: bytes):
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    r = conn.getresponse()
                    answer = r.read()
                    kept = {k: v for k, v in r.getheaders() if k.lower() not in HOP_BY_HOP | {"content-type"}}
                    return r.status, kept, answer
                finally:
                    conn.close()

            do_GET = do_POST = _handle

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"fault-proxy-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{HOST}:{self.port} -> {self.upstream_host}:{self.upstream_port}" if self._server else "stopped"
        return f"FaultProxy({where}, {self.faults}, outage={self.outage})"
