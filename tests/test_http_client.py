"""The one HTTP client against real servers on loopback: Python's http.server speaking HTTP/1.1 with
keep-alive (as Consul's Go server does) or HTTP/1.0, over plain TCP and TLS. What is counted is what
the server saw: connections accepted and requests answered."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pushorch.lab.tlsgen import ensure_certificates
from pushorch.transport.base import StreamPair
from pushorch.transport.http import HttpError, HttpPool, probe
from pushorch.transport.tls import client_context


class Server:
    def __init__(self, protocol: str, tls: ssl.SSLContext | None = None) -> None:
        counts = self.counts = {"connections": 0, "requests": 0}
        self.close_idle = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = protocol

            def setup(self) -> None:
                counts["connections"] += 1
                super().setup()

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                counts["requests"] += 1
                length = int(self.headers.get("Content-Length") or 0)
                got = self.rfile.read(length) if length else b""
                if self.path == "/garbage":
                    self.wfile.write(b"this is not HTTP\r\n\r\n")
                    self.close_connection = True
                    return
                body = b'{"path": "%s", "got": %d}' % (self.path.encode(), len(got))
                # Read before answering: once the client has the answer the test may change it (read
                # after, a slow thread closed the connection of the answer before: seen under load).
                closing = outer.close_idle.is_set()
                self.send_response(500 if self.path == "/fail" else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if closing:
                    self.close_connection = True  # as an agent's idle timeout would, after answering

            do_GET = do_PUT = _answer

        outer = self
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def open(self) -> StreamPair:
        return StreamPair(*await asyncio.open_connection("127.0.0.1", self.port))


@pytest.fixture
def http11() -> Iterator[Server]:
    server = Server("HTTP/1.1")
    yield server
    server.server.shutdown()


def test_a_kept_alive_connection_carries_every_request(http11: Server) -> None:
    async def main() -> list[int]:
        pool = HttpPool()
        replies = [await pool.request(http11.open, None, "", "GET", f"/v1/x/{i}", [("Host", "a")]) for i in range(5)]
        put = await pool.request(http11.open, None, "", "PUT", "/v1/kv/k", [("Host", "a")], b"value")
        await pool.close()
        assert put.json({}) == {"path": "/v1/kv/k", "got": 5}
        return [r.status for r in replies]

    assert asyncio.run(main()) == [200] * 5
    assert http11.counts == {"connections": 1, "requests": 6}


def test_calls_at_once_take_their_own_connections_and_then_share_them(http11: Server) -> None:
    async def main() -> None:
        pool = HttpPool()
        await asyncio.gather(*(pool.request(http11.open, None, "", "GET", "/a", [("Host", "a")]) for _ in range(3)))
        for _ in range(3):
            await pool.request(http11.open, None, "", "GET", "/b", [("Host", "a")])
        await pool.close()

    asyncio.run(main())
    assert http11.counts == {"connections": 3, "requests": 6}


def test_a_connection_the_server_closed_while_idle_is_replaced_once(http11: Server) -> None:
    async def main() -> list[int]:
        pool = HttpPool()
        statuses = [(await pool.request(http11.open, None, "", "GET", "/", [("Host", "a")])).status]
        http11.close_idle.set()  # the next answer closes its connection
        statuses.append((await pool.request(http11.open, None, "", "GET", "/", [("Host", "a")])).status)
        http11.close_idle.clear()
        statuses.append((await pool.request(http11.open, None, "", "GET", "/", [("Host", "a")])).status)
        await pool.close()
        return statuses

    assert asyncio.run(main()) == [200, 200, 200]
    assert http11.counts == {"connections": 2, "requests": 3}


def test_an_http_1_0_server_gets_a_connection_per_request_and_errors_are_answers() -> None:
    server = Server("HTTP/1.0")

    async def main() -> None:
        pool = HttpPool()
        assert (await pool.request(server.open, None, "", "GET", "/fail", [("Host", "a")])).status == 500
        assert (await pool.request(server.open, None, "", "GET", "/ok", [("Host", "a")])).status == 200
        with pytest.raises(HttpError):
            await pool.request(server.open, None, "", "GET", "/garbage", [("Host", "a")])
        assert await probe(await server.open(), "/health", range(200, 300)) == (200, b"")
        await pool.close()

    try:
        asyncio.run(main())
    finally:
        server.server.shutdown()
    assert server.counts == {"connections": 4, "requests": 4}


def test_over_tls_one_handshake_serves_every_request(tmp_path: Path) -> None:
    ca, cert, key = ensure_certificates(tmp_path, [])
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = Server("HTTP/1.1", server_side)
    context = client_context(str(ca), None, None, True)

    async def main() -> list[int]:
        pool = HttpPool()
        statuses = [(await pool.request(server.open, context, "localhost", "GET", "/", [("Host", "a")])).status]
        statuses += [(await pool.request(server.open, context, "localhost", "GET", "/", [("Host", "a")])).status]
        await pool.close()
        return statuses

    try:
        assert asyncio.run(main()) == [200, 200]
    finally:
        server.server.shutdown()
    assert server.counts == {"connections": 1, "requests": 2}
